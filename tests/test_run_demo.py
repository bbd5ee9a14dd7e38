"""`python -m demos.run_demo`, the project's main job, run as a user runs it: a subprocess
that starts its own port mapper and nodes and must clean up after itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str, timeout: float) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "demos.run_demo", "--json", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    assert done.stdout.strip(), done.stderr[-3000:]
    return done, json.loads(done.stdout)


def test_the_whole_demo_tells_the_truth_in_under_a_minute() -> None:
    done, results = _run(timeout=90)
    if done.returncode != 0:  # whole, not cut short as an assertion's repr would be
        pytest.fail(f"failed checks: {results['failed']}\nerror: {results['error']}\n"
                    f"stdout:\n{done.stdout[-6000:]}\nstderr:\n{done.stderr[-3000:]}",
                    pytrace=False)
    assert results["ok"] and not results["failed"] and results["error"] is None
    assert results["wall_s"] < 60
    check = results["check"]
    # part 1: the POC's leader took its log with it; part 2: Raft's log survived, identical
    assert check["poc_log_lost"] and results["facts"]["poc_log_lost"] is True
    assert check["raft_log_identical"] and results["facts"]["raft_log_identical_on_survivors"]
    # part 3: split brain in POC, and the losing side's acknowledged writes gone after the heal
    assert check["poc_split_brain"] and check["poc_heal_lost_writes"]
    assert results["facts"]["poc_heal"]["lost_acknowledged_writes"]
    # ... while Raft's minority refused writes and caught up, losing nothing
    assert check["raft_minority_refused"] and check["raft_majority_served"]
    assert check["raft_caught_up"]
    after = results["facts"]["raft_heal"]["counts_after"]
    assert len(after) == 5 and len(set(after.values())) == 1
    # part 4: a crashed tool's runner restarted, in both modes
    for mode in ("poc", "raft"):
        assert check[f"{mode}_tool_crash_restarted"] and check[f"{mode}_tool_hang_replaced"]
        assert check[f"{mode}_escalation"]
    # part 5: every figure of the table was measured in both modes
    for mode in ("poc", "raft"):
        numbers = results["numbers"][mode]
        for key in ("tool_p50_ms", "tool_ops", "election_ms", "failover_leader_ms",
                    "failover_command_ms", "audit_p50_ms", "status_p50_ms", "read_ops"):
            assert type(numbers[key]) in (int, float) and numbers[key] > 0, (mode, key)
    assert results["numbers"]["raft"]["replication_all_p50_ms"] > 0
    # the story itself went to stderr, numbered
    for heading in ("1. POC", "2. Raft", "3. Partition", "4. Crashing tools", "5. Numbers"):
        assert heading in done.stderr


def test_the_tools_scenario_alone() -> None:
    done, results = _run("--scenario", "tools", timeout=60)
    assert done.returncode == 0, (results["failed"], results["error"], done.stderr[-3000:])
    assert results["scenarios"] == ["tools"] and results["modes"] == ["poc", "raft"]
    assert {c["id"] for c in results["checks"]} == {
        f"{mode}_{what}" for mode in ("poc", "raft")
        for what in ("tool_crash_restarted", "tool_hang_replaced", "escalation")}
    assert all(c["ok"] for c in results["checks"])
    # Raft keeps its log through the escalation (ra_system is not restarted); POC does not
    before, after = results["facts"]["raft_escalation_log_entries"]
    assert after >= before > 0
    before, after = results["facts"]["poc_escalation_log_entries"]
    assert before > 0 and after == 0


def test_a_bad_scenario_name_is_refused() -> None:
    done = subprocess.run([sys.executable, "-m", "demos.run_demo", "--scenario", "nope"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "unknown scenario" in done.stderr
