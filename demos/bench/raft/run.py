"""Raft figures for `python -m demos.bench raft`: actors.ra beside pysyncobj, same run.

Setup, ours: three node OS processes on loopback (`actors.peer`), each with its own ra
system in a temporary data dir (`ra.start` defaults: the WAL fdatasyncs every batch), and a
3-member cluster of `Counter`. The client is this process, a distributed node of its own.

Setup, the peer: three pysyncobj OS processes on loopback (`demos.bench.raft.pysyncobj_node`), each
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
- `ra.consistent_query` round trip (pysyncobj has no linearizable read), beside the raw
  pyzmq REQ/REP round trip from this process to an echo in another OS process, measured in
  the same round: the floor of any call between two processes here;
- `ra.local_query` calls per second from a process on the member's own node (a 1-member
  cluster on this node); the peer is `counter.get()` in a member's own process;
- CPU per command: user + system CPU of the three member OS processes (all threads, from
  /proc/<pid>/stat) over `seq` sequential commands, and over `pipelined` pipelined ones,
  divided by the commands; the same for pysyncobj's three processes;
- time to a new leader after SIGKILL / SIGSTOP of the leader's node: from the signal to
  the moment a surviving member becomes leader, stamped by that member (CLOCK_MONOTONIC
  is shared by every process on the host) and pushed to us as an event: ours by the
  machine's `state_enter("leader")` effect, pysyncobj's by its `onStateChanged` callback.
  After each trial the dead node is restarted on its data and the cluster made whole;
- the floor (`demos.bench.raft.floor`): a command's and a consistent read's messages over
  raw pyzmq with the same fdatasyncs and nothing else, beside pysyncobj's command and a
  raw round trip taken in turns, and the CPU its three processes spend per command: the
  least that any implementation over ZeroMQ could show. Then the same with each message
  pickled and sealed, and checked and unpickled on arrival (the sealed floor): the least
  that any implementation which authenticates its messages, as ours must, could show.
  No target.

This module holds the sizes (`RAFT_FULL`, `RAFT_QUICK`), the run (`run_raft`: both clusters
up, a warm-up, the rounds, the failovers, the medians) and the table (`format_raft_table`).
Our side is `demos.bench.raft.ra_side`, the peer's `demos.bench.raft.pysyncobj_side`, and
what they share `demos.bench.raft._common`.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

from actors import erlang, ra

from .._common import Figure
from ._common import (
    WINDOW,
    again,
    alternating_p50s,
    p50_us,
    private_world,
    reqrep_latencies,
)
from .floor import FloorCluster
from .pysyncobj_side import (
    PsoCluster,
    cpu_per_command_peer,
    failover_peer,
    local_rate_peer,
    pipelined_rate_peer_batched,
    seq_latencies_peer,
)
from .ra_side import (
    SYSTEM,
    Counter,
    RaCluster,
    cpu_per_command_ours,
    failover_ours,
    local_rate_ours,
    pipelined_rate_ours,
    query_latencies_ours,
    seq_latencies_ours,
)


@dataclass(frozen=True)
class RaftSizes:
    seq: int  # sequential commands per round (and consistent queries)
    pipelined: int  # commands per throughput round
    local: int  # local queries per round
    failovers: int  # trials per signal
    rounds: int


RAFT_FULL = RaftSizes(seq=1_000, pipelined=20_000, local=100_000, failovers=5, rounds=5)
RAFT_QUICK = RaftSizes(seq=100, pipelined=2_000, local=5_000, failovers=1, rounds=1)


# -- the run ---------------------------------------------------------------------------------

def _row(name: str, ours: float, peer_value: float | None, peer_name: str, unit: str, *,
         throughput: bool = False, target: str, passed: bool | None) -> Figure:
    ratio: float | None = None
    if peer_value is not None:
        ratio = peer_value / ours if throughput else ours / peer_value
    return Figure(name, ours, peer_value, peer_name, unit, ratio, target, passed)


def run_raft(sizes: RaftSizes, log: Callable[[str], None] = lambda _s: None) -> list[Figure]:
    began = time.monotonic()

    def say(line: str) -> None:
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        log(f"[{time.monotonic() - began:6.1f} s, load {load}] {line}")

    with private_world() as root:
        ours = RaCluster(root, str(os.getpid()))
        theirs = PsoCluster(root)
        floor = FloorCluster(root)
        sealed = FloorCluster(root, sealed=True)
        try:
            say("starting 3 ra nodes, 3 pysyncobj members and the 3 processes of the floor")
            ours.start()
            theirs.start()
            floor.start()
            sealed.start()
            ra.start(str(root / "local"))
            local_id = ("bench_local", erlang.node())
            started = ra.start_cluster(SYSTEM, "bench_local", ("module", Counter, None),
                                       [local_id], 20_000)
            if started[0] != "ok" or started[2]:
                raise RuntimeError(f"local ra cluster: {started}")
            return _measure(sizes, ours, theirs, (floor, sealed), local_id, say)
        finally:
            say("stopping")
            with contextlib.suppress(Exception):
                floor.stop()
            with contextlib.suppress(Exception):
                sealed.stop()
            with contextlib.suppress(Exception):
                ra.stop()
            ours.stop()
            theirs.stop()
            summary = theirs.log_summary()
            if summary:
                say("pysyncobj's members logged:\n" + "\n".join(summary[:10]))


Pair = tuple[float, float]  # (ours, pysyncobj)


@dataclass
class _Samples:
    """One entry per round (per trial for the failovers); `query` is ours alone."""

    seq: list[Pair] = field(default_factory=list)
    pipe: list[Pair] = field(default_factory=list)
    query: list[float] = field(default_factory=list)
    reqrep: list[float] = field(default_factory=list)
    floor_seq: list[Pair] = field(default_factory=list)  # (the floor, pysyncobj)
    floor_read: list[Pair] = field(default_factory=list)  # (the floor, its round trip)
    floor_cpu: list[float] = field(default_factory=list)
    sealed_seq: list[Pair] = field(default_factory=list)  # (the sealed floor, pysyncobj)
    sealed_read: list[Pair] = field(default_factory=list)  # (the sealed floor, a round trip)
    sealed_cpu: list[float] = field(default_factory=list)
    cpu_seq: list[Pair] = field(default_factory=list)
    cpu_pipe: list[Pair] = field(default_factory=list)
    local: list[Pair] = field(default_factory=list)
    kills: list[Pair] = field(default_factory=list)
    stops: list[Pair] = field(default_factory=list)

    def summary(self) -> str:
        def show(pairs: Sequence[Any]) -> str:
            return "  ".join(f"{p[0]:.0f}/{p[1]:.0f}" if type(p) is tuple else f"{p:.0f}"
                             for p in pairs)

        return ("per round (ours/pysyncobj): seq p50 us " + show(self.seq) +
                "; pipelined cmd/s " + show(self.pipe) + "; consistent_query p50 us " +
                show(self.query) + "; local q/s " + show(self.local) + "; SIGKILL ms " +
                show(self.kills) + "; SIGSTOP ms " + show(self.stops) +
                "; floor command / pysyncobj p50 us " + show(self.floor_seq) +
                "; floor read / round trip p50 us " + show(self.floor_read) +
                "; floor CPU per command us " + show(self.floor_cpu) +
                "; sealed floor command / pysyncobj p50 us " + show(self.sealed_seq) +
                "; sealed floor read / round trip p50 us " + show(self.sealed_read) +
                "; sealed floor CPU per command us " + show(self.sealed_cpu))


def _measure(sizes: RaftSizes, ours: RaCluster, theirs: PsoCluster,
             floors: tuple[FloorCluster, FloorCluster], local_id: Any,
             log: Callable[[str], None]) -> list[Figure]:
    _warm_up(sizes, ours, theirs, local_id)
    samples = _Samples()
    for r in range(sizes.rounds):
        log(f"round {r + 1}/{sizes.rounds}")
        _round(sizes, ours, theirs, local_id, samples, log)
        _floor_round(sizes, theirs, floors, samples)
    _failovers(sizes, ours, theirs, samples, log)
    log(samples.summary())
    return _figures(samples)


def _warm_up(sizes: RaftSizes, ours: RaCluster, theirs: PsoCluster, local_id: Any) -> None:
    """Both sides once over: code paths, connections, the WAL files."""
    leader = ours.leader()
    pleader = theirs.leader()
    seq_latencies_ours(leader, 50)
    seq_latencies_peer(pleader, 50)
    pipelined_rate_ours(leader, min(2 * WINDOW, sizes.pipelined))
    pipelined_rate_peer_batched(pleader, min(2 * WINDOW, sizes.pipelined))
    query_latencies_ours(leader, 50)
    local_rate_ours(local_id, 1000)


def _round(sizes: RaftSizes, ours: RaCluster, theirs: PsoCluster, local_id: Any,
           samples: _Samples, log: Callable[[str], None]) -> None:
    leader, pleader = ours.leader(), theirs.leader()  # either may have changed
    gc.collect()
    samples.seq.append(alternating_p50s(sizes.seq,
                                        lambda n, ld=leader: seq_latencies_ours(ld, n),
                                        lambda n, ld=pleader: seq_latencies_peer(ld, n)))
    gc.collect()
    samples.pipe.append((again(lambda: pipelined_rate_ours(ours.leader(), sizes.pipelined), log),
                         again(lambda: pipelined_rate_peer_batched(theirs.leader(),
                                                                   sizes.pipelined), log)))
    gc.collect()
    samples.query.append(p50_us(query_latencies_ours(ours.leader(), sizes.seq)))
    samples.reqrep.append(p50_us(reqrep_latencies(sizes.seq)))
    gc.collect()
    samples.cpu_seq.append((cpu_per_command_ours(ours, sizes.seq, False),
                            cpu_per_command_peer(theirs, sizes.seq, False)))
    samples.cpu_pipe.append((cpu_per_command_ours(ours, sizes.pipelined, True),
                             cpu_per_command_peer(theirs, sizes.pipelined, True)))
    gc.collect()
    samples.local.append((local_rate_ours(local_id, sizes.local),
                          local_rate_peer(theirs.leader(), sizes.local)))


def _floor_round(sizes: RaftSizes, theirs: PsoCluster,
                 floors: tuple[FloorCluster, FloorCluster], samples: _Samples) -> None:
    """Each floor's command beside pysyncobj's, its read beside a plain round trip (each
    pair alternating, as ours), and its CPU per command."""
    floor, sealed = floors
    gc.collect()
    pleader = theirs.leader()
    samples.floor_seq.append(alternating_p50s(
        sizes.seq, floor.command_latencies, lambda n: seq_latencies_peer(pleader, n)))
    samples.floor_read.append(alternating_p50s(sizes.seq, floor.read_latencies,
                                               floor.round_trip_latencies))
    samples.floor_cpu.append(floor.cpu_per_command(sizes.seq))
    gc.collect()
    samples.sealed_seq.append(alternating_p50s(
        sizes.seq, sealed.command_latencies, lambda n: seq_latencies_peer(pleader, n)))
    samples.sealed_read.append(alternating_p50s(sizes.seq, sealed.read_latencies,
                                                floor.round_trip_latencies))
    samples.sealed_cpu.append(sealed.cpu_per_command(sizes.seq))


def _failovers(sizes: RaftSizes, ours: RaCluster, theirs: PsoCluster, samples: _Samples,
               log: Callable[[str], None]) -> None:
    trials = [(signal.SIGKILL, samples.kills)] * sizes.failovers + \
        [(signal.SIGSTOP, samples.stops)] * sizes.failovers
    for i, (sig, out) in enumerate(trials):
        log(f"failover {i + 1}/{len(trials)} ({signal.Signals(sig).name})")
        restart = i < len(trials) - 1  # the last trial needs no whole cluster after it
        out.append((failover_ours(ours, sig, restart), failover_peer(theirs, sig, restart)))


def _figures(s: _Samples) -> list[Figure]:
    def med(pairs: list[Pair], i: int) -> float:
        return statistics.median(p[i] for p in pairs)

    pso = f"pysyncobj {version('pysyncobj')}"
    seq_ours, seq_peer = med(s.seq, 0), med(s.seq, 1)
    pipe_ours, pipe_peer = med(s.pipe, 0), med(s.pipe, 1)
    query_ours, reqrep = statistics.median(s.query), statistics.median(s.reqrep)
    cpu_ours, cpu_peer = med(s.cpu_seq, 0), med(s.cpu_seq, 1)
    cpup_ours, cpup_peer = med(s.cpu_pipe, 0), med(s.cpu_pipe, 1)
    local_ours, local_peer = med(s.local, 0), med(s.local, 1)
    kill_ours, kill_peer = med(s.kills, 0), med(s.kills, 1)
    stop_ours, stop_peer = med(s.stops, 0), med(s.stops, 1)
    floor_seq, floor_peer = med(s.floor_seq, 0), med(s.floor_seq, 1)
    floor_read, floor_trip = med(s.floor_read, 0), med(s.floor_read, 1)
    floor_cpu = statistics.median(s.floor_cpu)
    sealed_seq, sealed_peer = med(s.sealed_seq, 0), med(s.sealed_seq, 1)
    sealed_read, sealed_trip = med(s.sealed_read, 0), med(s.sealed_read, 1)
    sealed_cpu = statistics.median(s.sealed_cpu)
    return [
        _row("sequential process_command, p50", seq_ours, seq_peer, pso, "us",
             target="ratio <= 0.8", passed=seq_ours <= 0.8 * seq_peer),
        _row(f"pipelined, {WINDOW:,} in flight", pipe_ours, pipe_peer, pso, "cmd/s",
             throughput=True, target="ratio <= 0.4", passed=pipe_ours >= 2.5 * pipe_peer),
        _row("consistent_query, p50", query_ours, reqrep, "raw pyzmq REQ/REP round trip", "us",
             target="ratio <= 2", passed=query_ours <= 2 * reqrep),
        _row("CPU per command, 3 members, sequential", cpu_ours, cpu_peer, pso, "us",
             target="<= 1000 us", passed=cpu_ours <= 1000),
        _row("CPU per command, 3 members, pipelined", cpup_ours, cpup_peer, pso, "us",
             target="<= 1000 us", passed=cpup_ours <= 1000),
        _row("local_query, in-process", local_ours, local_peer, f"{pso} counter.get()",
             "q/s", throughput=True, target=">= 200k q/s", passed=local_ours >= 200_000),
        _row(f"new leader after SIGKILL, median of {len(s.kills)}", kill_ours, kill_peer, pso,
             "ms", target="<= 300 ms", passed=kill_ours <= 300),
        _row(f"new leader after SIGSTOP, median of {len(s.stops)}", stop_ours, stop_peer, pso,
             "ms", target="<= 1500 ms", passed=stop_ours <= 1500),
        # the least any implementation over ZeroMQ could show (`floor`): no target of its own
        _row("floor: a command's messages over raw pyzmq, p50", floor_seq, floor_peer, pso,
             "us", target="floor of the 0.8", passed=None),
        _row("floor: a consistent read's messages over raw pyzmq, p50", floor_read, floor_trip,
             "raw pyzmq round trip, in turns", "us", target="floor of the 2", passed=None),
        _row("floor: CPU per command, 3 processes, sequential", floor_cpu, cpu_peer, pso, "us",
             target="floor of the 1000 us", passed=None),
        # the same, each message pickled and sealed, checked and unpickled, as ours must be
        _row("floor, sealed: a command's messages, p50", sealed_seq, sealed_peer, pso, "us",
             target="floor of the 0.8", passed=None),
        _row("floor, sealed: a consistent read's messages, p50", sealed_read, sealed_trip,
             "raw pyzmq round trip, in turns", "us", target="floor of the 2", passed=None),
        _row("floor, sealed: CPU per command, 3 processes", sealed_cpu, cpu_peer, pso, "us",
             target="floor of the 1000 us", passed=None),
    ]
