"""ra snapshots on a real three-node cluster: a member that was down while the leader
compacted its log catches up through InstallSnapshot; old WAL and snapshot files go away.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actors import Node, ra
from tests.ra import ra_helpers as h

INTERVAL = 50


def test_a_member_behind_the_leaders_snapshot_catches_up_by_install_snapshot(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    c = h.Cluster(peers, tmp_path, "sn", opts={"wal_max_bytes": 16384})  # the WAL rolls
    nodes = c.add_nodes([f"sn{i}" for i in range(3)])
    c.ids = [c.sid(n) for n in nodes]
    for sid in c.ids:  # start_cluster takes no member options: start each member
        assert ra.start_server(h.SYSTEM, c.name, sid, h.log_machine(), c.ids,
                               snapshot_interval=INTERVAL) == "ok"
    assert ra.trigger_election(c.ids[0]) == "ok"
    leader = h.wait_leader(c.ids)
    victim = next(s for s in c.ids if s != leader)
    for i in range(20):
        assert ra.process_command(leader, ("a", i))[0] == "ok"
    views = h.wait_caught_up(c.ids)
    victim_last = views[victim]["last_index"]
    assert views[victim]["snapshot_index"] == 0

    assert ra.stop_server(h.SYSTEM, victim) == "ok"
    for i in range(300):
        assert ra.process_command(leader, ("b", i))[0] == "ok"
    lv = h.overview(leader)
    assert lv is not None
    # the leader compacted past everything the victim has: only a snapshot can catch it up
    assert lv["snapshot_index"] > victim_last + 1, (lv, victim_last)
    assert lv["snapshot_index"] >= lv["commit_index"] - INTERVAL - 1

    assert ra.restart_server(h.SYSTEM, victim) == "ok"
    views = h.wait_caught_up(c.ids, 15)
    assert views[victim]["snapshot_index"] >= lv["snapshot_index"], views[victim]
    expected = (*(("a", i) for i in range(20)), *(("b", i) for i in range(300)))
    for sid in c.ids:
        assert h.local_state(sid)[1] == expected, sid

    # on disk: one snapshot per member (older ones deleted), the WAL rolled and trimmed
    for sid in c.ids:
        data = c.data_dir(sid[1])
        uid = views[sid]["uid"]
        snaps = h.files_under(str(Path(data) / "members" / uid / "snapshots"), ".snap")
        assert len(snaps) == 1, (sid, snaps)
        index = int(Path(snaps[0][0]).name.split("-")[0])
        assert index == views[sid]["snapshot_index"], (sid, snaps)
        wals = h.files_under(str(Path(data) / "wal"), ".wal")
        assert 1 <= len(wals) <= 2 and all(size <= 2 * 16384 for _, size in wals), (sid, wals)
    leader_segments = h.files_under(
        str(Path(c.data_dir(leader[1])) / "members" / views[leader]["uid"]), ".seg")
    assert leader_segments, "the rolled WAL never reached the leader's segments"
    # new commands still work for everyone
    assert ra.process_command(victim, ("c", 0)) == ("ok", 321, h.wait_leader(c.ids))


def test_ra_start_member_defaults_reach_the_members(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    c = h.Cluster(peers, tmp_path, "sd", opts={"snapshot_interval": 10})
    node = c.add_node("sd0")
    leader = c.start([node], h.log_machine())
    for i in range(30):
        assert ra.process_command(leader, ("a", i))[0] == "ok"
    view = h.overview(leader)
    assert view is not None and view["snapshot_index"] > 0, view


def test_every_reply_survives_interval_snapshots(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    c = h.Cluster(peers, tmp_path, "sr")
    sid = c.sid(c.add_node("sr0"))
    c.ids = [sid]
    assert ra.start_server(h.SYSTEM, c.name, sid, h.log_machine(), c.ids,
                           snapshot_interval=10) == "ok"
    assert ra.trigger_election(sid) == "ok"
    h.wait_leader(c.ids)
    replies = [ra.process_command(sid, ("a", i)) for i in range(40)]
    assert h.overview(sid)["snapshot_index"] > 0  # type: ignore[index]  # snapshots were taken
    assert [r[1] for r in replies] == list(range(1, 41)), replies
