"""`python -m demos.bench raft --quick` runs end to end, writes well-formed JSON, and leaves
nothing behind.

Three ra nodes and three pysyncobj members in OS processes, one round, one failover per
signal. No timing is asserted: performance is measured by the benchmark, not by tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"name", "ours", "peer", "peer_name", "unit", "ratio", "target", "pass"}

# `python -m demos.bench raft --quick --json OUT`, with its temp dirs under TMP
_RUN = (
    "import sys, tempfile\n"
    "tempfile.tempdir = sys.argv[1]\n"
    "from demos.bench.__main__ import main\n"
    "sys.exit(main(['raft', '--quick', '--json', sys.argv[2]]))\n"
)


def test_raft_quick_writes_every_figure_and_cleans_up(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    out = tmp_path / "raft.json"
    result = subprocess.run([sys.executable, "-c", _RUN, str(scratch), str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "figure" in result.stdout and "ratio" in result.stdout
    doc = json.loads(out.read_text())
    assert doc["rounds"] == 1
    names = [figure["name"] for figure in doc["figures"]]
    assert len(names) == 14 and len(set(names)) == 14
    for figure in doc["figures"]:
        assert figure.keys() >= KEYS, figure
        assert isinstance(figure["ours"], int | float) and figure["ours"] > 0, figure
        # the floors' rows (raw pyzmq, or sealed and pickled; no Raft) have no target
        assert figure["pass"] in ((None,) if figure["name"].startswith("floor") else (True, False))
        assert figure["peer"] > 0 and figure["ratio"] > 0, figure
        assert figure["peer_name"].startswith(("pysyncobj", "raw pyzmq")), figure
    # consistent_query's peer, and the floors' reads', is a raw round trip
    assert sum(figure["peer_name"].startswith("raw") for figure in doc["figures"]) == 3
    # every data dir is gone, and so is every pysyncobj member (their journals were there)
    assert list(scratch.iterdir()) == []
    members = subprocess.run(["pgrep", "-f", f"demos.bench.raft.pysyncobj_node.*{scratch}"],
                             capture_output=True, text=True)
    assert members.stdout == ""
    floor = subprocess.run(["pgrep", "-f", f"demos.bench.raft.floor_node.*{scratch}"],
                           capture_output=True, text=True)
    assert floor.stdout == ""
