"""Unit tests of the pure parts: the log view, quorum arithmetic, effect ordering."""

from __future__ import annotations

import pytest

from actors.raft import (
    AppendEntries,
    Campaign,
    Entry,
    PersistState,
    RaftLog,
    RequestVote,
    Send,
    Tick,
)
from actors.raft.quorum import committed_index, has_quorum, majority, vote_result

from .helpers import core, ents, sent


def test_log_terms_and_slices() -> None:
    log = RaftLog(ents("1/1 2/1 3/2"))
    assert (log.last_index, log.last_term) == (3, 2)
    assert log.term_at(0) == 0 and log.term_at(3) == 2 and log.term_at(4) is None
    assert [e.index for e in log.slice(2, 10)] == [2, 3]
    assert log.slice(4, 9) == ()


def test_log_rejects_gaps() -> None:
    with pytest.raises(ValueError):
        RaftLog([Entry(1, 2)])
    log = RaftLog()
    with pytest.raises(ValueError):
        log.append(Entry(1, 2))


def test_log_up_to_date_compares_last_term_then_length() -> None:
    log = RaftLog(ents("1/1 2/2"))
    assert log.is_up_to_date(1, 3)
    assert not log.is_up_to_date(9, 1)
    assert log.is_up_to_date(2, 2) and not log.is_up_to_date(1, 2)


def test_merge_skips_matching_and_cuts_at_conflict() -> None:
    log = RaftLog(ents("1/1 2/1 3/1"))
    assert log.merge(tuple(ents("2/1 3/1")), floor=0) == (0, ())
    frm, new = log.merge(tuple(ents("3/2 4/2")), floor=0)
    assert frm == 3 and [e.term for e in new] == [2, 2]
    assert [e.term for e in log.entries()] == [1, 1, 2, 2]


def test_merge_never_cuts_committed_entries() -> None:
    log = RaftLog(ents("1/1 2/1"))
    with pytest.raises(AssertionError):
        log.merge(tuple(ents("2/2")), floor=2)


def test_conflict_hint_and_last_index_of_term() -> None:
    log = RaftLog(ents("1/1 2/2 3/2 4/2 5/3"))
    assert log.conflict_hint(4) == (2, 2)
    assert log.conflict_hint(9) == (6, 0)
    assert log.last_index_of_term(2, 5) == 4
    assert log.last_index_of_term(2, 3) == 3
    assert log.last_index_of_term(4, 5) == 0


def test_quorum_math() -> None:
    assert [majority(range(n)) for n in (1, 2, 3, 4, 5)] == [1, 2, 2, 3, 3]
    assert has_quorum({1, 2, 3}, {1, 3}) and not has_quorum({1, 2, 3}, {1, 9})
    assert not has_quorum(set(), {1})
    assert committed_index({1, 2, 3}, {1: 5, 2: 3, 3: 1}) == 3
    assert committed_index({1, 2, 3, 4}, {1: 5, 2: 3, 3: 1, 4: 9}) == 3
    assert vote_result({1, 2, 3}, {1: True}) == "pending"
    assert vote_result({1, 2, 3}, {1: True, 2: True}) == "won"
    assert vote_result({1, 2, 3}, {1: True, 2: False, 3: False}) == "lost"


def test_term_bump_then_vote_persists_once_before_sending() -> None:
    c = core(1, pre_vote=False, check_quorum=False)
    effects = c.step(RequestVote(4, 2, 0, 0))
    assert effects[0] == PersistState(4, 2)
    assert sum(isinstance(e, PersistState) for e in effects) == 1
    assert isinstance(effects[-1], Send)


def test_candidate_persists_before_requesting_votes() -> None:
    c = core(1, pre_vote=False)
    effects = c.step(Campaign())
    kinds = [type(e).__name__ for e in effects]
    assert kinds.index("PersistState") < kinds.index("Send")


def test_non_voter_never_campaigns() -> None:
    c = core(9, voters=(1, 2, 3))
    for _ in range(100):
        assert c.step(Tick()) == []
    assert c.role == "follower" and c.term == 0


def test_cores_share_no_state() -> None:
    a, b = core(1), core(1)
    a.step(AppendEntries(1, 2, 0, 0, tuple(ents("1/1")), 0))
    assert b.log.last_index == 0 and b.term == 0


def test_unknown_event_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        core(1).step("hello")  # type: ignore[arg-type]


def test_log_compact_and_restore() -> None:
    log = RaftLog(ents("1/1 2/1 3/2 4/2"))
    log.compact(2)
    assert (log.first_index, log.last_index, log.term_at(2), log.term_at(1)) == (3, 4, 1, None)
    assert [e.index for e in log.slice(1, 9)] == [3, 4]
    log.restore(3, 2)
    assert [e.index for e in log.entries()] == [4]
    log.restore(9, 5)
    assert (log.entries(), log.last_index, log.last_term) == ((), 9, 5)
    with pytest.raises(ValueError):
        log.compact(3)


def test_peer_down_of_the_leader_ends_its_lease_and_campaigns_soon() -> None:
    from actors.raft import Heartbeat, PeerDown, RoleChanged

    c = core(2, election_ticks=10)
    c.step(Heartbeat(1, 1, 0))
    assert (c.leader, c.role) == (1, "follower")
    # A vote request for term 2 is ignored while the leader's lease holds.
    assert c.step(RequestVote(2, 3, 0, 0, pre_vote=True)) == []
    assert c.step(PeerDown(3)) == []  # not our leader: nothing happens
    effects = c.step(PeerDown(1))
    assert effects == [RoleChanged("follower", 1, None)]
    granted = sent(c.step(RequestVote(2, 3, 0, 0, pre_vote=True)))
    assert granted and granted[0].msg.granted  # lease gone: pre-vote granted
    ticks = 0
    while c.role == "follower" and ticks < 10:
        c.step(Tick())
        ticks += 1
    assert c.role == "pre_candidate" and 1 <= ticks <= 5  # well before 10..19 ticks


def test_propose_many_appends_one_batch_and_answers_each() -> None:
    from actors.raft import PersistEntries, ProposeMany, Rejected, Reply

    from .harness import Network
    from .helpers import elect

    net = Network(3)
    elect(net, 1)
    assert net.step(2, ProposeMany((("x", "a"),))) == [Reply("a", Rejected("not_leader", 1))]
    effects = net.step(1, ProposeMany((("x", "a"), ("y", "b"), ("z", None))))
    writes = [e for e in effects if isinstance(e, PersistEntries)]
    assert len(writes) == 1 and [e.command for e in writes[0].entries] == ["x", "y", "z"]
    appends = [e for e in sent(effects) if isinstance(e.msg, AppendEntries)]
    assert len(appends) == 2 and all(len(e.msg.entries) == 3 for e in appends)
    net.stabilize()
    lines = net.take_output().splitlines()
    assert "1 reply a accepted index=2" in lines and "1 reply b accepted index=3" in lines
    assert [e.command for e in net.applied[3]][-3:] == ["x", "y", "z"]
