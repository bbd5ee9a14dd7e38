"""One Raft member's durable state: hard state, snapshot, segments; and its recovery.

Rules of this module:
* Layout under the system data dir D: ``D/members/<uid>/meta`` (term and
  vote), ``.../segments/*.seg`` (`_segments`), ``.../snapshots/*.snap``
  (`_snapshots`). The node's shared WAL lives in ``D/wal`` (`_wal`).
* A uid is 1-200 characters of ``A-Z a-z 0-9 _ . @ -``, not starting with a
  punctuation character (so never ``.`` or ``..``); anything else is a
  ValueError. It should name one incarnation of a member (see `_wal`).
* `save_hard_state` is the core's `PersistState` barrier: it returns once the
  term and vote are durable (tmp + fsync + rename + directory fsync).
* `recover(wal_ops)` rebuilds what the core needs on restart: the latest
  snapshot, then the segment ops, then this uid's WAL ops (from
  `Wal.recover()`), applied in order; the entries are those contiguous from
  snapshot index + 1 (anything at or below the snapshot index is dropped),
  cut, with a warning, where a term falls (that suffix is stale, see below).
  The result feeds `RaftCore(hard_state=..., entries=..., snapshot=...)`.
* **Installing a snapshot** (`PersistSnapshot`): the core keeps the entries
  after the snapshot only if its log held the snapshot's (index, term);
  otherwise it drops them all (§7). Storage mirrors that through the WAL, so
  the drop is ordered with the entry writes: *before* `save_snapshot`, the
  shell appends ``wal.append(uid, core.log.last_index + 1, ())`` (a no-op
  unless the core dropped entries) and flushes it. Without it a restart would
  bring back the dropped, possibly conflicting, entries.
* `save_snapshot` writes the snapshot durably, then deletes the segment files
  it made redundant (`SegmentLog.compact`).
* Several `MemberStore`s may serve one member at once (its process saves the
  hard state, the node's segment writer the segments and snapshots): nothing
  read from disk is cached, except by `SegmentLog`, whose one writer is the
  segment writer.
* `sync=False` skips every fsync: tests and benchmarks only.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass

from actors.raft.messages import Entry, HardState, NodeId, SnapshotMeta

from . import _snapshots
from ._records import (
    CorruptLog,
    Op,
    atomic_write,
    dumps,
    encode,
    fsync_dir,
    loads,
    make_dirs,
    scan,
)
from ._segments import DEFAULT_SEGMENT_BYTES, SegmentLog

log = logging.getLogger("actors.ra")

_UID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,199}$")


def check_uid(uid: str) -> str:
    """`uid` if it is a safe directory name (see the module rules), else ValueError."""
    if not isinstance(uid, str) or not _UID.match(uid):
        raise ValueError(
            f"bad member uid {uid!r}: use 1-200 of A-Z a-z 0-9 _ . @ -, "
            "starting with a letter or digit"
        )
    return uid


def _is_node_id(x: object) -> bool:
    """None, an int (tests) or a (name, node) pair (ra's server ids)."""
    if isinstance(x, tuple):
        return len(x) == 2 and all(isinstance(part, str) for part in x)
    return x is None or isinstance(x, int)


def _monotonic(entries: list[Entry], term: int, where: str) -> list[Entry]:
    """`entries` up to the first whose term is below its predecessor's (the first
    one's predecessor is the snapshot). Terms never fall along a log, so what
    follows is a stale suffix whose drop was never stored: never committed,
    safe to drop, and logged, since it means a shell broke the snapshot rule."""
    for pos, e in enumerate(entries):
        if e.term < term:
            log.warning(
                "%s: entry %d has term %d after term %d: dropping it and the %d after it",
                where, e.index, e.term, term, len(entries) - pos - 1,
            )
            return entries[:pos]
        term = e.term
    return entries


@dataclass(frozen=True, slots=True)
class Recovered:
    """What a restarting member's core is built from."""

    hard_state: HardState
    snapshot: tuple[SnapshotMeta, bytes] | None
    entries: list[Entry]


class MemberStore:
    """The durable state of member `uid` under `data_dir`; see the module rules."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        uid: str,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        sync: bool = True,
    ) -> None:
        self.uid = check_uid(uid)
        self.directory = os.path.join(os.fspath(data_dir), "members", uid)
        self.sync = sync
        self.segments = SegmentLog(self.directory, segment_bytes, sync)
        self._snapshots = os.path.join(self.directory, "snapshots")
        self._meta = os.path.join(self.directory, "meta")

    # ------------------------------------------------------------ hard state

    def save_hard_state(self, term: int, voted_for: NodeId | None) -> None:
        """Make (term, voted_for) durable before returning."""
        if term < 0:
            raise ValueError(f"term must be >= 0, got {term}")
        make_dirs(self.directory, self.sync)
        atomic_write(self._meta, [encode(dumps((term, voted_for)))], sync=self.sync)

    def hard_state(self) -> HardState:
        """The last saved hard state (term 0, no vote if none was), read from disk:
        another `MemberStore` of the same member may have saved it. A leftover
        ``meta.tmp`` (a save cut short) is ignored; the next save replaces it."""
        try:
            with open(self._meta, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return HardState()
        found = scan(data, self._meta)
        if found.torn or len(found.payloads) != 1:
            raise CorruptLog(self._meta, found.end, f"damaged hard state {found.detail}".strip())
        value = loads(found.payloads[0], self._meta, 0)
        if isinstance(value, tuple) and len(value) == 2:
            term, voted_for = value
            if isinstance(term, int) and term >= 0 and _is_node_id(voted_for):
                return HardState(term, voted_for)
        raise CorruptLog(self._meta, 0, f"not a hard state: {value!r}")

    # ------------------------------------------------------------ log and snapshot

    def flush_segments(self, ops: Sequence[Op]) -> None:
        """Append ops from a rolled WAL file to this member's segments (durable)."""
        self.segments.write(ops)

    def save_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        """Store the snapshot durably, then delete the segment files below it."""
        _snapshots.write(self._snapshots, meta, data, sync=self.sync)
        self.segments.compact(meta.index)

    def snapshot(self) -> tuple[SnapshotMeta, bytes] | None:
        """The latest durable snapshot."""
        return _snapshots.latest(self._snapshots)

    def recover(self, wal_ops: Sequence[Op]) -> Recovered:
        """Hard state, snapshot and entries after it; `wal_ops` are this uid's WAL ops."""
        snap = self.snapshot()
        image = self.segments.replay()
        image.apply_ops(wal_ops)
        base, term = (snap[0].index, snap[0].term) if snap is not None else (0, 0)
        entries = _monotonic(image.contiguous(base), term, self.directory)
        last = base + len(entries)
        beyond = [i for i in image.entries if i > last]
        if beyond:
            log.warning(
                "%s: %d stored entries after index %d do not follow on and are ignored "
                "(first %d)", self.directory, len(beyond), last, min(beyond),
            )
        return Recovered(self.hard_state(), snap, entries)

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self.segments.close()

    def delete(self) -> None:
        """delete_cluster: remove everything this member stored."""
        self.close()
        self.segments = SegmentLog(self.directory, self.segments.max_file_bytes, self.sync)
        if os.path.isdir(self.directory):
            shutil.rmtree(self.directory)
            fsync_dir(os.path.dirname(self.directory), self.sync)
