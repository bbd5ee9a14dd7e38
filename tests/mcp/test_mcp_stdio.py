"""erlmcp serve over stdio (Raft mode, 3 node OS processes), with the SDK's ClientSession:
tools/list and every tool, bad arguments, a crashing and a hanging tool, idempotency
keys, progress, cancellation, the status and audit resources, and the nodes stopped when
the client goes away."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from demos.lab import children_of

from . import scenarios
from .helpers import (
    ROOT,
    read_json,
    serve_args,
    server_env,
    stdio_session,
    wait_gone,
)


def test_stdio_raft_end_to_end(tmp_path: Path) -> None:
    pids: list[int] = []

    async def body() -> None:
        async with stdio_session(tmp_path, "raft") as session:
            await scenarios.tools_list(session)
            await scenarios.every_tool(session)
            await scenarios.bad_calls(session)
            await scenarios.misbehaving_tools(session)
            await scenarios.idempotency(session, tmp_path)
            await scenarios.progress(session)
            await scenarios.cancellation(session)
            await scenarios.resources(session)
            status = await read_json(session, "erlmcp://status")
            pids.extend(n["os_pid"] for n in status["nodes"].values())

    anyio.run(body)
    # the client closed stdin: serve stopped the nodes it had started
    assert wait_gone(pids, 20) == []
    assert not any((tmp_path / "data" / "erlmcp").glob("run-*"))  # its data dir removed


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_in_stdio_mode_stops_the_nodes(tmp_path: Path, signum: int) -> None:
    """SIGTERM or Ctrl-C while a client still holds stdin open: serve stops its nodes and
    exits 0 (asyncio's own Ctrl-C handling used to hang here, waiting for the stdin reader)."""
    popen = subprocess.Popen([sys.executable, *serve_args("raft", "--nodes", "2")],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env={**os.environ, **server_env(tmp_path)},
                             cwd=ROOT, text=True)
    try:
        assert popen.stderr is not None
        ready = popen.stderr.readline()  # "erlmcp: raft cluster [...], leader ..." once up
        assert ready.startswith("erlmcp: raft cluster"), ready
        nodes = children_of(popen.pid)
        assert len(nodes) >= 2
        popen.send_signal(signum)
        try:
            code = popen.wait(20)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(5)
            code = None
        assert code == 0, popen.stderr.read()[-6000:]
        assert wait_gone(nodes, 20) == []
    finally:
        if popen.poll() is None:
            popen.kill()
            popen.wait(5)
