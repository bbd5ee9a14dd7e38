"""The ra ports of the seed document (`demos/erlang_ports/ra_*.py`, `migration_steps.py`):
each `main()` runs its demonstration on in-process nodes, and the tests check what it
returns; one test runs every port as `python -m` too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from actors import net_kernel, ra, rpc
from demos.erlang_ports import (
    migration_steps,
    ra_cluster_setup,
    ra_execute_tool,
    ra_machine_apply,
)
from demos.erlang_ports.ra_machine_apply import ErlmcpConsensusMachine

ROOT = Path(__file__).resolve().parents[1]


def _is_server_id(x: Any) -> bool:
    return type(x) is tuple and len(x) == 2 and all(type(p) is str for p in x)


# ------------------------------------------------------------------ ra_cluster_setup


def test_cluster_setup_starts_three_members_with_the_ra2_call() -> None:
    r = ra_cluster_setup.main()
    ids = [sid for _label, sid in r.servers]
    assert [label for label, _sid in r.servers] == ["node1", "node2", "node3"]
    assert all(_is_server_id(sid) and sid[0] == "erlmcp_consensus" for sid in ids)
    assert r.config["initial_members"] == ids  # server ids, not {Label, ServerId} pairs
    assert r.config["id"] == ids[0]
    assert r.config["machine"] == ("module", ErlmcpConsensusMachine, None)  # {module, M, C}
    assert r.seed_call.startswith("TypeError")  # no ra:start_cluster(Nodes, Config)
    assert r.seed_machine.startswith("ValueError")  # no {module, Mod}
    assert r.started[0] == "ok"
    assert sorted(r.started[1]) == sorted(ids) and r.started[2] == []
    assert r.leader in ids
    assert sorted(r.roles.values()) == ["follower", "follower", "leader"]
    assert r.roles[r.leader] == "leader"


# ------------------------------------------------------------------ ra_machine_apply


def test_machine_apply_seed_diverges_and_the_fix_does_not() -> None:
    r = ra_machine_apply.main()

    seed = r.seed_replicas
    assert not seed.identical
    a, b = (s["audit_log"][0] for s in seed.states)
    assert a["execution_id"] != b["execution_id"] and a["timestamp"] != b["timestamp"]
    assert a["result"] == b["result"] == 5
    assert seed.replies == ([("reply", ("ok", 5))],) * 2  # the effects list is the reply

    fixed = r.fixed_replicas
    assert fixed.identical and fixed.replies == (5, 5)
    entry = fixed.states[0]["audit_log"][0]
    assert entry["execution_id"] == 7 and entry["timestamp"] == 1_700_000_000_000

    sc = r.seed_cluster  # the seed's machine in a 3-member cluster
    assert sc.reply[0] == "ok" and sc.reply[1] == [("reply", ("ok", 5))]
    assert sorted(sc.runs_after_command.values()) == [1, 1, 1]  # the tool ran on every member
    assert sum(sc.runs_after_restart.values()) == 4  # and again on the restarted one's replay
    assert not sc.identical

    fc = r.fixed_cluster
    assert fc.reply[0] == "ok" and fc.reply[1] == 5 and _is_server_id(fc.reply[2])
    assert fc.runs_after_command == {fc.reply[2][1]: 1}  # once, on the leader's node
    assert fc.runs_after_restart == fc.runs_after_command  # a replay runs nothing
    assert fc.identical and len(fc.audit_logs) == 3
    (entry,) = fc.audit_logs[0]
    assert entry["result"] == 5 and type(entry["execution_id"]) is int


# ------------------------------------------------------------------ ra_execute_tool


def test_execute_tool_answers_in_the_three_shapes() -> None:
    r = ra_execute_tool.main()
    assert list(r.via_each.values()) == [("ok", 6), ("ok", 12), ("ok", 18)]
    for sid, answer in r.routed.items():  # any member: ra routes to the leader
        assert answer == ("ok", f"via {sid[1]}", r.leader)
    assert r.tool_runs == 6  # once per call
    assert r.error == ("error", "noproc")
    assert r.timeout == ("error", "timeout")
    assert r.audit_logs_identical
    assert r.audit_log_size == 6 + (1 if r.timed_out_committed else 0)


@pytest.mark.parametrize(("answer", "expected"), [
    (("ok", 5, ("erlmcp_consensus", "n1@h")), ("ok", 5)),
    (("error", "noproc"), ("error", "noproc")),
    (("timeout", ("erlmcp_consensus", "n1@h")), ("error", "timeout")),
])
def test_execute_tool_maps_each_ra_answer_as_the_seed(
        monkeypatch: pytest.MonkeyPatch, answer: Any, expected: Any) -> None:
    sent: list[Any] = []
    monkeypatch.setattr(ra_execute_tool, "tool_command",
                        lambda _c, tool, args, _t: ("ok", ("execute_tool", tool, args, 5)))

    def process_command(cluster_id: Any, command: Any, timeout: int) -> Any:
        sent.append((cluster_id, command, timeout))
        return answer

    monkeypatch.setattr(ra_execute_tool.ra, "process_command", process_command)
    sid = ("erlmcp_consensus", "n1@h")
    assert ra_execute_tool.execute_tool(sid, "add", {"a": 2, "b": 3}) == expected
    assert sent == [(sid, ("execute_tool", "add", {"a": 2, "b": 3}, 5), 5000)]


# ------------------------------------------------------------------ migration_steps


def test_migration_steps_one_to_five() -> None:
    r = migration_steps.main()

    assert r.poc.reply == ("ok", 5) and r.poc.stopped
    assert r.poc.audit_sizes[r.poc.leader] == 1
    assert sorted(r.poc.audit_sizes.values()) == [0, 0, 1]  # the POC's log: leader only

    assert r.dependency.module == "actors.ra"
    assert "actors.*" in r.dependency.packaged
    assert any(req.startswith("tenacity") for req in r.dependency.install_requires)

    seed, fixed = r.machines
    assert not seed.identical and fixed.identical

    assert r.start.started[0] == "ok" and len(r.start.started[1]) == 3
    assert r.start.replies == [("ok", 10), ("ok", 9), ("ok", 8)]

    d = r.deploy
    assert d.new_leader != d.old_leader and d.new_leader in r.start.ids
    assert len(d.committed_before) == 3 and d.survivors_have_all
    assert d.reply_after == ("ok", 42.0)
    assert d.restarted_caught_up and d.logs_identical and d.audit_log_size == 4
    assert d.failover_ms < 10000


# ------------------------------------------------------------------ as `python -m`


def test_each_port_runs_as_a_module() -> None:
    expected = {
        "ra_cluster_setup": "nodes stopped, data directory removed",
        "ra_machine_apply": "replicas identical: True",
        "ra_execute_tool": "{timeout, _}: with no quorum, 500 ms -> ('error', 'timeout')",
        "migration_steps": "no committed command lost on the survivors: True",
    }
    procs = {name: subprocess.Popen([sys.executable, "-m", f"demos.erlang_ports.{name}"],
                                    cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
             for name in expected}
    for name, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"{name} ran over 60 s\n{out}\n{err}")
        assert proc.returncode == 0, f"{name}: exit {proc.returncode}\n{out}\n{err}"
        assert expected[name] in out, f"{name}:\n{out}"


# ------------------------------------------------------------------ found on the way


def test_start_cluster_without_a_leader_is_not_formed() -> None:
    with ra_cluster_setup.local_nodes("noleader") as cluster:
        nodes = cluster.names
        for node in nodes:  # cut every member node from the others: no vote can arrive
            assert rpc.call(node, net_kernel.block_nodes,
                            [[n for n in nodes if n != node]]) == "ok"
        ids = [("noleader", node) for node in nodes]
        try:
            result = ra.start_cluster(ra_cluster_setup.SYSTEM, "noleader",
                                      ("module", ErlmcpConsensusMachine, None), ids, 1000)
        finally:
            for node in nodes:
                rpc.call(node, net_kernel.unblock_nodes, [])
        assert result == ("error", "cluster_not_formed")


def test_process_command_accepts_a_list_of_server_ids() -> None:
    with ra_cluster_setup.local_nodes("serverloc") as cluster:
        started = ra_cluster_setup.init_cluster(cluster.names, ErlmcpConsensusMachine)
        assert started[0] == "ok"
        ids = [(ra_cluster_setup.SERVER_NAME, node) for node in cluster.names]
        answer = ra.process_command(ids, ("execute_tool", "add", {"a": 1, "b": 2}, 3), 2000)
        assert answer[:2] == ("ok", 3)
