"""The node side of `python -m demos.bench.raft.trace`: stamps, profiles and pings.

Every function here runs on a member node (called there by reference with `rpc.call`), and
some in the client's process too. `install` wraps, before `ra.start`, the member's
`handle_call` / `handle_info`, the WAL writer's `handle_info` and the WAL's
`os.fdatasync`; `trace_members` gives the started members `trace_effect` as their
driver's effect trace callback (a parameter, not a wrapper); `install_dist` wraps the
distribution's frame flush and frame delivery. Each wrapper (and the callback) appends
`(time.monotonic_ns(), node, label)` to this process's `TRACE`, which `collect` hands
over and empties. `profile_start` and
`profile_stop` run yappi; `echo_loop` and `ping` time bare hops between nodes.
"""

from __future__ import annotations

import os
import time
from typing import Any

from actors import erlang, gen_server
from actors.raft import (
    AppendEntries,
    AppendResult,
    Apply,
    Heartbeat,
    HeartbeatResult,
    PersistEntries,
    ReadReady,
    Reply,
    Send,
)

TRACE: list[tuple[int, str, str]] = []


def _msg_label(msg: Any) -> str | None:
    if type(msg) is tuple and len(msg) == 2 and msg[0] == "$ra":
        inner = msg[1]
        if isinstance(inner, AppendEntries):
            return "ae_in" if inner.entries else None
        if isinstance(inner, AppendResult):
            return "ar_in"
        if isinstance(inner, Heartbeat):
            return "hb_in" if inner.read_ctx else None
        if isinstance(inner, HeartbeatResult):
            return "hbr_in" if inner.read_ctx else None
        return None
    if type(msg) is tuple and msg and msg[0] == "$ra_written":
        return "written_in"
    return None


def _effect_label(e: Any) -> str | None:
    if isinstance(e, Send):
        msg = e.msg
        if isinstance(msg, AppendEntries):
            return "ae_send" if msg.entries else "commit_ae_send"
        if isinstance(msg, AppendResult):
            return "ar_send"
        if isinstance(msg, Heartbeat) and msg.read_ctx:
            return "hb_send"
        if isinstance(msg, HeartbeatResult) and msg.read_ctx:
            return "hbr_send"
        return None
    if isinstance(e, PersistEntries):
        return "persist"
    if isinstance(e, Apply):
        return "apply"
    if isinstance(e, Reply):
        return "reply"
    if isinstance(e, ReadReady):
        return "read_ready"
    return None


def _role(m: Any) -> str:
    return "L" if m.core.role == "leader" else "F"


def install_dist() -> str:
    """Stamp, on this node, each flush of frames to a node and each frame handed up from
    one (`D.out>node`, `D.in<node`)."""
    from actors import _dist

    clock, me, trace = time.monotonic_ns, erlang.node(), TRACE
    dist = _dist.Distribution
    push0, deliver0 = dist._push_locked, dist._deliver

    def push_locked(self: Any, peer: Any, frames: Any) -> Any:
        if frames:
            trace.append((clock(), me, f"D.out>{peer.name}"))
        return push0(self, peer, frames)

    def deliver(self: Any, sender: Any, parts: Any) -> Any:
        trace.append((clock(), me, f"D.in<{sender}"))
        return deliver0(self, sender, parts)

    dist._push_locked, dist._deliver = push_locked, deliver  # type: ignore[method-assign]
    return "ok"


def install() -> str:
    """Wrap the ra classes of this node (before `ra.start`: servers bind their callbacks
    when they start)."""
    _wrap_server()
    _wrap_wal()
    return install_dist()


def _wrap_server() -> None:
    """Stamp the member's calls (commands, consistent queries) and its Raft messages, on
    the way in and once stepped."""
    from actors.ra import _server

    clock, me, trace = time.monotonic_ns, erlang.node(), TRACE
    server = _server.RaServer
    call0, info0 = server.handle_call, server.handle_info

    def handle_call(self: Any, request: Any, from_: Any, m: Any) -> Any:
        kind = request[0] if type(request) is tuple else request
        tag = {"$ra_command": "cmd", "$ra_consistent_query": "cq"}.get(kind)
        if tag:
            trace.append((clock(), me, f"{_role(m)}.{tag}_in"))
        result = call0(self, request, from_, m)
        if tag:
            trace.append((clock(), me, f"{_role(m)}.{tag}_stepped"))
        return result

    def handle_info(self: Any, msg: Any, m: Any) -> Any:
        label = _msg_label(msg)
        if label:
            trace.append((clock(), me, f"{_role(m)}.{label}"))
        result = info0(self, msg, m)
        if label:
            trace.append((clock(), me, f"{_role(m)}.{label}_stepped"))
        return result

    server.handle_call, server.handle_info = handle_call, handle_info  # type: ignore[method-assign]


def trace_effect(core: Any, e: Any) -> None:
    """The member's effect trace callback (`("$ra_trace", fun)`): stamp the effects on the
    critical path as the driver runs them; a send twice, the second time with its
    destination."""
    label = _effect_label(e)
    if label:
        now, me = time.monotonic_ns(), erlang.node()
        role = "L" if core.role == "leader" else "F"
        TRACE.append((now, me, f"{role}.{label}"))
        if isinstance(e, Send):
            TRACE.append((now, me, f"{role}.{label}>{e.to[1]}"))


def trace_members(names: list[str]) -> str:
    """Give the ra members `names` of this node the effect trace callback (after they
    started: the callback is a parameter of their driver, set by a call)."""
    for name in names:
        assert gen_server.call(name, ("$ra_trace", trace_effect), 10_000) == "ok"
    return "ok"


def _wrap_wal() -> None:
    """Stamp the WAL writer's appends and flushes, and the WAL's fdatasync."""
    from actors.ra import _wal, _wal_writer

    clock, me, trace = time.monotonic_ns, erlang.node(), TRACE
    writer = _wal_writer.WalWriter
    winfo0 = writer.handle_info

    def wal_info(self: Any, msg: Any, s: Any) -> Any:
        label = None
        if type(msg) is tuple and msg and msg[0] == "append":
            label = "W.append_in"
        elif msg == "$flush":
            label = "W.flush_in"
        if label:
            trace.append((clock(), me, label))
        result = winfo0(self, msg, s)
        if msg == "$flush":
            trace.append((clock(), me, "W.flush_done"))
        return result

    writer.handle_info = wal_info  # type: ignore[method-assign]

    class _Os:
        def __getattr__(self, name: str) -> Any:
            return getattr(os, name)

        @staticmethod
        def fdatasync(fd: int) -> None:
            trace.append((clock(), me, "W.fsync_start"))
            os.fdatasync(fd)
            trace.append((clock(), me, "W.fsync_end"))

    _wal.os = _Os()  # type: ignore[assignment]


def collect() -> list[tuple[int, str, str]]:
    out = list(TRACE)
    TRACE.clear()
    return out


def profile_start() -> str:
    """Start yappi (CPU clock, every thread) on this node."""
    import yappi

    yappi.stop()
    yappi.clear_stats()
    yappi.set_clock_type("cpu")
    yappi.start(builtins=True, profile_threads=True)
    return "ok"


def profile_stop() -> tuple[list[tuple[str, str, int, float, float]], list[tuple[str, float]]]:
    """Stop yappi: ([(function, file:line, calls, inclusive s, self s)], [(thread, cpu s)])."""
    import yappi

    yappi.stop()
    funcs = [(f.name, f"{os.path.basename(f.module)}:{f.lineno}", f.ncall, f.ttot, f.tsub)
             for f in yappi.get_func_stats()]
    threads = [(t.name, t.ttot) for t in yappi.get_thread_stats()]
    yappi.clear_stats()
    return funcs, threads


def echo_loop() -> None:
    """A process that answers ("ping", t_sent, reply_to) with ("pong", t_sent, t_in, t_out)."""
    while True:
        msg = erlang.receive()
        if msg == "stop":
            return
        t_in = time.monotonic_ns()
        erlang.send(msg[2], ("pong", msg[1], t_in, time.monotonic_ns()))


def ping(target: Any, n: int) -> list[tuple[int, int, int, int]]:
    """n pings of an `echo_loop` process, one at a time: (sent, in, out, back) stamps."""
    out = []
    me = erlang.self()
    for _ in range(n):
        time.sleep(0.002)
        erlang.send(target, ("ping", time.monotonic_ns(), me))
        msg = erlang.receive(lambda m: type(m) is tuple and m[0] == "pong", 5000)
        out.append((msg[1], msg[2], msg[3], time.monotonic_ns()))
    return out
