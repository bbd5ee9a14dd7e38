"""Roles and elections: follower, pre-candidate, candidate, leader (§5.2, §9.6).

Rules of this module:
* Every term or vote change is followed at once by a `PersistState` effect, so
  it precedes any message that depends on it (a granted vote, a vote request).
* A member that is not in the voter set never campaigns.
* Election timeouts are randomised in [election_ticks, 2 * election_ticks)
  ticks, drawn from the core's seeded rng at every reset.
* Pre-vote (§9.6) does not touch the term: a pre-candidate asks "would you
  vote for me in term + 1?" and only a majority of yeses starts a real election.
* Leader lease (with check-quorum): a member that heard from a leader within
  the last election timeout ignores vote requests for a higher term, unless the
  request comes from a leadership transfer.
* A higher term in any message makes us a follower in that term (§5.1), except
  for pre-vote requests and granted pre-vote answers, which never change terms.
* Winning calls `roles.become_leader`; the caller (`core`) then asks
  `replication.maybe_commit`, since a single voter commits its no-op at once.
"""

from __future__ import annotations

from . import quorum
from .effects import Effect, PersistState, Send
from .messages import (
    AppendEntries,
    Heartbeat,
    HeartbeatResult,
    InstallSnapshot,
    Message,
    PeerDown,
    RequestVote,
    TimeoutNow,
    Vote,
)
from .roles import become_follower, become_leader, reset_election_timer, set_role
from .state import RaftState


def campaign(c: RaftState, out: list[Effect], transfer: bool) -> None:
    if c.id not in c.voters or c.role == "leader":
        return
    if c.opts.pre_vote and not transfer:
        _become_pre_candidate(c, out)
    else:
        _become_candidate(c, out, transfer)


def _request_votes(c: RaftState, term: int, pre: bool, transfer: bool, out: list[Effect]) -> None:
    msg = RequestVote(term, c.id, c.log.last_index, c.log.last_term, pre, transfer)
    for peer in sorted(c.voters):
        if peer != c.id:
            out.append(Send(peer, msg))


def _become_pre_candidate(c: RaftState, out: list[Effect]) -> None:
    c.votes = {c.id: True}
    reset_election_timer(c)
    set_role(c, "pre_candidate", None, out)
    if quorum.vote_result(c.voters, c.votes) == "won":
        _become_candidate(c, out, transfer=False)
    else:
        _request_votes(c, c.term + 1, True, False, out)


def _become_candidate(c: RaftState, out: list[Effect], transfer: bool) -> None:
    c.term += 1
    c.voted_for = c.id
    c.known_match = 0
    out.append(PersistState(c.term, c.id))
    c.votes = {c.id: True}
    reset_election_timer(c)
    set_role(c, "candidate", None, out)
    if quorum.vote_result(c.voters, c.votes) == "won":
        become_leader(c, out)
    else:
        _request_votes(c, c.term, False, transfer, out)


def tick_election(c: RaftState, out: list[Effect]) -> None:
    c.election_elapsed += 1
    if c.election_elapsed >= c.randomized_timeout:
        reset_election_timer(c)
        campaign(c, out, transfer=False)


def handle_peer_down(c: RaftState, ev: PeerDown, out: list[Effect]) -> None:
    """Our leader's node is gone: drop its lease and campaign soon (in 1..T/2 ticks)."""
    if c.role != "follower" or c.leader != ev.peer:
        return
    set_role(c, "follower", None, out)
    c.election_elapsed = 0
    c.randomized_timeout = 1 + c.rng.randrange(max(1, c.opts.election_ticks // 2))


def in_lease(c: RaftState) -> bool:
    return (
        c.opts.check_quorum
        and c.leader is not None
        and c.election_elapsed < c.opts.election_ticks
    )


def observe_term(c: RaftState, m: Message, out: list[Effect]) -> bool:
    """Apply the term rules to an incoming message; False means drop it."""
    if m.term > c.term:
        if isinstance(m, RequestVote):
            if in_lease(c) and not m.transfer:
                return False
            if m.pre_vote:
                return True
        elif isinstance(m, Vote) and m.pre_vote and m.granted:
            return True
        from_leader = isinstance(m, AppendEntries | Heartbeat | TimeoutNow | InstallSnapshot)
        leader = m.frm if from_leader else None
        become_follower(c, m.term, leader, out)
        return True
    if m.term < c.term:
        if isinstance(m, AppendEntries | Heartbeat | InstallSnapshot):
            out.append(Send(m.frm, HeartbeatResult(c.term, c.id)))  # tells it to step down
        elif isinstance(m, RequestVote):
            out.append(Send(m.frm, Vote(c.term, c.id, False, m.pre_vote)))
        return False
    return True


def handle_request_vote(c: RaftState, m: RequestVote, out: list[Effect]) -> None:
    up_to_date = c.log.is_up_to_date(m.last_index, m.last_term)
    if m.pre_vote:
        grant = m.term > c.term and up_to_date
        out.append(Send(m.frm, Vote(m.term if grant else c.term, c.id, grant, True)))
        return
    free = c.voted_for == m.frm or (c.voted_for is None and c.leader is None)
    grant = free and up_to_date
    if grant and c.voted_for != m.frm:
        c.voted_for = m.frm
        out.append(PersistState(c.term, c.voted_for))
    if grant:
        reset_election_timer(c)
    out.append(Send(m.frm, Vote(c.term, c.id, grant, False)))


def handle_vote(c: RaftState, m: Vote, out: list[Effect]) -> None:
    if c.role == "pre_candidate" and m.pre_vote:
        if m.term != (c.term + 1 if m.granted else c.term):
            return
    elif c.role == "candidate" and not m.pre_vote:
        if m.term != c.term:
            return
    else:
        return
    if m.frm in c.voters:
        c.votes[m.frm] = m.granted
    result = quorum.vote_result(c.voters, c.votes)
    if result == "won":
        if c.role == "pre_candidate":
            _become_candidate(c, out, transfer=False)
        else:
            become_leader(c, out)
    elif result == "lost":
        become_follower(c, c.term, None, out)
