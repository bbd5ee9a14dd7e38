"""The node's shared WAL (`actors.ra._wal`): group commit, recovery, torn tails, rollover."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from actors.ra._member_store import MemberStore
from actors.ra._records import CorruptLog, LogImage, Op, batch, op_record, scan
from actors.ra._wal import Wal
from actors.raft.messages import Entry

MARKER_BYTES = len(batch([], 0)) // 2  # one BEGIN or COMMIT marker


def run(lo: int, hi: int, term: int = 1, tag: str = "") -> tuple[Entry, ...]:
    return tuple(Entry(term, i, f"{tag}{i}") for i in range(lo, hi + 1))


def opened(path: Path, **kw: int) -> tuple[Wal, dict[str, list[Op]]]:
    wal = Wal(path, **kw)  # type: ignore[arg-type]
    return wal, wal.recover()


def recovered(path: Path, **kw: int) -> dict[str, list[Op]]:
    """The ops a fresh Wal recovers from `path` (closed again)."""
    wal, ops = opened(path, **kw)
    wal.close()
    return ops


def wal_files(path: Path) -> list[str]:
    return sorted(n for n in os.listdir(path) if n.endswith(".wal"))


@pytest.fixture
def fdatasyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts os.fdatasync calls (each still reaches the real one)."""
    calls: list[int] = []
    real: Callable[[int], None] = os.fdatasync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting)
    return calls


def test_round_trip_in_a_new_wal(tmp_path: Path) -> None:
    wal, ops = opened(tmp_path)
    assert ops == {} and wal_files(tmp_path) == ["00000001.wal"]
    wal.append("a", 1, run(1, 3))
    wal.append("b", 1, run(1, 1, tag="b"))
    wal.append("a", 2, run(2, 4, term=2))  # overwrites a's 2..3
    assert wal.flush() == 3
    assert wal.flush() == 0
    wal.append("a", 5, run(5, 5, term=2))  # never flushed: lost at the "crash"
    _, ops = opened(tmp_path)
    assert ops == {
        "a": [("entries", 1, run(1, 3)), ("entries", 2, run(2, 4, term=2))],
        "b": [("entries", 1, run(1, 1, tag="b"))],
    }
    image = LogImage()
    image.apply_ops(ops["a"])
    assert image.contiguous(0) == [*run(1, 1), *run(2, 4, term=2)]


def test_group_commit_is_one_fdatasync(tmp_path: Path, fdatasyncs: list[int]) -> None:
    wal, _ = opened(tmp_path)
    expected: dict[str, list[Op]] = {"u1": [], "u2": [], "u3": []}
    for i in range(1, 31):
        uid = f"u{i % 3 + 1}"
        index = len(expected[uid]) + 1
        wal.append(uid, index, run(index, index, tag=uid))
        expected[uid].append(("entries", index, run(index, index, tag=uid)))
    assert fdatasyncs == []  # append buffers only
    assert wal.flush() == 30
    assert len(fdatasyncs) == 1
    assert recovered(tmp_path) == expected


def test_sync_false_never_fdatasyncs(tmp_path: Path, fdatasyncs: list[int]) -> None:
    wal, _ = opened(tmp_path, sync=False)
    wal.append("a", 1, run(1, 2))
    assert wal.flush() == 1 and fdatasyncs == []
    assert recovered(tmp_path) == {"a": [("entries", 1, run(1, 2))]}


def test_append_checks_its_arguments(tmp_path: Path) -> None:
    wal = Wal(tmp_path)
    with pytest.raises(RuntimeError, match="recover"):
        wal.append("a", 1, run(1, 1))
    wal.recover()
    with pytest.raises(RuntimeError, match="once"):
        wal.recover()
    with pytest.raises(ValueError, match="contiguously"):
        wal.append("a", 1, (Entry(1, 1), Entry(1, 3)))
    with pytest.raises(ValueError, match="contiguously"):
        wal.append("a", 2, run(1, 1))


def test_torn_tail_at_every_byte_of_the_last_batch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wal, _ = opened(tmp_path / "w")
    for i in range(1, 4):
        if i == 3:
            last = os.path.getsize(tmp_path / "w" / "00000001.wal")  # where batch 3 starts
        wal.append("a", i, run(i, i))
        wal.flush()
    wal.close()
    data = (tmp_path / "w" / "00000001.wal").read_bytes()
    earlier = {"a": [("entries", i, run(i, i)) for i in (1, 2)]}
    for cut in range(last, len(data)):
        d = tmp_path / f"cut{cut}"
        d.mkdir()
        path = d / "00000001.wal"
        path.write_bytes(data[:cut])
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="actors.ra"):
            wal, ops = opened(d)
        assert ops == earlier, cut
        assert path.stat().st_size == last
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        if cut == last:
            assert warned == []
        else:
            assert len(warned) == 1 and str(path) in warned[0] and f"offset {last}" in warned[0]
            assert (d / f"00000001.wal.{last}.corrupt").read_bytes() == data[last:cut]
        wal.append("a", 3, run(3, 3, term=5))  # the truncated file takes new records
        wal.close()
        assert recovered(d) == {"a": [*earlier["a"], ("entries", 3, run(3, 3, term=5))]}


def test_corrupt_middle_record_names_file_and_offset(tmp_path: Path) -> None:
    wal, _ = opened(tmp_path)
    for i in range(1, 5):
        wal.append("a", i, run(i, i))
    wal.flush()
    path = tmp_path / "00000001.wal"
    data = bytearray(path.read_bytes())
    bad = scan(bytes(data), "").offsets[1]
    data[bad + 20] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptLog) as info:
        Wal(tmp_path).recover()
    assert str(path) in str(info.value) and f"byte offset {bad}:" in str(info.value)
    assert info.value.offset == bad
    assert len(path.read_bytes()) == len(data)  # nothing truncated


def test_torn_tail_in_an_older_file_is_corruption(tmp_path: Path) -> None:
    wal, _ = opened(tmp_path, max_file_bytes=1)
    wal.append("a", 1, run(1, 1))
    wal.flush()  # rolls: 00000001.wal is closed, 00000002.wal is current
    wal.append("a", 2, run(2, 2))
    wal.flush()
    first = tmp_path / "00000001.wal"
    first.write_bytes(first.read_bytes()[:-3])
    with pytest.raises(CorruptLog, match=r"00000001\.wal: corrupt record at byte offset 0: torn"):
        Wal(tmp_path).recover()


def test_missing_middle_file_is_corruption(tmp_path: Path) -> None:
    wal, _ = opened(tmp_path, max_file_bytes=1)
    for i in range(1, 4):
        wal.append("a", i, run(i, i))
        wal.flush()
    os.remove(tmp_path / "00000002.wal")
    with pytest.raises(CorruptLog, match=r"00000002\.wal is missing"):
        Wal(tmp_path).recover()


def test_rollover_hands_merged_ops_to_the_segment_writer(tmp_path: Path) -> None:
    data = tmp_path / "data"
    wal, _ = opened(data / "wal", max_file_bytes=2000)
    expected: dict[str, list[Entry]] = {"c1_m1": [], "c1_m2": []}
    stores = {uid: MemberStore(data, uid) for uid in expected}
    for i in range(1, 201):
        for uid, log in expected.items():
            if i % 50 == 0:  # a new leader overwrites the last 10
                log[i - 11 :] = run(i - 10, i, term=i, tag=uid)
                wal.append(uid, i - 10, run(i - 10, i, term=i, tag=uid))
            else:
                log.append(Entry(1 + i // 50 * 50, i, f"{uid}{i}"))
                wal.append(uid, i, (log[-1],))
        wal.flush()
    rolled = wal.take_rolled()
    assert len(rolled) >= 3 and wal.take_rolled() == []
    for r in rolled:
        for uid, ops in r.ops.items():
            assert len(ops) == 1  # merged: overwrites inside the file already applied
            stores[uid].flush_segments(ops)
        wal.delete(r.path)
    wal.close()
    assert wal_files(data / "wal") == [os.path.basename(wal.path)]
    assert all(not os.path.exists(r.path) for r in rolled)
    new_wal, wal_ops = opened(data / "wal", max_file_bytes=2000)
    for uid, log in expected.items():
        recovered = MemberStore(data, uid).recover(wal_ops.get(uid, []))
        assert recovered.entries == log
        assert len(MemberStore(data, uid).segments.files()) == 1
    assert new_wal.take_rolled() == []


def test_recovery_requeues_files_that_never_reached_the_segments(tmp_path: Path) -> None:
    wal, _ = opened(tmp_path, max_file_bytes=1)
    wal.append("a", 1, run(1, 3))
    wal.append("a", 2, run(2, 2, term=2))
    wal.flush()
    wal.append("b", 1, run(1, 1))
    wal.flush()
    assert len(wal.take_rolled()) == 2  # taken, but the "segment writer" crashed
    wal2, _ = opened(tmp_path, max_file_bytes=1)
    rolled = wal2.take_rolled()
    assert [os.path.basename(r.path) for r in rolled] == ["00000001.wal", "00000002.wal"]
    assert rolled[0].ops == {"a": (("entries", 1, (*run(1, 1), *run(2, 2, term=2))),)}
    assert rolled[1].ops == {"b": (("entries", 1, run(1, 1)),)}


def test_delete_is_oldest_first_and_never_the_current_file(tmp_path: Path) -> None:
    wal, _ = opened(tmp_path, max_file_bytes=1)
    for i in range(1, 3):
        wal.append("a", i, run(i, i))
        wal.flush()
    with pytest.raises(ValueError, match="never taken"):
        wal.delete(str(tmp_path / "00000001.wal"))
    first, second = (r.path for r in wal.take_rolled())
    with pytest.raises(ValueError, match="oldest first"):
        wal.delete(second)
    with pytest.raises(ValueError, match="not a closed WAL file"):
        wal.delete(wal.path)
    with pytest.raises(ValueError, match="not a file of this WAL"):
        wal.delete(str(tmp_path / "elsewhere" / "00000001.wal"))
    wal.delete(first)
    wal.delete(second)
    assert wal_files(tmp_path) == ["00000003.wal"]


def test_forget_drops_a_member_from_the_memtables(tmp_path: Path) -> None:
    wal, _ = opened(tmp_path, max_file_bytes=1)
    wal.append("gone", 1, run(1, 1))
    wal.append("kept", 1, run(1, 1))
    wal.flush()
    wal.append("gone", 2, run(2, 2))
    wal.forget("gone")
    assert [r.ops.keys() for r in wal.take_rolled()] == [{"kept"}]
    wal.flush()
    wal.forget("gone")
    assert [r.ops.keys() for r in wal.take_rolled()] == [set()]
    big, _ = opened(tmp_path / "big")
    big.append("gone", 1, run(1, 1))
    big.flush()
    assert big.current_op("gone") is not None
    big.forget("gone")
    assert big.current_op("gone") is None
    big.close()


def test_a_wal_record_without_a_uid_is_corruption(tmp_path: Path) -> None:
    wal, _ = opened(tmp_path)
    wal.append("a", 1, run(1, 1))
    wal.close()
    path = tmp_path / "00000001.wal"
    size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(batch([op_record(None, ("entries", 2, run(2, 2)))], 1))
    with pytest.raises(CorruptLog, match=f"offset {size + MARKER_BYTES}: a WAL record without"):
        Wal(tmp_path).recover()


def test_a_failed_write_closes_the_wal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wal, _ = opened(tmp_path)
    wal.append("a", 1, run(1, 1))

    def failing(fd: int) -> None:
        raise OSError(5, "EIO")

    monkeypatch.setattr(os, "fdatasync", failing)
    with pytest.raises(OSError):
        wal.flush()
    wal.append("a", 2, run(2, 2))
    with pytest.raises(RuntimeError, match="closed"):
        wal.flush()


def test_a_failed_fdatasync_cuts_the_file_back_to_what_was_synced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """fsyncgate: after a failed fdatasync the page cache can still hold the batch, whole,
    though it may never reach the disk. The file is cut back at once, so a recovery in the
    same OS process (whose reads hit that page cache) finds only what was synced."""
    wal, _ = opened(tmp_path)
    wal.append("a", 1, run(1, 3))
    wal.flush()
    synced = Path(wal.path).stat().st_size
    real = os.fdatasync
    calls: list[int] = []

    def failing_once(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(5, "EIO")
        real(fd)

    monkeypatch.setattr(os, "fdatasync", failing_once)
    wal.append("a", 4, run(4, 6))
    with pytest.raises(OSError):
        wal.flush()
    assert Path(wal.path).stat().st_size == synced
    assert recovered(tmp_path)["a"] == [("entries", 1, run(1, 3))]


def test_current_op_merges_what_the_open_file_holds(tmp_path: Path) -> None:
    wal, _ = opened(tmp_path)
    assert wal.current_op("a") is None
    wal.append("a", 1, run(1, 5))
    wal.append("a", 3, run(3, 3, term=2))
    assert wal.current_op("a") is None  # buffered, not yet written
    wal.flush()
    assert wal.current_op("a") == ("entries", 1, (*run(1, 2), *run(3, 3, term=2)))
    again, _ = opened(tmp_path)
    assert again.current_op("a") == wal.current_op("a")  # rebuilt by recovery
    again.close()
