"""Where one sequential `ra.process_command` spends its time: a timestamp trace.

    python -m demos.bench_raft_trace [--commands N] [--queries N]

Not part of the benchmark (it monkeypatches the ra processes it watches). It starts the same
3-node cluster as `demos.bench_raft`, but before `ra.start` on each node it wraps, on that
node (`rpc.call` of `install`): the member's `handle_call` / `handle_info` and its effect
interpreter, the WAL writer's `handle_info`, and the WAL's `os.fdatasync`. Each wrapper
appends `(time.monotonic_ns(), node, label)` to a list; CLOCK_MONOTONIC is one clock for
every process on the host, so stamps from different nodes compare. In this process
`gen_server.call` is wrapped too. Commands run one at a time with pauses between them,
so every stamp inside a command's window belongs to it (ticks aside, which are not
stamped). The report gives the median length of each step of the critical path (F1 is the follower
whose answer the leader got first), and with --milestones, per stamp, the median time since
the client called. `--yappi` instead profiles the CPU time of the leader, a follower and
the client (all threads) over sequential commands.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from actors import erlang, gen_server, peer, ra, rpc

TRACE: list[tuple[int, str, str]] = []


# -- on every member node ---------------------------------------------------------------------

def _msg_label(msg: Any) -> str | None:
    from actors.raft.messages import AppendEntries, AppendResult, Heartbeat, HeartbeatResult

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


def install_dist() -> str:
    """Stamp, on this node, each flush of frames to a node and each frame handed up from
    one (`D.out>node`, `D.in<node`)."""
    from actors import _dist

    clock, me, trace = time.monotonic_ns, erlang.node(), TRACE
    dist = _dist.Distribution
    flush0, deliver0 = dist._flush_locked, dist._deliver

    def flush_locked(self: Any, peer: Any) -> Any:
        if peer.outbox:
            trace.append((clock(), me, f"D.out>{peer.name}"))
        return flush0(self, peer)

    def deliver(self: Any, sender: Any, frame: Any) -> Any:
        trace.append((clock(), me, f"D.in<{sender}"))
        return deliver0(self, sender, frame)

    dist._flush_locked, dist._deliver = flush_locked, deliver  # type: ignore[method-assign]
    return "ok"


def install() -> str:
    """Wrap the ra classes of this node (before `ra.start`: servers bind their callbacks
    when they start)."""
    from actors.ra import _member, _server, _wal, _wal_writer
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

    clock, me, trace = time.monotonic_ns, erlang.node(), TRACE

    def role(m: Any) -> str:
        return "L" if m.core.role == "leader" else "F"

    server = _server.RaServer
    call0, info0 = server.handle_call, server.handle_info

    def handle_call(self: Any, request: Any, from_: Any, m: Any) -> Any:
        kind = request[0] if type(request) is tuple else request
        tag = {"$ra_command": "cmd", "$ra_consistent_query": "cq"}.get(kind)
        if tag:
            trace.append((clock(), me, f"{role(m)}.{tag}_in"))
        result = call0(self, request, from_, m)
        if tag:
            trace.append((clock(), me, f"{role(m)}.{tag}_stepped"))
        return result

    def handle_info(self: Any, msg: Any, m: Any) -> Any:
        label = _msg_label(msg)
        if label:
            trace.append((clock(), me, f"{role(m)}.{label}"))
        result = info0(self, msg, m)
        if label:
            trace.append((clock(), me, f"{role(m)}.{label}_stepped"))
        return result

    server.handle_call, server.handle_info = handle_call, handle_info  # type: ignore[method-assign]

    member = _member.Member
    effect0 = member.run_effect

    def run_effect(self: Any, e: Any) -> None:
        label = None
        if isinstance(e, Send):
            msg = e.msg
            if isinstance(msg, AppendEntries):
                label = "ae_send" if msg.entries else "commit_ae_send"
            elif isinstance(msg, AppendResult):
                label = "ar_send"
            elif isinstance(msg, Heartbeat) and msg.read_ctx:
                label = "hb_send"
            elif isinstance(msg, HeartbeatResult) and msg.read_ctx:
                label = "hbr_send"
        elif isinstance(e, PersistEntries):
            label = "persist"
        elif isinstance(e, Apply):
            label = "apply"
        elif isinstance(e, Reply):
            label = "reply"
        elif isinstance(e, ReadReady):
            label = "read_ready"
        if label:
            now = clock()
            trace.append((now, me, f"{role(self)}.{label}"))
            if isinstance(e, Send):
                trace.append((now, me, f"{role(self)}.{label}>{e.to[1]}"))
        effect0(self, e)

    member.run_effect = run_effect  # type: ignore[method-assign]

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
    return install_dist()


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


def _profile_report(title: str, funcs: list[Any], threads: list[Any], n: int,
                    top: int = 30) -> str:
    lines = [f"{title}: yappi CPU time per command (us), over {n} commands"]
    total = sum(t[1] for t in threads)
    lines.append(f"  all threads: {total / n * 1e6:.1f} us/command")
    for name, cpu in sorted(threads, key=lambda t: -t[1])[:6]:
        lines.append(f"    thread {name:28} {cpu / n * 1e6:8.1f}")
    for key, title2 in ((4, "by self time"), (3, "by inclusive time")):
        lines.append(f"  {title2}:")
        lines.append(f"  {'self':>8} {'incl':>8} {'calls/cmd':>9}  function")
        for name, where, calls, ttot, tsub in sorted(funcs, key=lambda f: -f[key])[:top]:
            lines.append(f"  {tsub / n * 1e6:8.1f} {ttot / n * 1e6:8.1f} {calls / n:9.2f}  "
                         f"{name} ({where})")
    return "\n".join(lines)


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


def _hop_report(title: str, stamps: list[tuple[int, int, int, int]]) -> str:
    there = statistics.median(s[1] - s[0] for s in stamps) / 1000
    back = statistics.median(s[3] - s[2] for s in stamps) / 1000
    rtt = statistics.median(s[3] - s[0] for s in stamps) / 1000
    return (f"  {title:40} there {there:7.1f}  back {back:7.1f}  round trip {rtt:7.1f} us"
            f"  ({len(stamps)} pings)")


# -- in this process --------------------------------------------------------------------------

def _wrap_client_calls() -> Callable[[], None]:
    call0 = gen_server.call

    def call(*args: Any, **kwargs: Any) -> Any:
        TRACE.append((time.monotonic_ns(), erlang.node(), "C.call_sent"))
        try:
            return call0(*args, **kwargs)
        finally:
            TRACE.append((time.monotonic_ns(), erlang.node(), "C.reply_in"))

    gen_server.call = call  # type: ignore[assignment]
    return lambda: setattr(gen_server, "call", call0)


def _windows(run: Callable[[], Any], n: int, pause_s: float) -> list[tuple[int, int]]:
    out = []
    for _ in range(n):
        time.sleep(pause_s)
        t0 = time.monotonic_ns()
        run()
        out.append((t0, time.monotonic_ns()))
    return out


def _timeline(windows: list[tuple[int, int]], events: list[tuple[int, str, str]],
              leader_node: str) -> tuple[dict[str, list[float]], int]:
    """label -> offsets (us) from the window's start; the first stamp of a label in each
    window, with W.* and follower labels told apart by node ("F1" = the first follower
    whose AppendResult the leader got)."""
    events.sort()
    client_node = erlang.node()
    offsets: dict[str, list[float]] = {"C.start": [], "C.returned": []}
    used = 0
    for t0, t1 in windows:
        inside = [e for e in events if t0 <= e[0] <= t1]
        first_ar = next((e for e in inside if e[2] in ("F.ar_send", "F.hbr_send")), None)
        fast = first_ar[1] if first_ar else None
        seen: set[str] = set()
        for key in offsets:
            offsets[key].append(float("nan"))  # a placeholder, replaced if stamped
        offsets["C.start"][-1] = 0.0
        for stamp, node, label in inside:
            def role_of(n: str, fast: Any = fast) -> str:
                if n == leader_node:
                    return "L"
                if n == client_node:
                    return "C"
                return "F1" if n == fast else "F2"

            if label.startswith("D."):
                if ">" in label:
                    label = f"{role_of(node)}.out>{role_of(label.split('>', 1)[1])}"
                else:
                    label = f"{role_of(node)}.in<{role_of(label.split('<', 1)[1])}"
            elif label.startswith("W."):
                label = ("L" if node == leader_node else ("F1" if node == fast else "F2")) + \
                    label[1:]
            elif label.startswith("F."):
                label = ("F1" if node == fast else "F2") + label[1:]
            if ">" in label and not label.startswith(("L.out", "C.out", "F1.out", "F2.out")):
                label, dest = label.split(">", 1)  # a send, with its destination
                label += ">F1" if dest == fast else (">L" if dest == leader_node else ">F2")
            if label not in seen:
                seen.add(label)
                if label not in offsets:
                    offsets[label] = [float("nan")] * (used + 1)
                offsets[label][-1] = (stamp - t0) / 1000
        offsets["C.returned"][-1] = (t1 - t0) / 1000
        used += 1
    return offsets, used


CMD_PATH = [
    ("ra API: call prepared", "C.start", "C.call_sent"),
    ("hop 1a: client call -> its frame flushed", "C.call_sent", "C.out>L"),
    ("hop 1b: frame flushed -> leader's I/O thread has it", "C.out>L", "L.in<C"),
    ("hop 1c: leader I/O thread -> member handles it", "L.in<C", "L.cmd_in"),
    ("leader: propose until AppendEntries sent to F1", "L.cmd_in", "L.ae_send>F1"),
    ("hop 2a: AppendEntries -> its frame flushed", "L.ae_send>F1", "L.out>F1"),
    ("hop 2b: frame flushed -> follower I/O thread has it", "L.out>F1", "F1.in<L"),
    ("hop 2c: follower I/O thread -> member handles it", "F1.in<L", "F1.ae_in"),
    ("follower: step until entries sent to WAL", "F1.ae_in", "F1.persist"),
    ("follower: member -> WAL writer hand-off", "F1.persist", "F1.append_in"),
    ("follower: WAL waits for its $flush", "F1.append_in", "F1.flush_in"),
    ("follower: WAL write until fdatasync", "F1.flush_in", "F1.fsync_start"),
    ("follower: fdatasync", "F1.fsync_start", "F1.fsync_end"),
    ("follower: WAL -> member hand-off ($ra_written)", "F1.fsync_end", "F1.written_in"),
    ("follower: step until AppendResult sent", "F1.written_in", "F1.ar_send"),
    ("hop 3a: AppendResult -> its frame flushed", "F1.ar_send", "F1.out>L"),
    ("hop 3b: frame flushed -> leader I/O thread has it", "F1.out>L", "L.in<F1"),
    ("hop 3c: leader I/O thread -> member handles it", "L.in<F1", "L.ar_in"),
    ("leader: commit, until the commit AppendEntries sent", "L.ar_in", "L.commit_ae_send"),
    ("leader: ... then apply and reply", "L.commit_ae_send", "L.reply"),
    ("hop 4a: reply -> its frame flushed", "L.reply", "L.out>C"),
    ("hop 4b: frame flushed -> client I/O thread has it", "L.out>C", "C.in<L"),
    ("hop 4c: client I/O thread -> call returns", "C.in<L", "C.reply_in"),
    ("ra API: after the reply", "C.reply_in", "C.returned"),
]
LEADER_WAL = [
    ("leader: AppendEntries sent -> WAL append received", "L.ae_send", "L.append_in"),
    ("leader: WAL append -> $flush", "L.append_in", "L.flush_in"),
    ("leader: fdatasync", "L.fsync_start", "L.fsync_end"),
    ("leader: call start -> own entry written (member told)", "C.start", "L.written_in"),
    ("leader: call start -> first AppendResult in", "C.start", "L.ar_in"),
]
CQ_PATH = [
    ("ra API: call prepared", "C.start", "C.call_sent"),
    ("hop 1a: client call -> its frame flushed", "C.call_sent", "C.out>L"),
    ("hop 1b: frame flushed -> leader's I/O thread has it", "C.out>L", "L.in<C"),
    ("hop 1c: leader I/O thread -> member handles it", "L.in<C", "L.cq_in"),
    ("leader: ReadIndex until Heartbeat sent to F1", "L.cq_in", "L.hb_send>F1"),
    ("hop 2a: Heartbeat -> its frame flushed", "L.hb_send>F1", "L.out>F1"),
    ("hop 2b: frame flushed -> follower I/O thread has it", "L.out>F1", "F1.in<L"),
    ("hop 2c: follower I/O thread -> member handles it", "F1.in<L", "F1.hb_in"),
    ("follower: step until HeartbeatResult sent", "F1.hb_in", "F1.hbr_send"),
    ("hop 3a: HeartbeatResult -> its frame flushed", "F1.hbr_send", "F1.out>L"),
    ("hop 3b: frame flushed -> leader I/O thread has it", "F1.out>L", "L.in<F1"),
    ("hop 3c: leader I/O thread -> member handles it", "L.in<F1", "L.hbr_in"),
    ("leader: quorum, until the read is ready", "L.hbr_in", "L.read_ready"),
    ("leader: query and reply -> its frame flushed", "L.read_ready", "L.out>C"),
    ("hop 4b: frame flushed -> client I/O thread has it", "L.out>C", "C.in<L"),
    ("hop 4c: client I/O thread -> call returns", "C.in<L", "C.reply_in"),
    ("ra API: after the reply", "C.reply_in", "C.returned"),
]


def _path_report(title: str, offsets: dict[str, list[float]], path: Any) -> str:
    """Median of each step, taken over the commands that have both of its stamps."""
    lines = [f"{title}: median of each step over the commands (us)"]
    total = 0.0
    for text, a, b in path:
        pairs = [y - x for x, y in zip(offsets.get(a, []), offsets.get(b, []), strict=False)
                 if x == x and y == y]  # both stamped (NaN != NaN)
        if not pairs:
            lines.append(f"  {text:54} {'?':>8}")
            continue
        step = statistics.median(pairs)
        total += step
        lines.append(f"  {text:54} {step:8.1f}")
    lines.append(f"  {'sum of the step medians':54} {total:8.1f}")
    lines.append(f"  {'median end to end':54} {statistics.median(offsets['C.returned']):8.1f}")
    return "\n".join(lines)


def _report(title: str, offsets: dict[str, list[float]], used: int) -> str:
    present = {k: [x for x in v if x == x] for k, v in offsets.items()}  # drop NaN
    rows = sorted(((statistics.median(v), k, len(v)) for k, v in present.items() if v))
    lines = [f"{title}: median over {used} commands (us since the client's call)",
             f"  {'milestone':28} {'at':>9} {'step':>9}  seen"]
    prev = 0.0
    for at, label, count in rows:
        lines.append(f"  {label:28} {at:9.1f} {at - prev:9.1f}  {count}")
        prev = at
    return "\n".join(lines)


def _profiled(cluster: Any, leader: Any, n: int) -> None:
    from demos import bench_raft_trace as traced

    follower = next(node for node in cluster.nodes if node != leader[1])
    for node in (leader[1], follower):
        assert rpc.call(node, traced.profile_start, [], 10_000) == "ok"
    profile_start()
    for _ in range(n):
        ra.process_command(leader, "inc")
    mine = profile_stop()
    print(_profile_report("leader", *rpc.call(leader[1], traced.profile_stop, [], 30_000), n))
    print()
    print(_profile_report("follower", *rpc.call(follower, traced.profile_stop, [], 30_000), n))
    print()
    print(_profile_report("client (this process)", *mine, n))


def main(argv: list[str] | None = None) -> int:
    from demos import bench_raft_trace as traced  # by its name: peers import it by reference

    from .bench_raft import (
        CLUSTER,
        SYSTEM,
        Counter,
        RaCluster,
        _drain_leader_events,
        _peer_env,
        _private_world,
        value,
    )

    p = argparse.ArgumentParser(prog="python -m demos.bench_raft_trace")
    p.add_argument("--commands", type=int, default=300)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--pause-ms", type=float, default=5.0)
    p.add_argument("--milestones", action="store_true",
                   help="also list every stamp's median time since the call")
    p.add_argument("--yappi", action="store_true",
                   help="instead of the trace: yappi CPU profiles of the leader, a follower "
                        "and this process over --commands sequential commands")
    args = p.parse_args(argv)

    with _private_world() as root:
        cluster = RaCluster(root, f"t{os.getpid()}")
        try:
            # start the nodes, hook them, then start ra there (as RaCluster.start does)
            for name in cluster.names:
                result = peer.start(name, env=_peer_env())
                assert result[0] == "ok", result
                cluster.peers[result[2]] = result[1]
                if not args.yappi:
                    assert rpc.call(result[2], traced.install, [], 20_000) == "ok"
                data = root / name
                data.mkdir()
                assert rpc.call(result[2], ra.start, [str(data)], 20_000) == "ok"
            started = ra.start_cluster(SYSTEM, CLUSTER, ("module", Counter, None), cluster.ids,
                                       20_000)
            assert started[0] == "ok" and not started[2], started
            leader = cluster.leader()
            _drain_leader_events()
            for _ in range(100):
                ra.process_command(leader, "inc")
                ra.consistent_query(leader, value)
            for node in cluster.nodes:
                rpc.call(node, traced.collect, [], 10_000)
            TRACE.clear()
            if not args.yappi:
                install_dist()
            if args.yappi:
                _profiled(cluster, leader, args.commands)
                return 0
            restore = _wrap_client_calls()
            try:
                cmd = _windows(lambda: ra.process_command(leader, "inc"), args.commands,
                               args.pause_ms / 1000)
                cq = _windows(lambda: ra.consistent_query(leader, value), args.queries,
                              args.pause_ms / 1000)
            finally:
                restore()
            events = list(TRACE)
            for node in cluster.nodes:
                events += rpc.call(node, traced.collect, [], 10_000)
            cmd_offsets, cmd_n = _timeline(cmd, list(events), leader[1])
            cq_offsets, cq_n = _timeline(cq, list(events), leader[1])
            print(_path_report(f"process_command, critical path ({cmd_n} commands)",
                               cmd_offsets, CMD_PATH))
            print(_path_report("process_command, the leader's own write", cmd_offsets,
                               LEADER_WAL))
            print()
            print(_path_report(f"consistent_query, critical path ({cq_n} queries)",
                               cq_offsets, CQ_PATH))
            print()
            print("bare hops in the same cluster: erlang.send of a small tuple, one way, "
                  "medians (us)")
            follower = next(node for node in cluster.nodes if node != leader[1])
            on_leader = erlang.spawn(leader[1], traced.echo_loop)
            on_follower = erlang.spawn(follower, traced.echo_loop)
            print(_hop_report("client <-> leader node", traced.ping(on_leader, args.commands)))
            print(_hop_report("leader node <-> follower node", rpc.call(
                leader[1], traced.ping, [on_follower, args.commands], 60_000)))
            erlang.send(on_leader, "stop")
            erlang.send(on_follower, "stop")
            if args.milestones:
                print()
                print(_report("process_command", cmd_offsets, cmd_n))
                print()
                print(_report("consistent_query", cq_offsets, cq_n))
        finally:
            cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
