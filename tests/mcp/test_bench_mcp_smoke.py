"""demos/bench/mcp_front.py runs end to end with tiny sizes (3 nodes, `erlmcp serve --join` over
stdio and HTTP, the SDK floor servers) and writes its figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .helpers import ROOT


def test_bench_mcp_smoke(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "demos.bench.mcp_front", "--quick", "--calls", "10",
         "--clients", "2", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=110, env={
            **os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| MCP over | clients |" in done.stdout
    figures = json.loads(out.read_text())
    rows = {(r["transport"], r["clients"]): r for r in figures["rows"]}
    assert set(rows) == {("stdio", 1), ("http", 1), ("http json", 1), ("http", 2)}
    for row in rows.values():
        assert row["python_p50_ms"] > 0 and row["mcp_p50_ms"] > 0 and row["floor_p50_ms"] > 0
        assert row["mcp_ops"] > 0 and row["python_ops"] > 0
