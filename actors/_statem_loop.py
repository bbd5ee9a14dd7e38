"""The gen_statem loop, as a handler on borrowed workers (as `_server_loop` is for gen_server).

Rules of this module:
- One mailbox message is one event: ("$gen_call", from, req) -> (("call", from), req),
  ("$gen_cast", m) -> ("cast", m), a fired timer -> (its type, its content), anything
  else -> ("info", msg). System messages and the parent's EXIT (when trapping exits) are
  not events.
- After an event, the loop runs what the transition queued before it takes the next
  message: inserted events (next_event) first, then the postponed events a state change
  retries, then zero time-outs, in the order they were set.
- Every transition cancels the event time-out (any event cancels it); a state change also
  cancels the state time-out and retries postponed events. Of several time-outs of one
  type set in a transition (the event's actions, then the state enter call's), the last
  one wins. Timers are the node's, owned by the process; a fired timer whose key is no
  longer current is stale and dropped.
- Exceptions, bad results and bad actions end the machine: the replies of stop_and_reply
  go out, then terminate(reason, state, data) runs, an error is logged unless the reason
  is normal or shutdown, and the process exits. A bad result or action exits with
  ((error_term, stacktrace)), as OTP's error class does.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from . import _gen
from ._process import Process
from ._server_loop import (
    _class_reason,
    _is_system,
    _SystemError,
    callback,
    module_name,
    register_name,
)
from ._statem_actions import (
    KEEP,
    Actions,
    BadReturn,
    Result,
    Timeout,
    is_from,
    listify,
    parse_actions,
    parse_init,
    parse_result,
)
from ._terms import Exit, Pid, ProcessKilled, Ref
from .node import Node, is_quiet

log = logging.getLogger("actors.gen_statem")

_MODES = ("state_functions", "handle_event_function")


class StatemLoop:
    """One gen_statem's loop state: callbacks, (state, data), queues and timers."""

    def __init__(self, callbacks: Any, name: Any, parent: Pid | None) -> None:
        self.mod = callbacks
        self.name = name
        self.parent = parent
        self.proc: Process | None = None
        self.mode = "state_functions"
        self.state_enter = False
        self.state: Any = None
        self.data: Any = None
        self.postponed: list[tuple[Any, Any]] = []
        self.queue: deque[tuple[Any, Any]] = deque()
        self.t0q: list[Any] = []  # timeout types whose zero time-out is pending, in order
        self.timers: dict[Any, tuple[Any, Any]] = {}  # type -> (key | 0, content)
        self.keys: dict[Ref, Any] = {}  # a running timer's key -> its type

    # -- start ----------------------------------------------------------------------------

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
            if not is_quiet(reason):
                log.error("crash_report: gen_statem %r failed in init: %r", proc.pid, reason)
            ack(("error", _class_reason(exc)[1]))  # OTP: {error, Reason}, no stacktrace
            _gen.init_failed(proc, reason)
        self._init_result(proc, ack, result)

    def _init_result(self, proc: Process, ack: Any, result: Any) -> None:
        if result == "ignore":
            ack("ignore")
            _gen.init_failed(proc, "normal")
        if type(result) is tuple and len(result) == 2 and result[0] in ("stop", "error"):
            ack(("error", result[1]))
            _gen.init_failed(proc, result[1] if result[0] == "stop" else "normal")
        try:
            parsed = parse_init(result)
            self._callback_mode()
        except BadReturn as bad:
            ack(("error", bad.term))
            _gen.init_failed(proc, bad.term)
        self.state, self.data = parsed.state, parsed.data
        proc.handler = self.handle
        ack(("ok", proc.pid))
        self._transition(None, parsed, init=True)
        self._drain()

    def _callback_mode(self) -> None:
        """callback_mode() (a method or a plain attribute): a mode, or [mode, "state_enter"]."""
        found = getattr(self.mod, "callback_mode", None)
        answer = found() if callable(found) else found
        mode, enter = None, False
        for item in (list(answer) if type(answer) is list or type(answer) is tuple else [answer]):
            if item in _MODES:
                mode = item
            elif item == "state_enter":
                enter = True
            else:
                mode = None
                break
        if mode is None:
            raise BadReturn(("bad_return_from_callback_mode", answer))
        self.mode, self.state_enter = mode, enter

    # -- events ---------------------------------------------------------------------------

    def handle(self, msg: Any) -> None:
        tag = msg[0] if type(msg) is tuple and msg else None
        if tag == "$system" and len(msg) == 3:
            self._system(msg)
            return
        if tag == "$gen_call" and len(msg) == 3 and is_from(msg[1]):
            event: tuple[Any, Any] = (("call", msg[1]), msg[2])
        elif tag == "$gen_cast" and len(msg) == 2:
            event = ("cast", msg[1])
        elif tag == "$statem_timeout" and len(msg) == 2:
            ttype = self.keys.pop(msg[1], None)
            if ttype is None:
                return  # stale: cancelled or restarted since
            event = (ttype, self.timers.pop(ttype)[1])
        elif (tag == "EXIT" and len(msg) == 3 and msg[1] == self.parent
              and self.proc.trap_exit):  # type: ignore[union-attr]
            self._terminate(msg[2], msg)
        else:
            event = ("info", msg)
        self._event(event)
        self._drain()

    def _drain(self) -> None:
        """Run the queued events, then the zero time-outs, until none is left."""
        while True:
            if self.queue:
                event = self.queue.popleft()
            elif self.t0q:
                ttype = self.t0q.pop(0)
                event = (ttype, self.timers.pop(ttype)[1])
            else:
                return
            self._event(event)

    def _event(self, event: tuple[Any, Any]) -> None:
        try:
            raw = self._call(event[0], event[1])
        except ProcessKilled:
            raise
        except BaseException as exc:
            self._terminate(Node.reason_of(exc), event)
        try:
            result = parse_result(raw, enter=False)
        except BadReturn as bad:
            self._fail(bad.term, event)
        self._transition(event, result)

    def _call(self, etype: Any, content: Any) -> Any:
        if self.mode == "handle_event_function":
            return callback(self.mod, "handle_event")(etype, content, self.state, self.data)
        fun = getattr(self.mod, self.state, None) if type(self.state) is str else None
        if not callable(fun):
            raise Exit((("undef_state_function",
                         (module_name(self.mod), self.state, [etype, content, self.data])), []))
        return fun(etype, content, self.data)

    # -- transitions ----------------------------------------------------------------------

    def _transition(self, event: tuple[Any, Any] | None, result: Result,
                    init: bool = False) -> None:
        """Apply a parsed result of `event` (None: init's result)."""
        if result.kind == "stop":
            self._stop(result, event)
        acts = self._actions(result.actions, event, enter=False)
        if init and (acts.postpone):
            self._fail(("bad_action_from_state_function", "postpone"), event)
        old = self.state
        if result.state is not KEEP:
            self.state = result.state
        if result.data is not KEEP:
            self.data = result.data
        changed = init or self.state != old
        timeouts = acts.timeouts
        if self.state_enter and (changed or result.kind == "repeat"):
            timeouts = timeouts + self._enter(self.state if init else old, event)
        if acts.postpone and event is not None:
            self.postponed.append(event)
        self._cancel("timeout")
        if changed and not init:
            self.queue.extendleft(reversed(self.postponed))
            self.postponed = []
            self._cancel("state_timeout")
        self._set_timeouts(timeouts)
        self.queue.extendleft(reversed(acts.next_events))

    def _enter(self, old: Any, event: Any) -> list[Timeout]:
        """The state enter call(s): their time-outs. It may not change the state."""
        timeouts: list[Timeout] = []
        while True:
            try:
                raw = self._call("enter", old)
            except ProcessKilled:
                raise
            except BaseException as exc:
                self._terminate(Node.reason_of(exc), event)
            try:
                result = parse_result(raw, enter=True)
                if result.state is not KEEP and result.state != self.state:
                    raise BadReturn(("bad_state_enter_return_from_state_function", raw))
            except BadReturn as bad:
                self._fail(bad.term, event)
            if result.kind == "stop":
                self._stop(result, event)
            if result.data is not KEEP:
                self.data = result.data
            timeouts += self._actions(result.actions, event, enter=True).timeouts
            if result.kind != "repeat":
                return timeouts

    def _actions(self, actions: Any, event: Any, enter: bool) -> Actions:
        """Parse actions and send their replies at once; a bad one ends the machine."""
        acts, bad = parse_actions(actions, enter)
        for from_, reply in acts.replies:
            _gen.reply(from_, reply)
        if bad is not None:
            self._fail(bad, event)
        return acts

    # -- timers ---------------------------------------------------------------------------

    def _cancel(self, ttype: Any) -> None:
        found = self.timers.pop(ttype, None)
        if found is None:
            return
        key = found[0]
        if key == 0:
            self.t0q.remove(ttype)
        else:
            self.keys.pop(key, None)
            self.proc.node.timers.cancel(key)  # type: ignore[union-attr]

    def _set_timeouts(self, timeouts: list[Timeout]) -> None:
        seen: set[Any] = set()
        winners: list[Timeout] = []
        for t in reversed(timeouts):  # the last one of a type wins ...
            if t.type not in seen:
                seen.add(t.type)
                winners.append(t)
        for t in reversed(winners):  # ... and they start in the order they were given
            if t.time == "update":
                if t.type in self.timers:
                    self.timers[t.type] = (self.timers[t.type][0], t.content)
                    continue
                t = Timeout(t.type, 0, t.content)  # not running: fires at once
            self._cancel(t.type)
            if t.time == "infinity":
                continue
            if t.time == 0:
                self.timers[t.type] = (0, t.content)
                self.t0q.append(t.type)
                continue
            proc = self.proc
            assert proc is not None
            key = proc.node.make_ref()
            self.keys[key] = t.type
            self.timers[t.type] = (key, t.content)
            proc.node.timers.add(key, t.time, (proc.pid, ("$statem_timeout", key)), proc.pid)

    # -- system messages --------------------------------------------------------------------

    def _system(self, msg: tuple[str, Any, Any]) -> None:
        _, from_, request = msg
        proc = self.proc
        assert proc is not None
        if request == "get_state":
            answer: Any = (self.state, self.data)
        elif request == "get_status":
            answer = self.status()
        elif request in ("suspend", "resume"):
            proc.selector = _is_system if request == "suspend" else None
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

    def _replace_state(self, fun: Any) -> Any:
        """sys:replace_state with fun((state, data)) -> (state, data); a crash keeps both."""
        try:
            new = fun((self.state, self.data))
            if not (type(new) is tuple and len(new) == 2):
                raise Exit(("bad_return", new))
        except ProcessKilled:
            raise
        except Exception as exc:
            return _SystemError(("callback_failed", ("gen_statem", "system_replace_state"),
                                 _class_reason(exc)))
        self.state, self.data = new
        return new

    def _change_code(self, old_vsn: Any, extra: Any) -> Any:
        """code_change(old_vsn, state, data, extra) -> ("ok", state, data)."""
        try:
            r = callback(self.mod, "code_change")(old_vsn, self.state, self.data, extra)
        except ProcessKilled:
            raise
        except Exception as exc:
            return ("error", ("EXIT", Node.reason_of(exc)))
        if type(r) is tuple and len(r) == 3 and r[0] == "ok":
            self.state, self.data = r[1], r[2]
            try:
                self._callback_mode()  # new code may have a new callback mode
            except BadReturn as bad:
                return ("error", bad.term)
            return "ok"
        return ("error", r)

    def status(self) -> Any:
        proc = self.proc
        assert proc is not None
        mode = "suspended" if proc.selector is not None else "running"
        misc = [("header", f"Status for state machine {self.name or proc.pid!r}"),
                ("data", [("Status", mode), ("Parent", self.parent),
                          ("Time-outs", (len(self.timers), self._timeout_list())),
                          ("Logged Events", []), ("Postponed", list(self.postponed))]),
                ("data", [("State", (self.state, self.data))])]
        return ("status", proc.pid, ("module", "gen_statem"),
                [list(proc.dictionary.items()), mode, self.parent, [], misc])

    def _timeout_list(self) -> list[tuple[Any, Any]]:
        return [(ttype, content) for ttype, (_, content) in self.timers.items()]

    # -- ending -----------------------------------------------------------------------------

    def _stop(self, result: Result, event: Any) -> None:
        """stop / stop_and_reply: the replies go out, then terminate."""
        if result.data is not KEEP:
            self.data = result.data
        for r in listify(result.replies):
            if not (type(r) is tuple and len(r) == 3 and r[0] == "reply" and is_from(r[1])):
                self._terminate((("bad_reply_action_from_state_function", r), []), event)
            _gen.reply(r[1], r[2])
        self._terminate(result.reason, event)

    def _fail(self, term: Any, event: Any) -> None:
        self._terminate((term, []), event)

    def _terminate(self, reason: Any, event: Any) -> None:
        """Call terminate(reason, state, data) if defined, log, exit with `reason`."""
        proc = self.proc
        assert proc is not None
        terminate = getattr(self.mod, "terminate", None)
        if callable(terminate):
            try:
                terminate(reason, self.state, self.data)
            except ProcessKilled:
                raise
            except BaseException as exc:
                reason = proc.node.reason_of(exc)
        if not is_quiet(reason):
            log.error("** State machine %s terminating\n** Last event = %r\n"
                      "** When server state  = %r\n** Reason for termination = %r",
                      self.name[-1] if self.name else repr(proc.pid), event,
                      (self.state, self.data), reason)
        raise Exit(reason)
