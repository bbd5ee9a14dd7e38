"""`python -m demos.bench mcp [--quick] [--clients N] [--mode raft|poc] [--json PATH]` (or
`python -m demos.bench.mcp_front ...`, which also serves the SDK floor with `--floor-*`):
tools/call through the MCP front end beside the same calls through the Python protocol.

One cluster (3 node OS processes, as `erlmcp serve` starts them) serves both, in the same
run, round after round, alternating:
- Python protocol: `client.execute_tool` from this process (a node of the cluster) to the
  leader's consensus server, from C threads;
- MCP: `mcp.ClientSession`s to `erlmcp serve --join` (its own OS process and node,
  fronting the same cluster): over stdio (1 client), over Streamable HTTP (1 and C
  clients), and over Streamable HTTP with `--json-response` (1 client).
Each side runs once with 1 client (the added latency, unloaded) and once with C clients
(throughput; the service runs one tool at a time, so p50 then includes queueing). The
figures are medians over the rounds; `overhead` is MCP p50 / Python p50 - 1.
`SDK floor` is the same MCP calls to a server of the same SDK whose `add` runs in its
handler, with no cluster behind it: what the SDK's client and server cost by themselves.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
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
import anyio.to_thread

from demos.lab import ROOT, accepts, free_port, peer_pythonpath

__all__ = ["FULL", "QUICK", "McpSizes", "Row", "add_arguments", "main", "run", "run_mcp"]

TARGET_OVERHEAD = 0.25  # the target: MCP adds at most 25% to p50
_FLOOR = ["-m", "demos.bench.mcp_front"]  # the SDK floor's server: this module, in its own process


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
    transport: str
    clients: int
    python_p50_ms: float
    mcp_p50_ms: float
    python_p99_ms: float
    mcp_p99_ms: float
    python_ops: float
    mcp_ops: float
    floor_p50_ms: float

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


def _opener(target: str | list[str]) -> Callable[[], Any]:
    """Sessions over Streamable HTTP (`target` is the URL) or stdio (the serve command)."""
    from mcp import ClientSession, StdioServerParameters, stdio_client
    from mcp.client.streamable_http import streamable_http_client

    @contextlib.asynccontextmanager
    async def open_session() -> Any:
        if isinstance(target, str):
            async with streamable_http_client(target) as streams, \
                    ClientSession(streams[0], streams[1]) as session:
                yield session
        else:
            params = StdioServerParameters(command=sys.executable, args=target,
                                           env=dict(os.environ), cwd=ROOT)
            with open(os.devnull, "w") as errlog:
                async with stdio_client(params, errlog=errlog) as (read, write), \
                        ClientSession(read, write) as session:
                    yield session

    return open_session


async def _mcp_calls(sessions: list[Any], calls: int, first: int = 0) -> tuple[list[float],
                                                                               float]:
    """`calls` add calls spread over the open `sessions`, concurrently: (ms each, wall s)."""
    latencies: list[float] = []
    share = [calls // len(sessions) + (1 if k < calls % len(sessions) else 0)
             for k in range(len(sessions))]

    async def worker(session: Any, n: int) -> None:
        for i in range(first, first + n):
            t0 = time.perf_counter()
            result = await session.call_tool("add", {"a": i, "b": 1})
            latencies.append((time.perf_counter() - t0) * 1000)
            if result.is_error or result.structured_content != {"result": i + 1}:
                raise RuntimeError(f"an MCP call failed: {result!r}")

    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for session, n in zip(sessions, share, strict=True):
            tg.start_soon(worker, session, n)
    return latencies, time.perf_counter() - t0


def floor_server() -> Any:
    """A server of the same SDK with the same `add` tool, run in its handler."""
    import mcp_types as types
    from mcp.server.lowlevel import Server

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool(
            name="add", input_schema={"type": "object"},
            output_schema={"type": "object", "properties": {"result": {"type": "number"}}})])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        args = params.arguments or {}
        total = args["a"] + args["b"]
        return types.CallToolResult(content=[types.TextContent(type="text", text=str(total))],
                                    structured_content={"result": total})

    return Server("floor", on_list_tools=list_tools, on_call_tool=call_tool)


def _serve_floor(http: str | None, json_response: bool = False) -> int:
    server = floor_server()
    if http is None:
        from mcp.server.stdio import stdio_server

        async def stdio() -> None:
            async with stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())

        anyio.run(stdio)
        return 0
    import uvicorn

    host, port = http.rsplit(":", 1)
    uvicorn.run(server.streamable_http_app(host=host, json_response=json_response), host=host,
                port=int(port), log_level="warning")
    return 0


def _serve_args(node: str, cookie_file: Path, *extra: str) -> list[str]:
    return ["-m", "actors.consensus.mcp", "serve", "--join", node, "--cookie-file",
            str(cookie_file), "--log-level", "ERROR", *extra]


def _start_http(servers: dict[str, list[str]], tmp: str,
                popens: list[subprocess.Popen[bytes]]) -> dict[str, str]:
    """Start `python <args> 127.0.0.1:PORT` (MCP servers) together, each popen appended to
    `popens`: name -> URL, once every one accepts connections."""
    ports: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
    for name, args in servers.items():
        port = free_port()
        log = open(Path(tmp) / f"{name}.log", "wb")  # noqa: SIM115 (the process keeps it)
        popen = subprocess.Popen(
            [sys.executable, *args, f"127.0.0.1:{port}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=ROOT,
            env={**os.environ, "PYTHONPATH": peer_pythonpath()})
        popens.append(popen)
        ports[name] = (port, popen)
    deadline = time.monotonic() + 60
    for name, (port, popen) in ports.items():
        while not accepts(port):
            if popen.poll() is not None or time.monotonic() > deadline:
                log_text = (Path(tmp) / f"{name}.log").read_text()[-2000:]
                raise RuntimeError(f"{name} did not start: {log_text}")
            time.sleep(0.05)
    return {name: f"http://127.0.0.1:{port}/mcp" for name, (port, _) in ports.items()}


def run_mcp(sizes: McpSizes, mode: str = "raft",
            log: Callable[[str], None] = lambda _s: None) -> list[Row]:
    """Start the cluster and the front end, measure, stop everything: one Row per
    concurrency (1, then sizes.clients)."""
    from actors.consensus import client
    from actors.consensus.mcp.cluster import LocalCluster
    from actors.consensus.mcp.frontend import Frontend

    tmp = tempfile.mkdtemp(prefix="erlmcp-bench-")
    cluster = LocalCluster(mode, 3, data_dir=str(Path(tmp) / "data"))
    popens: list[subprocess.Popen[bytes]] = []
    try:
        log(f"starting a {mode} cluster of 3 nodes")
        nodes = cluster.start()
        front = Frontend(nodes, mode)
        leader = front._find_leader() or nodes[0]
        server = (client.SERVER_NAME, leader)
        cookie_file = Path(tmp) / "cookie"
        cookie_file.write_text(cluster.cookie)
        cookie_file.chmod(0o600)
        urls = _start_http({
            "front-end": [*_serve_args(nodes[0], cookie_file), "--http"],
            "front-end-json": [*_serve_args(nodes[0], cookie_file), "--json-response",
                               "--http"],
            "floor": [*_FLOOR, "--floor-http"],
            "floor-json": [*_FLOOR, "--floor-http-json"]}, tmp, popens)
        url, json_url = urls["front-end"], urls["front-end-json"]
        floor_url, floor_json_url = urls["floor"], urls["floor-json"]
        log(f"front end at {url}; leader {leader}; SDK floor at {floor_url}")
        _python_side(server, 1, sizes.warmup)
        stdio = _serve_args(nodes[0], cookie_file)
        cases = [("stdio", stdio, [*_FLOOR, "--floor-stdio"], 1),
                 ("http", url, floor_url, 1), ("http json", json_url, floor_json_url, 1)]
        if sizes.clients > 1:
            cases.append(("http", url, floor_url, sizes.clients))
        return [anyio.run(_measure, server, transport, target, floor_target, clients, sizes,
                          log)
                for transport, target, floor_target, clients in cases]
    finally:
        for popen in popens:
            popen.terminate()
            try:
                popen.wait(20)
            except subprocess.TimeoutExpired:
                popen.kill()
        cluster.stop()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


SEGMENTS = 5  # each round alternates the three sides this many times (load drifts)


async def _measure(server: Any, transport: str, target: str | list[str],
                   floor_target: str | list[str], clients: int, sizes: McpSizes,
                   log: Callable[[str], None]) -> Row:
    """Rounds of the Python side, the MCP side and the SDK floor, in short turns, with the
    MCP sessions open throughout: the medians over the rounds."""
    samples: dict[str, list[Any]] = {"py": [], "mcp": [], "floor": []}
    async with contextlib.AsyncExitStack() as stack:
        mcp = [await stack.enter_async_context(_opener(target)()) for _ in range(clients)]
        floor = [await stack.enter_async_context(_opener(floor_target)())
                 for _ in range(clients)]
        for session in mcp + floor:
            await session.initialize()
        await _mcp_calls(mcp, sizes.warmup)
        await _mcp_calls(floor, sizes.warmup)
        per_segment = max(clients, sizes.calls // SEGMENTS)
        for r in range(sizes.rounds):
            got: dict[str, tuple[list[float], float]] = {k: ([], 0.0) for k in samples}
            for _ in range(SEGMENTS):
                py = await anyio.to_thread.run_sync(_python_side, server, clients, per_segment)
                segments = {"py": (py[0], per_segment / py[1]),
                            "mcp": await _mcp_calls(mcp, per_segment),
                            "floor": await _mcp_calls(floor, per_segment)}
                for k, (lat, wall) in segments.items():
                    got[k] = (got[k][0] + lat, got[k][1] + wall)
            for k, (lat, wall) in got.items():
                samples[k].append((_pct(lat, 0.5), _pct(lat, 0.99), len(lat) / wall))
            log(f"  {transport} clients={clients} round {r + 1}: python p50 "
                f"{samples['py'][-1][0]:.2f} ms, mcp p50 {samples['mcp'][-1][0]:.2f} ms, "
                f"SDK floor p50 {samples['floor'][-1][0]:.2f} ms")
    med = {k: [statistics.median(x[i] for x in v) for i in range(3)]
           for k, v in samples.items()}
    return Row(transport, clients, med["py"][0], med["mcp"][0], med["py"][1], med["mcp"][1],
               med["py"][2], med["mcp"][2], med["floor"][0])


def format_table(rows: list[Row]) -> str:
    lines = ["| MCP over | clients | python p50 | MCP p50 | overhead p50 | SDK floor p50 "
             "| python p99 | MCP p99 | python calls/s | MCP calls/s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.transport} | {r.clients} | {r.python_p50_ms:.2f} ms | "
                     f"{r.mcp_p50_ms:.2f} ms | "
                     f"{r.overhead:+.0%} | {r.floor_p50_ms:.2f} ms | "
                     f"{r.python_p99_ms:.2f} ms | {r.mcp_p99_ms:.2f} ms | "
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
    for row in rows:
        verdict = "met" if row.overhead <= TARGET_OVERHEAD else "NOT met"
        print(f"target: MCP ({row.transport}, {row.clients} client(s)) adds <= "
              f"{TARGET_OVERHEAD:.0%} to p50: {verdict} ({row.overhead:+.0%}, "
              f"{row.mcp_p50_ms - row.python_p50_ms:+.2f} ms)")
    if getattr(args, "json", None):
        Path(args.json).write_text(json.dumps(
            {"mode": mode, "sizes": asdict(sizes),
             "rows": [{**asdict(r), "overhead": r.overhead} for r in rows]}, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--floor-stdio"]:
        return _serve_floor(None)
    if argv[:1] == ["--floor-http"]:
        return _serve_floor(argv[1])
    if argv[:1] == ["--floor-http-json"]:
        return _serve_floor(argv[1], json_response=True)
    parser = argparse.ArgumentParser(prog="python -m demos.bench.mcp_front", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
