"""POC mode under a network partition: the split brain the seed warns of, for real.

Five nodes: this test's node T (no service; the controller) and peers p1..p4 running the
service, with p1 the leader. The test cuts [T, p1, p2] from [p3, p4] (net_kernel.block_nodes
on every node; `demos.lab.cut`). T must be on a side: a node still connected to
both sides takes part in `global`'s locks on both, so side B's register_name gets "no" (T's
table still names p1's leader) while B's own tables say "undefined", and side B has no
leader at all (its servers answer no_leader) - checked by hand, not kept as a test. T
cuts side B through an out-of-band agent on p3, which also drives side B while T cannot
reach it. Side B sees p1 go down, its followers re-elect, and both
sides accept writes: two leaders, two logs.

After `heal`, the nodes meet again and `global` finds LEADER_NAME registered twice. The
resolver (the node of the smaller name of the two pids' nodes) applies the name's resolve
method, `random_exit_name` by default: it keeps one pid at random and sends the other
`exit(pid, "kill")`. At random: the majority's leader may be the one that loses, and with
it the majority's writes. So the losing leader's ConsensusServer dies with "killed" (untrappable:
its terminate does not run). Then:
- its supervisor, erlmcp_sup (rest_for_one), restarts it alone (it is the last child),
  and the new server starts as a follower of the winner (register_name says "no");
- the losing side's followers get the DOWN ("killed") of their leader and follow the
  winner too;
- the loser's writes are not in the winner's log: the cluster's audit trail (any node's
  `client.audit`) has only the winner's side. They survive only in the loser's node's
  own AuditLog, which was not restarted, unread by anyone (POC reads go to the leader).
"""

from __future__ import annotations

from typing import Any

from actors import erlang, net_kernel, rpc
from actors.consensus import client
from demos.lab import Agent, cut, heal  # an agent's lines are HMAC'd
from tests.helpers import recv, wait_until

from . import cluster
from .cluster import server, status, wait_converged


def _ids(entries: list[dict[str, Any]]) -> set[Any]:
    return {e["request_id"] for e in entries}


def test_split_brain_two_leaders_then_global_keeps_one(dist_node: Any, peers: Any) -> None:
    _, nodes = cluster.start_cluster(peers, 4)
    leader_node, leader_a = wait_converged(nodes)
    side_b = [n for n in nodes if n != leader_node][1:]  # two followers
    side_a_peers = [n for n in nodes if n not in side_b]
    agent = Agent(side_b[0])
    try:
        watch_a = erlang.monitor("process", leader_a)
        side_a = [dist_node.name, *side_a_peers]
        cut(side_a, side_b, agent, last=leader_node)

        # side B elects its own leader ...
        leader_b = agent(cluster.converged_within, side_b, 10_000)
        assert leader_b is not None and leader_b != leader_a
        watch_b = agent(erlang.monitor, "process", leader_b)
        # ... and both sides accept writes
        for i, n in enumerate(side_b):
            assert agent(client.execute_tool, server(n), "add", {"a": i, "b": 100},
                         f"b-{i}") == ("ok", 100 + i)
        for i, n in enumerate(side_a_peers):
            assert client.execute_tool(server(n), "add", {"a": i, "b": 200}, f"a-{i}") == \
                ("ok", 200 + i)
        assert status(leader_node)["role"] == "leader"
        assert agent(client.get_status, server(leader_b.node))["role"] == "leader"

        assert heal(side_a, side_b, agent) == []  # every pair reconnected
        _, winner = wait_converged(nodes, timeout=15.0)
        assert winner in (leader_a, leader_b)
        if winner == leader_a:
            loser, reason = leader_b, agent(cluster.down_reason, watch_b, 5000)
        else:
            loser, reason = leader_a, recv(lambda m: m[:2] == ("DOWN", watch_a), 5000)[4]
        assert reason == "killed"  # global's random_exit_name: exit(loser, "kill")

        winning, losing = ("a", "b") if winner == leader_a else ("b", "a")
        ok, trail = client.audit(server(nodes[0]))
        assert ok == "ok"
        assert _ids(trail) == {f"{winning}-0", f"{winning}-1"}
        # the loser's writes survive only in its own node's AuditLog, read by no one
        loser_log = rpc.call(loser.node, cluster.local_audit, [], 5000)
        assert _ids(loser_log[1]) == {f"{losing}-0", f"{losing}-1"}
        restarted = status(loser.node)
        assert restarted["role"] == "follower" and restarted["leader_pid"] == winner
        assert restarted["execution_count"] == 0 and restarted["audit_log_size"] == 2
    finally:
        agent.close()


# -- runtime behaviour this test relies on --------------------------------------------------


def test_monitor_of_a_process_on_a_cut_node_that_is_down_fires(dist_node: Any,
                                                                 peers: Any) -> None:
    _, a = peers()
    remote = rpc.call(a, erlang.whereis, ["global_name_server"])
    erlang.monitor_node(a, True)
    net_kernel.block_nodes([a])
    recv(lambda m: m == ("nodedown", a), 5000)
    ref = erlang.monitor("process", remote)
    assert erlang.receive(lambda m: type(m) is tuple and m[:2] == ("DOWN", ref), 1000) == \
        ("DOWN", ref, "process", remote, "noconnection")


def test_partition_from_a_node_on_one_side(dist_node: Any, peers: Any) -> None:
    (_, a), (_, b) = peers(), peers()
    assert net_kernel.connect_node(b) and rpc.call(a, net_kernel.connect_node, [b]) is True
    assert net_kernel.partition([dist_node.name, a], [b]) == "ok"
    wait_until(lambda: b not in erlang.nodes(), 10)
    wait_until(lambda: b not in rpc.call(a, erlang.nodes, []), 10)
    assert net_kernel.heal([dist_node.name, a], [b]) == "ok"
    wait_until(lambda: b in erlang.nodes() and b in rpc.call(a, erlang.nodes, []), 10)
    assert rpc.call(b, erlang.node, []) == b
