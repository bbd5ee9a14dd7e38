"""Where one sequential `ra.process_command` spends its time: a timestamp trace.

    python -m demos.bench.raft.trace [--commands N] [--queries N]

Not part of the benchmark (it wraps the ra processes it watches). It starts the same
3-node cluster as `demos.bench.raft.run`, but before `ra.start` on each node it wraps, on that
node (`rpc.call` of `install`): the member's `handle_call` / `handle_info`, the WAL
writer's `handle_info`, and the WAL's `os.fdatasync`; the members' effects are stamped by
the trace callback of their Raft driver (`trace_members`). Each stamp
appends `(time.monotonic_ns(), node, label)` to a list; CLOCK_MONOTONIC is one clock for
every process on the host, so stamps from different nodes compare. In this process
`gen_server.call` is wrapped too. Commands run one at a time with pauses between them,
so every stamp inside a command's window belongs to it (ticks aside, which are not
stamped). The report gives the median length of each step of the critical path (F1 is the follower
whose answer the leader got first), and with --milestones, per stamp, the median time since
the client called. `--yappi` instead profiles the CPU time of the leader, a follower and
the client (all threads) over sequential commands.

The functions that run on the nodes (the stamps, yappi, the pings) are in
`demos.bench.raft.trace_node`, the reports in `demos.bench.raft.trace_report`; this
module holds the command line and the run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from actors import erlang, gen_server, peer, ra, rpc

from . import trace_node as traced
from ._common import private_world
from .ra_side import (
    CLUSTER,
    SYSTEM,
    Counter,
    RaCluster,
    drain_leader_events,
    peer_env,
    value,
)
from .trace_report import (
    CMD_PATH,
    CQ_PATH,
    LEADER_WAL,
    hop_report,
    milestone_report,
    path_report,
    profile_report,
    timeline,
)

TRACE = traced.TRACE  # this process's stamps


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


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m demos.bench.raft.trace")
    p.add_argument("--commands", type=int, default=300)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--pause-ms", type=float, default=5.0)
    p.add_argument("--milestones", action="store_true",
                   help="also list every stamp's median time since the call")
    p.add_argument("--yappi", action="store_true",
                   help="instead of the trace: yappi CPU profiles of the leader, a follower "
                        "and this process over --commands sequential commands")
    return p.parse_args(argv)


def _start(cluster: RaCluster, root: Path, hooked: bool) -> tuple[str, str]:
    """Start the nodes, hook them (if `hooked`), then start ra there (as RaCluster.start
    does); warm up, drop the stamps so far, and return the leader."""
    for name in cluster.names:
        result = peer.start(name, env=peer_env())
        assert result[0] == "ok", result
        cluster.peers[result[2]] = result[1]
        if hooked:
            assert rpc.call(result[2], traced.install, [], 20_000) == "ok"
        data = root / name
        data.mkdir()
        assert rpc.call(result[2], ra.start, [str(data)], 20_000) == "ok"
    started = ra.start_cluster(SYSTEM, CLUSTER, ("module", Counter, None), cluster.ids, 20_000)
    assert started[0] == "ok" and not started[2], started
    if hooked:
        for name, node in cluster.ids:
            assert rpc.call(node, traced.trace_members, [[name]], 20_000) == "ok"
    leader = cluster.leader()
    drain_leader_events()
    for _ in range(100):
        ra.process_command(leader, "inc")
        ra.consistent_query(leader, value)
    for node in cluster.nodes:
        rpc.call(node, traced.collect, [], 10_000)
    TRACE.clear()
    return leader


def _profiled(cluster: Any, leader: Any, n: int) -> None:
    follower = next(node for node in cluster.nodes if node != leader[1])
    for node in (leader[1], follower):
        assert rpc.call(node, traced.profile_start, [], 10_000) == "ok"
    traced.profile_start()
    for _ in range(n):
        ra.process_command(leader, "inc")
    mine = traced.profile_stop()
    print(profile_report("leader", *rpc.call(leader[1], traced.profile_stop, [], 30_000), n))
    print()
    print(profile_report("follower", *rpc.call(follower, traced.profile_stop, [], 30_000), n))
    print()
    print(profile_report("client (this process)", *mine, n))


def _traced(cluster: RaCluster, leader: Any, args: argparse.Namespace) -> None:
    """Stamp sequential commands, then queries; print their paths, the bare hops, and with
    --milestones every stamp."""
    traced.install_dist()
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
    cmd_offsets, cmd_n = timeline(cmd, list(events), leader[1])
    cq_offsets, cq_n = timeline(cq, list(events), leader[1])
    print(path_report(f"process_command, critical path ({cmd_n} commands)",
                      cmd_offsets, CMD_PATH))
    print(path_report("process_command, the leader's own write", cmd_offsets, LEADER_WAL))
    print()
    print(path_report(f"consistent_query, critical path ({cq_n} queries)", cq_offsets, CQ_PATH))
    print()
    _bare_hops(cluster, leader, args.commands)
    if args.milestones:
        print()
        print(milestone_report("process_command", cmd_offsets, cmd_n))
        print()
        print(milestone_report("consistent_query", cq_offsets, cq_n))


def _bare_hops(cluster: RaCluster, leader: Any, n: int) -> None:
    print("bare hops in the same cluster: erlang.send of a small tuple, one way, medians (us)")
    follower = next(node for node in cluster.nodes if node != leader[1])
    on_leader = erlang.spawn(leader[1], traced.echo_loop)
    on_follower = erlang.spawn(follower, traced.echo_loop)
    print(hop_report("client <-> leader node", traced.ping(on_leader, n)))
    print(hop_report("leader node <-> follower node", rpc.call(
        leader[1], traced.ping, [on_follower, n], 60_000)))
    erlang.send(on_leader, "stop")
    erlang.send(on_follower, "stop")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    with private_world() as root:
        cluster = RaCluster(root, f"t{os.getpid()}")
        try:
            leader = _start(cluster, root, hooked=not args.yappi)
            if args.yappi:
                _profiled(cluster, leader, args.commands)
            else:
                _traced(cluster, leader, args)
        finally:
            cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
