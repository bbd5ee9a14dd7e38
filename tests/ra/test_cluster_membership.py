"""ra membership changes on a real cluster under load: a fourth member joins and catches
up, then a member leaves, while a client keeps writing; nothing acknowledged is lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actors import Node, erlang, ra
from tests.ra import ra_helpers as h


def test_add_then_remove_a_member_under_load(dist_node: Node, peers: Any,
                                             tmp_path: Path) -> None:
    c = h.Cluster(peers, tmp_path, "mb")
    nodes = c.add_nodes([f"mb{i}" for i in range(4)])
    leader = c.start(nodes[:3], h.log_machine())
    term = h.overview(leader)["term"]  # type: ignore[index]
    new = c.sid(nodes[3])
    leaving = next(s for s in c.ids if s != leader)

    w = erlang.spawn(h.writer, erlang.self(), leader, "w", 3000)
    h.wait_writer_progress(w, 30)

    # add a fourth member, then start it with the new member list
    added = ra.add_member(leader, new)
    assert added[0] == "ok" and added[2] == leader, added
    assert ra.start_server(h.SYSTEM, c.name, new, h.log_machine(), [*c.ids, new]) == "ok"
    c.ids = [*c.ids, new]
    commit_then = h.overview(leader)["commit_index"]  # type: ignore[index]
    h.poll(lambda: (v := h.overview(new)) and v["last_applied"] >= commit_then, 10,
           what="the new member applying what was committed when it joined")
    for sid in c.ids:
        assert h.poll(lambda s=sid: ra.members(s)[:2] == ("ok", sorted(c.ids)), 5,
                      what=f"{sid} knowing four members")
    h.wait_writer_progress(w, h.writer_progress(w) + 20)  # still committing

    # remove a follower: three members remain, and they keep committing
    removed = ra.remove_member(new, leaving)  # routed to the leader from the new member
    assert removed[0] == "ok" and removed[2] == leader, removed
    remaining = [s for s in c.ids if s != leaving]
    for sid in remaining:
        assert h.poll(lambda s=sid: ra.members(s) == ("ok", sorted(remaining), leader), 5,
                      what=f"{sid} knowing three members")
    h.wait_writer_progress(w, h.writer_progress(w) + 30)
    # the removed member hears from no leader any more: it either knows it was removed or
    # times out and campaigns; either way it must not disturb the others (pre-vote, lease)
    h.poll(lambda: (v := h.overview(leaving)) and (v["role"] != "follower"
                                                   or leaving not in v["members"]), 5,
           what="the removed member campaigning, or knowing it was removed")
    h.wait_writer_progress(w, h.writer_progress(w) + 10)
    results = h.stop_writer(w, "w")
    assert ra.stop_server(h.SYSTEM, leaving) == "ok"

    acked = [i for i, r in results if r[0] == "ok"]
    failed = [(i, r) for i, r in results if r[0] != "ok"]
    print(f"\n{len(acked)} writes acknowledged across the changes, failures: {failed[:5]}")
    assert not failed
    views = h.wait_caught_up(remaining)
    states = {s: h.local_state(s)[1] for s in remaining}
    assert len({repr(st) for st in states.values()}) == 1, "the remaining states differ"
    assert states[leader] == tuple(("w", i) for i in acked)
    # the removed member did not disturb anyone: same leader, same term throughout
    assert all(v["term"] == term and v["leader"] == leader for v in views.values()), views
    assert all(r[2] == leader for _, r in results)
