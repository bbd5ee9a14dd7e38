"""Distribution figures for `python -m demos.bench dist`: real OS-process nodes on loopback.

Each figure is measured beside its peer in the same run, round after round; the median over
the rounds is reported:
- a remote gen_server.call round trip beside a raw pyzmq REQ/REP round trip between the
  same two kinds of OS processes (the floor any ZeroMQ transport pays); on a host with two
  CPUs or more, again with each of the two processes bound to a CPU of its own (the node
  with `--cpu`, the raw server alike), so no thread moves between CPUs;
- the floor of that call (`demos.bench.call_floor`): a call's sealed, pickled frames over
  one DEALER-ROUTER connection, without and with a call's bookkeeping, written flat with no
  node around it, each taken in turns with raw REQ/REP: the least a call with our
  guarantees could cost in CPython here;
- one-way remote sends (authenticated, pickled, in order) beside raw pyzmq DEALER->ROUTER
  frames of the same size;
- global_.register_name on a 3-node cluster, beside the same run's raw REQ/REP round trip
  (no Python peer has a cluster-wide name registry; Erlang's global costs 7.5x its own rpc
  round trip on this machine, measured on 2026-12-07);
- failure detection after SIGKILL (the socket) and SIGSTOP (heartbeats), beside the
  defaults of Erlang (net_ticktime 60 s) and ra (about 7 s after SIGSTOP here), quoted.
"""

from __future__ import annotations

import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import zmq

from actors import erlang, gen_server, global_, peer, rpc
from actors._affinity import bind_threads
from demos.lab import private_node

from ._common import Figure
from .call_floor import CallFloor, alternating_p50s_us

PAYLOAD = b"x" * 64


@dataclass(frozen=True)
class DistSizes:
    calls: int
    sends: int
    registers: int
    detections: int
    rounds: int


DIST_FULL = DistSizes(calls=5_000, sends=100_000, registers=300, detections=3, rounds=5)
DIST_QUICK = DistSizes(calls=500, sends=10_000, registers=50, detections=1, rounds=2)

_RAW_SERVER = r"""
import sys, zmq
ctx = zmq.Context()
rep = ctx.socket(zmq.REP); rep_port = rep.bind_to_random_port("tcp://127.0.0.1")
router = ctx.socket(zmq.ROUTER); router_port = router.bind_to_random_port("tcp://127.0.0.1")
print(rep_port, router_port, flush=True)
poller = zmq.Poller(); poller.register(rep, zmq.POLLIN); poller.register(router, zmq.POLLIN)
count = 0
while True:
    for sock, _ in poller.poll():
        if sock is rep:
            rep.send(rep.recv())
        else:
            identity, frame = router.recv_multipart()
            if frame == b"reset":
                count = 0
                continue
            count += 1
            if frame == b"last":
                router.send_multipart([identity, str(count).encode()])
"""


class _RawPeer:
    """A raw pyzmq REQ/REP echo and DEALER->ROUTER sink in another OS process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _RAW_SERVER],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        rep_port, router_port = self.proc.stdout.readline().split()
        self.ctx = zmq.Context()
        self.req = self.ctx.socket(zmq.REQ)
        self.req.connect(f"tcp://127.0.0.1:{rep_port}")
        self.dealer = self.ctx.socket(zmq.DEALER)
        self.dealer.sndhwm = 0
        self.dealer.connect(f"tcp://127.0.0.1:{router_port}")

    def round_trip(self) -> None:
        self.req.send(PAYLOAD)
        self.req.recv()

    def one_way_rate(self, n: int) -> float:
        self.dealer.send(b"reset")
        start = time.perf_counter()
        for _ in range(n - 1):
            self.dealer.send(PAYLOAD)
        self.dealer.send(b"last")
        count = int(self.dealer.recv())
        assert count == n, count
        return n / (time.perf_counter() - start)

    def close(self) -> None:
        self.ctx.destroy(0)
        self.proc.kill()
        self.proc.wait()


class Echo(gen_server.GenServer):
    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return ("reply", request, state)


def _start_echo() -> Any:
    return gen_server.start(("local", "bench_echo"), Echo(), None)


def _sink(n: int, reply_to: Any) -> None:
    """Receive n messages, check their order, tell `reply_to` how many came in order."""
    in_order = 0
    for i in range(n):
        if erlang.receive() == i:
            in_order += 1
    erlang.send(reply_to, ("sink_done", in_order))


def _p50_us(n: int, op: Any) -> float:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        op()
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1000.0


def _send_rate(node: str, n: int) -> float:
    me = erlang.self()
    sink = erlang.spawn(node, _sink, n, me)
    start = time.perf_counter()
    for i in range(n):
        erlang.send(sink, i)
    done = erlang.receive(lambda m: type(m) is tuple and m[0] == "sink_done", 60_000)
    elapsed = time.perf_counter() - start
    assert done is not erlang.TIMEOUT and done[1] == n, done
    return n / elapsed


def _register_p50_us(n: int) -> float:
    me = erlang.self()
    samples = []
    for i in range(n):
        name = ("bench", i, time.monotonic_ns())
        t0 = time.perf_counter_ns()
        assert global_.register_name(name, me) == "yes"
        samples.append(time.perf_counter_ns() - t0)
        global_.unregister_name(name)
    return statistics.median(samples) / 1000.0


def _detection_ms(sig: int) -> float:
    """Start a peer, watch it, send `sig`, time until nodedown."""
    _, peer_pid, node = peer.start()
    erlang.monitor_node(node, True)
    os_pid = peer.os_pid(peer_pid)
    t0 = time.perf_counter()
    os.kill(os_pid, sig)
    msg = erlang.receive(lambda m: m == ("nodedown", node), 10_000)
    elapsed = (time.perf_counter() - t0) * 1000.0
    assert msg is not erlang.TIMEOUT
    if sig == signal.SIGSTOP:
        os.kill(os_pid, signal.SIGCONT)
    peer.stop(peer_pid)
    return elapsed


def _row(name: str, ours: float, peer_value: float, peer_name: str, unit: str, *,
         throughput: bool = False, target: str, passed: bool | None) -> Figure:
    ratio = peer_value / ours if throughput else ours / peer_value
    return Figure(name, ours, peer_value, peer_name, unit, ratio, target, passed)


def run_dist(sizes: DistSizes) -> list[Figure]:
    # a private port mapper and a random cookie: no other local user can join the run
    with private_node(f"bench{os.getpid()}@127.0.0.1", secrets.token_hex(16)):
        return _run_dist(sizes)


def _run_dist(sizes: DistSizes) -> list[Figure]:
    raw = _RawPeer()
    peers = [peer.start() for _ in (1, 2)]
    node1 = peers[0][2]
    try:
        rpc.call(node1, _start_echo)
        ref = ("bench_echo", node1)
        gen_server.call(ref, "warm")
        calls = [(_p50_us(sizes.calls, lambda: gen_server.call(ref, "ping")),
                  _p50_us(sizes.calls, raw.round_trip)) for _ in range(sizes.rounds)]
        sends = [(_send_rate(node1, sizes.sends), raw.one_way_rate(sizes.sends))
                 for _ in range(sizes.rounds)]
        bound = _bound_calls(sizes, raw)
        floors = _floor_calls(sizes, raw)
        registers = [_register_p50_us(sizes.registers) for _ in range(sizes.rounds)]
        kills = [_detection_ms(signal.SIGKILL) for _ in range(sizes.detections)]
        stops = [_detection_ms(signal.SIGSTOP) for _ in range(sizes.detections)]
    finally:
        for _, pid, _ in peers:
            peer.stop(pid)
        raw.close()
    call = statistics.median(c[0] for c in calls), statistics.median(c[1] for c in calls)
    send = statistics.median(s[0] for s in sends), statistics.median(s[1] for s in sends)
    reg = statistics.median(registers)
    kill, stop = statistics.median(kills), statistics.median(stops)
    zmq_name = f"pyzmq {version('pyzmq')}"
    rows = [
        _row("remote gen_server.call p50", *call, f"{zmq_name} REQ/REP", "us",
             target="<= 1.50", passed=call[0] / call[1] <= 1.5),
        _row("remote send, one way", *send, f"{zmq_name} DEALER->ROUTER", "msg/s",
             throughput=True, target="<= 1.00 (>= 1x raw)", passed=send[1] / send[0] <= 1.0),
        _row("global_.register_name, 3 nodes, p50", reg, call[1], f"{zmq_name} REQ/REP",
             "us", target="<= 8.00 (Erlang 7.5x)", passed=reg / call[1] <= 8.0),
        _row("nodedown after SIGKILL", kill, 60_000.0, "Erlang default (quoted)", "ms",
             target="<= 100 ms", passed=kill <= 100.0),
        _row("nodedown after SIGSTOP", stop, 7_000.0, "ra here (quoted)", "ms",
             target="<= 1000 ms", passed=stop <= 1000.0),
    ]
    if bound:
        rows.insert(1, _row("remote call p50, each process bound to a CPU",
                            statistics.median(b[0] for b in bound),
                            statistics.median(b[1] for b in bound),
                            f"{zmq_name} REQ/REP, bound alike", "us", target="-", passed=None))
    raw_in_turns = statistics.median(f[2] for f in floors)
    rows[1:1] = [
        _row("floor: a call's frames only (sealed, pickled), p50",
             statistics.median(f[0] for f in floors), raw_in_turns,
             f"{zmq_name} REQ/REP, in turns", "us", target="floor of the 1.50", passed=None),
        _row("floor: a call's frames and bookkeeping, p50",
             statistics.median(f[1] for f in floors), raw_in_turns,
             f"{zmq_name} REQ/REP, in turns", "us", target="floor of the 1.50", passed=None),
    ]
    return rows


def _floor_calls(sizes: DistSizes, raw: _RawPeer) -> list[list[float]]:
    """Rounds of [frames-only p50, call p50, raw REQ/REP p50] of the call floor
    (`demos.bench.call_floor`), the three taken in turns."""
    floor = CallFloor()
    try:
        ops = [lambda: floor.frames(PAYLOAD), lambda: floor.call(PAYLOAD), raw.round_trip]
        alternating_p50s_us(min(sizes.calls, 500), ops)  # warm up
        return [alternating_p50s_us(sizes.calls, ops) for _ in range(sizes.rounds)]
    finally:
        floor.close()


def _bound_calls(sizes: DistSizes, raw: _RawPeer) -> list[tuple[float, float]]:
    """Rounds of (our call p50, raw REQ/REP p50) with this process on one CPU and the
    server's process (a node started with --cpu, the raw server) on another; [] on a host
    with fewer than two CPUs for us."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    if len(allowed) < 2:
        return []
    ours, theirs = sorted(allowed)[:2]
    started = peer.start(args=["--cpu", str(theirs)])
    if started[0] != "ok":
        raise RuntimeError(f"a node bound to CPU {theirs} did not start: {started}")
    pid, node = started[1], started[2]
    try:
        rpc.call(node, _start_echo)
        ref = ("bench_echo", node)
        gen_server.call(ref, "warm")
        bind_threads({ours})
        bind_threads({theirs}, raw.proc.pid)
        return [(_p50_us(sizes.calls, lambda: gen_server.call(ref, "ping")),
                 _p50_us(sizes.calls, raw.round_trip)) for _ in range(sizes.rounds)]
    finally:
        bind_threads(allowed)
        bind_threads(allowed, raw.proc.pid)
        peer.stop(pid)
