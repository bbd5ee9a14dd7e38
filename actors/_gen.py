"""What gen_server, sys and supervisor share: synchronous calls, replies and starts.

Rules of this module:
- A call monitors the server, sends ("$gen_call", (caller, alias), request) and waits for
  (alias, reply) or the DOWN. The alias is withdrawn when the call ends, so a reply that
  comes after a timeout is dropped, as with OTP's aliases.
- Exits carry OTP's shapes: ("noproc", where), ("timeout", where), (reason, where), where
  `where` is e.g. ("gen_server", "call", [server_ref, request, timeout]).
- A start runs the new process's init synchronously: the starter waits for its ack, and
  (with an infinite timeout, as for calls below) runs the init on its own thread meanwhile.
- A call with an infinite timeout to an idle local server runs the server on the caller's
  thread while the caller waits (as a BEAM scheduler runs the next process on the same OS
  thread): no thread is woken on the way there or back. The caller is formally waiting in
  its receive meanwhile, so messages and exit signals reach it as usual. Python cannot move
  the caller off that thread, so a call with a timeout never does this (a server that
  hangs must not hold up the caller's timeout exit), and a server whose run took over
  `_process.SLOW_MS` (the garbage collector's pauses aside) is run on workers for the
  next `SLOW_PAUSE_S` (if it is killed while stuck in a blocking C call, its caller sees
  the DOWN only when that call returns).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from . import _context
from ._process import Process
from ._remote import node_of, wire_id
from ._terms import TIMEOUT, Exit, Pid, ProcessKilled, Ref
from .node import Located

From = tuple[Pid, Ref]


def check_timeout(timeout: Any) -> None:
    if timeout != "infinity" and (type(timeout) is not int or timeout < 0):
        raise Exit(("badarg", ("timeout", timeout)))


def call(server_ref: Any, tag: str, request: Any, timeout: Any, where: Any) -> Any:
    """Send `(tag, from, request)` and wait for the reply; raise OTP's exits."""
    me = _context.self_process()
    check_timeout(timeout)
    target = me.node.locate(server_ref)
    if target is None or (type(target) is Process and not target.alive):
        raise Exit(("noproc", where))
    if target is me:
        raise Exit(("calling_self", where))
    marker = len(me.mailbox)  # nothing queued before the request can carry its reference
    state = _context._state
    if (type(target) is Process and timeout == "infinity"
            and target.slow_until < time.monotonic()):
        state.lend = target  # if the request makes the server runnable, we run it
    try:
        ref = _request(me, target, server_ref, tag, request, call=True)
    finally:
        lent, state.lend, state.lent = state.lent, None, None
    kind, value = _await(me, ref, timeout, abandon=True, start=marker, lent=lent,
                         remote=type(target) is not Process)
    if kind == "reply":
        return value
    if kind == "down" and value == "noconnection":
        raise Exit((("nodedown", node_of(target)), where))
    raise Exit(("timeout", where) if kind == "timeout" else (value, where))


class RequestId:
    """An asynchronous call in flight (gen_server.send_request). Opaque to users."""

    __slots__ = ("ref", "remote", "server_ref")

    def __init__(self, ref: Ref, server_ref: Any, remote: bool = False) -> None:
        self.ref = ref
        self.server_ref = server_ref
        self.remote = remote  # the server is on another node: its reply may be polled for

    def __repr__(self) -> str:
        return f"RequestId({self.ref!r}, {self.server_ref!r})"


def send_request(server_ref: Any, tag: str, request: Any, call: bool = False) -> RequestId:
    """Send a call without waiting. A dead server answers with a DOWN, as OTP's. `call`:
    the caller will collect the response (receive_response), as a call waits for it, so a
    remote server's reply may end the monitor (see `_request`)."""
    me = _context.self_process()
    target = me.node.locate(server_ref)
    ref = _request(me, target, server_ref, tag, request, call)
    return RequestId(ref, server_ref, target is not None and type(target) is not Process)


def collected_request(server_ref: Any, request: Any) -> RequestId:
    """gen_server's `send_request` for a caller that always collects the response with
    `receive_response` (multi_call, global's rounds): as for a call, a remote server's
    reply ends the request's monitor, so no demonitor has to follow it."""
    return send_request(server_ref, "$gen_call", request, call=True)


def wait_response(req: RequestId, timeout: Any, abandon: bool) -> Any:
    """("reply", r) | ("error", (reason, server_ref)) | "timeout". With `abandon`, a
    timeout withdraws the request (receive_response); else it stays active (wait_response)."""
    me = _context.self_process()
    check_timeout(timeout)
    kind, value = _await(me, req.ref, timeout, abandon, remote=req.remote)
    if kind == "down":
        return ("error", (value, req.server_ref))
    return "timeout" if kind == "timeout" else ("reply", value)


def _request(me: Process, target: Located | None, server_ref: Any, tag: str,
             request: Any, call: bool = False) -> Ref:
    """Monitor the server, open an alias (the monitor's ref) and send the request.
    `target` is where `locate` found `server_ref` (None: not there, DOWN noproc). `call`:
    the caller waits for the reply and then demonitors, so a remote server's reply may end
    the monitor itself (see `RemoteEnd.end_call_monitor`); a `send_request`'s monitor
    stays until its response is collected, as OTP's does. A request that cannot be sent
    (badarg: it does not pickle) leaves neither its monitor nor its alias behind."""
    node = me.node
    ref = node.make_ref()
    me.aliases.add(ref)
    try:
        if call and target is not None and type(target) is not Process:
            node.links.call_remote(me, target, ref, tag, request)
            return ref
        msg = (tag, (me.pid, ref), request)
        if target is None:
            node.monitor(me, server_ref, ref, then_send=msg)
        else:
            obj = target.pid if type(target) is Process else target
            node.monitor_located(me, target, obj, ref, then_send=msg)
        return ref
    except Exception:
        me.aliases.discard(ref)
        node.demonitor(me, ref)  # set before the send, so that no DOWN could miss it
        raise


def _await(me: Process, ref: Ref, timeout: Any, abandon: bool, start: int = 0,
           lent: Callable[[], None] | None = None, remote: bool = False) -> tuple[str, Any]:
    """Wait for (ref, reply) or the monitor's DOWN: ("reply", r), ("down", reason) or
    ("timeout", None). An abandoned request closes its alias: a late reply is dropped.
    After a reply the monitor is removed with its DOWN, if that came too (OTP's
    demonitor(Mref, [flush])). `start`: the caller's receive marker. `lent`: the server's
    run, done on this thread while the caller waits (see `Process.receive`)."""
    msg = me.receive(
        lambda m: type(m) is tuple and (m[0] == ref or (m[0] == "DOWN" and m[1] == ref)),
        timeout, start, lent, remote,
    )
    if msg is TIMEOUT:
        if not abandon:
            return ("timeout", None)
        with me.lock:
            me.aliases.discard(ref)
        me.node.demonitor(me, ref)
        late = me.take_nowait(lambda m: type(m) is tuple and m[0] == ref, start)
        me.flush_down(ref, start)
        return ("timeout", None) if late is None else ("reply", late[1])
    me.aliases.discard(ref)
    if msg[0] == "DOWN":
        return ("down", msg[4])
    me.node.demonitor(me, ref)
    me.flush_down(ref, start)
    return ("reply", msg[1])


def reply(from_: From, msg: Any) -> None:
    """Reply to a caller. Dropped if the caller gave up or died, or if we are dead."""
    sender = _context.current_process()
    if sender is not None and not sender.alive:
        raise ProcessKilled()  # an abandoned thread: its reply is dropped and it unwinds
    pid, alias = from_
    node = sender.node if sender is not None else _context.current_node()
    if pid.node != node.name:
        if sender is not None and sender.call_monitors is not None and (
                node.remote_end.end_call_monitor(sender, pid, alias)):
            # the server's own reply to a remote call: it ends the call's monitor too
            node.remote.send(pid.node, ("reply", wire_id(pid), alias.id, msg),
                             autoconnect=False)
        else:
            node.remote.send(pid.node, ("alias", pid, alias, (alias, msg)),
                             autoconnect=False)
        return
    target = node.lookup(pid)
    if target is not None:
        target.deliver_to_alias(alias, (alias, msg))


def start(init_it: Callable[[Process, Callable[[Any], None]], None], initial_call: Any,
          *, link: bool, timeout: Any, monitor: bool = False) -> Any:
    """Spawn a handler process, run `init_it(proc, ack)` in it, and return what it acks.

    With `monitor` (start_monitor), a successful start returns ("ok", (pid, mref)) and the
    monitor stays; a failed one returns the error and leaves no monitor and no DOWN.

    If the process dies before acking, returns ("error", reason). If it acks an error, the
    start returns only once the process is dead (OTP 26's synchronous init failure). On a
    timeout the process is killed and ("error", "timeout") is returned.
    """
    me = _context.self_process()
    node = me.node
    check_timeout(timeout)
    tag = node.make_ref()

    def ack(result: Any) -> None:
        proc = _context.current_process()
        if proc is not None and proc.alive:
            me.deliver(("$ack", tag, result))

    lent: list[Callable[[], None]] | None = (
        [] if timeout == "infinity" else None)
    proc, mref = node.spawn_handler(lambda p: init_it(p, ack), initial_call, parent=me,
                                    link=link, monitor=True, lend=lent)
    assert mref is not None
    msg = me.receive(lambda m: type(m) is tuple and (
        (m[0] == "$ack" and m[1] == tag) or (m[0] == "DOWN" and m[1] == mref)), timeout,
        lent=lent[0] if lent else None)
    if msg is TIMEOUT:
        node.demonitor(me, mref)
        node.unlink(me, proc.pid)
        node.exit_signal(proc.pid, me.pid, "kill")
        me.flush_down(mref)
        me.take_nowait(lambda m: type(m) is tuple and m[:2] == ("EXIT", proc.pid))
        return ("error", "timeout")
    if msg[0] == "DOWN":
        if link:
            _flush_exit(me, proc, _unlink(me, proc))
        return ("error", msg[4])
    result = msg[2]
    if type(result) is tuple and result[0] == "ok":
        if monitor:
            return ("ok", (result[1], mref))
        node.demonitor(me, mref)
        me.flush_down(mref)
        return result
    # init failed or was ignored: wait for the process to be gone before returning
    exit_sent = _unlink(me, proc) if link else False
    down = me.receive(lambda m: type(m) is tuple and m[0] == "DOWN" and m[1] == mref, 5000)
    if down is TIMEOUT:
        node.demonitor(me, mref)
    elif link:
        _flush_exit(me, proc, exit_sent)
    return result


def _unlink(me: Process, proc: Process) -> bool:
    """Unlink from a process whose start failed. True if it had already died linked to us,
    so that its EXIT is in (or on its way to) our mailbox."""
    node = me.node
    with node.lock:  # the lock a dying process takes to drop its links
        died_linked = proc.pid not in me.links
        node.unlink(me, proc.pid)
    return died_linked


def _flush_exit(me: Process, proc: Process, exit_sent: bool) -> None:
    """OTP 26's flush_EXIT: a failed start leaves no ("EXIT", pid, _) behind. Called after
    the DOWN; the dying process sends its EXIT right after its DOWNs."""
    pred = lambda m: type(m) is tuple and len(m) == 3 and m[0] == "EXIT" and m[1] == proc.pid  # noqa: E731
    if exit_sent and me.trap_exit:
        me.receive(pred, 2000)
    else:
        me.take_nowait(pred)


def init_failed(proc: Process, reason: Any) -> None:
    """End the current process from inside its init (after the ack went out)."""
    proc.node.exit_process(proc, reason)
    raise ProcessKilled()


def stop(server_ref: Any, reason: Any, timeout: Any) -> str:
    """proc_lib:stop: ask the server to terminate with `reason`, wait until it is gone."""
    me = _context.self_process()
    node = me.node
    check_timeout(timeout)
    target = node.locate(server_ref)
    if target is None or (type(target) is Process and not target.alive):
        raise Exit("noproc")
    obj = target.pid if type(target) is Process else target
    mref = node.monitor_located(me, target, obj, node.make_ref())
    node.send_located(target, ("$system", None, ("terminate", reason)))
    down = me.receive(lambda m: type(m) is tuple and m[0] == "DOWN" and m[1] == mref, timeout)
    if down is TIMEOUT:
        node.demonitor(me, mref)
        me.flush_down(mref)
        raise Exit("timeout")
    if down[4] == "noproc":
        raise Exit("noproc")
    if down[4] != reason:
        raise Exit(down[4])
    return "ok"
