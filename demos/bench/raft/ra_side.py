"""Our side of `python -m demos.bench raft`: actors.ra on three peer nodes.

Three node OS processes on loopback (`actors.peer`), each an ra system on its own data
dir, one `Counter` member each (the setup in full: `demos.bench.raft.run`).

It holds the `Counter` machine and its query `value` (both travel by reference to the
member nodes), `RaCluster`, and our measurements: `seq_latencies_ours`,
`query_latencies_ours`, `pipelined_rate_ours`, `local_rate_ours` (from a process on the
member's own node), `cpu_per_command_ours` (CPU of the three member processes) and
`failover_ours` (a new leader's `state_enter("leader")` stamp,
sent to the client as an event).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

from actors import erlang, peer, ra, ra_machine, rpc
from demos.lab import peer_pythonpath

from ._common import WINDOW, cpu_seconds

SYSTEM = "default"
CLUSTER = "bench_counter"


# -- the machine (imported by reference on the member nodes) ------------------------------------

class Counter(ra_machine.Machine):
    """state = an int; "inc" adds one and replies the new value. `config` is a pid or None:
    whoever wants to hear, as ("ra_leader", node, monotonic_ns), when a member becomes
    leader."""

    def init(self, config: Any) -> Any:
        self.watcher = config
        return 0

    def apply(self, meta: Any, command: Any, state: Any) -> tuple[Any, ...]:
        if command == "inc":
            state += 1
        return (state, state)

    def state_enter(self, role: str, state: Any) -> list[Any]:
        if role == "leader" and self.watcher is not None:
            return [("send_msg", self.watcher, ("ra_leader", erlang.node(), time.monotonic_ns()))]
        return []


def value(state: Any) -> Any:
    """The query function (module level: it travels by reference)."""
    return state


# -- ours: the ra cluster on three peer nodes ---------------------------------------------------

def peer_env() -> dict[str, str]:
    return {"PYTHONPATH": peer_pythonpath()}


def _is_leader_event(m: Any) -> bool:
    return type(m) is tuple and len(m) == 3 and m[0] == "ra_leader"


def drain_leader_events() -> None:
    while erlang.receive(_is_leader_event, 0) is not erlang.TIMEOUT:
        pass


class RaCluster:
    """Three peer nodes, each an ra system on its own data dir, one Counter member each."""

    def __init__(self, root: Path, tag: str) -> None:
        self.root = root
        self.names = [f"ra{i}_{tag}" for i in range(3)]
        self.peers: dict[str, Any] = {}  # node -> peer pid
        self.nodes = [f"{n}@127.0.0.1" for n in self.names]
        self.ids = [(CLUSTER, node) for node in self.nodes]

    def _start_node(self, name: str) -> str:
        result = peer.start(name, env=peer_env())
        if result[0] != "ok":
            raise RuntimeError(f"peer {name} did not start: {result}")
        node = result[2]
        self.peers[node] = result[1]
        data = self.root / name
        data.mkdir(exist_ok=True)
        started = rpc.call(node, ra.start, [str(data)], 20_000)
        if started != "ok":
            raise RuntimeError(f"ra.start on {node}: {started}")
        return node

    def start(self) -> None:
        for name in self.names:
            self._start_node(name)
        machine = ("module", Counter, erlang.self())
        result = ra.start_cluster(SYSTEM, CLUSTER, machine, self.ids, 20_000)
        if result[0] != "ok" or result[2]:
            raise RuntimeError(f"ra.start_cluster: {result}")
        self.leader()
        drain_leader_events()

    def leader(self, timeout_s: float = 20.0) -> tuple[str, str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for sid in self.ids:
                answer = ra.members(sid, 500)
                if answer[0] == "ok" and answer[2] is not None:
                    return tuple(answer[2])  # type: ignore[return-value]
            time.sleep(0.02)
        raise RuntimeError("the ra cluster has no leader")

    def os_pid(self, node: str) -> int:
        return peer.os_pid(self.peers[node])

    def restart(self, node: str) -> None:
        """The node is dead (killed): start it again on its data, restart its member, and
        wait until every member follows one leader and has applied what it committed."""
        with contextlib.suppress(Exception):
            peer.stop(self.peers.pop(node))
        self._start_node(node.split("@")[0])
        result = ra.restart_server(SYSTEM, (CLUSTER, node))
        if result != "ok":
            raise RuntimeError(f"ra.restart_server on {node}: {result}")
        self.wait_whole()

    def wait_whole(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            views = [ra.member_overview(sid, 1000) for sid in self.ids]
            if all(type(v) is dict for v in views):
                leaders = {v["leader"] for v in views}
                roles = sorted(v["role"] for v in views)
                applied = {v["last_applied"] for v in views}
                if len(leaders) == 1 and None not in leaders and \
                        roles == ["follower", "follower", "leader"] and len(applied) == 1:
                    drain_leader_events()
                    return
            time.sleep(0.05)
        raise RuntimeError("the ra cluster did not become whole again")

    def stop(self) -> None:
        for pid in self.peers.values():
            with contextlib.suppress(Exception):
                peer.stop(pid)
        self.peers.clear()


def seq_latencies_ours(leader: Any, n: int) -> list[int]:
    clock, samples = time.perf_counter_ns, []
    for _ in range(n):
        t0 = clock()
        result = ra.process_command(leader, "inc")
        samples.append(clock() - t0)
        if result[0] != "ok":
            raise RuntimeError(f"process_command: {result}")
    return samples


def query_latencies_ours(leader: Any, n: int) -> list[int]:
    clock, samples = time.perf_counter_ns, []
    for _ in range(n):
        t0 = clock()
        result = ra.consistent_query(leader, value)
        samples.append(clock() - t0)
        if result[0] != "ok":
            raise RuntimeError(f"consistent_query: {result}")
    return samples


def _is_ra_event(m: Any) -> bool:
    return type(m) is tuple and len(m) == 3 and m[0] == "ra_event"


def pipelined_rate_ours(leader: Any, total: int, window: int = WINDOW) -> float:
    """Commands per second with `window` pipeline_commands in flight, `total` in all."""
    pipeline, receive = ra.pipeline_command, erlang.receive
    sent = done = 0
    t0 = time.perf_counter()
    while sent < min(window, total):
        pipeline(leader, "inc", sent)
        sent += 1
    while done < total:
        msg = receive(_is_ra_event, 30_000)
        if msg is erlang.TIMEOUT:
            raise RuntimeError(f"pipelined: no ra_event in 30 s ({done}/{total} applied)")
        event = msg[2]
        if event[0] != "applied":
            raise RuntimeError(f"pipelined: {event}")
        n = len(event[1])
        done += n
        for _ in range(min(n, total - sent)):
            pipeline(leader, "inc", sent)
            sent += 1
    return total / (time.perf_counter() - t0)


def _local_loop(sid: Any, n: int, reply_to: Any) -> None:
    local_query = ra.local_query
    t0 = time.perf_counter()
    for _ in range(n):
        local_query(sid, value)
    erlang.send(reply_to, ("local_rate", n / (time.perf_counter() - t0)))


def local_rate_ours(sid: Any, n: int) -> float:
    """ra.local_query in a loop, in a process on the member's node."""
    erlang.spawn(_local_loop, sid, n, erlang.self())
    msg = erlang.receive(lambda m: type(m) is tuple and m[0] == "local_rate", 120_000)
    if msg is erlang.TIMEOUT:
        raise RuntimeError("local_query loop did not finish")
    return float(msg[1])


def cpu_per_command_ours(cluster: RaCluster, n: int, pipelined: bool) -> float:
    """µs of CPU (user + system, all threads) summed over the three member OS processes, per
    command, over n sequential `process_command`s or n pipelined commands."""
    os_pids = [cluster.os_pid(node) for node in cluster.nodes]
    leader = cluster.leader()
    before = cpu_seconds(os_pids)
    if pipelined:
        pipelined_rate_ours(leader, n)
    else:
        seq_latencies_ours(leader, n)
    return (cpu_seconds(os_pids) - before) / n * 1e6


def failover_ours(cluster: RaCluster, sig: int, restart: bool) -> float:
    """ms from `sig` to the leader's node until a survivor becomes leader."""
    _, leader_node = cluster.leader()
    drain_leader_events()
    os_pid = cluster.os_pid(leader_node)
    t0 = time.monotonic_ns()
    os.kill(os_pid, sig)
    try:
        msg = erlang.receive(lambda m: _is_leader_event(m) and m[1] != leader_node, 15_000)
    finally:
        if sig != signal.SIGKILL:
            os.kill(os_pid, signal.SIGKILL)  # a stopped process takes SIGKILL too
    if msg is erlang.TIMEOUT:
        raise RuntimeError(f"no new ra leader within 15 s of signal {sig}")
    elapsed = (msg[2] - t0) / 1e6
    if restart:
        cluster.restart(leader_node)
    return elapsed

