"""Property: WAL + segments + snapshots recover every member's log as a plain model says.

Random runs of appends (overwrites included), group-commit flushes, WAL
rollovers, segment flushes (with rolled files sometimes left undeleted, as a
crash between flush and delete leaves them), local and installed snapshots and
crashes (which lose what was not flushed). After every crash, and at the end,
a full recovery by new objects must give each member exactly the model's
snapshot and its contiguous entries after it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.ra._member_store import MemberStore
from actors.ra._records import Op
from actors.ra._wal import Wal
from actors.raft.messages import Entry, SnapshotMeta

UIDS = ("u0", "u1", "u2")


@dataclass
class Model:
    """The sim's disk model: index -> entry; an op drops >= from_index, then stores."""

    durable: dict[str, dict[int, Entry]] = field(default_factory=lambda: {u: {} for u in UIDS})
    pending: list[tuple[str, int, tuple[Entry, ...]]] = field(default_factory=list)
    snaps: dict[str, tuple[SnapshotMeta, bytes]] = field(default_factory=dict)

    @staticmethod
    def apply(log: dict[int, Entry], from_index: int, entries: tuple[Entry, ...]) -> None:
        for i in [i for i in log if i >= from_index]:
            del log[i]
        log.update((e.index, e) for e in entries)

    def view(self, uid: str) -> dict[int, Entry]:
        """What the member's core believes: durable plus buffered writes."""
        log = dict(self.durable[uid])
        for u, from_index, entries in self.pending:
            if u == uid:
                self.apply(log, from_index, entries)
        return log

    def flushed(self) -> None:
        for uid, from_index, entries in self.pending:
            self.apply(self.durable[uid], from_index, entries)
        self.pending = []

    def base(self, uid: str) -> int:
        return self.snaps[uid][0].index if uid in self.snaps else 0

    def snap_term(self, uid: str) -> int:
        return self.snaps[uid][0].term if uid in self.snaps else 1

    def expected(self, uid: str, log: dict[int, Entry] | None = None) -> list[Entry]:
        """The entries a recovery must return: contiguous after the snapshot."""
        out, index, log = [], self.base(uid) + 1, self.durable[uid] if log is None else log
        while index in log:
            out.append(log[index])
            index += 1
        return out


class System:
    def __init__(self, root: str, wal_bytes: int, seg_bytes: int) -> None:
        self.root, self.wal_bytes, self.seg_bytes = root, wal_bytes, seg_bytes
        self.undeleted: list[str] = []  # flushed to segments, not yet deleted
        self.open()

    def open(self) -> dict[str, list[Op]]:
        self.wal = Wal(f"{self.root}/wal", self.wal_bytes, sync=False)
        ops = self.wal.recover()
        self.stores = {u: MemberStore(self.root, u, self.seg_bytes, sync=False) for u in UIDS}
        self.undeleted = []
        return ops

    def crash_and_recover(self, model: Model) -> None:
        self.wal.close(flush=False)
        for store in self.stores.values():
            store.close()
        model.pending = []
        ops = self.open()
        for uid in UIDS:
            r = self.stores[uid].recover(ops.get(uid, []))
            assert r.snapshot == model.snaps.get(uid), uid
            assert r.entries == model.expected(uid), uid

    def segment_flush(self, deletions: int) -> None:
        for rolled in self.wal.take_rolled():
            for uid, ops in rolled.ops.items():
                self.stores[uid].flush_segments(ops)
            self.undeleted.append(rolled.path)
        for path in self.undeleted[:deletions]:
            self.wal.delete(path)
        del self.undeleted[:deletions]


def step(sys_: System, model: Model, data: st.DataObject) -> None:
    action = data.draw(st.sampled_from(["append"] * 5 + ["flush"] * 3 + ["seg", "snap", "crash"]))
    uid = data.draw(st.sampled_from(UIDS))
    if action == "append":
        view, base = model.view(uid), model.base(uid)
        last = base + len(model.expected(uid, view))  # the core's last index
        lo = data.draw(st.integers(max(1, base - 2), last + 1))
        prev = view[lo - 1].term if lo - 1 > base else model.snap_term(uid)
        n, term = data.draw(st.integers(0, 4)), prev + data.draw(st.integers(0, 2))  # terms rise
        entries = tuple(Entry(term, i, (uid, i, term)) for i in range(lo, lo + n))
        sys_.wal.append(uid, lo, entries)
        model.pending.append((uid, lo, entries))
    elif action == "flush":
        sys_.wal.flush()
        model.flushed()
    elif action == "seg":
        sys_.segment_flush(data.draw(st.integers(0, 5)))
    elif action == "snap":
        sys_.wal.flush()  # the log writer orders a snapshot after the writes before it
        model.flushed()
        held = model.expected(uid)
        local = bool(held) and data.draw(st.booleans())
        if local:  # SnapshotTaken at an applied index
            e = data.draw(st.sampled_from(held))
            snap = SnapshotMeta(e.index, e.term, frozenset({1}))
        else:  # installed from a leader, our log dropped: the truncation op goes first
            index = data.draw(st.integers(model.base(uid) + 1, model.base(uid) + len(held) + 3))
            snap = SnapshotMeta(index, data.draw(st.integers(1, 9)), frozenset({1}))
            sys_.wal.append(uid, index + 1, ())
            sys_.wal.flush()
            model.apply(model.durable[uid], index + 1, ())
        blob = data.draw(st.binary(max_size=20))
        sys_.stores[uid].save_snapshot(snap, blob)
        model.snaps[uid] = (snap, blob)
    else:
        sys_.crash_and_recover(model)


@settings(max_examples=100, deadline=None)
@given(st.integers(150, 1500), st.integers(1, 600), st.data())
def test_recovery_matches_the_model(wal_bytes: int, seg_bytes: int, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as root:
        sys_, model = System(root, wal_bytes, seg_bytes), Model()
        for _ in range(data.draw(st.integers(1, 30))):
            step(sys_, model, data)
        sys_.crash_and_recover(model)
        sys_.wal.close()
        for store in sys_.stores.values():
            store.close()
