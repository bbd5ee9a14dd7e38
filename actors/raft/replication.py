"""Log replication: pipelined AppendEntries, acknowledgements and commit (§5.3, §5.4.2).

Rules of this module:
* The leader tracks a `Progress` per peer. In *probe* mode it has at most one
  AppendEntries outstanding, to find where the logs match. In *replicate*
  mode it streams batches of at most `max_batch` entries, optimistically
  advancing `next`, with at most `max_inflight` batches unacknowledged.
* A rejection carries a hint (conflict term and its first index) so the leader
  skips a whole conflicting term per round trip. Stale rejections (at or below
  the known match) are ignored.
* A peer that acknowledged nothing for half an election timeout while behind
  is re-sent from its match point (covers lost messages).
* A follower acknowledges only entries that are durable (`Written` came back)
  and known to match this term's leader. The leader counts itself only up to
  its own durable index.
* A commit notice (an empty append to a follower whose match the leader knows
  to be `prev_index`, sent to carry a new commit index) is not acknowledged
  unless the follower has more to say; a rejection is always answered.
* The leader commits only entries of its own term by counting replicas;
  earlier entries commit indirectly (§5.4.2, Figure 8).
* Committed entries are applied in order, exactly once, by `apply_committed`.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from . import election, membership, quorum, read_index, snapshot, transfer
from .effects import Accepted, Apply, Effect, PersistEntries, Reply, Send
from .messages import (
    AppendEntries,
    AppendResult,
    Entry,
    Heartbeat,
    HeartbeatResult,
    NodeId,
    Written,
)

if TYPE_CHECKING:
    from .core import RaftCore


class Progress:
    """The leader's view of one follower."""

    __slots__ = (
        "commit_sent", "inflight", "match", "next", "probe_sent", "probing", "silent",
        "snap_index", "snap_offset",
    )

    def __init__(self, next_index: int) -> None:
        self.match = 0
        self.next = next_index
        self.probing = True
        self.probe_sent = False
        self.inflight: deque[int] = deque()  # last index of each unacknowledged batch
        self.silent = 0  # ticks without an AppendResult while behind
        self.snap_index = 0  # snapshot being sent, and the byte offset the peer holds
        self.snap_offset = 0
        self.commit_sent = 0  # the highest commit index this peer was told

    def __repr__(self) -> str:
        mode = "probe" if self.probing else "replicate"
        return f"Progress({mode} match={self.match} next={self.next})"


# ------------------------------------------------------------------ leader side


def leader_append(c: RaftCore, entries: list[Entry], out: list[Effect]) -> None:
    """Append our own entries, persist them, and stream them to the peers."""
    for e in entries:
        c.log.append(e)
        if e.kind == "config":
            membership.on_config_appended(c, e)
    out.append(PersistEntries(entries[0].index, tuple(entries)))
    broadcast_append(c, out)
    maybe_commit(c, out)  # a single-voter cluster may already have a quorum


def broadcast_append(c: RaftCore, out: list[Effect]) -> None:
    for peer in sorted(c.progress):
        send_append(c, peer, out)


def send_append(c: RaftCore, peer: NodeId, out: list[Effect]) -> bool:
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
        return snapshot.send_chunk(c, peer, out)
    entries = c.log.slice(pr.next, pr.next + c.opts.max_batch - 1)
    out.append(Send(peer, AppendEntries(c.term, c.id, prev, prev_term, entries, c.commit)))
    pr.commit_sent = max(pr.commit_sent, min(c.commit, prev + len(entries)))
    if pr.probing:
        pr.probe_sent = True
    elif entries:
        pr.inflight.append(entries[-1].index)
        pr.next = entries[-1].index + 1
    return True


def handle_append_result(c: RaftCore, m: AppendResult, out: list[Effect]) -> None:
    if c.role != "leader" or m.frm not in c.progress:
        return
    pr = c.progress[m.frm]
    c.recent_active.add(m.frm)
    pr.silent = 0
    if not m.success:
        _on_reject(c, m, pr, out)
        return
    if m.index > pr.match:
        pr.match = m.index
    if pr.probing:
        pr.probing = False
        pr.probe_sent = False
        pr.inflight.clear()
        pr.next = pr.match + 1
    pr.next = max(pr.next, pr.match + 1)
    while pr.inflight and pr.inflight[0] <= pr.match:
        pr.inflight.popleft()
    maybe_commit(c, out)
    if c.role != "leader":
        return
    transfer.on_progress(c, m.frm, out)
    sent = False
    for _ in range(c.opts.max_inflight):
        if not send_append(c, m.frm, out):
            break
        sent = True
    if not sent:
        _tell_commit(c, m.frm, pr, out)


def _tell_commit(c: RaftCore, peer: NodeId, pr: Progress, out: list[Effect]) -> None:
    """An idle peer that holds entries committed since we last told it learns it now,
    so it applies them without waiting for the next heartbeat."""
    known = min(c.commit, pr.match)
    if known > pr.commit_sent and not pr.probing and not pr.inflight and c.opts.commit_notice:
        prev = pr.next - 1
        out.append(Send(peer, AppendEntries(c.term, c.id, prev, c.log.term_at(prev) or 0, (),
                                            c.commit, notice=True)))
        pr.commit_sent = known


def _on_reject(c: RaftCore, m: AppendResult, pr: Progress, out: list[Effect]) -> None:
    if m.index <= pr.match or (pr.probing and m.index != pr.next - 1):
        return  # stale
    nxt = m.hint_index
    if m.hint_term:
        j = c.log.last_index_of_term(m.hint_term, m.index)
        if j > 0:
            nxt = j + 1
    pr.next = max(pr.match + 1, min(nxt, m.index))
    pr.probing = True
    pr.probe_sent = False
    pr.inflight.clear()
    send_append(c, m.frm, out)


def maybe_commit(c: RaftCore, out: list[Effect]) -> None:
    """Advance the commit index to what a majority stores, if it is of our term."""
    match = {p: pr.match for p, pr in c.progress.items()}
    match[c.id] = c.stable
    n = quorum.committed_index(c.voters, match)
    if n <= c.commit or c.log.term_at(n) != c.term:
        return
    first_in_term = c.log.term_at(c.commit) != c.term
    c.commit = n
    apply_committed(c, out)  # first: the clients' replies go out before the announcements
    _announce_commit(c, out)
    if first_in_term:
        read_index.on_term_committed(c, out)
    membership.on_commit(c, out)


def _announce_commit(c: RaftCore, out: list[Effect]) -> None:
    """Tell idle, caught-up followers the new commit index with an empty append."""
    if not c.opts.commit_notice:
        return
    for peer in sorted(c.progress):
        pr = c.progress[peer]
        if not pr.probing and not pr.inflight and pr.next == pr.match + 1:
            prev = pr.next - 1
            prev_term = c.log.term_at(prev) or 0
            out.append(Send(peer, AppendEntries(c.term, c.id, prev, prev_term, (), c.commit,
                                                notice=True)))
            pr.commit_sent = max(pr.commit_sent, min(c.commit, pr.match))


def apply_committed(c: RaftCore, out: list[Effect]) -> None:
    if c.applied >= c.commit:
        return
    entries = c.log.slice(c.applied + 1, c.commit)
    out.append(Apply(entries))
    c.applied = c.commit
    for e in entries:
        correlation = c.pending.pop(e.index, None)
        if correlation is not None:
            out.append(Reply(correlation, Accepted(e.index)))


def broadcast_heartbeat(c: RaftCore, out: list[Effect]) -> None:
    ctx = c.reads.next_ctx - 1
    for peer in sorted(c.progress):
        commit = min(c.progress[peer].match, c.commit)
        out.append(Send(peer, Heartbeat(c.term, c.id, commit, ctx)))
        c.progress[peer].commit_sent = max(c.progress[peer].commit_sent, commit)


def tick_leader(c: RaftCore, out: list[Effect]) -> None:
    c.heartbeat_elapsed += 1
    c.election_elapsed += 1
    _retransmit(c, out)
    if c.election_elapsed >= c.opts.election_ticks:
        c.election_elapsed = 0
        if c.opts.check_quorum and not quorum.has_quorum(c.voters, c.recent_active | {c.id}):
            election.become_follower(c, c.term, None, out)  # check-quorum (§6.2)
            return
        c.recent_active = set()
        transfer.abort(c)
    if c.heartbeat_elapsed >= c.opts.heartbeat_ticks:
        c.heartbeat_elapsed = 0
        broadcast_heartbeat(c, out)


def _retransmit(c: RaftCore, out: list[Effect]) -> None:
    for peer in sorted(c.progress):
        pr = c.progress[peer]
        if pr.match >= c.log.last_index:
            pr.silent = 0
            continue
        pr.silent += 1
        if pr.silent >= max(2, c.opts.election_ticks // 2):
            pr.silent = 0
            pr.probing = True
            pr.probe_sent = False
            pr.inflight.clear()
            pr.next = pr.match + 1
            pr.snap_offset = 0
            send_append(c, peer, out)


def handle_heartbeat_result(c: RaftCore, m: HeartbeatResult, out: list[Effect]) -> None:
    if c.role != "leader" or m.frm not in c.progress:
        return
    c.recent_active.add(m.frm)
    read_index.on_ack(c, m.frm, m.read_ctx, out)
    pr = c.progress.get(m.frm)
    if c.role == "leader" and pr is not None and pr.match < c.log.last_index:
        pr.probe_sent = False  # the peer is reachable: probe again now
        send_append(c, m.frm, out)


# ------------------------------------------------------------------ follower side


def heard_from_leader(c: RaftCore, leader: NodeId, out: list[Effect]) -> None:
    if c.role != "follower" or c.leader != leader:
        election.become_follower(c, c.term, leader, out)
    c.election_elapsed = 0


def handle_append_entries(c: RaftCore, m: AppendEntries, out: list[Effect]) -> None:
    heard_from_leader(c, m.frm, out)
    prev, prev_term, entries = m.prev_index, m.prev_term, m.entries
    if prev < c.commit:  # our committed prefix matches any leader's log (§5.4)
        entries = tuple(e for e in entries if e.index > c.commit)
        prev, prev_term = c.commit, c.log.term_at(c.commit) or 0
        if m.prev_index + len(m.entries) <= c.commit:
            entries = ()
    if not c.log.matches(prev, prev_term):
        hint_index, hint_term = c.log.conflict_hint(prev)
        out.append(Send(m.frm, AppendResult(c.term, c.id, False, prev, hint_index, hint_term)))
        return
    last_before = c.log.last_index
    from_index, new = c.log.merge(entries, floor=c.commit)
    if new:
        c.stable = min(c.stable, from_index - 1)
        out.append(PersistEntries(from_index, new))
        if from_index <= last_before or any(e.kind == "config" for e in new):
            membership.reload_config(c)
    ae_last = max(prev + len(entries), m.prev_index + len(m.entries))
    c.known_match = max(c.known_match, ae_last)
    if min(m.commit, ae_last) > c.commit:
        c.commit = min(m.commit, ae_last)
        apply_committed(c, out)
    ack = min(c.stable, c.known_match)
    if ack >= ae_last and not (m.notice and ack == m.prev_index):
        out.append(Send(m.frm, AppendResult(c.term, c.id, True, ack)))


def handle_heartbeat(c: RaftCore, m: Heartbeat, out: list[Effect]) -> None:
    heard_from_leader(c, m.frm, out)
    commit = min(m.commit, c.log.last_index)
    if commit > c.commit:
        c.commit = commit
        apply_committed(c, out)
    out.append(Send(m.frm, HeartbeatResult(c.term, c.id, m.read_ctx)))


def handle_written(c: RaftCore, ev: Written, out: list[Effect]) -> None:
    if ev.index <= c.stable or c.log.term_at(ev.index) != ev.term:
        return  # older than what we know, or overwritten since
    c.stable = ev.index
    if c.role == "leader":
        maybe_commit(c, out)
    elif c.leader is not None and c.leader != c.id:
        ack = min(c.stable, c.known_match)
        if ack > 0:
            out.append(Send(c.leader, AppendResult(c.term, c.id, True, ack)))
