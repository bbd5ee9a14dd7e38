"""Raft mode on real node OS processes: the POC's tests again, and the guarantees the POC
lacks: a replicated, durable audit log that survives the leader's death, exactly-once
entries for request ids, and identical logs on every member."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actors import erlang, peer, rpc
from actors.consensus import client
from tests.helpers import recv, wait_until

from .cluster import local_audit, server, start_raft_cluster, status, wait_converged


def _trail(node: str) -> list[Any]:
    """This node's own replicated audit log (its member's applied state), oldest first."""
    ok, entries = rpc.call(node, local_audit, [], 5000)
    assert ok == "ok"
    return list(reversed(entries))


def test_raft_basic_one_leader_and_the_tree(peers: Any, tmp_path: Path) -> None:
    _, nodes = start_raft_cluster(peers, 3, tmp_path)
    statuses = [status(n) for n in nodes]
    assert sorted(s["role"] for s in statuses) == ["follower", "follower", "leader"]
    assert len({s["leader_pid"] for s in statuses}) == 1
    assert all(s["mode"] == "raft" for s in statuses)
    kids = rpc.call(nodes[0], "supervision.supervisor", "which_children", ["erlmcp_sup"])
    assert [i for i, _, _, _ in kids] == ["consensus", "audit_log", "tool_runner_sup",
                                          "ra_system"]  # newest first, as OTP's


def test_raft_tools_replicated_identically_with_log_indexes(peers: Any,
                                                            tmp_path: Path) -> None:
    _, nodes = start_raft_cluster(peers, 3, tmp_path)
    assert client.execute_tool(server(nodes[0]), "add", {"a": 5, "b": 3}) == ("ok", 8)
    assert client.execute_tool(server(nodes[1]), "multiply", {"x": 4, "y": 2}) == ("ok", 8)
    assert client.execute_tool(server(nodes[2]), "concat", {"s1": "a", "s2": "b"}) == \
        ("ok", "a b")
    leader_node, _ = wait_converged(nodes)
    assert status(leader_node)["execution_count"] == 3
    wait_until(lambda: all(len(_trail(n)) == 3 for n in nodes), 10)
    trails = [_trail(n) for n in nodes]
    assert trails[0] == trails[1] == trails[2]  # same ids, timestamps, results everywhere
    ids = [e["execution_id"] for e in trails[0]]
    assert ids == sorted(ids) and len(set(ids)) == 3  # log indexes, increasing
    assert {e["executor"] for e in trails[0]} == {leader_node}


def test_raft_request_id_retry_runs_once_and_audits_once(peers: Any, tmp_path: Path) -> None:
    _, nodes = start_raft_cluster(peers, 3, tmp_path)
    first = client.execute_tool(server(nodes[0]), "add", {"a": 1, "b": 2}, "req-1")
    again = [client.execute_tool(server(n), "add", {"a": 1, "b": 2}, "req-1") for n in nodes]
    assert first == ("ok", 3) and again == [("ok", 3)] * 3
    leader_node, _ = wait_converged(nodes)
    assert status(leader_node)["execution_count"] == 1
    wait_until(lambda: all(len(_trail(n)) == 1 for n in nodes), 10)


def test_raft_failover_keeps_the_log(peers: Any, tmp_path: Path) -> None:
    peer_pids, nodes = start_raft_cluster(peers, 3, tmp_path)
    for i, n in enumerate(nodes):
        assert client.execute_tool(server(n), "add", {"a": i, "b": i}, f"old-{i}") == \
            ("ok", 2 * i)
    old_node, _ = wait_converged(nodes)
    erlang.monitor_node(old_node, True)
    peer.kill(peer_pids[nodes.index(old_node)])  # SIGKILL the leader's node
    recv(lambda m: m == ("nodedown", old_node), 5000)
    remaining = [n for n in nodes if n != old_node]
    new_node, _ = wait_converged(remaining, timeout=10.0)
    assert new_node != old_node
    assert client.execute_tool(server(remaining[0]), "add", {"a": 10, "b": 20}) == ("ok", 30)
    wait_until(lambda: all(len(_trail(n)) == 4 for n in remaining), 10)
    trail = _trail(remaining[0])
    assert trail == _trail(remaining[1])
    assert [e["request_id"] for e in trail] == ["old-0", "old-1", "old-2", None]
    # an old request id is still known: the retry is answered from the log, nothing runs
    assert client.execute_tool(server(remaining[1]), "add", {"a": 1, "b": 1}, "old-1") == \
        ("ok", 2)
    assert status(new_node)["execution_count"] == 1


def test_raft_exactly_once_twelve_calls_from_three_nodes(peers: Any, tmp_path: Path) -> None:
    """erlmcp's exactly-once test in Raft mode: every call runs on the leader only, and every
    member holds the same twelve entries (the POC's followers hold none)."""
    _, nodes = start_raft_cluster(peers, 3, tmp_path)
    for i in range(12):
        assert client.execute_tool(server(nodes[i % 3]), "add", {"a": i, "b": 1}) == \
            ("ok", i + 1)
    leader_node, _ = wait_converged(nodes)
    counts = {n: status(n)["execution_count"] for n in nodes}
    assert counts[leader_node] == 12 and sum(counts.values()) == 12
    wait_until(lambda: all(status(n)["audit_log_size"] == 12 for n in nodes), 10)
    # a consistent read on a follower sees every entry; limit and since as the POC's
    follower = next(n for n in nodes if n != leader_node)
    ok, entries = client.audit(server(follower))
    assert ok == "ok" and len(entries) == 12
    consistent = rpc.call(follower, _consistent_audit, [], 5000)
    assert consistent == ("ok", entries)
    newest = entries[0]["execution_id"]
    assert client.audit(server(follower), limit=2)[1] == entries[:2]
    assert client.audit(server(follower), since=newest) == ("ok", [])


def _consistent_audit() -> Any:
    """(on a peer) The audit through its own server, with a linearizable read."""
    from actors import gen_server
    from actors.consensus.client import SERVER_NAME

    return gen_server.call(SERVER_NAME, ("audit", {"consistent": True}), 5000)
