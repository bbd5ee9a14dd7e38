"""Damage versus torn writes in the batched (format 2) WAL and segment files (issue 13,
item 8): a damaged acknowledged record is corruption, never a silently cut tail, and
nothing is truncated before the caller decides; a real torn write is still cut."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.ra._member_store import MemberStore
from actors.ra._records import HEADER_SIZE, CorruptLog, batch, encode, op_record, scan
from actors.ra._segments import SegmentLog
from actors.ra._wal import Wal
from actors.raft.messages import Entry

MARKER_BYTES = len(batch([], 0)) // 2
UID = "m1"


def run(lo: int, hi: int, term: int = 1) -> tuple[Entry, ...]:
    return tuple(Entry(term, i, ("cmd", i)) for i in range(lo, hi + 1))


def flip(path: Path, pos: int, bit: int = 0) -> bytes:
    """Flip one bit of the file at `pos`; the file's bytes after the flip."""
    data = bytearray(path.read_bytes())
    data[pos] ^= 1 << bit
    path.write_bytes(bytes(data))
    return bytes(data)


def member_with_one_segment_batch(data_dir: Path, wal_file_gone: bool) -> Path:
    """A node data dir whose member UID holds entries 1..200 in its segments: 1..100 in
    a batch from WAL file 1, 101..200 in a batch from WAL file 2 (the last batch). WAL
    file 2 is deleted when `wal_file_gone` (so the segment is the only copy), else kept."""
    wal = data_dir / "wal"
    wal.mkdir(parents=True)
    store = MemberStore(data_dir, UID, sync=False)
    store.segments.write([("entries", 1, run(1, 100))], source=1)
    store.segments.write([("entries", 101, run(101, 200))], source=2)
    store.close()
    if not wal_file_gone:
        (wal / "00000002.wal").write_bytes(b"")
    return Path(store.segments.files()[-1])


def last_data_record(data: bytes) -> tuple[int, int]:
    """(offset, length) of the last data record of a whole format-2 file."""
    found = scan(data, "")
    return found.offsets[-1], HEADER_SIZE + len(found.payloads[-1])


# ------------------------------------------------------------------ segments


@pytest.mark.parametrize("where", ["payload", "length", "commit marker"])
def test_a_flipped_bit_in_the_last_segment_record_is_corruption_and_nothing_is_cut(
    tmp_path: Path, where: str
) -> None:
    seg = member_with_one_segment_batch(tmp_path, wal_file_gone=True)
    before = seg.read_bytes()
    offset, length = last_data_record(before)
    pos = {"payload": offset + length - 5, "length": offset + 1,
           "commit marker": len(before) - 3}[where]
    damaged = flip(seg, pos, bit=3)
    with pytest.raises(CorruptLog) as info:
        MemberStore(tmp_path, UID, sync=False).recover([])
    assert str(seg) in str(info.value)
    assert seg.read_bytes() == damaged  # nothing truncated
    assert not [n for n in os.listdir(seg.parent) if n.endswith(".corrupt")]


def test_a_flipped_bit_followed_by_the_commit_is_corruption_even_with_the_wal_file(
    tmp_path: Path,
) -> None:
    seg = member_with_one_segment_batch(tmp_path, wal_file_gone=False)
    offset, length = last_data_record(seg.read_bytes())
    damaged = flip(seg, offset + length // 2)
    with pytest.raises(CorruptLog, match=f"byte offset {offset}: checksum mismatch"):
        MemberStore(tmp_path, UID, sync=False).recover([])
    assert seg.read_bytes() == damaged


@pytest.mark.parametrize("cut", ["before the commit", "inside the records", "zeros"])
def test_a_torn_segment_batch_is_corruption_once_its_wal_file_is_gone(
    tmp_path: Path, cut: str
) -> None:
    seg = member_with_one_segment_batch(tmp_path, wal_file_gone=True)
    whole = seg.read_bytes()
    offset, length = last_data_record(whole)
    torn = {"before the commit": whole[:-MARKER_BYTES],
            "inside the records": whole[: offset + length // 2],
            "zeros": whole[: offset + length // 2] + bytes(4096)}[cut]
    seg.write_bytes(torn)
    with pytest.raises(CorruptLog, match=r"00000002\.wal that fed it is gone"):
        MemberStore(tmp_path, UID, sync=False).recover([])
    assert seg.read_bytes() == torn


def test_a_torn_segment_batch_whose_wal_file_lives_is_cut_and_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seg = member_with_one_segment_batch(tmp_path, wal_file_gone=False)
    whole = seg.read_bytes()
    batch_start = scan(whole, "").offsets[-1] - MARKER_BYTES
    seg.write_bytes(whole[:-7])
    with caplog.at_level(logging.WARNING, logger="actors.ra"):
        got = MemberStore(tmp_path, UID, sync=False).recover([("entries", 101, run(101, 200))])
    assert [e.index for e in got.entries] == list(range(1, 201))  # the WAL re-supplies them
    assert seg.stat().st_size == batch_start
    assert Path(f"{seg}.{batch_start}.corrupt").read_bytes() == whole[batch_start:-7]
    assert any("torn tail" in r.getMessage() for r in caplog.records)


def test_a_cut_begin_marker_holds_no_entries_and_is_cut(tmp_path: Path) -> None:
    seg = member_with_one_segment_batch(tmp_path, wal_file_gone=True)
    whole = seg.read_bytes()
    seg.write_bytes(whole + batch([op_record(None, ("entries", 201, run(201, 201)))], 3)[:5])
    got = MemberStore(tmp_path, UID, sync=False).recover([])
    assert len(got.entries) == 200 and seg.read_bytes() == whole


def test_a_format_1_segment_is_read_and_new_batches_go_to_a_new_file(tmp_path: Path) -> None:
    segments = tmp_path / "members" / UID / "segments"
    segments.mkdir(parents=True)
    (segments / "00000001.seg").write_bytes(op_record(None, ("entries", 1, run(1, 3))))
    seg = SegmentLog(tmp_path / "members" / UID, sync=False)
    seg.write([("entries", 4, run(4, 5))], source=1)
    assert [os.path.basename(p) for p in seg.files()] == ["00000001.seg", "00000002.seg"]
    assert [e.index for e in SegmentLog(tmp_path / "members" / UID).read(0)] == [1, 2, 3, 4, 5]
    legacy = segments / "00000001.seg"
    legacy.write_bytes(op_record(None, ("entries", 1, run(1, 3)))[:-1])
    os.remove(segments / "00000002.seg")
    with pytest.raises(CorruptLog, match="format-1 segment"):
        SegmentLog(tmp_path / "members" / UID).read(0)


# ------------------------------------------------------------------ WAL


def wal_with_batches(directory: Path, batches: int = 4) -> Path:
    wal = Wal(directory, sync=False)
    wal.recover()
    for b in range(batches):
        for k in range(3):
            i = 3 * b + k + 1
            wal.append(UID, i, run(i, i))
        wal.flush()
    wal.close()
    return directory / "00000001.wal"


def test_a_flipped_bit_mid_wal_followed_by_valid_batches_is_corruption(tmp_path: Path) -> None:
    path = wal_with_batches(tmp_path)
    found = scan(path.read_bytes(), "")
    last_of_batch_2 = found.offsets[5]  # the last record of a batch, before two more batches
    damaged = flip(path, last_of_batch_2 + HEADER_SIZE + 3)
    with pytest.raises(CorruptLog, match=f"byte offset {last_of_batch_2}: checksum mismatch"):
        Wal(tmp_path).recover()
    assert path.read_bytes() == damaged


@pytest.mark.parametrize("where", ["payload", "length", "commit marker", "begin marker"])
def test_a_flipped_bit_in_the_last_wal_batch_is_corruption(tmp_path: Path, where: str) -> None:
    path = wal_with_batches(tmp_path)
    data = path.read_bytes()
    offset, length = last_data_record(data)
    begin = scan(data, "").offsets[-3] - MARKER_BYTES
    pos = {"payload": offset + length - 4, "length": offset + 2,
           "commit marker": len(data) - 10, "begin marker": begin + HEADER_SIZE}[where]
    damaged = flip(path, pos, bit=0)
    with pytest.raises(CorruptLog):
        Wal(tmp_path).recover()
    assert path.read_bytes() == damaged


@pytest.mark.parametrize("tail", ["zeros", "a cut record", "a record cut by zeros"])
def test_a_real_torn_wal_tail_is_still_recovered(tmp_path: Path, tail: str) -> None:
    path = wal_with_batches(tmp_path, batches=2)
    good = path.read_bytes()
    extra = batch([op_record(UID, ("entries", 7, run(7, 9)))], 1)
    torn = {"zeros": bytes(5000), "a cut record": extra[:40],
            "a record cut by zeros": extra[:40] + bytes(len(extra) - 40)}[tail]
    path.write_bytes(good + torn)
    ops = Wal(tmp_path).recover()
    assert [op[1] for op in ops[UID]] == [1, 2, 3, 4, 5, 6]
    assert path.read_bytes() == good
    assert Path(f"{path}.{len(good)}.corrupt").read_bytes() == torn


def test_a_format_1_wal_file_is_replayed_and_rolled(tmp_path: Path) -> None:
    path = tmp_path / "00000001.wal"
    path.write_bytes(op_record(UID, ("entries", 1, run(1, 2))) + encode(b"x")[:4])
    wal = Wal(tmp_path, sync=False)
    assert wal.recover() == {UID: [("entries", 1, run(1, 2))]}
    assert os.path.basename(wal.path) == "00000002.wal"
    assert [os.path.basename(r.path) for r in wal.take_rolled()] == ["00000001.wal"]
    wal.append(UID, 3, run(3, 3))
    wal.close()
    assert [op[1] for op in Wal(tmp_path).recover()[UID]] == [1, 3]


# ------------------------------------------------------------------ properties


def batches(counts: list[int]) -> tuple[bytes, list[int]]:
    """A format-2 file of batches with `counts` records each, and each batch's end."""
    out, ends, i = b"", [], 0
    for count in counts:
        records = []
        for _ in range(count):
            i += 1
            records.append(encode(f"payload {i}.".encode()))
        out += batch(records, 1)
        ends.append(len(out))
    return out, ends


@pytest.mark.parametrize("counts", [[0], [1], [0, 1, 3, 2], [4, 0, 2]])
def test_every_single_bit_flip_in_committed_batches_is_corruption(counts: list[int]) -> None:
    whole, _ = batches(counts)
    for pos in range(len(whole)):
        for bit in range(8):
            damaged = bytearray(whole)
            damaged[pos] ^= 1 << bit
            with pytest.raises(CorruptLog):
                scan(bytes(damaged), "f")


def test_every_single_bit_flip_in_a_wal_file_is_corruption(tmp_path: Path) -> None:
    whole = wal_with_batches(tmp_path, batches=2).read_bytes()
    for pos in range(len(whole)):
        for bit in range(8):
            damaged = bytearray(whole)
            damaged[pos] ^= 1 << bit
            with pytest.raises(CorruptLog):
                scan(bytes(damaged), "f")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=5), st.data())
def test_any_cut_gives_the_committed_batches(counts: list[int], data: st.DataObject) -> None:
    whole, ends = batches(counts)
    cut = data.draw(st.integers(0, len(whole)))
    zeros = data.draw(st.integers(0, 600))
    found = scan(whole[:cut] + bytes(zeros), "f")
    committed = max([e for e in ends if e <= cut], default=0)
    assert found.end == committed
    assert found.torn == (committed != cut or zeros > 0)
    assert len(found.payloads) == sum(c for c, e in zip(counts, ends, strict=True) if e <= cut)


def test_a_torn_tail_is_cut_even_when_a_full_disk_leaves_no_room_to_keep_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = wal_with_batches(tmp_path, batches=1)
    good = path.read_bytes()
    path.write_bytes(good + batch([op_record(UID, ("entries", 4, run(4, 4)))], 1)[:30])
    real_open = os.open

    def full_disk(name: str, flags: int, *args: int) -> int:
        if str(name).endswith(".corrupt.tmp"):
            fd = real_open(name, flags, *args)
            os.close(fd)
            raise OSError(28, "No space left on device")
        return real_open(name, flags, *args)

    monkeypatch.setattr(os, "open", full_disk)
    with caplog.at_level(logging.WARNING, logger="actors.ra"):
        assert [op[1] for op in Wal(tmp_path).recover()[UID]] == [1, 2, 3]
    assert path.read_bytes() == good
    assert not [n for n in os.listdir(tmp_path) if ".corrupt" in n]  # no leftover tmp
    assert any("cannot keep the torn tail" in r.getMessage() for r in caplog.records)


def test_the_segment_writer_keeps_a_wal_file_a_corrupt_member_could_not_take(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from actors.ra._names import SystemNames
    from actors.ra._segment_writer import _State
    from actors.ra._wal import RolledFile

    seg = member_with_one_segment_batch(tmp_path, wal_file_gone=True)
    flip(seg, len(seg.read_bytes()) - 40)  # the last record: corrupt, its WAL file gone
    MemberStore(tmp_path, "m2", sync=False).segments.write([("entries", 1, run(1, 1))], 1)
    state = _State(SystemNames("t"), {"data_dir": str(tmp_path), "wal_sync": False})
    rolled = RolledFile(str(tmp_path / "wal" / "00000003.wal"),
                        {UID: (("entries", 201, run(201, 201)),),
                         "m2": (("entries", 2, run(2, 2)),)})
    assert rolled.number == 3
    with caplog.at_level(logging.ERROR, logger="actors.ra"):
        assert state.flush(rolled) is False  # so it is never reported flushed
    assert any("keeping WAL file" in r.getMessage() and UID in r.getMessage()
               for r in caplog.records)
    m2 = MemberStore(tmp_path, "m2", sync=False).recover([])
    assert [e.index for e in m2.entries] == [1, 2]  # the other member got its ops
