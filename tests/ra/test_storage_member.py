"""A member's store: hard state, segments, snapshots, and recovery into a `RaftCore`."""

from __future__ import annotations

import logging
import os
import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from actors.ra import _snapshots
from actors.ra._member_store import MemberStore, check_uid
from actors.ra._records import CorruptLog, Op, batch, dumps, encode, scan
from actors.ra._segments import SegmentLog
from actors.ra._wal import Wal
from actors.raft.core import RaftCore
from actors.raft.messages import Entry, HardState, SnapshotMeta


def run(lo: int, hi: int, term: int = 1) -> tuple[Entry, ...]:
    return tuple(Entry(term, i, i * 10) for i in range(lo, hi + 1))


def meta(index: int, term: int = 1) -> SnapshotMeta:
    return SnapshotMeta(index, term, frozenset({1, 2, 3}))


@pytest.mark.parametrize("uid", ["", ".", "..", ".hidden", "a/b", "a\\b", "a\0b", "x" * 201, "é"])
def test_bad_uids_are_refused(tmp_path: Path, uid: str) -> None:
    with pytest.raises(ValueError, match="bad member uid"):
        MemberStore(tmp_path, uid)


def test_good_uids() -> None:
    for uid in ("c1_m1", "queue.orders@node-1", "A" * 200, "0"):
        assert check_uid(uid) == uid


def test_hard_state_is_durable_and_validated(tmp_path: Path) -> None:
    store = MemberStore(tmp_path, "m1")
    assert store.hard_state() == HardState()
    store.save_hard_state(3, 2)
    store.save_hard_state(4, ("m2", "node2@host"))
    fresh = MemberStore(tmp_path, "m1")
    assert fresh.hard_state() == HardState(4, ("m2", "node2@host"))
    metafile = tmp_path / "members" / "m1" / "meta"
    assert sorted(os.listdir(metafile.parent)) == ["meta"]  # no tmp left behind
    (metafile.parent / "meta.tmp").write_bytes(b"half a save")
    assert fresh.hard_state() == HardState(4, ("m2", "node2@host"))
    store.save_hard_state(5, None)  # through the other object: nothing is cached
    assert fresh.recover([]).hard_state == HardState(5, None)
    assert sorted(os.listdir(metafile.parent)) == ["meta"]
    data = bytearray(metafile.read_bytes())
    data[-1] ^= 1
    metafile.write_bytes(bytes(data))
    with pytest.raises(CorruptLog, match="meta: corrupt record at byte offset 0"):
        fresh.hard_state()
    metafile.write_bytes(encode(dumps(("3", None))))
    with pytest.raises(CorruptLog, match="not a hard state"):
        fresh.hard_state()


def test_segments_replay_ops_and_roll(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real: Callable[[int], None] = os.fdatasync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting)
    seg = SegmentLog(tmp_path, max_file_bytes=300)
    seg.write([("entries", 1, run(1, 5)), ("entries", 4, run(4, 6, term=2))])
    assert len(calls) == 1
    for i in range(7, 20):
        seg.write([("entries", i, run(i, i, term=2))])
    assert len(calls) == 14 and len(seg.files()) > 2
    expected = [*run(1, 3), *run(4, 19, term=2)]
    assert SegmentLog(tmp_path).read(0) == expected
    assert SegmentLog(tmp_path).read(10) == expected[10:]
    assert SegmentLog(tmp_path).read(19) == []


def test_segment_torn_tail_is_cut_while_its_wal_file_lives_and_corruption_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wal = tmp_path / "wal"
    wal.mkdir()
    (wal / "00000003.wal").write_bytes(b"")  # the WAL file that fed batch 3 is still there
    seg = SegmentLog(tmp_path, max_file_bytes=1, wal_dir=wal)
    for i in range(1, 4):
        seg.write([("entries", i, run(i, i))], source=i)
    seg.close()
    first, _, last = (Path(p) for p in seg.files())
    whole = last.read_bytes()
    last.write_bytes(whole[:-2])
    with caplog.at_level(logging.WARNING, logger="actors.ra"):
        assert SegmentLog(tmp_path, wal_dir=wal).read(0) == list(run(1, 2))
    assert any(str(last) in r.getMessage() for r in caplog.records)
    assert last.stat().st_size == 0
    assert Path(f"{last}.0.corrupt").read_bytes() == whole[:-2]  # the cut bytes are kept
    seg = SegmentLog(tmp_path, max_file_bytes=1 << 20, wal_dir=wal)
    seg.write([("entries", 3, run(3, 3, term=2))], source=3)  # appends to the cut newest file
    assert SegmentLog(tmp_path).read(0) == [*run(1, 2), *run(3, 3, term=2)]
    damaged = bytearray(first.read_bytes())
    damaged[-1] ^= 1
    first.write_bytes(bytes(damaged) + encode(b"a record after the damage"))
    commit = len(damaged) - len(batch([], 0)) // 2  # the flipped byte is in the COMMIT marker
    expected = re.escape(f"{first}: corrupt record at byte offset {commit}: checksum")
    with pytest.raises(CorruptLog, match=expected):
        SegmentLog(tmp_path).read(0)


def test_compaction_deletes_only_the_oldest_files_below_the_snapshot(tmp_path: Path) -> None:
    seg = SegmentLog(tmp_path, max_file_bytes=1)
    seg.write([("entries", 1, run(1, 10))])  # file 1: 1..10
    seg.write([("entries", 11, run(11, 20))])  # file 2: 11..20
    seg.write([("entries", 5, run(5, 8, term=2))])  # file 3: rewrites 5..8, drops 9..20
    seg.write([("entries", 9, run(9, 30, term=2))])  # file 4
    names = [os.path.basename(p) for p in seg.files()]
    assert seg.compact(8) == []  # file 1 holds 9, 10: it must stay, so must all after it
    assert seg.compact(20) == [str(tmp_path / "segments" / n) for n in names[:3]]
    assert [os.path.basename(p) for p in seg.files()] == names[3:]
    assert seg.compact(1000) == []  # never the newest
    assert SegmentLog(tmp_path).read(20) == list(run(21, 30, term=2))


def test_snapshot_files(tmp_path: Path) -> None:
    d = str(tmp_path / "snaps")
    assert _snapshots.latest(d) is None
    _snapshots.write(d, meta(5), b"five")
    _snapshots.write(d, meta(9, 2), b"nine")
    assert sorted(os.listdir(d)) == ["9-2.snap"]
    assert _snapshots.latest(d) == (meta(9, 2), b"nine")
    (tmp_path / "snaps" / "12-2.snap.tmp").write_bytes(b"half")  # a crash mid-write
    assert _snapshots.latest(d) == (meta(9, 2), b"nine")
    assert sorted(os.listdir(d)) == ["9-2.snap"]


def test_latest_snapshot_wins_after_a_crash_before_cleanup(tmp_path: Path) -> None:
    d = str(tmp_path)
    _snapshots.write(d, meta(5), b"five")
    keep = (tmp_path / "5-1.snap").read_bytes()
    _snapshots.write(d, meta(9, 2), b"nine")
    (tmp_path / "5-1.snap").write_bytes(keep)
    assert _snapshots.latest(d) == (meta(9, 2), b"nine")


@pytest.mark.parametrize("damage", ["flip", "truncate", "rename"])
def test_corrupt_snapshot_raises(tmp_path: Path, damage: str) -> None:
    d = str(tmp_path)
    path = Path(_snapshots.write(d, meta(7), b"x" * 100))
    data = bytearray(path.read_bytes())
    offset = scan(bytes(data), "").offsets[1]  # the data record
    if damage == "flip":
        data[-10] ^= 1
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(bytes(data[:-1]))
    else:
        path.rename(tmp_path / "8-1.snap")
        path = tmp_path / "8-1.snap"
        offset = 0
    with pytest.raises(CorruptLog) as info:
        _snapshots.latest(d)
    assert info.value.path == str(path) and info.value.offset == offset


def test_snapshot_compacts_and_recovers_into_a_core(tmp_path: Path) -> None:
    store = MemberStore(tmp_path, "c_m1", segment_bytes=1)
    for lo in range(1, 40, 5):
        store.flush_segments([("entries", lo, run(lo, lo + 4))])  # one file per 5 entries
    assert len(store.segments.files()) == 8
    store.save_hard_state(2, 1)
    store.save_snapshot(meta(22), b"state at 22")
    assert len(store.segments.files()) == 4  # 1..5, 6..10, 11..15, 16..20 are gone
    wal_ops: list[Op] = [("entries", 38, run(38, 45, term=2))]
    r = MemberStore(tmp_path, "c_m1").recover(wal_ops)
    assert r.hard_state == HardState(2, 1)
    assert r.snapshot == (meta(22), b"state at 22")
    assert r.entries == [*run(23, 37), *run(38, 45, term=2)]
    core = RaftCore(
        1, [1, 2, 3], random.Random(0),
        hard_state=r.hard_state, entries=r.entries, snapshot=r.snapshot,
    )
    assert (core.log.first_index, core.log.last_index, core.log.last_term) == (23, 45, 2)
    assert (core.term, core.voted_for) == (2, 1)


def test_wal_ops_replay_after_the_segments(tmp_path: Path) -> None:
    store = MemberStore(tmp_path, "m")
    store.flush_segments([("entries", 1, run(1, 10))])
    wal_ops: list[Op] = [("entries", 5, run(5, 6, term=2)), ("entries", 7, ())]
    assert store.recover(wal_ops).entries == [*run(1, 4), *run(5, 6, term=2)]
    store.flush_segments(wal_ops)  # the same ops, once their WAL file rolled
    assert MemberStore(tmp_path, "m").recover(wal_ops).entries == store.recover([]).entries


def test_wal_ops_below_the_snapshot_are_clipped(tmp_path: Path) -> None:
    store = MemberStore(tmp_path, "m")
    store.save_snapshot(meta(10), b"s")
    r = store.recover([("entries", 1, run(1, 12)), ("entries", 8, run(8, 14, term=2))])
    assert r.entries == list(run(11, 14, term=2))
    assert MemberStore(tmp_path, "m").recover([("entries", 1, run(1, 9))]).entries == []


def test_installed_snapshot_with_the_truncation_op_drops_the_stale_suffix(tmp_path: Path) -> None:
    """The shell's contract: `wal.append(uid, core.log.last_index + 1, ())` before saving."""
    wal = Wal(tmp_path / "wal")
    wal.recover()
    store = MemberStore(tmp_path, "m")
    wal.append("m", 1, run(1, 10, term=2))  # a deposed leader's entries 6..10
    wal.flush()
    snap = meta(8, 3)  # the new leader's snapshot: our entry 8 has term 2, not 3
    wal.append("m", 9, ())
    wal.flush()
    store.save_snapshot(snap, b"s")
    wal.append("m", 9, run(9, 9, term=3))
    wal.flush()
    ops = Wal(tmp_path / "wal").recover()["m"]
    assert MemberStore(tmp_path, "m").recover(ops).entries == list(run(9, 9, term=3))
    assert MemberStore(tmp_path, "m").recover(ops[:2]).entries == []


def test_a_stale_suffix_below_the_snapshot_term_is_dropped_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A crash between save_snapshot and the truncation op (the contract broken)."""
    store = MemberStore(tmp_path, "m")
    store.save_snapshot(meta(8, 3), b"s")
    with caplog.at_level(logging.WARNING, logger="actors.ra"):
        r = store.recover([("entries", 1, run(1, 10, term=2))])
    assert r.entries == []
    assert any("entry 9 has term 2 after term 3" in rec.getMessage() for rec in caplog.records)
    ops: list[Op] = [("entries", 9, (*run(9, 10, term=3), *run(11, 12, term=2)))]
    assert store.recover(ops).entries == list(run(9, 10, term=3))


def test_gap_after_the_contiguous_entries_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemberStore(tmp_path, "m")
    with caplog.at_level(logging.WARNING, logger="actors.ra"):
        r = store.recover([("entries", 1, run(1, 3)), ("entries", 6, run(6, 7))])
    assert r.entries == list(run(1, 3))
    assert any("after index 3" in rec.getMessage() for rec in caplog.records)


def test_delete_removes_the_member(tmp_path: Path) -> None:
    store = MemberStore(tmp_path, "m")
    store.save_hard_state(1, None)
    store.flush_segments([("entries", 1, run(1, 2))])
    store.save_snapshot(meta(1), b"s")
    other = MemberStore(tmp_path, "other")
    other.save_hard_state(5, None)
    store.delete()
    assert os.listdir(tmp_path / "members") == ["other"]
    fresh = MemberStore(tmp_path, "m").recover([])
    assert (fresh.hard_state, fresh.snapshot, fresh.entries) == (HardState(), None, [])
    store.flush_segments([("entries", 1, run(1, 1))])  # the same uid again, from scratch
    assert store.recover([]).entries == list(run(1, 1))
