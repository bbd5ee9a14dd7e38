"""POC mode on real node OS processes: erlmcp's four eunit tests
(erlmcp_consensus_poc_tests), then request ids and reads across nodes.

erlmcp's tests start three gen_servers in one VM and sleep 200 ms for the election; here
each server is on its own peer node, and the tests wait (bounded) until every node agrees
on one leader instead.
"""

from __future__ import annotations

from typing import Any

from actors import Pid, erlang, peer, rpc
from actors.consensus import client
from actors.consensus.client import LEADER_NAME
from tests.helpers import recv

from .cluster import server, start_cluster, status, wait_converged


def test_consensus_basic_one_leader_two_followers(peers: Any) -> None:
    _, nodes = start_cluster(peers, 3)
    statuses = [status(n) for n in nodes]
    roles = [s["role"] for s in statuses]
    assert roles.count("leader") == 1 and roles.count("follower") == 2
    leader = next(s for s in statuses if s["role"] == "leader")
    assert all(s["leader_pid"] == leader["leader_pid"] for s in statuses)
    assert all(s["mode"] == "poc" and s["node_id"] == s["node"] for s in statuses)
    # the leader is whoever holds the global name, on every node
    assert all(rpc.call(n, "global_", "whereis_name", [LEADER_NAME]) == leader["leader_pid"]
               for n in nodes)
    # each tree outlived the rpc that started it
    for n in nodes:
        assert type(rpc.call(n, erlang.whereis, ["erlmcp_app"])) is Pid
        kids = rpc.call(n, "supervision.supervisor", "which_children", ["erlmcp_sup"])
        assert [(i, type(p)) for i, p, _, _ in kids] == [  # newest first, as OTP's
            ("consensus", Pid), ("audit_log", Pid), ("tool_runner_sup", Pid)]


def test_tool_execution_from_two_nodes_runs_on_the_leader(peers: Any) -> None:
    _, (n1, n2) = start_cluster(peers, 2)
    assert client.execute_tool(server(n1), "add", {"a": 5, "b": 3}) == ("ok", 8)
    assert client.execute_tool(server(n2), "multiply", {"x": 4, "y": 2}) == ("ok", 8)
    counts = {n: status(n)["execution_count"] for n in (n1, n2)}
    leader_node, _ = wait_converged([n1, n2])
    assert sum(counts.values()) == 2 and counts[leader_node] == 2
    # reads go to the leader too: a follower answers with the leader's log
    follower = n2 if leader_node == n1 else n1
    ok, entries = client.audit(server(follower))
    assert ok == "ok"
    assert [(e["tool"], e["result"], e["executor"]) for e in entries] == [
        ("multiply", 8, leader_node), ("add", 8, leader_node)]  # newest first


def test_leader_failover_elects_one_new_leader_without_the_old_log(peers: Any) -> None:
    peer_pids, nodes = start_cluster(peers, 3)
    old_node, old_leader = wait_converged(nodes)
    for i, n in enumerate(nodes):
        assert client.execute_tool(server(n), "add", {"a": i, "b": i}, f"old-{i}") == \
            ("ok", 2 * i)
    assert status(old_node)["audit_log_size"] == 3

    erlang.monitor_node(old_node, True)
    peer.kill(peer_pids[nodes.index(old_node)])  # SIGKILL the leader's node
    recv(lambda m: m == ("nodedown", old_node), 5000)
    remaining = [n for n in nodes if n != old_node]
    new_node, new_leader = wait_converged(remaining)
    assert new_leader != old_leader and new_node != old_node

    first = remaining[0]
    assert client.execute_tool(server(first), "add", {"a": 10, "b": 20}) == ("ok", 30)
    ok, entries = client.audit(server(first))
    assert ok == "ok"
    # the POC's honest weakness: the old leader's log died with it
    assert [(e["args"], e["result"], e["executor"]) for e in entries] == [
        ({"a": 10, "b": 20}, 30, new_node)]
    assert status(new_node)["execution_count"] == 1
    # and so did its request ids: a retry of an old one runs again on the new leader
    assert client.execute_tool(server(first), "add", {"a": 1, "b": 1}, "old-1") == ("ok", 2)
    assert status(new_node)["execution_count"] == 2


def test_exactly_once_twelve_calls_from_three_nodes_all_on_the_leader(peers: Any) -> None:
    _, (n1, n2, n3) = start_cluster(peers, 3)
    results = [client.execute_tool(server(n1), "add", {"a": i, "b": i}) for i in range(1, 6)]
    results += [client.execute_tool(server(n2), "multiply", {"x": i, "y": i})
                for i in range(1, 4)]
    results += [client.execute_tool(server(n3), "subtract", {"a": 10, "b": i})
                for i in range(1, 5)]
    assert results == [("ok", r) for r in (2, 4, 6, 8, 10, 1, 4, 9, 9, 8, 7, 6)]
    counts = sorted(status(n)["execution_count"] for n in (n1, n2, n3))
    assert counts == [0, 0, 12]


def test_a_retried_request_id_executes_once_and_is_audited_once(peers: Any) -> None:
    _, nodes = start_cluster(peers, 3)
    leader_node, _ = wait_converged(nodes)
    follower, other = [n for n in nodes if n != leader_node]
    first = client.execute_tool(server(follower), "add", {"a": 2, "b": 3}, "req-1")
    assert first == ("ok", 5)
    # the client retries (it never saw the answer, say) through another node, then the leader
    assert client.execute_tool(server(other), "add", {"a": 2, "b": 3}, "req-1") == first
    assert client.execute_tool(server(leader_node), "add", {"a": 2, "b": 3}, "req-1") == first
    # the id alone names the request: the first answer stands, whatever the retry says
    assert client.execute_tool(server(other), "add", {"a": 9, "b": 9}, "req-1") == first
    assert status(leader_node)["execution_count"] == 1
    ok, entries = client.audit(server(other))
    assert ok == "ok" and [e["request_id"] for e in entries] == ["req-1"]
    # a new id is a new execution
    assert client.execute_tool(server(other), "add", {"a": 2, "b": 3}, "req-2") == ("ok", 5)
    assert status(leader_node)["execution_count"] == 2


def test_audit_queries_by_node_since_and_limit_through_a_follower(peers: Any) -> None:
    _, (n1, n2) = start_cluster(peers, 2)
    leader_node, _ = wait_converged([n1, n2])
    follower = n2 if leader_node == n1 else n1
    for i in range(5):
        assert client.execute_tool(server(follower), "add", {"a": i, "b": 0})[0] == "ok"
    ok, everything = client.audit(server(follower))
    ids = [e["execution_id"] for e in everything]
    assert ok == "ok" and ids == sorted(ids, reverse=True) and len(ids) == 5
    assert client.audit(server(follower), node=leader_node) == ("ok", everything)
    assert client.audit(server(follower), node=follower) == ("ok", [])
    assert client.audit(server(follower), since=ids[2]) == ("ok", everything[:2])
    assert client.audit(server(follower), limit=1) == ("ok", everything[:1])
    assert client.audit(server(follower), since=ids[4], limit=2) == ("ok", everything[:2])
