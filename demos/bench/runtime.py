"""The runtime figures of `python -m demos.bench runtime`: one node in this process beside
pykka, round after round (messaging, a call with a long queue, spawning, supervisor
children, idle processes in a fresh interpreter). `run_runtime(sizes)` returns the rows.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib.metadata import version
from multiprocessing import get_context
from typing import Any

import pykka

from actors import Node, erlang, gen_server

from ._common import Figure
from .supervisor import measure

ERLANG_SCALE = "Erlang/OTP 25 does gen_server:call in about 1.2 us on this machine"


@dataclass(frozen=True)
class Sizes:
    """How much work one round does."""

    calls: int
    casts: int
    spawns: int
    idle: int
    pykka_idle: int
    rounds: int
    queued: int  # messages in the caller's mailbox for the "call with a long queue" row
    children: tuple[int, int]  # children under one supervisor: the small and the large run


IDLE_TARGET = 10_000  # live idle gen_servers on one node
FULL = Sizes(calls=20_000, casts=100_000, spawns=1_000, idle=IDLE_TARGET, pykka_idle=1_000,
             rounds=5, queued=500_000, children=(1_000, 100_000))
QUICK = Sizes(calls=2_000, casts=20_000, spawns=200, idle=1_000, pykka_idle=200, rounds=2,
              queued=50_000, children=(1_000, 10_000))


# -- the servers and actors under test ------------------------------------------------------

class Echo(gen_server.GenServer):
    """Replies to every call with the request; ignores casts."""

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return ("reply", request, state)

    def handle_cast(self, msg: Any, state: Any) -> Any:
        return ("noreply", state)


class PykkaEcho(pykka.ThreadingActor):
    """pykka's bare peer: `ask` returns the message."""

    def on_receive(self, message: Any) -> Any:
        return message


# -- measuring helpers ------------------------------------------------------------------------

def _median_pair(rounds: int, ours: Callable[[], float],
                 peer: Callable[[], float]) -> tuple[float, float]:
    """Run ours and the peer side by side each round; the median of each."""
    return _median_rounds(rounds, lambda: (_collected(ours), _collected(peer)))


def _median_rounds(rounds: int, one: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    """`one()` gives (ours, peer) for one round; the median of each over the rounds."""
    pairs = [one() for _ in range(rounds)]
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def _collected(measure: Callable[[], float]) -> float:
    gc.collect()
    return measure()


def _p50_pair_us(n: int, ours: Callable[[], Any], peer: Callable[[], Any],
                 chunk: int = 500) -> tuple[float, float]:
    """Median latency in microseconds of n `ours()` and n `peer()`, run in alternating chunks:
    both see the same spells of machine load, and each runs back to back within a chunk
    (alternating op by op would wake a cold thread on every call, for both)."""
    ours_ns: list[int] = []
    peer_ns: list[int] = []
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        ours_ns += _latencies_ns(size, ours)
        peer_ns += _latencies_ns(size, peer)
    return statistics.median(ours_ns) / 1000.0, statistics.median(peer_ns) / 1000.0


def _latencies_ns(n: int, op: Callable[[], Any]) -> list[int]:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(n):
        t0 = clock()
        op()
        samples.append(clock() - t0)
    return samples


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _per_1000_ms(elapsed_ns: int, n: int) -> float:
    return elapsed_ns / 1e6 * 1000 / n


# -- figure 1: call round trip -----------------------------------------------------------------

def call_p50(pid: Any, ref: pykka.ActorRef[Any], n: int,
             timeout: Any = 5000) -> tuple[float, float]:
    """p50 of gen_server.call and of pykka's ask, alternated chunk by chunk."""
    gc.collect()
    return _p50_pair_us(n, lambda: gen_server.call(pid, "ping", timeout),
                        lambda: ref.ask("ping"))


# -- figure 2: cast throughput -----------------------------------------------------------------

def cast_rate_ours(pid: Any, n: int) -> float:
    cast = gen_server.cast
    t0 = time.perf_counter_ns()
    for _ in range(n):
        cast(pid, "tick")
    gen_server.call(pid, "flush")
    return n / ((time.perf_counter_ns() - t0) / 1e9)


def cast_rate_pykka(ref: pykka.ActorRef[Any], n: int) -> float:
    tell = ref.tell
    t0 = time.perf_counter_ns()
    for _ in range(n):
        tell("tick")
    ref.ask("flush")
    return n / ((time.perf_counter_ns() - t0) / 1e9)


# -- figure 3: spawn and exit ------------------------------------------------------------------

def start_stop_ours(n: int) -> float:
    """n gen_servers started (all live at once), then all stopped: ms per 1,000."""
    t0 = time.perf_counter_ns()
    pids = [gen_server.start(Echo, None)[1] for _ in range(n)]
    for pid in pids:
        gen_server.stop(pid)
    return _per_1000_ms(time.perf_counter_ns() - t0, n)


def _quit() -> None:
    return None


def _is_down(msg: Any) -> bool:
    return type(msg) is tuple and msg[0] == "DOWN"


def spawn_monitor_ours(n: int) -> float:
    """n function processes that exit at once, waiting for every DOWN: ms per 1,000."""
    t0 = time.perf_counter_ns()
    for _ in range(n):
        erlang.spawn_monitor(_quit)
    for _ in range(n):
        erlang.receive(_is_down)
    return _per_1000_ms(time.perf_counter_ns() - t0, n)


def start_stop_pykka(n: int) -> float:
    """n pykka actors started, then all stopped (as ActorRegistry.stop_all): ms per 1,000."""
    t0 = time.perf_counter_ns()
    refs = [PykkaEcho.start() for _ in range(n)]
    for ref in reversed(refs):
        ref.stop()
    return _per_1000_ms(time.perf_counter_ns() - t0, n)


# -- figure 4: live idle processes (each round in a fresh interpreter) -------------------------

def idle_ours(n: int) -> tuple[float, float, int]:
    """Start n idle gen_servers on a fresh node: (RSS bytes each, start us each, alive)."""
    node = Node("idle@localhost")
    try:
        with node.bound():
            gen_server.stop(gen_server.start(Echo, None)[1])  # warm up: shell, pool, imports
            gc.collect()
            rss0, t0 = _rss_bytes(), time.perf_counter_ns()
            pids = [gen_server.start(Echo, None)[1] for _ in range(n)]
            elapsed, rss1 = time.perf_counter_ns() - t0, _rss_bytes()
            alive = sum(erlang.is_process_alive(pid) for pid in pids)
    finally:
        node.stop()
    return (rss1 - rss0) / n, elapsed / 1000 / n, alive


def idle_pykka(n: int) -> tuple[float, float, int]:
    """Start n idle pykka actors (a thread each): (RSS bytes each, start us each, alive)."""
    PykkaEcho.start().stop()
    gc.collect()
    rss0, t0 = _rss_bytes(), time.perf_counter_ns()
    refs = [PykkaEcho.start() for _ in range(n)]
    elapsed, rss1 = time.perf_counter_ns() - t0, _rss_bytes()
    alive = sum(ref.is_alive() for ref in refs)
    pykka.ActorRegistry.stop_all()
    return (rss1 - rss0) / n, elapsed / 1000 / n, alive


def _in_fresh_interpreter(fun: Callable[[int], tuple[float, float, int]],
                          n: int) -> tuple[float, float, int]:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fun, n).result()


# -- the runtime figures ---------------------------------------------------------------------

def _figure(name: str, ours: float, peer: float, unit: str, *, throughput: bool = False,
            target: str, limit: float | None = None, passed: bool | None = None) -> Figure:
    """A row; with `limit`, it passes when the cost ratio is at most `limit`."""
    ratio = peer / ours if throughput else ours / peer
    if limit is not None:
        passed = ratio <= limit
    return Figure(name, ours, peer, f"pykka {version('pykka')}", unit, ratio, target, passed)


def messaging_figures(sizes: Sizes) -> list[Figure]:
    pid = gen_server.start(Echo, None)[1]
    ref = PykkaEcho.start()
    try:
        call_p50(pid, ref, 1000)  # warm up both
        cast_rate_ours(pid, sizes.casts // 10)
        cast_rate_pykka(ref, sizes.casts // 10)
        call = _median_rounds(sizes.rounds, lambda: call_p50(pid, ref, sizes.calls))
        lent = _median_rounds(sizes.rounds,
                              lambda: call_p50(pid, ref, sizes.calls, "infinity"))
        cast = _median_pair(sizes.rounds, lambda: cast_rate_ours(pid, sizes.casts),
                            lambda: cast_rate_pykka(ref, sizes.casts))
    finally:
        gen_server.stop(pid)
        ref.stop()
    return [
        _figure("gen_server.call p50 vs ask", *call, "us", target="<= 0.50", limit=0.5),
        _figure("call(..., infinity) p50 vs ask", *lent, "us", target="<= 0.50", limit=0.5),
        _figure("gen_server.cast rate vs tell", *cast, "msg/s", throughput=True,
                target="<= 1.25 (>= 0.8x)", limit=1.25),
    ]


def spawn_figures(sizes: Sizes) -> list[Figure]:
    n = sizes.spawns
    start_stop_ours(min(n, 100))
    spawn_monitor_ours(min(n, 100))
    start_stop_pykka(min(n, 100))  # warm up all three
    starts = _median_pair(sizes.rounds, lambda: start_stop_ours(n), lambda: start_stop_pykka(n))
    spawns = _median_pair(sizes.rounds, lambda: spawn_monitor_ours(n),
                          lambda: start_stop_pykka(n))
    unit = "ms/1000"
    return [
        _figure("gen_server start+stop x1000", *starts, unit, target="<= 0.50", limit=0.5),
        _figure("spawn_monitor+DOWN x1000", *spawns, unit, target="<= 0.50", limit=0.5),
    ]


def queued_call_p50(pid: Any, queued: int, n: int) -> tuple[float, float]:
    """p50 of a call made with `queued` messages in the caller's mailbox, and of the same
    call with an empty one (OTP's call_with_huge_message_queue: at most 10x)."""
    me = erlang.self()
    empty = _p50_us(n, lambda: gen_server.call(pid, "ping"))
    for i in range(queued):
        erlang.send(me, i)
    full = _p50_us(n, lambda: gen_server.call(pid, "ping"))
    while erlang.receive(timeout=0) is not erlang.TIMEOUT:
        pass
    return full, empty


def _p50_us(n: int, op: Callable[[], Any]) -> float:
    return statistics.median(_latencies_ns(n, op)) / 1000.0


def queue_figures(sizes: Sizes) -> list[Figure]:
    pid = gen_server.start(Echo, None)[1]
    try:
        full, empty = _median_rounds(sizes.rounds,
                                     lambda: queued_call_p50(pid, sizes.queued, 2_000))
    finally:
        gen_server.stop(pid)
    ratio = full / empty
    return [Figure(f"call with {sizes.queued:,} queued p50", full, empty,
                   "same call, empty mailbox", "us", ratio, "<= 10.00", ratio <= 10.0)]


def children_figures(sizes: Sizes) -> list[Figure]:
    """Start then stop N children under one supervisor (OTP's
    scale_start_stop_many_children), once per size: the per-child cost at the large size
    beside the small one. Linear scaling keeps the ratio near 1."""
    small, large = (measure(n) for n in sizes.children)
    ratio = large["us_per_child"] / small["us_per_child"]
    return [Figure(f"start+stop {large['n']:,} children, per child", large["us_per_child"],
                   small["us_per_child"], f"the same at {small['n']:,}", "us", ratio,
                   "linear (<= 1.50)", ratio <= 1.5)]


def idle_figures(sizes: Sizes) -> list[Figure]:
    ours = [_in_fresh_interpreter(idle_ours, sizes.idle) for _ in range(sizes.rounds)]
    peer = [_in_fresh_interpreter(idle_pykka, sizes.pykka_idle) for _ in range(sizes.rounds)]
    rss = statistics.median(r[0] for r in ours), statistics.median(r[0] for r in peer)
    start = statistics.median(r[1] for r in ours), statistics.median(r[1] for r in peer)
    all_alive = all(r[2] == sizes.idle for r in ours)  # full size: IDLE_TARGET live at once
    return [
        _figure(f"idle RSS/process ({sizes.idle:,} vs {sizes.pykka_idle:,})",
                rss[0] / 1024, rss[1] / 1024, "KiB", target=f"{sizes.idle:,} live",
                passed=all_alive),
        _figure(f"idle start/process ({sizes.idle:,})", *start, "us", target="info"),
    ]


def run_runtime(sizes: Sizes) -> list[Figure]:
    node = Node("bench@localhost")
    try:
        with node.bound():
            figures = (messaging_figures(sizes) + queue_figures(sizes)
                       + spawn_figures(sizes))
    finally:
        pykka.ActorRegistry.stop_all()
        node.stop()
    return figures + children_figures(sizes) + idle_figures(sizes)


