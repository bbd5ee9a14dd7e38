"""Plumbing of the MCP tests: `erlmcp serve` as a real OS process (its nodes are OS
processes too), reached with the SDK's real client over stdio or Streamable HTTP.

Every wait is bounded; everything listens on loopback only."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from demos.lab import accepts, free_port

ROOT = str(Path(__file__).resolve().parents[2])
TOOLS = "tests.mcp.mcp_tools:tools"
BOOT_S = 60.0  # a cold start of 3 nodes takes ~4 s here; CI machines are slower
KEY = "erlmcp/request_id"


def server_env(tmp: Path) -> dict[str, str]:
    runs = tmp / "runs"
    runs.mkdir(exist_ok=True)
    return {"PYTHONPATH": ROOT, "ERLMCP_TEST_RUNS": str(runs), "XDG_DATA_HOME": str(tmp / "data"),
            "PYTHONUNBUFFERED": "1"}


def serve_args(mode: str, *extra: str) -> list[str]:
    return ["-m", "actors.consensus.mcp", "serve", "--mode", mode, "--tools", TOOLS,
            "--log-level", "ERROR", *extra]


@contextlib.asynccontextmanager
async def stdio_session(tmp: Path, mode: str = "raft",
                        *extra: str) -> AsyncIterator[ClientSession]:
    """A session with `erlmcp serve` over stdio; its stderr goes to tmp/serve.log."""
    params = StdioServerParameters(command=sys.executable, args=serve_args(mode, *extra),
                                   env=server_env(tmp), cwd=ROOT)
    with open(tmp / "serve.log", "a") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), \
                ClientSession(read, write) as session:
            with anyio.fail_after(BOOT_S):
                await session.initialize()
            yield session


@contextlib.contextmanager
def http_server(tmp: Path, mode: str = "raft", *extra: str) -> Iterator[tuple[str, Any]]:
    """`erlmcp serve --http` in an OS process: (url, popen) once it accepts connections.
    On exit it gets SIGTERM (SIGKILL if it has not exited 20 s later)."""
    port = free_port()
    with open(tmp / "serve-http.log", "a") as errlog:
        yield from _http_server(tmp, mode, port, errlog, extra)


def _http_server(tmp: Path, mode: str, port: int, errlog: Any,
                 extra: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    popen = subprocess.Popen([sys.executable, *serve_args(mode, "--http", f"127.0.0.1:{port}",
                                                          *extra)],
                             stdin=subprocess.DEVNULL, stdout=errlog, stderr=errlog,
                             env={**os.environ, **server_env(tmp)}, cwd=ROOT)
    try:
        deadline = time.monotonic() + BOOT_S
        while not accepts(port):
            if popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"erlmcp serve --http did not come up: "
                                   f"{(tmp / 'serve-http.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp", popen
    finally:
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(20)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(5)


@contextlib.asynccontextmanager
async def http_session(url: str) -> AsyncIterator[ClientSession]:
    async with streamable_http_client(url) as streams, \
            ClientSession(streams[0], streams[1]) as session:
        with anyio.fail_after(30):
            await session.initialize()
        yield session


async def read_json(session: ClientSession, uri: str) -> Any:
    result = await session.read_resource(uri)
    return json.loads(result.contents[0].text)  # type: ignore[union-attr]


async def audit_all(session: ClientSession, limit: int = 7) -> list[dict[str, Any]]:
    """Every audit entry, oldest first, page by page (bounded)."""
    entries: list[dict[str, Any]] = []
    uri: str | None = f"erlmcp://audit?limit={limit}"
    for _ in range(1000):
        if uri is None:
            return entries
        page = await read_json(session, uri)
        entries += page["entries"]
        uri = page["next"]
    raise AssertionError("the audit trail did not end within 1000 pages")


def runs(tmp: Path, tag: str | None = None) -> list[str]:
    """The runs the `count` tool recorded (file names tag-pid-ns), of `tag` or all."""
    names = sorted(os.listdir(tmp / "runs"))
    return [n for n in names if tag is None or n.rsplit("-", 2)[0] == tag]


def wait_gone(pids: list[int], within_s: float) -> list[int]:
    """The pids still alive after up to `within_s`."""
    deadline = time.monotonic() + within_s
    while True:
        alive = [p for p in pids if _alive(p)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is gone for our purpose
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

