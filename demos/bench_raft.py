"""Raft figures for `python -m demos.bench raft`: actors.ra beside pysyncobj, same run.

Setup, ours: three node OS processes on loopback (`actors.peer`), each with its own ra
system in a temporary data dir (`ra.start` defaults: the WAL fdatasyncs every batch), and a
3-member cluster of `Counter`. The client is this process, a distributed node of its own.

Setup, the peer: three pysyncobj OS processes on loopback (`demos._pysyncobj_node`), each
a `SyncObj` with a `ReplCounter`, a journal file and a full-dump file in a temporary dir,
fdatasync'ed as group commit (pysyncobj has no fsync option: see that module), with the
same election timeout as ours (0.5..1.0 s). Each figure gets pysyncobj's best setting for
it: AppendEntries sent at once (`appendEntriesUseBatch=False`) for latency, batched every
100 ms (its default, switched on at the leader for that figure) for throughput. pysyncobj's
client API is in-process, so the client here drives the leader's process over a loopback
TCP connection (one line per command, many in flight): like ours, every command crosses
from this process to the leader's and back.

Figures (the median over rounds; latencies are per-round p50s):
- sequential `ra.process_command` round trip, from this process to the leader;
- pipelined throughput, 1,000 `ra.pipeline_command` in flight, replies as `ra_event`s;
- `ra.consistent_query` round trip (pysyncobj has no linearizable read: no peer);
- `ra.local_query` calls per second from a process on the member's own node (a 1-member
  cluster on this node); the peer is `counter.get()` in a member's own process;
- time to a new leader after SIGKILL / SIGSTOP of the leader's node: from the signal to
  the moment a surviving member becomes leader, stamped by that member (CLOCK_MONOTONIC
  is shared by every process on the host) and pushed to us as an event: ours by the
  machine's `state_enter("leader")` effect, pysyncobj's by its `onStateChanged` callback.
  After each trial the dead node is restarted on its data and the cluster made whole.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from actors import erlang, net_kernel, peer, ra, ra_machine, rpc

from .bench import Figure

ROOT = Path(__file__).resolve().parents[1]
SYSTEM = "default"
CLUSTER = "bench_counter"
WINDOW = 1000  # pipelined commands in flight
COOKIE = "bench-raft-cookie"


@dataclass(frozen=True)
class RaftSizes:
    seq: int  # sequential commands per round (and consistent queries)
    pipelined: int  # commands per throughput round
    local: int  # local queries per round
    failovers: int  # trials per signal
    rounds: int


RAFT_FULL = RaftSizes(seq=1_000, pipelined=20_000, local=100_000, failovers=5, rounds=5)
RAFT_QUICK = RaftSizes(seq=100, pipelined=2_000, local=5_000, failovers=1, rounds=1)


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

def _peer_env() -> dict[str, str]:
    paths = [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {"PYTHONPATH": os.pathsep.join(paths)}


def _is_leader_event(m: Any) -> bool:
    return type(m) is tuple and len(m) == 3 and m[0] == "ra_leader"


def _drain_leader_events() -> None:
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
        result = peer.start(name, env=_peer_env())
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
        _drain_leader_events()

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
                    _drain_leader_events()
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


def failover_ours(cluster: RaCluster, sig: int, restart: bool) -> float:
    """ms from `sig` to the leader's node until a survivor becomes leader."""
    _, leader_node = cluster.leader()
    _drain_leader_events()
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


# -- the peer: pysyncobj in three OS processes ---------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Line:
    """A control connection to one pysyncobj member."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\n")

    def read(self) -> str:
        line = self.reader.readline()
        if not line:
            raise ConnectionError("pysyncobj member closed its control connection")
        return line.decode().strip()

    def ask(self, line: str) -> str:
        self.send(line)
        return self.read()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.reader.close()
            self.sock.close()


class PsoMember:
    def __init__(self, index: int, addrs: list[str], root: Path,
                 extra: Sequence[str] = ()) -> None:
        self.index = index
        self.extra = list(extra)
        self.addr = addrs[index]
        self.partners = [a for a in addrs if a != self.addr]
        self.dir = root / f"pso{index}"
        self.dir.mkdir(exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.ctl: _Line | None = None
        self.watch: _Line | None = None

    def start(self) -> None:
        cmd = [sys.executable, "-m", "demos._pysyncobj_node", "--self", self.addr,
               "--journal", str(self.dir / "journal"), "--dump", str(self.dir / "dump")]
        for p in self.partners:
            cmd += ["--partner", p]
        cmd += self.extra
        with open(self.dir / "stderr.log", "ab") as errors:  # pysyncobj logs a lot
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=errors,
                                         start_new_session=True)
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline().split()
        if len(ready) != 2 or ready[0] != b"READY":
            raise RuntimeError(f"pysyncobj member {self.addr} did not start: {ready!r}")
        port = int(ready[1])
        self.ctl = _Line(port)
        self.watch = _Line(port)
        if self.watch.ask("watch") != "watching":
            raise RuntimeError("pysyncobj watch")

    def status(self) -> dict[str, Any]:
        assert self.ctl is not None
        return json.loads(self.ctl.ask("status"))  # type: ignore[no-any-return]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self) -> None:
        for line in (self.ctl, self.watch):
            if line is not None:
                line.close()
        self.ctl = self.watch = None
        if self.proc is not None:
            with contextlib.suppress(OSError):
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None


class PsoCluster:
    def __init__(self, root: Path, extra: Sequence[str] = ()) -> None:
        addrs = [f"127.0.0.1:{_free_port()}" for _ in range(3)]
        self.members = [PsoMember(i, addrs, root, extra) for i in range(3)]

    def start(self) -> None:
        for m in self.members:
            m.start()
        self.wait_whole()

    def leader(self, timeout_s: float = 20.0) -> PsoMember:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for m in self.members:
                if m.proc is not None and m.status()["state"] == 2:
                    return m
            time.sleep(0.02)
        raise RuntimeError("the pysyncobj cluster has no leader")

    def wait_whole(self, timeout_s: float = 30.0) -> None:
        """Every member follows one leader and has applied what it committed."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            views = [m.status() for m in self.members]
            leaders = {v["leader"] for v in views}
            states = sorted(v["state"] for v in views)
            applied = {v["last_applied"] for v in views}
            if len(leaders) == 1 and None not in leaders and states == [0, 0, 2] and \
                    len(applied) == 1:
                self._drain_watch()
                return
            time.sleep(0.05)
        raise RuntimeError("the pysyncobj cluster did not become whole")

    def _drain_watch(self) -> None:
        for m in self.members:
            assert m.watch is not None
            m.watch.sock.setblocking(False)
            try:
                while True:
                    ready, _, _ = select.select([m.watch.sock], [], [], 0)
                    if not ready:
                        break
                    m.watch.reader.readline()
            except (BlockingIOError, OSError):
                pass
            finally:
                m.watch.sock.setblocking(True)

    def stop(self) -> None:
        for m in self.members:
            m.stop()

    def log_summary(self) -> list[str]:
        """What the members wrote to stderr, as counts of distinct lines (numbers elided)."""
        counts: dict[str, int] = {}
        for m in self.members:
            path = m.dir / "stderr.log"
            if path.exists():
                for line in path.read_text(errors="replace").splitlines():
                    key = re.sub(r"\d+", "N", line.strip())[:100]
                    counts[key] = counts.get(key, 0) + 1
        return [f"{n:6d} x {key}" for key, n in sorted(counts.items(), key=lambda kv: -kv[1])]


def seq_latencies_peer(leader: PsoMember, n: int) -> list[int]:
    line = leader.ctl
    assert line is not None
    clock, samples = time.perf_counter_ns, []
    for i in range(n):
        t0 = clock()
        answer = line.ask(f"inc {i}")
        samples.append(clock() - t0)
        if not answer.startswith("ok"):
            raise RuntimeError(f"pysyncobj inc: {answer}")
    return samples


def pipelined_rate_peer(leader: PsoMember, total: int, window: int = WINDOW) -> float:
    line = leader.ctl
    assert line is not None
    sent = done = 0
    t0 = time.perf_counter()
    line.sock.sendall(b"".join(f"inc {i}\n".encode() for i in range(min(window, total))))
    sent = min(window, total)
    while done < total:
        answer = line.read()
        if not answer.startswith("ok"):
            raise RuntimeError(f"pysyncobj inc: {answer}")
        done += 1
        if sent < total:
            line.send(f"inc {sent}")
            sent += 1
    return total / (time.perf_counter() - t0)


def pipelined_rate_peer_batched(leader: PsoMember, total: int, window: int = WINDOW) -> float:
    """As `pipelined_rate_peer`, with pysyncobj's batching on for the run (its throughput
    setting: AppendEntries every 100 ms; with it off, AppendEntries per command overlap
    and its followers keep truncating and rewriting their logs)."""
    assert leader.ctl is not None
    leader.ctl.ask("batch 1")
    try:
        return pipelined_rate_peer(leader, total, window)
    finally:
        leader.ctl.ask("batch 0")


def local_rate_peer(member: PsoMember, n: int) -> float:
    assert member.ctl is not None
    answer = member.ctl.ask(f"local {n}").split()
    return float(answer[1])


def failover_peer(cluster: PsoCluster, sig: int, restart: bool) -> float:
    old = cluster.leader()
    cluster._drain_watch()
    survivors = [m for m in cluster.members if m is not old]
    socks = {m.watch.sock: m for m in survivors if m.watch is not None}
    assert old.proc is not None
    t0 = time.monotonic_ns()
    old.kill(sig)
    try:
        stamp = None
        deadline = time.monotonic() + 15.0
        while stamp is None and time.monotonic() < deadline:
            ready, _, _ = select.select(list(socks), [], [], max(0.0, deadline - time.monotonic()))
            for sock in ready:
                member = socks[sock]
                assert member.watch is not None
                parts = member.watch.read().split()
                if parts and parts[0] == "leader":
                    stamp = int(parts[2])
    finally:
        old.kill(signal.SIGKILL)
    if stamp is None:
        raise RuntimeError(f"no new pysyncobj leader within 15 s of signal {sig}")
    old.stop()
    if restart:
        old.start()
        cluster.wait_whole()
    return (stamp - t0) / 1e6


# -- the run ---------------------------------------------------------------------------------

def _p50_us(samples: Sequence[int]) -> float:
    return statistics.median(samples) / 1000.0


def _alternating_p50s(n: int, ours: Callable[[int], list[int]], peer_: Callable[[int], list[int]],
                      chunk: int = 100) -> tuple[float, float]:
    """One round: n of each, in alternating chunks, so both see the same spells of load."""
    ours_ns: list[int] = []
    peer_ns: list[int] = []
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        ours_ns += ours(size)
        peer_ns += peer_(size)
    return _p50_us(ours_ns), _p50_us(peer_ns)


@contextlib.contextmanager
def _private_world() -> Iterator[Path]:
    """A private port mapper (so the run never meets other nodes), a distributed node for
    the client, and a temporary root for every data dir; all gone at the end."""
    from transport import epmd

    saved = {k: os.environ.get(k) for k in (epmd.PORT_ENV, "ERLPY_COOKIE")}
    port = _free_port()
    os.environ[epmd.PORT_ENV] = str(port)
    root = Path(tempfile.mkdtemp(prefix="bench_raft_"))
    try:
        net_kernel.start(f"bench_raft{os.getpid()}@127.0.0.1", cookie=COOKIE)
        yield root
    finally:
        with contextlib.suppress(Exception):
            net_kernel.stop()
        with contextlib.suppress(Exception):
            epmd.stop(port)
        shutil.rmtree(root, ignore_errors=True)
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _row(name: str, ours: float, peer_value: float | None, peer_name: str, unit: str, *,
         throughput: bool = False, target: str, passed: bool) -> Figure:
    ratio: float | None = None
    if peer_value is not None:
        ratio = peer_value / ours if throughput else ours / peer_value
    return Figure(name, ours, peer_value, peer_name, unit, ratio, target, passed)  # type: ignore[arg-type]


def run_raft(sizes: RaftSizes, log: Callable[[str], None] = lambda _s: None) -> list[Figure]:
    began = time.monotonic()

    def say(line: str) -> None:
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        log(f"[{time.monotonic() - began:6.1f} s, load {load}] {line}")

    with _private_world() as root:
        ours = RaCluster(root, str(os.getpid()))
        theirs = PsoCluster(root)
        try:
            say("starting 3 ra nodes and 3 pysyncobj members")
            ours.start()
            theirs.start()
            ra.start(str(root / "local"))
            local_id = ("bench_local", erlang.node())
            started = ra.start_cluster(SYSTEM, "bench_local", ("module", Counter, None),
                                       [local_id], 20_000)
            if started[0] != "ok" or started[2]:
                raise RuntimeError(f"local ra cluster: {started}")
            return _measure(sizes, ours, theirs, local_id, say)
        finally:
            say("stopping")
            with contextlib.suppress(Exception):
                ra.stop()
            ours.stop()
            theirs.stop()
            summary = theirs.log_summary()
            if summary:
                say("pysyncobj's members logged:\n" + "\n".join(summary[:10]))


def _again(run: Callable[[], float], log: Callable[[str], None]) -> float:
    """run(), and once more if it failed (a leader lost under load on a busy machine: each
    side then rejects or fails the commands in flight)."""
    try:
        return run()
    except (RuntimeError, ConnectionError) as exc:
        log(f"retrying once after: {exc}")
        time.sleep(1.0)
        return run()


def _measure(sizes: RaftSizes, ours: RaCluster, theirs: PsoCluster, local_id: Any,
             log: Callable[[str], None]) -> list[Figure]:
    leader = ours.leader()
    pleader = theirs.leader()
    # warm up both: code paths, connections, the WAL files
    seq_latencies_ours(leader, 50)
    seq_latencies_peer(pleader, 50)
    pipelined_rate_ours(leader, min(2 * WINDOW, sizes.pipelined))
    pipelined_rate_peer_batched(pleader, min(2 * WINDOW, sizes.pipelined))
    query_latencies_ours(leader, 50)
    local_rate_ours(local_id, 1000)

    seq, pipe, query, local = [], [], [], []
    for r in range(sizes.rounds):
        log(f"round {r + 1}/{sizes.rounds}")
        leader, pleader = ours.leader(), theirs.leader()  # either may have changed
        gc.collect()
        seq.append(_alternating_p50s(sizes.seq, lambda n, ld=leader: seq_latencies_ours(ld, n),
                                     lambda n, ld=pleader: seq_latencies_peer(ld, n)))
        gc.collect()
        pipe.append((_again(lambda: pipelined_rate_ours(ours.leader(), sizes.pipelined), log),
                     _again(lambda: pipelined_rate_peer_batched(theirs.leader(),
                                                                sizes.pipelined), log)))
        gc.collect()
        query.append(_p50_us(query_latencies_ours(ours.leader(), sizes.seq)))
        gc.collect()
        local.append((local_rate_ours(local_id, sizes.local),
                      local_rate_peer(theirs.leader(), sizes.local)))

    kills: list[tuple[float, float]] = []
    stops: list[tuple[float, float]] = []
    trials = [(signal.SIGKILL, kills)] * sizes.failovers + \
        [(signal.SIGSTOP, stops)] * sizes.failovers
    for i, (sig, out) in enumerate(trials):
        log(f"failover {i + 1}/{len(trials)} ({signal.Signals(sig).name})")
        restart = i < len(trials) - 1  # the last trial needs no whole cluster after it
        out.append((failover_ours(ours, sig, restart), failover_peer(theirs, sig, restart)))

    def show(pairs: Sequence[Any]) -> str:
        return "  ".join(f"{p[0]:.0f}/{p[1]:.0f}" if type(p) is tuple else f"{p:.0f}"
                         for p in pairs)

    log("per round (ours/pysyncobj): seq p50 us " + show(seq) + "; pipelined cmd/s " +
        show(pipe) + "; consistent_query p50 us " + show(query) + "; local q/s " +
        show(local) + "; SIGKILL ms " + show(kills) + "; SIGSTOP ms " + show(stops))

    def med(pairs: list[tuple[float, float]], i: int) -> float:
        return statistics.median(p[i] for p in pairs)

    pso = f"pysyncobj {version('pysyncobj')}"
    seq_ours, seq_peer = med(seq, 0), med(seq, 1)
    pipe_ours, pipe_peer = med(pipe, 0), med(pipe, 1)
    query_ours = statistics.median(query)
    local_ours, local_peer = med(local, 0), med(local, 1)
    kill_ours, kill_peer = med(kills, 0), med(kills, 1)
    stop_ours, stop_peer = med(stops, 0), med(stops, 1)
    return [
        _row("sequential process_command, p50", seq_ours, seq_peer, pso, "us",
             target="<= 600 us", passed=seq_ours <= 600),
        _row(f"pipelined, {WINDOW:,} in flight", pipe_ours, pipe_peer, pso, "cmd/s",
             throughput=True, target=">= 40k cmd/s", passed=pipe_ours >= 40_000),
        _row("consistent_query, p50", query_ours, None, "- (no linearizable read)", "us",
             target="<= 150 us", passed=query_ours <= 150),
        _row("local_query, in-process", local_ours, local_peer, f"{pso} counter.get()",
             "q/s", throughput=True, target=">= 200k q/s", passed=local_ours >= 200_000),
        _row(f"new leader after SIGKILL, median of {len(kills)}", kill_ours, kill_peer, pso,
             "ms", target="<= 300 ms", passed=kill_ours <= 300),
        _row(f"new leader after SIGSTOP, median of {len(stops)}", stop_ours, stop_peer, pso,
             "ms", target="<= 1500 ms", passed=stop_ours <= 1500),
    ]


# -- output ------------------------------------------------------------------------------------

def format_raft_table(figures: Sequence[Figure]) -> str:
    """As `bench.format_table`, with "—" where a figure has no peer."""
    from .bench import _number, _verdict

    header = ("figure", "ours", "peer", "peer is", "ratio", "target", "pass")
    rows = [header] + [
        (f.name, f"{_number(f.ours)} {f.unit}",
         "—" if f.peer is None else f"{_number(f.peer)} {f.unit}", f.peer_name,
         "—" if f.ratio is None else f"{f.ratio:.2f}", f.target, _verdict(f.passed))
        for f in figures
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
