"""gen_statem: a generic state machine process driven by callbacks, as OTP's.

The callback module is a `GenStatem` subclass (or any object or Python module with the
callbacks):

- callback_mode() -> "state_functions" | "handle_event_function", or a list of one of them
  and "state_enter". With state_functions the state is a str naming a method:
  state(event_type, content, data); with handle_event_function any state works:
  handle_event(event_type, content, state, data).
- init(args) -> ("ok", state, data[, actions]) | ("stop", reason) | ("error", reason)
  | "ignore".
- Event types: ("call", from_), "cast", "info", "timeout", "state_timeout",
  ("timeout", name), "internal", and "enter" (state enter calls: content is the old state).
- Results: ("next_state", s, d[, actions]), ("keep_state", d[, actions]),
  "keep_state_and_data", ("keep_state_and_data", actions), ("repeat_state", d[, actions]),
  "repeat_state_and_data", ("repeat_state_and_data", actions), "stop", ("stop", reason[,
  d]), ("stop_and_reply", reason, replies[, d]).
- Actions (a list, or one action): ("reply", from_, r), "postpone", ("next_event", type,
  content), "hibernate" (accepted; no effect here), time-outs: an int or "infinity" (event
  time-out), ("timeout" | "state_timeout" | ("timeout", name), ms | "infinity", content[,
  [("abs", True)]]), (type, "update", content), (type, "cancel").
- terminate(reason, state, data), code_change(old_vsn, state, data, extra) ->
  ("ok", state, data): optional.

Calls use the same message protocol as gen_server's (("$gen_call", from, request)), so a
gen_statem on another node is called the same way. The default call timeout is
"infinity", as OTP's.
"""

from __future__ import annotations

from typing import Any, Literal

from . import _context, _gen
from ._statem_loop import StatemLoop
from ._terms import Exit, ProcessKilled
from .gen_server import (  # the same call protocol: the same request functions
    _split_start_args,
    check_response,
    receive_response,
    reqids_add,
    reqids_new,
    reqids_size,
    reqids_to_list,
    send_request,
    stop_server,
    wait_response,
)
from .otp_types import CallbackMode

__all__ = [
    "GenStatem", "call", "cast", "check_response", "receive_response", "reply",
    "reqids_add", "reqids_new", "reqids_size", "reqids_to_list", "send_request", "start",
    "start_link", "start_monitor", "stop", "wait_response",
]


class GenStatem:
    """Base class: state_functions mode and terminate/code_change defaults. Override.

    `init` and the state callbacks are yours; `actors.otp_types` names their shapes:
    `def init(self, args) -> StatemInitResult[str, Data]`,
    `def locked(self, event_type, content, data: Data) -> EventResult[str, Data]`."""

    def callback_mode(self) -> CallbackMode:
        return "state_functions"

    def terminate(self, reason: Any, state: Any, data: Any) -> Any:
        """Its return value is ignored, as OTP's."""
        return "ok"

    def code_change(self, old_vsn: Any, state: Any, data: Any,
                    extra: Any) -> tuple[Literal["ok"], Any, Any] | tuple[Literal["error"], Any]:
        return ("ok", state, data)


def start(*args: Any) -> Any:
    """start([name,] module, args, options=[]) -> ("ok", pid) | ("error", r) | "ignore"."""
    return _start(args, link=False, monitor=False)


def start_link(*args: Any) -> Any:
    """As `start`, and the new machine is linked to the caller."""
    return _start(args, link=True, monitor=False)


def start_monitor(*args: Any) -> Any:
    """As `start`, and the caller monitors the machine: ("ok", (pid, mref))."""
    return _start(args, link=False, monitor=True)


def _start(args: tuple[Any, ...], *, link: bool, monitor: bool) -> Any:
    name, module, init_args, options = _split_start_args(args)
    callbacks = module() if isinstance(module, type) else module
    timeout: Any = "infinity"
    for option in options:
        if type(option) is tuple and option[0] == "timeout":
            timeout = option[1]
    me = _context.self_process()
    loop = StatemLoop(callbacks, name, parent=me.pid if link else None)
    return _gen.start(lambda proc, ack: loop.init_it(proc, ack, init_args),
                      (getattr(module, "__name__", repr(module)), "init", 1),
                      link=link, timeout=timeout, monitor=monitor)


def _call_timeout(timeout: Any) -> Any:
    """ms | "infinity" | ("dirty_timeout" | "clean_timeout", t): the time to wait."""
    if type(timeout) is tuple and len(timeout) == 2 and timeout[0] in ("dirty_timeout",
                                                                       "clean_timeout"):
        return timeout[1]
    return timeout


def call(server_ref: Any, request: Any, timeout: Any = "infinity") -> Any:
    """Call the machine and wait for its reply ({call, From} event).

    Exits as gen_server.call does, with where = ("gen_statem", "call", [server_ref,
    request, timeout])."""
    return _gen.call(server_ref, "$gen_call", request, _call_timeout(timeout),
                     ("gen_statem", "call", [server_ref, request, timeout]))


def cast(server_ref: Any, msg: Any) -> str:
    """Send a cast event. Always "ok", even if the machine is not there."""
    sender = _context.current_process()
    if sender is not None and not sender.alive:
        raise ProcessKilled()
    node = sender.node if sender is not None else _context.current_node()
    node.route(server_ref, ("$gen_cast", msg))
    return "ok"


def reply(*args: Any) -> str:
    """reply(from_, r), or reply([("reply", from_, r), ...])."""
    if len(args) == 2:
        _gen.reply(args[0], args[1])
        return "ok"
    if len(args) == 1 and type(args[0]) in (list, tuple):
        replies = args[0] if type(args[0]) is list else [args[0]]
        for r in replies:
            if not (type(r) is tuple and len(r) == 3 and r[0] == "reply"):
                raise Exit(("badarg", r))
            _gen.reply(r[1], r[2])
        return "ok"
    raise TypeError("reply(from_, reply) or reply(replies)")


def stop(server_ref: Any, reason: Any = "normal", timeout: Any = "infinity") -> str:
    """Stop the machine: terminate(reason, state, data) runs; it exits with `reason`."""
    return stop_server(server_ref, reason, timeout)
