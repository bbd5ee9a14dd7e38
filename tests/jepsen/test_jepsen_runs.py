"""The short Jepsen runs CI makes: `python -m demos.jepsen` as users run it, on fixed seeds.

Each run is its own OS process (its own controller node, port mapper and five node
processes) and must end in the expected verdict: Raft mode valid under faults, the POC
control invalid (the checker finds its split-brain). The long runs (30 min and more, many
seeds) are in the README's "Guarantees and how we test them".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
LOAD_S = 20


def _jepsen(out: Path, *args: str, timeout_s: float = 170) -> tuple[int, dict[str, Any], str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("ERLPY_EPMD_PORT", None)  # the run brings its own port mapper
    done = subprocess.run([sys.executable, "-m", "demos.jepsen", "--out", str(out), *args],
                          cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout_s)
    summary_file = out / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    return done.returncode, summary, done.stdout + done.stderr


def _netns_ok() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and sys.platform == "linux"


def _assert_faults_healed(summary: dict[str, Any], at_least: int) -> None:
    faults = summary["faults"]
    assert len(faults) >= at_least, faults
    assert all(f["end_s"] is not None for f in faults), faults


@pytest.mark.timeout(200)
def test_register_stays_linearizable_under_kills_pauses_partitions_and_membership(
        tmp_path: Path) -> None:
    via = "netns" if _netns_ok() else "transport"  # real packet cuts where we may make them
    code, summary, output = _jepsen(
        tmp_path, "--workload", "register", "--nemesis", "kill,pause,partition,member",
        "--time", str(LOAD_S), "--seed", "11", "--partition-via", via)
    assert code == 0, output[-4000:]
    assert summary["verdict"] == "valid" and summary["linearizable"] == "valid", output[-4000:]
    assert summary["counts"]["ok"] >= 500, summary["counts"]
    _assert_faults_healed(summary, 3)
    assert (tmp_path / "history.jsonl").stat().st_size > 0
    assert "nemesis timeline:" in output and "verdict: VALID" in output


@pytest.mark.timeout(200)
def test_audit_log_is_linearizable_complete_and_without_duplicates(tmp_path: Path) -> None:
    code, summary, output = _jepsen(
        tmp_path, "--workload", "audit", "--nemesis", "kill,pause,partition",
        "--time", str(LOAD_S), "--seed", "12")
    assert code == 0, output[-4000:]
    assert summary["verdict"] == "valid", output[-4000:]
    problems = summary["problems"]
    assert problems["lost"] == [] and problems["duplicates"] == [] and \
        problems["converged"] == [], problems
    assert summary["counts"]["ok"] >= 200, summary["counts"]
    _assert_faults_healed(summary, 3)


@pytest.mark.timeout(120)
def test_the_poc_control_is_caught_by_the_checker(tmp_path: Path) -> None:
    """A checker that never fails proves nothing: POC mode under a partition has two
    leaders, and the history must be found not linearizable."""
    code, summary, output = _jepsen(tmp_path, "--mode", "poc", "--workload", "register",
                                    "--time", "12", "--seed", "13", timeout_s=100)
    assert code == 1, output[-4000:]
    assert summary["linearizable"] == "invalid", output[-4000:]
    assert "counterexample" in output and "verdict: INVALID" in output
