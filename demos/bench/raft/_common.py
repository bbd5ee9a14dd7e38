"""What both sides of `demos.bench.raft.run` (and `demos.bench.raft.trace`) share.

- `ROOT`, `WINDOW`, `COOKIE`: the repo root, the pipelined window, the run's cookie;
- `private_world`: the lab's `private_node` (a private port mapper, a distributed node for
  the client) and a temporary root for every data dir, all gone at the end;
- `p50_us`, `alternating_p50s`: per-round latency medians;
- `again`: one retry of a throughput round a lost leader spoiled;
- `cpu_seconds`: user + system CPU of OS processes, from /proc/<pid>/stat;
- `reqrep_latencies`: raw pyzmq REQ/REP round trips to an echo in another OS process, the
  floor any call between two processes on loopback stands on.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from demos.lab import ROOT as _ROOT
from demos.lab import private_node

ROOT = Path(_ROOT)
WINDOW = 1000  # pipelined commands in flight
COOKIE = secrets.token_hex(16)  # random per run: a fixed one would let any local user in


@contextlib.contextmanager
def private_world() -> Iterator[Path]:
    """A private port mapper (so the run never meets other nodes), a distributed node for
    the client, and a temporary root for every data dir; all gone at the end."""
    root = Path(tempfile.mkdtemp(prefix="bench_raft_"))
    try:
        with private_node(f"bench_raft{os.getpid()}@127.0.0.1", COOKIE):
            yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def p50_us(samples: Sequence[int]) -> float:
    return statistics.median(samples) / 1000.0


def alternating_p50s(n: int, ours: Callable[[int], list[int]], peer_: Callable[[int], list[int]],
                     chunk: int = 100) -> tuple[float, float]:
    """One round: n of each, in alternating chunks, so both see the same spells of load."""
    ours_ns: list[int] = []
    peer_ns: list[int] = []
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        ours_ns += ours(size)
        peer_ns += peer_(size)
    return p50_us(ours_ns), p50_us(peer_ns)


def again(run: Callable[[], float], log: Callable[[str], None]) -> float:
    """run(), and once more if it failed (a leader lost under load on a busy machine: each
    side then rejects or fails the commands in flight)."""
    try:
        return run()
    except (RuntimeError, ConnectionError) as exc:
        log(f"retrying once after: {exc}")
        time.sleep(1.0)
        return run()


def cpu_seconds(os_pids: Sequence[int]) -> float:
    """User + system CPU seconds used so far by the given OS processes (all threads), summed:
    fields 14 and 15 of /proc/<pid>/stat, in clock ticks."""
    ticks = 0
    for pid in os_pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # the name may hold spaces
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


_ECHO = """
import sys, zmq
ctx = zmq.Context(); rep = ctx.socket(zmq.REP); port = rep.bind_to_random_port("tcp://127.0.0.1")
print(port, flush=True)
while True:
    msg = rep.recv()
    if msg == b"stop":
        rep.send(b"bye")
        break
    rep.send(msg)
"""


def reqrep_latencies(n: int, size: int = 64) -> list[int]:
    """n raw pyzmq REQ/REP round trips (ns each) over TCP loopback, from this process to an
    echo in a fresh OS process, after 100 unmeasured ones."""
    import zmq

    echo = subprocess.Popen([sys.executable, "-c", _ECHO], stdout=subprocess.PIPE, text=True)
    ctx = zmq.Context()
    req = ctx.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.setsockopt(zmq.RCVTIMEO, 10_000)
    try:
        assert echo.stdout is not None
        port = int(echo.stdout.readline())
        req.connect(f"tcp://127.0.0.1:{port}")
        payload, clock, samples = b"x" * size, time.perf_counter_ns, []
        for i in range(n + 100):
            t0 = clock()
            req.send(payload)
            req.recv()
            if i >= 100:
                samples.append(clock() - t0)
        req.send(b"stop")
        req.recv()
        return samples
    finally:
        req.close()
        ctx.term()
        with contextlib.suppress(subprocess.TimeoutExpired):
            echo.wait(5)
        if echo.poll() is None:
            echo.kill()
            echo.wait()
