"""The benchmark command runs end to end in --quick mode and writes well-formed JSON.

No timing is asserted here: performance is measured by the benchmark, not by tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"name", "ours", "peer", "peer_name", "unit", "ratio", "target", "pass"}
NUMERIC = ("ours", "peer", "ratio")


def _run_quick(out: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "demos.bench", "runtime", "--quick", "--json", str(out)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180)


def test_runtime_quick_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = _run_quick(out)
    assert result.returncode == 0, result.stderr
    assert "figure" in result.stdout and "ratio" in result.stdout
    doc = json.loads(out.read_text())
    assert doc["rounds"] == 2
    assert isinstance(doc["python"], str)
    names = [figure["name"] for figure in doc["figures"]]
    assert len(names) == 9 and len(set(names)) == 9
    for figure in doc["figures"]:
        assert figure.keys() >= KEYS, figure
        for key in NUMERIC:
            assert isinstance(figure[key], int | float) and figure[key] > 0, (key, figure)
        assert figure["pass"] in (True, False, None)
        own_peer = figure["name"].startswith(("call with", "start+stop"))  # beside our own
        assert figure["peer_name"].startswith("pykka") or own_peer, figure
    idle = next(f for f in doc["figures"] if f["name"].startswith("idle RSS"))
    assert idle["pass"] is True  # every idle gen_server was alive: a count, not a timing


def test_dist_quick_writes_every_figure(tmp_path: Path) -> None:
    """`demos.bench dist` runs real peer nodes end to end; again no timing is asserted."""
    out = tmp_path / "dist.json"
    cmd = [sys.executable, "-m", "demos.bench", "dist", "--quick", "--rounds", "1",
           "--json", str(out)]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    names = [figure["name"] for figure in doc["figures"]]
    assert len(names) in (7, 8) and len(set(names)) == len(names)  # 8 with two CPUs
    assert sum(name.startswith("floor: ") for name in names) == 2
    for figure in doc["figures"]:
        assert figure.keys() >= KEYS, figure
        for key in NUMERIC:
            assert isinstance(figure[key], int | float) and figure[key] > 0, (key, figure)
