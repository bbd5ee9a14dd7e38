"""The gen_server main loop, as a handler that runs on borrowed workers.

Rules of this module:
- `init_it` runs in the new process: it registers the name, calls init, acks the starter.
- `handle(msg)` dispatches one message: calls, casts, system messages, the parent's EXIT
  (when trapping exits), the loop's own timeout, and anything else to handle_info.
- Every callback result is checked. A bad one, or an exception in a callback, ends the
  server: terminate(reason, state) is called, an error report is logged, and the process
  exits with the reason. An exit signal that kills a non-trapping server skips terminate.
"""

from __future__ import annotations

import logging
from typing import Any

from . import _gen
from ._gen import From
from ._process import Process
from ._terms import Error, Exit, Pid, ProcessKilled
from .node import Node, is_quiet

log = logging.getLogger("actors.gen_server")

_INFINITY = "infinity"


class _SystemError:
    """A system request that failed: the caller raises Exit(reason) instead of returning."""

    __slots__ = ("reason",)

    def __init__(self, reason: Any) -> None:
        self.reason = reason


def _is_system(msg: Any) -> bool:
    return type(msg) is tuple and len(msg) == 3 and msg[0] == "$system"


def _valid_after(after: Any) -> bool:
    return (after == _INFINITY or after == "hibernate"
            or (type(after) is int and after >= 0)
            or (type(after) is tuple and len(after) == 2 and after[0] == "continue"))


def _class_reason(exc: BaseException) -> tuple[str, Any]:
    """(class, reason) of an exception, as Erlang's catch sees it: Error -> ("error", r),
    Exit -> ("exit", r), any other exception -> ("error", exc)."""
    if isinstance(exc, Error):
        return ("error", exc.reason)
    if isinstance(exc, Exit):
        return ("exit", exc.reason)
    return ("error", exc)


def module_name(callbacks: Any) -> str:
    """The name OTP's reasons give the callback module: a class's or a module's name."""
    if isinstance(callbacks, type) or hasattr(callbacks, "__spec__"):
        return str(getattr(callbacks, "__name__", repr(callbacks)))
    return type(callbacks).__name__


def callback(callbacks: Any, name: str) -> Any:
    """The callback `name`, or one that exits ("undef", [(module, name, args, [])]) as a
    call to a function the module does not export does in Erlang."""
    found = getattr(callbacks, name, None)
    if callable(found):
        return found
    mod = module_name(callbacks)

    def undef(*args: Any) -> Any:
        raise Exit(("undef", [(mod, name, list(args), [])]))

    return undef


def register_name(name: Any, proc: Process) -> Pid | None:
    """Register `proc` under ("local"|"global", n) or ("via", module, n); None on success,
    else the pid that holds the name (a gen_server's or gen_statem's already_started)."""
    if name is None:
        return None
    node = proc.node
    kind = name[0]
    if kind == "local":
        holder = node.whereis(name[1])
        if holder is None:
            try:
                node.register(name[1], proc.pid)
                return None
            except Exit:
                holder = node.whereis(name[1])
        return holder.pid if holder is not None else proc.pid
    if kind == "global":
        from . import global_

        if global_.register_name(name[1], proc.pid) == "yes":
            return None
        found = global_.whereis_name(name[1])
        return found if type(found) is Pid else proc.pid
    module, key = name[1], name[2]
    if module.register_name(key, proc.pid) == "yes":
        return None
    return module.whereis_name(key)


class ServerLoop:
    """One gen_server's loop state: its callbacks, its state, its timeout."""

    def __init__(self, callbacks: Any, name: Any, parent: Pid | None) -> None:
        self.mod = callbacks
        self.handle_call = callback(callbacks, "handle_call")
        self.handle_cast = callback(callbacks, "handle_cast")
        self.handle_info = getattr(callbacks, "handle_info", None) or self._unexpected
        # the rarely called callbacks are looked up when called: every bound method kept
        # is one more object for the cyclic GC to walk, per live server
        self.name = name
        self.parent = parent
        self.state: Any = None
        self.proc: Process | None = None
        self._timeout_token = 0
        self._timer: Any = None

    # -- start ----------------------------------------------------------------------------------

    def init_it(self, proc: Process, ack: Any, args: Any) -> None:
        self.proc = proc
        if self.parent is None:
            self.parent = proc.pid
        taken = register_name(self.name, proc)
        if taken is not None:
            ack(("error", ("already_started", taken)))
            _gen.init_failed(proc, "normal")
        try:
            result = callback(self.mod, "init")(args)
        except ProcessKilled:
            raise
        except BaseException as exc:
            reason = proc.node.reason_of(exc)
            self._report_init_crash(reason)
            ack(("error", reason))
            _gen.init_failed(proc, reason)
        self._init_result(proc, ack, result)

    def _init_result(self, proc: Process, ack: Any, result: Any) -> None:
        kind = result[0] if type(result) is tuple and result else result
        n = len(result) if type(result) is tuple else 0
        if kind == "ok" and (n == 2 or (n == 3 and _valid_after(result[2]))):
            self.state = result[1]
            proc.handler = self.handle
            ack(("ok", proc.pid))
            if n == 3:
                self._after(result[2], None)
            return
        if kind == "stop" and n == 2:
            ack(("error", result[1]))
            _gen.init_failed(proc, result[1])
        if kind == "error" and n == 2:
            ack(("error", result[1]))
            _gen.init_failed(proc, "normal")
        if result == "ignore":
            ack("ignore")
            _gen.init_failed(proc, "normal")
        reason = ("bad_return_value", result)
        ack(("error", reason))
        _gen.init_failed(proc, reason)

    # -- the loop -----------------------------------------------------------------------------

    def handle(self, msg: Any) -> None:
        tag = msg[0] if type(msg) is tuple and msg else None
        if tag == "$system" and len(msg) == 3:
            self._system(msg)  # a system message leaves a pending timeout running
            return
        if self._timer is not None:
            self.proc.node.timers.cancel(self._timer)  # type: ignore[union-attr]
            self._timer = None
        if tag == "$gen_call" and len(msg) == 3:
            self._timeout_token = 0
            self._run_call(msg)
        elif tag == "$gen_cast" and len(msg) == 2:
            self._timeout_token = 0
            self._run(self.handle_cast, msg[1], msg)
        elif tag == "$gen_timeout":
            if msg[1] == self._timeout_token:
                self._timeout_token = 0
                self._run(self.handle_info, "timeout", msg)
        elif (tag == "EXIT" and len(msg) == 3 and msg[1] == self.parent
              and self.proc.trap_exit):  # type: ignore[union-attr]
            self._terminate(msg[2], msg)
        else:
            self._timeout_token = 0
            self._run(self.handle_info, msg, msg)

    def _run_call(self, msg: tuple[Any, From, Any]) -> None:
        _, from_, request = msg
        try:
            result = self.handle_call(request, from_, self.state)
        except ProcessKilled:
            raise
        except BaseException as exc:
            self._terminate(Node.reason_of(exc), msg)
        if (type(result) is tuple and len(result) in (3, 4) and result[0] == "reply"
                and (len(result) == 3 or _valid_after(result[3]))):
            _gen.reply(from_, result[1])
            self.state = result[2]
            if len(result) == 4:
                self._after(result[3], msg)
            return
        if type(result) is tuple and len(result) == 4 and result[0] == "stop":
            self.state = result[3]
            self._terminate(result[1], msg, reply=(from_, result[2]))
        self._result(result, msg)

    def _run(self, callback: Any, arg: Any, msg: Any) -> None:
        try:
            result = callback(arg, self.state)
        except ProcessKilled:
            raise
        except BaseException as exc:
            self._terminate(Node.reason_of(exc), msg)
        self._result(result, msg)

    def _result(self, result: Any, msg: Any) -> None:
        """noreply / stop results of any callback."""
        if type(result) is tuple and result:
            n = len(result)
            if result[0] == "noreply" and (n == 2 or (n == 3 and _valid_after(result[2]))):
                self.state = result[1]
                if n == 3:
                    self._after(result[2], msg)
                return
            if result[0] == "stop" and n == 3:
                self.state = result[2]
                self._terminate(result[1], msg)
        self._terminate(("bad_return_value", result), msg)

    def _after(self, after: Any, msg: Any) -> None:
        if type(after) is int:
            proc = self.proc
            assert proc is not None
            self._timeout_token = proc.node.unique_integer()
            timeout_msg = ("$gen_timeout", self._timeout_token)
            if after == 0:
                proc.deliver(timeout_msg)
            else:
                self._timer = proc.node.make_ref()
                proc.node.timers.add(self._timer, after, (proc.pid, timeout_msg), proc.pid)
        elif type(after) is tuple:
            self._run(callback(self.mod, "handle_continue"), after[1], msg)

    # -- system messages ------------------------------------------------------------------

    def _system(self, msg: tuple[str, Any, Any]) -> None:
        _, from_, request = msg
        proc = self.proc
        assert proc is not None
        if request == "get_state":
            answer: Any = self.state
        elif request == "get_status":
            answer = self.status()
        elif request == "suspend":
            proc.selector = _is_system
            answer = "ok"
        elif request == "resume":
            proc.selector = None
            answer = "ok"
        elif type(request) is tuple and request[0] == "replace_state":
            answer = self._replace_state(request[1])
        elif type(request) is tuple and request[0] == "terminate":
            self._terminate(request[1], msg)
        elif type(request) is tuple and request[0] == "change_code":
            answer = self._change_code(*request[1:])
        else:
            answer = ("error", ("unknown_system_msg", request))
        if from_ is not None:
            _gen.reply(from_, answer)

    def _change_code(self, old_vsn: Any, extra: Any) -> Any:
        """sys:change_code: "ok", or ("error", what) with the state kept; a callback that
        raises gives ("error", ("EXIT", reason)), as OTP's catch does."""
        try:
            result = callback(self.mod, "code_change")(old_vsn, self.state, extra)
        except ProcessKilled:
            raise
        except Exception as exc:
            return ("error", ("EXIT", Node.reason_of(exc)))
        if type(result) is tuple and len(result) == 2 and result[0] == "ok":
            self.state = result[1]
            return "ok"
        return ("error", result)

    def _replace_state(self, fun: Any) -> Any:
        """sys:replace_state: a crashing fun leaves the state as it was."""
        try:
            self.state = fun(self.state)
        except ProcessKilled:
            raise
        except Exception as exc:
            return _SystemError(("callback_failed", ("gen_server", "system_replace_state"),
                                 _class_reason(exc)))
        return self.state

    def status(self) -> Any:
        proc = self.proc
        assert proc is not None
        mode = "suspended" if proc.selector is not None else "running"
        misc = [("header", f"Status for generic server {self.name or proc.pid!r}"),
                ("data", [("Status", mode), ("Parent", self.parent)]),
                ("data", [("State", self.state)])]
        return ("status", proc.pid, ("module", "gen_server"),
                [list(proc.dictionary.items()), mode, self.parent, [], misc])

    # -- ending -------------------------------------------------------------------------

    def _terminate(self, reason: Any, msg: Any, reply: tuple[From, Any] | None = None) -> None:
        """Call terminate(reason, state), report, reply if asked, and exit with reason."""
        proc = self.proc
        assert proc is not None
        try:
            terminate = getattr(self.mod, "terminate", None)
            if terminate is not None:
                terminate(reason, self.state)
        except ProcessKilled:
            raise
        except BaseException as exc:
            reason = proc.node.reason_of(exc)
        if not is_quiet(reason):
            log.error("** Generic server %s terminating\n** Last message in was %r\n"
                      "** When Server state == %r\n** Reason for termination ==\n** %r",
                      self.name[1] if self.name else repr(proc.pid), msg, self.state, reason)
        if reply is not None:
            _gen.reply(*reply)
        raise Exit(reason)

    def _report_init_crash(self, reason: Any) -> None:
        if not is_quiet(reason):
            log.error("crash_report: gen_server %r failed in init: %r", self.proc, reason)

    def _unexpected(self, msg: Any, state: Any) -> Any:
        """OTP's behaviour when the callback module has no handle_info."""
        self.log_unexpected(self.mod, msg)
        return ("noreply", state)

    @staticmethod
    def log_unexpected(mod: Any, msg: Any) -> None:
        log.warning("** Undefined handle_info in %s\n** Unhandled message: %r",
                    type(mod).__name__, msg)
