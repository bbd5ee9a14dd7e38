"""ra on a real three-node cluster (each node its own OS process, over loopback): commands
replicate and apply identically everywhere, pipelined commands are answered once each and
in order, and the query API answers in ra's shapes.

Each test starts its own peer nodes (`peers` fixture) with their own data dirs under
tmp_path; machines and query functions live in `tests.ra.ra_helpers` (peers import it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actors import Node, erlang, ra
from tests.helpers import no_message
from tests.ra import ra_helpers as h


def _three(peers: Any, tmp_path: Path, prefix: str) -> tuple[h.Cluster, h.ServerId]:
    c = h.Cluster(peers, tmp_path, prefix)
    nodes = c.add_nodes([f"{prefix}{i}" for i in range(3)])
    return c, c.start(nodes, h.log_machine())


def test_commands_from_every_member_apply_identically_on_all_three(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    c, leader = _three(peers, tmp_path, "rep")
    commands = [("add", i) for i in range(200)]
    for i, command in enumerate(commands):
        entry = c.ids[i % 3]  # two of three go to a follower and are routed to the leader
        assert ra.process_command(entry, command) == ("ok", i + 1, leader), (i, entry)

    views = h.wait_caught_up(c.ids)
    commit = views[leader]["commit_index"]
    assert commit >= 201  # 200 commands and the leader's no-op
    states = {sid: h.local_state(sid) for sid in c.ids}
    for sid, ((index, term), state) in states.items():
        assert (index, term) == (commit, views[leader]["term"]), sid
        assert state == tuple(commands), sid  # every command once, in the order acknowledged
    assert {v["last_index"] for v in views.values()} == {commit}


def test_pipelined_commands_are_answered_once_each_in_order(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    c, leader = _three(peers, tmp_path, "pip")
    follower = next(s for s in c.ids if s != leader)
    n = 500
    for corr in range(n):
        assert ra.pipeline_command(leader, ("p", corr), corr) == "ok"

    answered: list[tuple[Any, Any]] = []
    while len(answered) < n:
        msg = erlang.receive(lambda m: type(m) is tuple and m[0] == "ra_event", 10_000)
        assert msg is not erlang.TIMEOUT, f"only {len(answered)} of {n} answered"
        _, frm, event = msg
        assert frm == leader and event[0] == "applied", msg
        answered.extend(event[1])
    no_message(lambda m: type(m) is tuple and m[0] == "ra_event", 300)  # nothing twice
    assert [corr for corr, _ in answered] == list(range(n))
    assert [reply for _, reply in answered] == list(range(1, n + 1))  # each applied once
    assert h.local_state(leader)[1] == tuple(("p", i) for i in range(n))

    # to a follower: rejected at once, naming the leader
    assert ra.pipeline_command(follower, ("p", "x"), "corr-x") == "ok"
    msg = erlang.receive(lambda m: type(m) is tuple and m[0] == "ra_event", 5000)
    assert msg == ("ra_event", follower, ("rejected", ("not_leader", leader, "corr-x")))
    h.wait_caught_up(c.ids)
    assert all(h.local_state(s)[1] == tuple(("p", i) for i in range(n)) for s in c.ids)


def _boom(_state: Any) -> Any:
    raise ValueError("query fails")


def test_query_and_membership_shapes(dist_node: Node, peers: Any, tmp_path: Path) -> None:
    c, leader = _three(peers, tmp_path, "shp")
    follower = next(s for s in c.ids if s != leader)
    for i in range(5):
        assert ra.process_command(follower, ("add", i)) == ("ok", i + 1, leader)
    views = h.wait_caught_up(c.ids)
    index, term = views[leader]["commit_index"], views[leader]["term"]

    # consistent_query: ("ok", result, leader), from the leader or routed from a follower
    assert ra.consistent_query(leader, h.count) == ("ok", 5, leader)
    assert ra.consistent_query(follower, h.count) == ("ok", 5, leader)
    # leader_query: ("ok", ((index, term), result), leader), always the leader's state
    assert ra.leader_query(follower, h.count) == ("ok", ((index, term), 5), leader)
    # local_query: the asked member's own state, and who it thinks leads
    for sid in c.ids:
        assert ra.local_query(sid, h.count) == ("ok", ((index, term), 5), leader)
    # a query function that raises
    got = ra.local_query(follower, _boom)
    assert got[0] == "error" and got[1][0] == "query_failed" and "query fails" in got[1][1]
    got = ra.consistent_query(follower, _boom)
    assert got[0] == "error" and got[1][0] == "query_failed", got
    # members: ("ok", sorted members, leader) from every member
    for sid in c.ids:
        assert ra.members(sid) == ("ok", sorted(c.ids), leader)
    # an unknown server: an error, not a hang
    got = ra.local_query(("nobody", c.ids[0][1]), h.count, 1000)
    assert got[0] in ("error", "timeout"), got
