"""Tests of the rules of the Raft paper; each names the section it checks.

References: "In Search of an Understandable Consensus Algorithm (Extended
Version)", Ongaro & Ousterhout, 2014, and Ongaro's dissertation (2014) for
pre-vote (§9.6), membership (§4.1), leadership transfer (§3.10) and ReadIndex
(§6.4).
"""

from __future__ import annotations

from actors.raft import (
    Accepted,
    AppendEntries,
    AppendResult,
    Apply,
    Campaign,
    ChangeMembership,
    Entry,
    HeartbeatResult,
    Options,
    PersistEntries,
    PersistState,
    Propose,
    ReadIndex,
    ReadReady,
    Rejected,
    Reply,
    RequestVote,
    Send,
    Tick,
    TransferLeadership,
    Vote,
    Written,
)

from .harness import Network
from .helpers import core, elect, ents, sent

# ---------------------------------------------------------------- §5.1 terms


def test_5_1_higher_term_turns_a_leader_into_a_follower() -> None:
    """§5.1: a server that sees a larger term updates its term and reverts to follower."""
    net = Network(3)
    elect(net, 1)
    leader = net.cores[1]
    effects = leader.step(AppendEntries(5, 2, 0, 0, (), 0))
    assert leader.role == "follower" and leader.term == 5 and leader.leader == 2
    assert PersistState(5, None) in effects


def test_5_1_stale_term_requests_are_rejected() -> None:
    """§5.1: a request with a stale term is rejected; the reply carries the newer term."""
    c = core(1, term=3)
    effects = c.step(RequestVote(2, 2, 10, 2))
    assert effects == [Send(2, Vote(3, 1, False))]
    effects = c.step(AppendEntries(2, 2, 0, 0, (), 0))
    assert c.term == 3 and all(s.msg.term == 3 for s in sent(effects))


# ---------------------------------------------------------------- §5.2 elections


def test_5_2_election_safety_one_vote_per_term() -> None:
    """§5.2: each server votes for at most one candidate in a term (first come, first served)."""
    c = core(1, pre_vote=False, check_quorum=False)
    first = c.step(RequestVote(1, 2, 0, 0))
    second = c.step(RequestVote(1, 3, 0, 0))
    assert sent(first)[0].msg == Vote(1, 1, True)
    assert sent(second)[0].msg == Vote(1, 1, False)
    assert c.voted_for == 2


def test_5_2_vote_is_persisted_before_it_is_sent() -> None:
    """§5.2 / Figure 2: votedFor is stable storage, updated before responding."""
    c = core(1, pre_vote=False, check_quorum=False)
    effects = c.step(RequestVote(1, 2, 0, 0))
    persist = next(i for i, e in enumerate(effects) if isinstance(e, PersistState))
    send = next(i for i, e in enumerate(effects) if isinstance(e, Send))
    assert persist < send and effects[persist] == PersistState(1, 2)


def test_5_2_vote_survives_a_restart() -> None:
    """§5.2 / Figure 2: votedFor is persistent, so a restarted server does not vote
    a second time in the same term."""
    net = Network(3, Options(pre_vote=False, check_quorum=False))
    net.step(1, RequestVote(1, 2, 0, 0))
    net.restart(1)
    effects = net.step(1, RequestVote(1, 3, 0, 0))
    assert sent(effects)[-1].msg == Vote(1, 1, False)
    assert net.cores[1].voted_for == 2


def test_5_2_candidate_wins_with_a_majority() -> None:
    """§5.2: a candidate that receives votes from a majority becomes leader."""
    c = core(1, voters=(1, 2, 3, 4, 5), pre_vote=False)
    c.step(Campaign())
    assert c.role == "candidate" and c.term == 1
    c.step(Vote(1, 2, True))
    assert c.role == "candidate"
    c.step(Vote(1, 3, True))
    assert c.role == "leader"


def test_5_2_split_vote_and_randomised_timeouts() -> None:
    """§5.2: without a majority nobody wins and the candidate gives up; randomised
    election timeouts make a repeat of the split unlikely."""
    c = core(1, voters=(1, 2, 3, 4), pre_vote=False)
    c.step(Campaign())
    c.step(Vote(1, 2, True))
    c.step(Vote(1, 3, False))
    assert c.role == "candidate"
    c.step(Vote(1, 4, False))
    assert c.role == "follower" and c.term == 1
    timeouts = {core(i).randomized_timeout for i in range(1, 6)}
    assert len(timeouts) > 1 and all(10 <= t < 20 for t in timeouts)


def test_5_2_follower_times_out_and_campaigns() -> None:
    """§5.2: a follower that hears nothing for an election timeout starts an election."""
    c = core(1, pre_vote=False)
    for _ in range(19):
        c.step(Tick())
    assert c.role == "candidate" and c.term == 1


# ---------------------------------------------------------------- §5.3 replication


def test_5_3_consistency_check_rejects_with_a_conflict_hint() -> None:
    """§5.3: a follower refuses entries whose predecessor does not match, and (end of §5.3)
    reports the conflicting term and its first index so the leader skips the whole term."""
    c = core(2, term=3, log="1/1 2/2 3/2 4/2")
    effects = c.step(AppendEntries(3, 1, 4, 3, ents("5/3"), 0))
    assert sent(effects)[0].msg == AppendResult(3, 2, False, 4, hint_index=2, hint_term=2)


def test_5_3_log_matching_truncates_only_at_a_conflict() -> None:
    """§5.3: existing entries that conflict are deleted with all that follow;
    entries that already match are kept (a stale, shorter append truncates nothing)."""
    c = core(2, term=3, log="1/1 2/1 3/1 4/1")
    c.step(AppendEntries(3, 1, 1, 1, ents("2/1"), 0))
    assert c.log.last_index == 4
    effects = c.step(AppendEntries(3, 1, 2, 1, (ents("3/3")[0],), 0))
    assert [e.term for e in c.log.entries()] == [1, 1, 3]
    assert PersistEntries(3, tuple(ents("3/3"))) in effects


def test_5_3_acknowledge_only_what_is_durable() -> None:
    """§5.3 with Figure 2's "before responding to RPCs": a follower acknowledges
    appended entries only after they are written."""
    c = core(2, term=1)
    effects = c.step(AppendEntries(1, 1, 0, 0, tuple(ents("1/1 2/1")), 0))
    assert not sent(effects)
    effects = c.step(Written(2, 1))
    assert sent(effects)[0].msg == AppendResult(1, 2, True, 2)


def test_5_3_duplicate_append_is_harmless() -> None:
    """§5.3 / §5.5: AppendEntries is idempotent; a duplicate changes nothing."""
    c = core(2, term=1)
    msg = AppendEntries(1, 1, 0, 0, tuple(ents("1/1 2/1")), 1)
    c.step(msg)
    c.step(Written(2, 1))
    again = c.step(msg)
    assert not any(isinstance(e, PersistEntries) for e in again)
    assert c.log.last_index == 2 and c.commit == 1


# ---------------------------------------------------------------- §5.4 safety


def test_5_4_1_election_restriction() -> None:
    """§5.4.1: a voter denies its vote to a candidate whose log is less up-to-date."""
    c = core(1, term=2, log="1/1 2/2", pre_vote=False)
    shorter = c.step(RequestVote(3, 2, 5, 1))  # higher index but older last term
    assert sent(shorter)[-1].msg == Vote(3, 1, False)
    c2 = core(1, term=2, log="1/1 2/2", pre_vote=False)
    same_term_shorter = c2.step(RequestVote(3, 2, 1, 2))
    assert sent(same_term_shorter)[-1].msg == Vote(3, 1, False)
    c3 = core(1, term=2, log="1/1 2/2", pre_vote=False)
    newer = c3.step(RequestVote(3, 2, 2, 2))
    assert sent(newer)[-1].msg == Vote(3, 1, True)


def test_5_4_2_figure_8_no_commit_by_counting_older_terms() -> None:
    """§5.4.2 / Figure 8: a leader never commits an entry of an earlier term by
    counting replicas; it commits it only indirectly, with one of its own term."""
    voters = (1, 2, 3, 4, 5)
    s1 = core(1, voters, term=3, log="1/1 2/2", pre_vote=False)
    s1.step(Campaign())
    for v in (2, 3, 4):
        s1.step(Vote(4, v, True))
    assert s1.role == "leader" and s1.term == 4  # its no-op 3/4 is not yet durable
    for peer in (2, 3):
        s1.step(AppendResult(4, peer, True, 2))  # entry 2/2 is now on a majority
    assert s1.commit == 0, "must not commit 2/2 (term 2) by counting replicas in term 4"
    s1.step(Written(3, 4))
    s1.step(AppendResult(4, 2, True, 3))
    effects = s1.step(AppendResult(4, 3, True, 3))
    assert s1.commit == 3
    applied = [e for eff in effects if isinstance(eff, Apply) for e in eff.entries]
    assert [(e.index, e.term) for e in applied] == [(1, 1), (2, 2), (3, 4)]


def test_5_4_leader_completeness_after_failover() -> None:
    """§5.4: a committed entry is present in the logs of all later leaders."""
    net = Network(3)
    elect(net, 1)
    net.propose(1, "x")
    net.stabilize()
    net.isolated = {1}
    for _ in range(100):
        net.tick(2)
        net.tick(3)
        net.stabilize()
        if net.leader() != 1:
            break
    new = net.leader()
    assert new in (2, 3) and net.cores[new].term > 1
    assert [e.command for e in net.cores[new].log.entries()][1] == "x"


def test_5_4_2_new_leader_commits_its_no_op() -> None:
    """§5.4.2 and §8: a new leader appends a no-op of its term, which commits earlier ones."""
    net = Network(3)
    elect(net, 1)
    entries = net.cores[1].log.entries()
    assert entries[-1].kind == "noop" and entries[-1].term == net.cores[1].term
    assert net.cores[1].commit == entries[-1].index


# ---------------------------------------------------------------- §6 membership


def test_6_config_takes_effect_when_appended_one_change_at_a_time() -> None:
    """§6 / dissertation §4.1: a server uses the newest configuration in its log,
    committed or not; a leader accepts one single-server change at a time."""
    net = Network(3)
    elect(net, 1)
    net.add_nodes(1, voters=(1, 2, 3))
    net.step(1, ChangeMembership("add", 4, "a4"))
    assert net.cores[1].voters == {1, 2, 3, 4}
    effects = net.step(1, ChangeMembership("add", 5, "a5"))
    assert Reply("a5", Rejected("busy", 1)) in effects
    net.stabilize()
    assert all(c.voters == {1, 2, 3, 4} for c in net.cores.values())


def test_6_truncated_config_reverts() -> None:
    """§6 / dissertation §4.1: if a config entry is truncated away, the previous config returns."""
    c = core(2, term=2, log="1/1")
    c.step(AppendEntries(2, 1, 1, 1, (Entry(2, 2, frozenset({1, 2, 3, 4}), "config"),), 0))
    assert c.voters == {1, 2, 3, 4}
    c.step(AppendEntries(3, 3, 1, 1, (Entry(3, 2, "x"),), 0))
    assert c.voters == {1, 2, 3}


# ---------------------------------------------------------------- §8 clients


def test_8_read_index_needs_a_heartbeat_round() -> None:
    """§8: a read-only request is answered only after the leader exchanges heartbeats
    with a majority, proving it has not been deposed."""
    net = Network(3)
    elect(net, 1)
    effects = net.step(1, ReadIndex("r"))
    assert not any(isinstance(e, ReadReady) for e in effects)
    net.stabilize()
    assert "1 read-ready r index=1" in net.take_output().splitlines()


def test_8_partitioned_leader_never_answers_reads() -> None:
    """§8: a leader cut off in a minority never answers a read (it may be stale)."""
    net = Network(3)
    elect(net, 1)
    net.isolated = {1}
    net.step(1, ReadIndex("stale"))
    for _ in range(30):
        net.tick(1)
        net.stabilize()
    output = net.take_output()
    assert "read-ready stale" not in output
    assert "1 reply stale rejected leadership_lost leader=None" in output.splitlines()


def test_8_new_leader_waits_for_its_no_op_before_reads() -> None:
    """§8: a new leader must commit an entry of its term before it knows the commit index."""
    c = core(1, pre_vote=False)
    c.step(Campaign())
    c.step(Vote(1, 2, True))
    effects = c.step(ReadIndex("r"))
    assert effects == []
    c.step(Written(1, 1))
    effects = c.step(AppendResult(1, 2, True, 1))
    assert not any(isinstance(e, ReadReady) for e in effects)  # a round is started now
    effects = c.step(HeartbeatResult(1, 2, 1))
    assert ReadReady("r", 1) in effects


def test_8_proposal_to_a_follower_names_the_leader() -> None:
    """§8: a client that contacts a follower is redirected to the leader."""
    net = Network(3)
    elect(net, 1)
    effects = net.step(2, Propose("x", "c"))
    assert effects == [Reply("c", Rejected("not_leader", 1))]
    net.step(1, Propose("y", "d"))
    net.stabilize()
    assert "1 reply d accepted index=2" in net.take_output().splitlines()


# ---------------------------------------------------------------- dissertation extensions


def test_9_6_pre_vote_does_not_raise_terms() -> None:
    """Dissertation §9.6: a partitioned server's failed pre-votes leave every term unchanged."""
    net = Network(3)
    elect(net, 1)
    net.isolated = {3}
    net.tick(3, 50)
    net.stabilize()
    assert net.cores[3].term == 1 and net.cores[3].role == "pre_candidate"
    net.isolated = set()
    net.tick(1)
    net.stabilize()
    assert net.cores[1].role == "leader" and net.cores[1].term == 1


def test_6_2_check_quorum_steps_down() -> None:
    """Dissertation §6.2: a leader that hears from no majority for an election
    timeout steps down."""
    net = Network(3)
    elect(net, 1)
    net.isolated = {1}
    net.tick(1, 20)
    assert net.cores[1].role == "follower"


def test_3_10_leadership_transfer() -> None:
    """Dissertation §3.10: the target catches up, gets TimeoutNow and wins at once."""
    net = Network(3)
    elect(net, 1)
    net.step(1, TransferLeadership(3))
    net.stabilize()
    assert net.leader() == 3 and net.cores[3].term == 2


def test_single_member_commits_alone() -> None:
    """§5.3 degenerate case: a one-member cluster commits once its own write is durable."""
    c = core(1, voters=(1,))
    c.step(Campaign())
    assert c.role == "leader"
    c.step(Propose("x", "p"))
    effects = c.step(Written(2, 1))
    assert Reply("p", Accepted(2)) in effects
