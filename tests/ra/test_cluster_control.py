"""Leadership transfer, triggered elections, members and delete_cluster on a cluster of
three in-process nodes (a real distribution between them)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors import erlang, ra, rpc
from tests.helpers import wait_until

from . import ra_helpers as h

COOKIE = "test-cookie-0123456789abcdef"
Ids = list[tuple[str, str]]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Ids, Path]]:
    nodes, ids = h.in_process_cluster(tmp_path, "ctl", "ctl", "m", COOKIE)
    with nodes[0].bound():
        yield ids, tmp_path
    for n in nodes:
        n.stop()


def test_transfer_leadership_hands_over_and_keeps_every_command(
        cluster: tuple[Ids, Path]) -> None:
    ids, _ = cluster
    for i in range(10):
        assert ra.process_command(ids, ("x", i))[0] == "ok"
    leader = h.wait_leader(ids)
    target = next(s for s in ids if s != leader)
    assert ra.transfer_leadership(leader, leader) == "already_leader"
    assert ra.transfer_leadership(leader, ("m", "nobody@127.0.0.1")) == \
        ("error", "unknown_member")
    assert ra.transfer_leadership(leader, target) == "ok"
    wait_until(lambda: h.leader_of(ids) == target, 5)
    assert ra.process_command(leader, ("x", 10)) == ("ok", 11, target)  # routed to the new one
    h.wait_caught_up(ids)
    assert all(h.local_state(s)[1] == tuple(("x", i) for i in range(11)) for s in ids)


def test_trigger_election_on_a_follower_does_not_depose_a_live_leader(
        cluster: tuple[Ids, Path]) -> None:
    """As ra's: the member enters pre-vote; the others, who hear from their leader, refuse
    it, so a healthy cluster keeps its leader and its term (no disruption, §9.6)."""
    ids, _ = cluster
    leader = h.wait_leader(ids)
    other = next(s for s in ids if s != leader)
    term = h.overview(leader)["term"]  # type: ignore[index]
    assert ra.trigger_election(other) == "ok"
    assert ra.process_command(ids, ("x", 1)) == ("ok", 1, leader)
    assert h.leader_of(ids) == leader and h.overview(leader)["term"] == term  # type: ignore[index]
    assert ra.members(ids[0])[1] == sorted(ids)


def test_delete_cluster_stops_every_member_and_removes_its_data(
        cluster: tuple[Ids, Path]) -> None:
    ids, root = cluster
    assert ra.process_command(ids, ("x", 1))[0] == "ok"
    leader = h.wait_leader(ids)
    assert ra.delete_cluster(ids) == ("ok", leader)
    for name, node in ids:
        assert rpc.call(node, erlang.whereis, [name], 5000) == "undefined"
        assert os.listdir(root / node / "members") == []
        assert os.listdir(root / node / "servers") == []
    assert ra.members(ids[0], 500) == ("error", "noproc")
    # the name is free again: a new cluster of the same members starts from nothing
    assert ra.start_cluster("default", "ctl", h.log_machine(), ids)[0] == "ok"
    assert ra.process_command(ids, ("y", 1)) == ("ok", 1, h.wait_leader(ids))
