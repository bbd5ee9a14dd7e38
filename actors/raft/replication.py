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
* Committed entries are applied in order, exactly once, by `roles.apply_committed`.
* This module reaches nothing above it in the chain (see `state`): where the
  old code called into reads, membership or transfer, it now returns a fact
  (`Committed`, `Acked`, a lease round that ended) and `core` passes it on.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import quorum
from .effects import Effect, PersistEntries, Send
from .messages import AppendEntries, AppendResult, Heartbeat, HeartbeatResult, NodeId, Written
from .roles import (
    announce_commit,
    apply_committed,
    become_follower,
    broadcast_heartbeat,
    heard_from_leader,
    reload_config,
    send_append,
    tell_commit,
)
from .state import Progress, RaftState


@dataclass(frozen=True, slots=True)
class Committed:
    """Fact: the leader's commit index advanced to `index` (already applied and announced).
    `first_in_term` is True when it is the first commit of the leader's term."""

    index: int
    first_in_term: bool


@dataclass(frozen=True, slots=True)
class Acked:
    """Fact: `peer` acknowledged entries; `committed` if that advanced the commit index."""

    peer: NodeId
    committed: Committed | None


# ------------------------------------------------------------------ leader side


def handle_append_result(c: RaftState, m: AppendResult, out: list[Effect]) -> Acked | None:
    """Update `m.frm`'s progress and commit. A rejection is handled here (None); for an
    acknowledgement the caller passes the fact on, then calls `send_more` if still leader."""
    if c.role != "leader" or m.frm not in c.progress:
        return None
    pr = c.progress[m.frm]
    c.recent_active.add(m.frm)
    pr.silent = 0
    if not m.success:
        _on_reject(c, m, pr, out)
        return None
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
    return Acked(m.frm, maybe_commit(c, out))


def send_more(c: RaftState, peer: NodeId, out: list[Effect]) -> None:
    """After an acknowledgement: fill `peer`'s window, or tell it the commit index."""
    sent = False
    for _ in range(c.opts.max_inflight):
        if not send_append(c, peer, out):
            break
        sent = True
    if not sent:
        tell_commit(c, peer, c.progress[peer], out)


def _on_reject(c: RaftState, m: AppendResult, pr: Progress, out: list[Effect]) -> None:
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


def maybe_commit(c: RaftState, out: list[Effect]) -> Committed | None:
    """Advance the commit index to what a majority stores, if it is of our term; apply
    and announce it. The caller passes the returned fact on (reads, membership)."""
    match = {p: pr.match for p, pr in c.progress.items()}
    match[c.id] = c.stable
    n = quorum.committed_index(c.voters, match)
    if n <= c.commit or c.log.term_at(n) != c.term:
        return None
    first_in_term = c.log.term_at(c.commit) != c.term
    c.commit = n
    apply_committed(c, out)  # first: the clients' replies go out before the announcements
    announce_commit(c, out)
    return Committed(n, first_in_term)


def tick_leader(c: RaftState, out: list[Effect]) -> bool:
    """One tick of a leader. True when an election timeout's lease round ended with the
    leader still in office (the caller abandons a pending transfer)."""
    c.heartbeat_elapsed += 1
    c.election_elapsed += 1
    _retransmit(c, out)
    round_ended = False
    if c.election_elapsed >= c.opts.election_ticks:
        c.election_elapsed = 0
        if c.opts.check_quorum and not quorum.has_quorum(c.voters, c.recent_active | {c.id}):
            become_follower(c, c.term, None, out)  # check-quorum (§6.2)
            return False
        c.recent_active = set()
        round_ended = True
    if c.heartbeat_elapsed >= c.opts.heartbeat_ticks:
        c.heartbeat_elapsed = 0
        broadcast_heartbeat(c, out)
    return round_ended


def _retransmit(c: RaftState, out: list[Effect]) -> None:
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


def heartbeat_acked(c: RaftState, m: HeartbeatResult) -> bool:
    """A leader heard a heartbeat answer from a peer it tracks (the caller then passes
    the read context on and calls `probe_if_behind`)."""
    if c.role != "leader" or m.frm not in c.progress:
        return False
    c.recent_active.add(m.frm)
    return True


def probe_if_behind(c: RaftState, peer: NodeId, out: list[Effect]) -> None:
    pr = c.progress.get(peer)
    if c.role == "leader" and pr is not None and pr.match < c.log.last_index:
        pr.probe_sent = False  # the peer is reachable: probe again now
        send_append(c, peer, out)


# ------------------------------------------------------------------ follower side


def handle_append_entries(c: RaftState, m: AppendEntries, out: list[Effect]) -> None:
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
            reload_config(c)
    ae_last = max(prev + len(entries), m.prev_index + len(m.entries))
    c.known_match = max(c.known_match, ae_last)
    if min(m.commit, ae_last) > c.commit:
        c.commit = min(m.commit, ae_last)
        apply_committed(c, out)
    ack = min(c.stable, c.known_match)
    if ack >= ae_last and not (m.notice and ack == m.prev_index):
        out.append(Send(m.frm, AppendResult(c.term, c.id, True, ack)))


def handle_heartbeat(c: RaftState, m: Heartbeat, out: list[Effect]) -> None:
    heard_from_leader(c, m.frm, out)
    commit = min(m.commit, c.log.last_index)
    if commit > c.commit:
        c.commit = commit
        apply_committed(c, out)
    out.append(Send(m.frm, HeartbeatResult(c.term, c.id, m.read_ctx)))


def handle_written(c: RaftState, ev: Written, out: list[Effect]) -> Committed | None:
    if ev.index <= c.stable or c.log.term_at(ev.index) != ev.term:
        return None  # older than what we know, or overwritten since
    c.stable = ev.index
    return stable_advanced(c, out)


def stable_advanced(c: RaftState, out: list[Effect]) -> Committed | None:
    """Our own durable index grew: a leader may commit, a follower acknowledges."""
    if c.role == "leader":
        return maybe_commit(c, out)
    if c.leader is not None and c.leader != c.id:
        ack = min(c.stable, c.known_match)
        if ack > 0:
            out.append(Send(c.leader, AppendResult(c.term, c.id, True, ack)))
    return None
