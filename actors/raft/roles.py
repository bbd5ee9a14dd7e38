"""Role transitions, and every message the core sends: the base of the core's chain.

Rules of this module:
* Every role or leader change goes through `set_role`, which emits
  `RoleChanged`; every term change through `become_follower` (or the
  election module's candidate step), followed at once by `PersistState`.
* A leader that steps down fails what it promised to answer: its pending
  proposals and its reads get `Rejected("leadership_lost")`.
* The send helpers here (`send_append`, `broadcast_*`, commit notices, snapshot
  chunks) are the only builders of AppendEntries, Heartbeat and
  InstallSnapshot; flow control is in each peer's `Progress` (see `replication`).
* `leader_append` appends, persists and streams a leader's own entries; it does
  not commit: the caller asks `replication.maybe_commit` and passes the fact on.
* This module imports nothing above `state` in the chain (see `state`).
"""

from __future__ import annotations

from .config import config_from_log, last_config_index
from .effects import (
    Accepted,
    Apply,
    ArmNotice,
    Effect,
    PersistEntries,
    PersistState,
    Rejected,
    Reply,
    Role,
    RoleChanged,
    Send,
)
from .messages import AppendEntries, Entry, Heartbeat, InstallSnapshot, NodeId, NoticeDue
from .state import Progress, RaftState, ReadState, reset_election_timer

# ------------------------------------------------------------------ roles


def set_role(c: RaftState, role: Role, leader: NodeId | None, out: list[Effect]) -> None:
    changed = (role, leader) != (c.role, c.leader)
    c.role = role
    c.leader = leader
    if changed:
        out.append(RoleChanged(c.role, c.term, leader))


def become_follower(c: RaftState, term: int, leader: NodeId | None, out: list[Effect]) -> None:
    if c.role == "leader":
        _abandon_leadership(c, out)
    if term > c.term:
        c.term = term
        c.voted_for = None
        c.known_match = 0
        out.append(PersistState(c.term, None))
    c.votes = {}
    reset_election_timer(c)
    set_role(c, "follower", leader, out)


def _abandon_leadership(c: RaftState, out: list[Effect]) -> None:
    """Fail what this leader promised to answer; the outcome of proposals is unknown."""
    for index in sorted(c.pending):
        out.append(Reply(c.pending[index], Rejected("leadership_lost")))
    c.pending = {}
    for _, correlation, _ in c.reads.rounds:
        out.append(Reply(correlation, Rejected("leadership_lost")))
    for correlation in c.reads.waiting:
        out.append(Reply(correlation, Rejected("leadership_lost")))
    c.reads = ReadState()
    c.progress = {}
    c.transferee = None


def become_leader(c: RaftState, out: list[Effect]) -> None:
    """Take office: fresh progress for every peer, then a no-op entry of our term (§8).
    The caller asks `replication.maybe_commit` (a single voter commits at once)."""
    c.election_elapsed = 0
    c.heartbeat_elapsed = 0
    c.recent_active = set()
    c.pending = {}
    c.transferee = None
    c.reads = ReadState()
    c.progress = {p: Progress(c.log.last_index + 1) for p in sorted(c.voters) if p != c.id}
    set_role(c, "leader", c.id, out)
    leader_append(c, [Entry(c.term, c.log.last_index + 1, None, "noop")], out)


def heard_from_leader(c: RaftState, leader: NodeId, out: list[Effect]) -> None:
    if c.role != "follower" or c.leader != leader:
        become_follower(c, c.term, leader, out)
    c.election_elapsed = 0


# ------------------------------------------------------------------ configuration


def reload_config(c: RaftState) -> None:
    """After a truncation or a new config entry on a follower."""
    c.config_index = last_config_index(c.log)
    c.voters = config_from_log(c.log, c.base_voters)


def on_config_appended(c: RaftState, e: Entry) -> None:
    """A config entry takes effect when appended; a leader tracks exactly the new voters."""
    assert isinstance(e.command, frozenset)
    c.config_index = e.index
    c.voters = e.command
    if c.role == "leader":
        for peer in sorted(c.voters):
            if peer != c.id and peer not in c.progress:
                c.progress[peer] = Progress(c.log.last_index)
        for peer in sorted(c.progress):
            if peer not in c.voters:
                del c.progress[peer]


# ------------------------------------------------------------------ leader sends


def leader_append(c: RaftState, entries: list[Entry], out: list[Effect]) -> None:
    """Append our own entries, persist them, and stream them to the peers."""
    for e in entries:
        c.log.append(e)
        if e.kind == "config":
            on_config_appended(c, e)
    out.append(PersistEntries(entries[0].index, tuple(entries)))
    broadcast_append(c, out)


def broadcast_append(c: RaftState, out: list[Effect]) -> None:
    for peer in sorted(c.progress):
        send_append(c, peer, out)


def send_append(c: RaftState, peer: NodeId, out: list[Effect]) -> bool:
    """Send the next batch to `peer` if its flow control allows; True if sent."""
    pr = c.progress[peer]
    if pr.probing:
        if pr.probe_sent:
            return False
    elif len(pr.inflight) >= c.opts.max_inflight or pr.next > c.log.last_index:
        return False
    prev = pr.next - 1
    prev_term = c.log.term_at(prev)
    if prev_term is None:  # compacted away: the peer needs our snapshot (§7)
        return send_chunk(c, peer, out)
    entries = c.log.slice(pr.next, pr.next + c.opts.max_batch - 1)
    out.append(Send(peer, AppendEntries(c.term, c.id, prev, prev_term, entries, c.commit)))
    pr.commit_sent = max(pr.commit_sent, min(c.commit, prev + len(entries)))
    if pr.probing:
        pr.probe_sent = True
    elif entries:
        pr.inflight.append(entries[-1].index)
        pr.next = entries[-1].index + 1
    return True


def send_chunk(c: RaftState, peer: NodeId, out: list[Effect]) -> bool:
    """The next chunk of our snapshot, for a `peer` that needs entries before our log."""
    pr = c.progress[peer]
    if c.snapshot is None or pr.probe_sent:
        return False
    meta, data = c.snapshot
    if pr.snap_index != meta.index:
        pr.snap_index, pr.snap_offset = meta.index, 0
    lo = min(pr.snap_offset, len(data))
    chunk = data[lo : lo + c.opts.snapshot_chunk]
    done = lo + len(chunk) >= len(data)
    out.append(Send(peer, InstallSnapshot(c.term, c.id, meta, lo, chunk, done)))
    pr.probing = True
    pr.probe_sent = True
    return True


def tell_commit(c: RaftState, peer: NodeId, pr: Progress, out: list[Effect]) -> None:
    """An idle peer that holds entries committed since we last told it learns it now
    (or, with `defer_notice`, when the notice comes due), so it applies them without
    waiting for the next heartbeat."""
    if not c.opts.commit_notice or not owes_notice(c, pr):
        return
    if c.opts.defer_notice:
        arm_notice(c, out)
    else:
        send_notice(c, peer, pr, out)


def announce_commit(c: RaftState, out: list[Effect]) -> None:
    """Tell idle, caught-up followers the new commit index with an empty append (with
    `defer_notice`: ask for the `NoticeDue` that will)."""
    if not c.opts.commit_notice:
        return
    if c.opts.defer_notice:
        arm_notice(c, out)
        return
    for peer in sorted(c.progress):
        pr = c.progress[peer]
        if not pr.probing and not pr.inflight and pr.next == pr.match + 1:
            send_notice(c, peer, pr, out)


def owes_notice(c: RaftState, pr: Progress) -> bool:
    """`pr`'s peer is idle and holds committed entries it was not told are committed."""
    return not pr.probing and not pr.inflight and min(c.commit, pr.match) > pr.commit_sent


def send_notice(c: RaftState, peer: NodeId, pr: Progress, out: list[Effect]) -> None:
    """An empty append from the peer's next index, carrying the commit index."""
    prev = pr.next - 1
    out.append(Send(peer, AppendEntries(c.term, c.id, prev, c.log.term_at(prev) or 0, (),
                                        c.commit, notice=True)))
    pr.commit_sent = max(pr.commit_sent, min(c.commit, pr.match))


def arm_notice(c: RaftState, out: list[Effect]) -> None:
    """Ask for one `NoticeDue` if a peer is owed a notice and none is on its way."""
    if not c.notice_armed and any(owes_notice(c, pr) for pr in c.progress.values()):
        c.notice_armed = True
        c.notice_commit = c.commit
        out.append(ArmNotice())


def notices_due(c: RaftState, _ev: NoticeDue, out: list[Effect]) -> None:
    """`NoticeDue`: if the commit index stayed where it was when the notice was armed
    (commits stopped: no append will carry it soon), tell every peer still owed one; an
    append or heartbeat sent meanwhile told its peer already. If it moved, commits are
    flowing and appends carry them: ask for another `NoticeDue` instead."""
    c.notice_armed = False
    if c.role != "leader" or not c.opts.commit_notice:
        return
    if c.commit == c.notice_commit:
        for peer in sorted(c.progress):
            pr = c.progress[peer]
            if owes_notice(c, pr):
                send_notice(c, peer, pr, out)
    arm_notice(c, out)


def broadcast_heartbeat(c: RaftState, out: list[Effect]) -> None:
    ctx = c.reads.next_ctx - 1
    for peer in sorted(c.progress):
        commit = min(c.progress[peer].match, c.commit)
        out.append(Send(peer, Heartbeat(c.term, c.id, commit, ctx)))
        c.progress[peer].commit_sent = max(c.progress[peer].commit_sent, commit)


# ------------------------------------------------------------------ applying


def apply_committed(c: RaftState, out: list[Effect]) -> None:
    """Hand the newly committed entries to the machine, then answer their proposers."""
    if c.applied >= c.commit:
        return
    entries = c.log.slice(c.applied + 1, c.commit)
    out.append(Apply(entries))
    c.applied = c.commit
    for e in entries:
        correlation = c.pending.pop(e.index, None)
        if correlation is not None:
            out.append(Reply(correlation, Accepted(e.index)))
