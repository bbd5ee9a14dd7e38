"""The read paths: `local_query` on the member's own node reads its published view (no call),
and `consistent_query` is linearizable, also across a leader change, with the queries that
arrive together sharing one ReadIndex round and each answered with its own result.

The in-process tests run three nodes in this process (a real distribution between them); the
others run each node in its own OS process over loopback (`peers`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import Node, erlang, ra, rpc, sys
from tests.helpers import wait_until

from . import ra_helpers as h

COOKIE = "test-cookie-0123456789"  # 16+ characters: no short-cookie warning
Ids = list[tuple[str, str]]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[list[Node], Ids]]:
    nodes, ids = h.in_process_cluster(tmp_path, "rd", "rd", "m", COOKIE)
    with nodes[0].bound():
        yield nodes, ids
    for n in nodes:
        n.stop()


def _node_of(nodes: list[Node], sid: tuple[str, str]) -> Node:
    return next(n for n in nodes if n.name == sid[1])


def test_local_query_on_the_leaders_node_reads_every_acknowledged_write(
        cluster: tuple[list[Node], Ids]) -> None:
    """The leader publishes its view before it replies: a caller on its node that got the
    reply of a command reads a state holding it, with ra's result shape."""
    nodes, ids = cluster
    leader = h.wait_leader(ids)
    with _node_of(nodes, leader).bound():
        for i in range(100):
            assert ra.process_command(leader, ("w", i)) == ("ok", i + 1, leader)
            got = ra.local_query(leader, h.identity)
            assert got[0] == "ok" and got[2] == leader, got
            (index, term), state = got[1]
            assert state == tuple(("w", j) for j in range(i + 1)), (i, state)
        view = ra.member_overview(leader)
        assert (index, term) == (view["last_applied"], view["term"])


def test_local_query_makes_no_call_to_a_member_on_its_node(
        cluster: tuple[list[Node], Ids]) -> None:
    """With the member suspended (it handles no request), a local query on its node still
    answers at once from the published view, while a call to the member times out."""
    nodes, ids = cluster
    for i in range(5):
        assert ra.process_command(ids, ("x", i))[0] == "ok"
    h.wait_caught_up(ids)
    follower = next(s for s in ids if s != h.wait_leader(ids))
    with _node_of(nodes, follower).bound():
        before = ra.local_query(follower, h.identity)
        assert sys.suspend(follower) == "ok"
        try:
            t0 = time.monotonic()
            assert ra.local_query(follower, h.count, 200) == ("ok", (before[1][0], 5), before[2])
            assert ra.local_query(follower, h.failing_query)[0:2] == \
                ("error", ("query_failed", "ValueError('this query fails')"))
            assert time.monotonic() - t0 < 0.2
            assert ra.member_overview(follower, 200) == ("timeout", follower)
        finally:
            sys.resume(follower)
    # from another node the same query is a call, and gives the same answer
    assert ra.local_query(follower, h.identity) == before


def test_each_members_local_view_is_its_applied_state(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    """On every member's node (its own OS process) local_query gives what the member has
    applied: once caught up, the leader's commit index, term and state everywhere."""
    c = h.Cluster(peers, tmp_path, "lv")
    leader = c.start(c.add_nodes([f"lv{i}" for i in range(3)]), h.log_machine())
    for i in range(30):
        assert ra.process_command(c.ids[i % 3], ("c", i))[0] == "ok"
    views = h.wait_caught_up(c.ids)
    for sid in c.ids:
        got = rpc.call(sid[1], ra.local_query, [sid, h.identity], 5000)
        assert got == ("ok", ((views[leader]["commit_index"], views[leader]["term"]),
                              tuple(("c", i) for i in range(30))), leader), (sid, got)


def _read_all(tags: list[Any], timeout_ms: int = 15_000) -> dict[Any, Any]:
    got: dict[Any, Any] = {}
    deadline = time.monotonic() + timeout_ms / 1000
    while len(got) < len(tags):
        left = max(0, int((deadline - time.monotonic()) * 1000))
        msg = erlang.receive(lambda m: type(m) is tuple and len(m) == 3 and m[0] == "read", left)
        assert msg is not erlang.TIMEOUT, f"only {sorted(got)} of {len(tags)} reads answered"
        got[msg[1]] = msg[2]
    return got


def test_consistent_queries_that_arrive_together_share_one_round_and_all_answer(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    """40 queries queued at a suspended leader: on resume they take one ReadIndex round
    between them, and each caller gets its own function's answer (or its own error)."""
    c = h.Cluster(peers, tmp_path, "br")
    leader = c.start(c.add_nodes([f"br{i}" for i in range(3)]), h.log_machine())
    for i in range(10):
        assert ra.process_command(leader, ("c", i))[0] == "ok"
    rounds_before = ra.member_overview(leader)["read_rounds"]
    n = 40
    assert sys.suspend(leader) == "ok"
    try:
        me = erlang.self()
        for i in range(n):
            fun = h.failing_query if i == 7 else functools.partial(h.count_plus, i)
            erlang.spawn(h.reader, me, leader, fun, i)
        wait_until(lambda: rpc.call(leader[1], h.queued_queries, [leader[0]], 2000) == n, 10)
    finally:
        sys.resume(leader)
    got = _read_all(list(range(n)))
    for i in range(n):
        if i == 7:
            assert got[i] == ("error", ("query_failed", "ValueError('this query fails')"))
        else:
            assert got[i] == ("ok", 10 + i, leader), (i, got[i])
    assert ra.member_overview(leader)["read_rounds"] - rounds_before == 1


def test_consistent_query_is_linearizable_across_a_leader_change(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    """A writer commits without pause while the leader hands over and then its node is
    killed. Every consistent query, whichever member it enters by, sees every write that
    was acknowledged before the query began, in the order written, and nothing else."""
    c = h.Cluster(peers, tmp_path, "lz")
    nodes = c.add_nodes([f"lz{i}" for i in range(3)])
    leader = c.start(nodes, h.log_machine())
    me = erlang.self()
    wpid = erlang.spawn(h.writer, me, c.ids, "w")
    reads: list[tuple[int, Any]] = []  # (writes acknowledged before the read began, result)

    def read_rounds(rounds: int) -> None:
        for r in range(rounds):
            acked = h.writer_progress(wpid)
            tags = [(len(reads), r, i) for i in range(len(c.ids))]
            for tag, sid in zip(tags, c.ids, strict=True):
                erlang.spawn(h.reader, me, [sid, *[s for s in c.ids if s != sid]],
                             h.identity, tag)
            reads.extend((acked, result) for result in _read_all(tags).values())

    h.wait_writer_progress(wpid, 20)
    read_rounds(5)
    target = next(s for s in c.ids if s != leader)
    assert ra.transfer_leadership(leader, target) == "ok"
    read_rounds(5)
    new_leader = h.wait_leader(c.ids)
    c.kill(new_leader[1])
    c.ids = [s for s in c.ids if s != new_leader]
    h.wait_leader(c.ids)
    done = h.writer_progress(wpid)
    h.wait_writer_progress(wpid, done + 5)
    read_rounds(5)
    results = h.stop_writer(wpid, "w")
    acknowledged = [("w", i) for i, result in results if result[0] == "ok"]
    sent = {("w", i) for i, _ in results}
    checked = 0
    for acked, result in reads:
        if result[0] != "ok":  # a member on the killed node: none of ours
            assert result[0] in ("error", "timeout"), result
            continue
        state = result[1]
        assert set(acknowledged[:acked]) <= set(state), (acked, state)  # none missing
        assert set(state) <= sent and len(set(state)) == len(state)  # nothing else, once
        assert list(state) == sorted(state, key=lambda c: c[1])  # in the order written
        checked += 1
    assert checked >= 30
    failed = [(i, result) for i, result in results if result[0] != "ok"]
    print(f"\n{len(results)} writes, {len(failed)} not acknowledged: {failed[:5]}")


def test_without_commit_notices_followers_still_apply_everything_by_heartbeat(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    """`commit_notice=False`: no commit notice after each commit; the followers learn the
    commit index from the next append or heartbeat and end with the leader's state."""
    c = h.Cluster(peers, tmp_path, "cn")
    nodes = c.add_nodes([f"cn{i}" for i in range(3)])
    c.ids = [c.sid(n) for n in nodes]
    started = ra.start_cluster(h.SYSTEM, c.name, h.log_machine(), c.ids, 20000,
                               commit_notice=False)
    assert started[0] == "ok" and not started[2], started
    leader = h.wait_leader(c.ids)
    for i in range(20):
        assert ra.process_command(leader, ("n", i)) == ("ok", i + 1, leader)
    views = h.wait_caught_up(c.ids)
    for sid in c.ids:
        got = rpc.call(sid[1], ra.local_query, [sid, h.identity], 5000)
        assert got == ("ok", ((views[leader]["commit_index"], views[leader]["term"]),
                              tuple(("n", i) for i in range(20))), leader), (sid, got)


@pytest.mark.parametrize("notice", [{}, {"notice_delay_ms": 0}], ids=["deferred", "at_once"])
def test_followers_learn_the_last_commit_by_notice_with_no_heartbeat_to_carry_it(
        dist_node: Node, peers: Any, tmp_path: Path, notice: dict[str, Any]) -> None:
    """With ticks a minute apart, no heartbeat can tell the followers the commit index of
    the last command, and no later append comes: only the commit notice does, deferred
    (the default: sent once `notice_delay_ms` passed with the commit index still) or at
    once. Every member ends with the leader's state."""
    c = h.Cluster(peers, tmp_path, "dn")
    nodes = c.add_nodes([f"dn{i}" for i in range(3)])
    c.ids = [c.sid(n) for n in nodes]
    started = ra.start_cluster(h.SYSTEM, c.name, h.log_machine(), c.ids, 20000,
                               tick_ms=60_000, **notice)
    assert started[0] == "ok" and not started[2], started
    leader = h.wait_leader(c.ids)
    for i in range(20):
        assert ra.process_command(leader, ("d", i)) == ("ok", i + 1, leader)
    views = h.wait_caught_up(c.ids, 10.0)
    assert {v["commit_index"] for v in views.values()} == {views[leader]["commit_index"]}
    for sid in c.ids:
        got = rpc.call(sid[1], ra.local_query, [sid, h.identity], 5000)
        assert got[1][1] == tuple(("d", i) for i in range(20)), (sid, got)


def test_a_peer_message_still_wrapped_as_pickled_is_taken_and_junk_in_it_dropped(
        cluster: tuple[list[Node], Ids]) -> None:
    """The leader sends one pickled AppendEntries to several followers (`Pickled`). Should a
    transport ever hand it over without unpickling, the member unwraps it: a wrapped
    TimeoutNow makes a follower campaign at once; wrapped junk is dropped."""
    import pickle

    from actors.ra._member import Pickled
    from actors.raft import TimeoutNow

    nodes, ids = cluster
    leader = h.wait_leader(ids)
    follower = next(s for s in ids if s != leader)
    term = ra.member_overview(leader)["term"]
    with _node_of(nodes, follower).bound():
        erlang.send(follower, ("$ra", Pickled(pickle.dumps(("not", "a message")))))
        erlang.send(follower, ("$ra", Pickled(pickle.dumps(TimeoutNow(term, leader)))))
    wait_until(lambda: h.leader_of(ids) == follower, 5)
    assert ra.process_command(ids, ("after", 1))[0] == "ok"
