"""Snapshots and log compaction (§7).

Rules of this module:
* The state machine decides when to snapshot; the shell reports it with
  `SnapshotTaken(index, data)` for an applied index. The core records the
  snapshot with the configuration in force at that index, drops the entries
  up to it from memory, and asks storage to `PersistSnapshot`.
* A leader whose follower needs entries that were compacted away sends the
  snapshot instead, in chunks of `snapshot_chunk` bytes, one chunk in flight.
  The follower answers each chunk with the offset it holds; the leader moves
  on only when that offset grows. When the peer goes quiet, the replication
  retransmit timer restarts the transfer at offset 0, and the follower's
  answer (the offset it really holds) lets it resume from there. (The chunks
  are built by `roles.send_chunk`.) Chunks are only ever
  joined to chunks from the same leader and term: two members' snapshots at
  the same index hold the same state but need not be the same bytes.
* A follower installs a complete snapshot only if it is ahead of its commit
  index: it keeps the log suffix that matches the snapshot (§7), restores the
  state machine, persists the snapshot, and acknowledges it with an
  `AppendResult` only after `SnapshotWritten` came back.
"""

from __future__ import annotations

from .config import config_from_log
from .effects import Effect, PersistSnapshot, RestoreSnapshot, Send
from .messages import (
    AppendResult,
    InstallSnapshot,
    SnapshotMeta,
    SnapshotResult,
    SnapshotTaken,
    SnapshotWritten,
)
from .replication import Committed, stable_advanced
from .roles import apply_committed, heard_from_leader, reload_config, send_chunk
from .state import Incoming, RaftState


def handle_snapshot_taken(c: RaftState, ev: SnapshotTaken, out: list[Effect]) -> None:
    if ev.index <= c.log.snapshot_index or ev.index > c.applied:
        return
    term = c.log.term_at(ev.index)
    assert term is not None
    meta = SnapshotMeta(ev.index, term, config_from_log(c.log, c.base_voters, ev.index))
    c.log.compact(ev.index)
    c.snapshot = (meta, ev.data)
    c.base_voters = meta.voters
    out.append(PersistSnapshot(meta, ev.data))


def handle_snapshot_result(c: RaftState, m: SnapshotResult, out: list[Effect]) -> None:
    """Advance on progress only: duplicates and stale answers are ignored, so
    duplicated messages cannot multiply the chunks in flight."""
    pr = c.progress.get(m.frm)
    if c.role != "leader" or pr is None or c.snapshot is None:
        return
    c.recent_active.add(m.frm)
    if m.index != pr.snap_index or m.offset <= pr.snap_offset:
        return
    pr.silent = 0
    pr.snap_offset = m.offset
    pr.probe_sent = False
    if m.offset < len(c.snapshot[1]):
        send_chunk(c, m.frm, out)
    else:
        pr.probe_sent = True  # wait for the AppendResult that follows installation


def handle_install_snapshot(c: RaftState, m: InstallSnapshot, out: list[Effect]) -> None:
    heard_from_leader(c, m.frm, out)
    meta = m.meta
    if meta.index <= c.commit:
        ack = min(c.stable, meta.index)
        out.append(Send(m.frm, AppendResult(c.term, c.id, True, ack)))
        return
    key = (m.term, m.frm, meta)
    inc = c.incoming if c.incoming is not None and c.incoming.key == key else None
    held = len(inc.buf) if inc is not None else 0
    if m.offset != held:
        out.append(Send(m.frm, SnapshotResult(c.term, c.id, meta.index, held)))
        return
    if inc is None:
        inc = c.incoming = Incoming(key)
    inc.buf += m.data
    out.append(Send(m.frm, SnapshotResult(c.term, c.id, meta.index, len(inc.buf))))
    if m.done:
        c.incoming = None
        _install(c, meta, bytes(inc.buf), out)


def _install(c: RaftState, meta: SnapshotMeta, data: bytes, out: list[Effect]) -> None:
    if c.log.term_at(meta.index) != meta.term:
        # The log is discarded. Of what our disk holds, only the entries up to our old
        # commit index are known to agree with the leader; the rest may conflict, so
        # they must not count as durable matching entries (found by the simulator).
        c.stable = min(c.stable, c.commit)
    c.log.restore(meta.index, meta.term)
    c.snapshot = (meta, data)
    c.base_voters = meta.voters
    reload_config(c)
    c.commit = max(c.commit, meta.index)
    c.applied = meta.index
    c.known_match = max(c.known_match, meta.index)
    c.stable = min(c.stable, c.log.last_index)
    out.append(PersistSnapshot(meta, data))
    out.append(RestoreSnapshot(meta, data))
    apply_committed(c, out)


def handle_snapshot_written(
    c: RaftState, ev: SnapshotWritten, out: list[Effect]
) -> Committed | None:
    if ev.index > c.log.snapshot_index or ev.index <= c.stable:
        return None
    c.stable = ev.index
    return stable_advanced(c, out)
