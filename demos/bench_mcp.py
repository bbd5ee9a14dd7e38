"""`python -m demos.bench_mcp [--quick] [--clients N] [--mode raft|poc] [--json PATH]`:
tools/call through the MCP front end beside the same calls through the Python protocol.

One cluster (3 node OS processes, as `erlmcp serve` starts them) serves both, in the same
run, round after round, alternating:
- Python protocol: `client.execute_tool` from this process (a node of the cluster) to the
  leader's consensus server, from C threads;
- MCP: C `mcp.ClientSession`s over Streamable HTTP to `erlmcp serve --http --join` (its
  own OS process and node, fronting the same cluster), each calling tools/call.
Each side runs once with 1 client (the added latency, unloaded) and once with C clients
(throughput; the service runs one tool at a time, so p50 then includes queueing). The
figures are medians over the rounds; `overhead` is MCP p50 / Python p50 - 1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio

__all__ = ["FULL", "QUICK", "McpSizes", "Row", "add_arguments", "main", "run", "run_mcp"]

TARGET_OVERHEAD = 0.25  # the target: MCP adds at most 25% to p50
ROOT = str(Path(__file__).resolve().parent.parent)


@dataclass(frozen=True)
class McpSizes:
    calls: int  # per side and concurrency, per round
    clients: int
    rounds: int
    warmup: int = 20


FULL = McpSizes(calls=400, clients=4, rounds=3)
QUICK = McpSizes(calls=60, clients=4, rounds=1, warmup=10)


@dataclass(frozen=True)
class Row:
    clients: int
    python_p50_ms: float
    mcp_p50_ms: float
    python_p99_ms: float
    mcp_p99_ms: float
    python_ops: float
    mcp_ops: float

    @property
    def overhead(self) -> float:
        return self.mcp_p50_ms / self.python_p50_ms - 1.0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _python_side(server: Any, clients: int, calls: int) -> tuple[list[float], float]:
    """`calls` add calls from `clients` threads: (latencies in ms, calls/s)."""
    from actors.consensus import client

    latencies: list[float] = []
    lock = threading.Lock()
    failures: list[Any] = []

    def worker(n: int) -> None:
        mine = []
        for i in range(n):
            t0 = time.perf_counter()
            answer = client.execute_tool(server, "add", {"a": i, "b": 1})
            mine.append((time.perf_counter() - t0) * 1000)
            if answer != ("ok", i + 1):
                failures.append(answer)
        with lock:
            latencies.extend(mine)

    share = [calls // clients + (1 if k < calls % clients else 0) for k in range(clients)]
    threads = [threading.Thread(target=worker, args=(n,)) for n in share]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    wall = time.perf_counter() - t0
    if failures:
        raise RuntimeError(f"python protocol calls failed: {failures[:3]!r}")
    return latencies, calls / wall


async def _mcp_side(url: str, clients: int, calls: int, warmup: int) -> tuple[list[float], float]:
    """The same calls through `clients` MCP sessions: (latencies in ms, calls/s)."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    latencies: list[float] = []
    share = [calls // clients + (1 if k < calls % clients else 0) for k in range(clients)]
    ready = anyio.Event()
    joined = [0]
    wall: list[float] = []

    async def session_worker(n: int) -> None:
        async with streamable_http_client(url) as streams, \
                ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            for i in range(warmup // clients + 1):
                await session.call_tool("add", {"a": i, "b": 1})
            joined[0] += 1
            if joined[0] == clients:
                wall.append(time.perf_counter())
                ready.set()
            await ready.wait()
            for i in range(n):
                t0 = time.perf_counter()
                result = await session.call_tool("add", {"a": i, "b": 1})
                latencies.append((time.perf_counter() - t0) * 1000)
                if result.is_error or result.structured_content != {"result": i + 1}:
                    raise RuntimeError(f"an MCP call failed: {result!r}")
            wall.append(time.perf_counter())

    with anyio.fail_after(600):
        async with anyio.create_task_group() as tg:
            for n in share:
                tg.start_soon(session_worker, n)
    return latencies, calls / (max(wall) - wall[0])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_front_end(node: str, cookie: str, tmp: str) -> tuple[subprocess.Popen[bytes], str]:
    cookie_file = Path(tmp) / "cookie"
    cookie_file.write_text(cookie)
    cookie_file.chmod(0o600)
    port = _free_port()
    log = open(Path(tmp) / "front-end.log", "wb")  # noqa: SIM115 (the process keeps it)
    popen = subprocess.Popen(
        [sys.executable, "-m", "actors.consensus.mcp", "serve", "--http", f"127.0.0.1:{port}",
         "--join", node, "--cookie-file", str(cookie_file), "--log-level", "ERROR"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and popen.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return popen, f"http://127.0.0.1:{port}/mcp"
        except OSError:
            time.sleep(0.1)
    popen.kill()
    raise RuntimeError(f"the MCP front end did not start: "
                       f"{(Path(tmp) / 'front-end.log').read_text()[-2000:]}")


def run_mcp(sizes: McpSizes, mode: str = "raft",
            log: Callable[[str], None] = lambda _s: None) -> list[Row]:
    """Start the cluster and the front end, measure, stop everything: one Row per
    concurrency (1, then sizes.clients)."""
    from actors.consensus import client
    from actors.consensus.mcp.cluster import LocalCluster
    from actors.consensus.mcp.frontend import Frontend

    tmp = tempfile.mkdtemp(prefix="erlmcp-bench-")
    cluster = LocalCluster(mode, 3, data_dir=str(Path(tmp) / "data"))
    popen = None
    try:
        log(f"starting a {mode} cluster of 3 nodes")
        nodes = cluster.start()
        front = Frontend(nodes, mode)
        leader = front._find_leader() or nodes[0]
        server = (client.SERVER_NAME, leader)
        popen, url = _start_front_end(nodes[0], cluster.cookie, tmp)
        log(f"front end at {url}; leader {leader}")
        _python_side(server, 1, sizes.warmup)
        rows = []
        for clients in sorted({1, sizes.clients}):
            samples: dict[str, list[Any]] = {"py": [], "mcp": []}
            for r in range(sizes.rounds):
                py_lat, py_ops = _python_side(server, clients, sizes.calls)
                mcp_lat, mcp_ops = anyio.run(_mcp_side, url, clients, sizes.calls, sizes.warmup)
                samples["py"].append((_pct(py_lat, 0.5), _pct(py_lat, 0.99), py_ops))
                samples["mcp"].append((_pct(mcp_lat, 0.5), _pct(mcp_lat, 0.99), mcp_ops))
                log(f"  clients={clients} round {r + 1}: python p50 {samples['py'][-1][0]:.2f} "
                    f"ms, mcp p50 {samples['mcp'][-1][0]:.2f} ms")
            med = {k: [statistics.median(x[i] for x in v) for i in range(3)]
                   for k, v in samples.items()}
            rows.append(Row(clients, med["py"][0], med["mcp"][0], med["py"][1], med["mcp"][1],
                            med["py"][2], med["mcp"][2]))
        return rows
    finally:
        if popen is not None:
            popen.terminate()
            try:
                popen.wait(20)
            except subprocess.TimeoutExpired:
                popen.kill()
        cluster.stop()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def format_table(rows: list[Row]) -> str:
    lines = ["| clients | python p50 | MCP p50 | overhead p50 | python p99 | MCP p99 "
             "| python calls/s | MCP calls/s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.clients} | {r.python_p50_ms:.2f} ms | {r.mcp_p50_ms:.2f} ms | "
                     f"{r.overhead:+.0%} | {r.python_p99_ms:.2f} ms | {r.mcp_p99_ms:.2f} ms | "
                     f"{r.python_ops:,.0f} | {r.mcp_ops:,.0f} |")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3)")
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 round")
    parser.add_argument("--clients", type=int, default=None, help="concurrent clients (4)")
    parser.add_argument("--calls", type=int, default=None, help="calls per side and round")
    parser.add_argument("--mode", choices=("raft", "poc"), default="raft")


def run(args: argparse.Namespace) -> int:
    """The `mcp` command of `python -m demos.bench` (args from `add_arguments`)."""
    sizes = QUICK if getattr(args, "quick", False) else FULL
    overrides = {k: getattr(args, k, None) for k in ("rounds", "clients", "calls")}
    sizes = McpSizes(**{**asdict(sizes), **{k: v for k, v in overrides.items() if v}})
    if sizes.clients < 1 or sizes.calls < sizes.clients or sizes.rounds < 1:
        raise SystemExit("bench_mcp: clients >= 1, calls >= clients, rounds >= 1")
    mode = getattr(args, "mode", "raft")
    rows = run_mcp(sizes, mode, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(f"MCP front end vs Python protocol, tool 'add', {mode} mode, 3 OS-process nodes on "
          f"loopback; median of {sizes.rounds} rounds of {sizes.calls} calls, "
          f"Python {platform.python_version()}")
    print(format_table(rows))
    unloaded = rows[0]
    verdict = "met" if unloaded.overhead <= TARGET_OVERHEAD else "NOT met"
    print(f"target: MCP adds <= {TARGET_OVERHEAD:.0%} to p50 (1 client): {verdict} "
          f"({unloaded.overhead:+.0%})")
    if getattr(args, "json", None):
        Path(args.json).write_text(json.dumps(
            {"mode": mode, "sizes": asdict(sizes),
             "rows": [{**asdict(r), "overhead": r.overhead} for r in rows]}, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demos.bench_mcp", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
