"""gen_server: a generic server process driven by callbacks, as OTP's.

The callback module is a `GenServer` subclass (or any object or Python module with the
callbacks). Callbacks return OTP-shaped tuples:

- init(args): ("ok", s) | ("ok", s, timeout | "hibernate" | ("continue", c))
  | ("stop", reason) | ("error", reason) | "ignore"
- handle_call(request, from_, s): ("reply", r, s[, x]) | ("noreply", s[, x])
  | ("stop", reason, r, s) | ("stop", reason, s)
- handle_cast(msg, s), handle_info(msg, s), handle_continue(c, s):
  ("noreply", s[, x]) | ("stop", reason, s)
- terminate(reason, s), code_change(old_vsn, s, extra) -> ("ok", s)

where x is a timeout in ms, "infinity", "hibernate" or ("continue", c). Any other return
ends the server with ("bad_return_value", value). A timeout with no message in between
delivers "timeout" to handle_info.
"""

from __future__ import annotations

import time
from typing import Any

from . import _context, _gen, _reqids
from ._gen import From
from ._process import deadline_of
from ._server_loop import ServerLoop
from ._terms import Error, Exit, Pid, ProcessKilled
from .otp_types import (
    CallResult,
    CastResult,
    CodeChangeResult,
    ContinueResult,
    InfoResult,
    InitResult,
)

__all__ = [
    "GenServer", "abcast", "call", "cast", "check_response", "multi_call", "receive_response",
    "reply", "reqids_add", "reqids_new", "reqids_size", "reqids_to_list", "send_request",
    "start", "start_link", "start_monitor", "stop", "wait_response",
]


class GenServer:
    """Base class with OTP's default callbacks. Override what you need.

    The return types are `actors.otp_types`' aliases of OTP's shapes; an override may
    narrow the state, e.g. `def handle_cast(self, msg, s: Chs) -> CastResult[Chs]`."""

    def init(self, args: Any) -> InitResult[Any]:
        return ("ok", args)

    def handle_call(self, request: Any, from_: From, state: Any) -> CallResult[Any]:
        raise Exit(("bad_call", request))

    def handle_cast(self, msg: Any, state: Any) -> CastResult[Any]:
        raise Exit(("bad_cast", msg))

    def handle_info(self, msg: Any, state: Any) -> InfoResult[Any]:
        ServerLoop.log_unexpected(self, msg)
        return ("noreply", state)

    def handle_continue(self, continue_: Any, state: Any) -> ContinueResult[Any]:
        raise Exit(("bad_continue", continue_))

    def terminate(self, reason: Any, state: Any) -> Any:
        """Its return value is ignored, as OTP's."""
        return "ok"

    def code_change(self, old_vsn: Any, state: Any, extra: Any) -> CodeChangeResult[Any]:
        return ("ok", state)


def _split_start_args(args: tuple[Any, ...]) -> tuple[Any, Any, Any, list[Any]]:
    """(name?, module, args, options?) as OTP's start/3 and start/4."""
    if args and type(args[0]) is tuple and args[0] and args[0][0] in ("local", "global", "via"):
        name, rest = args[0], args[1:]
    else:
        name, rest = None, args
    if len(rest) == 2:
        return name, rest[0], rest[1], []
    if len(rest) == 3:
        return name, rest[0], rest[1], list(rest[2])
    raise TypeError("start([name,] module, args[, options])")


def start(*args: Any) -> Any:
    """start([name,] module, args, options=[]) -> ("ok", pid) | ("error", r) | "ignore"."""
    return _start(args, link=False)


def start_link(*args: Any) -> Any:
    """As `start`, and the new server is linked to the caller."""
    return _start(args, link=True)


def start_monitor(*args: Any) -> Any:
    """As `start`, and the caller monitors the new server: ("ok", (pid, mref)) on success.
    A failed start returns its error and leaves no monitor (and no DOWN)."""
    return _start(args, link=False, monitor=True)


def _start(args: tuple[Any, ...], *, link: bool, monitor: bool = False) -> Any:
    name, module, init_args, options = _split_start_args(args)
    callbacks = module() if isinstance(module, type) else module
    timeout = "infinity"
    for option in options:
        if type(option) is tuple and option[0] == "timeout":
            timeout = option[1]
    me = _context.self_process()
    loop = ServerLoop(callbacks, name, parent=me.pid if link else None)
    return _gen.start(lambda proc, ack: loop.init_it(proc, ack, init_args),
                      (getattr(module, "__name__", repr(module)), "init", 1),
                      link=link, timeout=timeout, monitor=monitor)


class _DefaultTimeout(int):
    """5000, but remembers that the caller gave no timeout (for OTP's exit shapes)."""


DEFAULT_TIMEOUT = _DefaultTimeout(5000)


def call(server_ref: Any, request: Any, timeout: int | str = DEFAULT_TIMEOUT) -> Any:
    """Make a synchronous call and return the reply. The default timeout is 5000 ms.

    Raises Exit(("noproc", where)) if the server is not there, Exit(("timeout", where)) if
    no reply comes in time, and Exit((reason, where)) if the server dies during the call,
    where `where` is ("gen_server", "call", [server_ref, request, timeout]), or
    ("gen_server", "call", [server_ref, request]) when no timeout was given, as call/2's.
    """
    args = [server_ref, request] if timeout is DEFAULT_TIMEOUT else [server_ref, request, timeout]
    return _gen.call(server_ref, "$gen_call", request, int(timeout) if timeout is
                     DEFAULT_TIMEOUT else timeout, ("gen_server", "call", args))


def multi_call(*args: Any) -> tuple[list[tuple[str, Any]], list[str]]:
    """multi_call(name, request) or multi_call(nodes, name, request, timeout="infinity"):
    call the server registered as `name` on each node (default: this node and all it is
    connected to), in parallel. Returns ([(node, reply)], bad_nodes): a node is bad if the
    server is not there, dies, or does not answer within `timeout` ms (one deadline for all).
    """
    if args and type(args[0]) is list:
        nodes, name, request, *rest = args
        timeout = rest[0] if rest else "infinity"
    else:
        (name, request), nodes, timeout = args, _all_nodes(), "infinity"
    _gen.check_timeout(timeout)
    deadline = deadline_of(timeout)
    requests = [(node, _gen.collected_request((name, node), request)) for node in nodes]
    replies: list[tuple[str, Any]] = []
    bad: list[str] = []
    for node, req in requests:
        left = "infinity" if deadline is None else max(0, int((deadline - time.monotonic())
                                                              * 1000))
        answer = receive_response(req, left)
        if type(answer) is tuple and answer[0] == "reply":
            replies.append((node, answer[1]))
        else:
            bad.append(node)
    return replies, bad


def abcast(*args: Any) -> str:
    """abcast(name, request) or abcast(nodes, name, request): cast to the server registered
    as `name` on each node (default: this node and its connected nodes). "abcast"."""
    if args and type(args[0]) is list:
        nodes, name, request = args
    else:
        (name, request), nodes = args, _all_nodes()
    for node in nodes:
        cast((name, node), request)
    return "abcast"


def _all_nodes() -> list[str]:
    """This node and every node it is connected to: OTP's [node() | nodes()]."""
    node = _context.current_node()
    return [node.name, *node.nodes()]


def send_request(server_ref: Any, request: Any, *label_and_collection: Any) -> Any:
    """Start a call without waiting; collect the answer with wait_response,
    receive_response or check_response. Several requests may be in flight at once.

    send_request(ref, request, label, collection) adds the request to a request-id
    collection (see reqids_new) and returns the new collection, as OTP's send_request/4."""
    req = _gen.send_request(server_ref, "$gen_call", request)
    if not label_and_collection:
        return req
    label, coll = label_and_collection
    return reqids_add(req, label, coll)


def wait_response(request_id: Any, timeout: Any = "infinity", delete: bool = False) -> Any:
    """("reply", r) | ("error", (reason, server_ref)) | "timeout" (the request stays active).
    With a collection: (response, label, new_collection) | "no_request" | "timeout";
    `delete` drops the answered request from the returned collection."""
    if isinstance(request_id, _reqids.ReqIdCollection):
        return _reqids.collection_response(request_id, timeout, delete, abandon=False)
    return _gen.wait_response(request_id, timeout, abandon=False)


def receive_response(request_id: Any, timeout: Any = "infinity", delete: bool = False) -> Any:
    """As wait_response, but a timeout abandons the request (every request of a
    collection): a later reply is dropped."""
    if isinstance(request_id, _reqids.ReqIdCollection):
        return _reqids.collection_response(request_id, timeout, delete, abandon=True)
    return _gen.wait_response(request_id, timeout, abandon=True)


def check_response(msg: Any, request_id: Any, delete: bool = False) -> Any:
    """Is the received `msg` the answer to `request_id`? ("reply", r) | ("error", (reason,
    server_ref)) | "no_reply"; with a collection: (response, label, new_collection) |
    "no_request" | "no_reply"."""
    return _reqids.check_response(msg, request_id, delete)


def reqids_new() -> _reqids.ReqIdCollection:
    """An empty request-id collection."""
    return _reqids.ReqIdCollection()


def reqids_add(request_id: Any, label: Any, collection: Any) -> _reqids.ReqIdCollection:
    """The collection with `request_id` (labelled `label`) added; badarg if it is there."""
    if not isinstance(collection, _reqids.ReqIdCollection):
        raise Error("badarg")
    return collection.add(request_id, label)


def reqids_size(collection: Any) -> int:
    return len(collection)


def reqids_to_list(collection: Any) -> list[tuple[Any, Any]]:
    """[(request_id, label)] in the order they were added."""
    return collection.to_list()


def cast(server_ref: Any, request: Any) -> str:
    """Send an asynchronous request. Always returns "ok", even if the server is gone."""
    sender = _context.current_process()
    if sender is not None and not sender.alive:
        raise ProcessKilled()  # an abandoned thread: its cast is dropped and it unwinds
    node = sender.node if sender is not None else _context.current_node()
    node.route(server_ref, ("$gen_cast", request))  # to an unknown name: dropped, as OTP's
    return "ok"


def reply(from_: From, reply_: Any) -> str:
    """Reply to a caller from anywhere (e.g. after ("noreply", s))."""
    _gen.reply(from_, reply_)
    return "ok"


def stop(server_ref: Any, reason: Any = "normal", timeout: int | str = "infinity") -> str:
    """Stop the server: it runs terminate(reason) and exits with `reason`.

    Raises Exit("noproc") if there is no server, Exit("timeout") if it does not stop in
    time, and Exit(other) if it exits with another reason.
    """
    return stop_server(server_ref, reason, timeout)


def stop_server(server_ref: Any, reason: Any, timeout: Any) -> str:
    """proc_lib:stop, with OTP's exit when the server's node is down: (("nodedown",
    node), ("sys", "terminate", [server_ref, reason, timeout]))."""
    try:
        return _gen.stop(server_ref, reason, timeout)
    except Exit as exc:
        if exc.reason != "noconnection":
            raise
        where = ("sys", "terminate", [server_ref, reason, timeout])
        node = server_ref.node if type(server_ref) is Pid else server_ref[-1]
        raise Exit((("nodedown", node), where)) from None
