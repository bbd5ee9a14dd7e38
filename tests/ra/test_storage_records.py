"""Record framing (`actors.ra._records`): torn tails, corruption, payloads, log ops."""

from __future__ import annotations

import pickle
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.ra._records import (
    HEADER_SIZE,
    MAGIC,
    CorruptLog,
    LogImage,
    Op,
    dumps,
    encode,
    loads,
    op_record,
    read_op,
    scan,
)
from actors.raft.messages import Entry

PATH = "/data/wal/00000001.wal"


def framed(*payloads: bytes) -> bytes:
    return b"".join(encode(p) for p in payloads)


def test_round_trip_and_offsets() -> None:
    data = framed(b"one", b"", b"three")
    found = scan(data, PATH)
    assert found.payloads == [b"one", b"", b"three"]
    assert found.offsets == [0, HEADER_SIZE + 3, 2 * HEADER_SIZE + 3]
    assert (found.end, found.torn) == (len(data), False)
    assert scan(b"", PATH).payloads == []


def test_header_layout() -> None:
    assert encode(b"abc")[:HEADER_SIZE] == struct.pack("<BII", MAGIC, 3, zlib.crc32(b"abc"))


@pytest.mark.parametrize(
    ("tail", "detail"),
    [
        (encode(b"payload")[:5], "partial header"),
        (encode(b"payload")[:-1], "runs past EOF"),
        (encode(b"payload")[:-1] + b"X", "checksum mismatch in last record"),
        (b"\x00" * 40, "bad magic"),  # a tail the file system extended but never wrote
        (b"\x55" * HEADER_SIZE, "bad magic"),  # a bad header, last in the file
        (encode(b"payload")[:-1] + b"X" + b"\x00" * 30, "checksum mismatch"),
        (encode(b"ab\xa1" + bytes(20))[:-3], "runs past EOF"),  # holds an empty "record"
    ],
)
def test_torn_tails(tail: bytes, detail: str) -> None:
    good = framed(b"a", b"bb")
    found = scan(good + tail, PATH)
    assert found.payloads == [b"a", b"bb"]
    assert (found.end, found.torn) == (len(good), True)
    assert detail in found.detail


def test_checksum_mismatch_with_data_after_is_corruption() -> None:
    data = bytearray(framed(b"first", b"second", b"third"))
    bad = HEADER_SIZE + 5  # the second record
    data[bad + HEADER_SIZE + 2] ^= 0x01
    with pytest.raises(CorruptLog) as info:
        scan(bytes(data), PATH)
    assert (info.value.path, info.value.offset) == (PATH, bad)
    assert str(info.value) == f"{PATH}: corrupt record at byte offset {bad}: checksum mismatch"


def test_bad_magic_with_data_after_is_corruption() -> None:
    data = bytearray(framed(b"first", b"second", b"third"))
    data[HEADER_SIZE + 5] = 0x00
    with pytest.raises(CorruptLog, match=f"offset {HEADER_SIZE + 5}: bad magic byte 0x00"):
        scan(bytes(data), PATH)


def test_length_flipped_past_eof_is_corruption_not_a_torn_tail() -> None:
    data = bytearray(framed(b"first", b"second", b"third"))
    struct.pack_into("<I", data, 1, 1 << 20)  # the first record's length
    with pytest.raises(CorruptLog, match="offset 0: length 1048576 runs past EOF"):
        scan(bytes(data), PATH)


def test_corrupt_log_pickles() -> None:
    e = pickle.loads(pickle.dumps(CorruptLog(PATH, 7, "x")))
    assert (e.path, e.offset, e.detail) == (PATH, 7, "x")
    assert str(e) == f"{PATH}: corrupt record at byte offset 7: x"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.lists(st.binary(max_size=20), max_size=3))
def test_fuzz_scan_returns_or_raises_corrupt_log(noise: bytes, payloads: list[bytes]) -> None:
    for data in (noise, framed(*payloads) + noise, noise + framed(*payloads)):
        try:
            found = scan(data, PATH)
        except CorruptLog as e:
            assert 0 <= e.offset < len(data)
            continue
        assert found.end <= len(data)
        assert found.torn == (found.end < len(data))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=6), st.data())
def test_fuzz_truncated_file_gives_the_intact_prefix(
    payloads: list[bytes], data: st.DataObject
) -> None:
    whole = framed(*payloads)
    cut = data.draw(st.integers(0, len(whole)))
    found = scan(whole[:cut], PATH)
    ends = [len(framed(*payloads[:k])) for k in range(len(payloads) + 1)]
    intact = max(k for k, end in enumerate(ends) if end <= cut)
    assert found.payloads == payloads[:intact]
    assert found.end == ends[intact]
    assert found.torn == (cut != ends[intact])


def test_payloads_pickle_and_fall_back_to_cloudpickle() -> None:
    op = ("entries", 3, (Entry(1, 3, {"k": [1, 2]}), Entry(1, 4, None, "noop")))
    assert loads(dumps(op), PATH, 0) == op
    scale = 3
    fn = loads(dumps(Entry(1, 1, lambda x: x * scale)), PATH, 0).command  # type: ignore[attr-defined]
    assert fn(2) == 6
    with pytest.raises(CorruptLog, match="offset 9: cannot unpickle"):
        loads(b"not a pickle", PATH, 9)


def test_op_records_round_trip_and_reject_other_shapes() -> None:
    op: Op = ("entries", 4, (Entry(2, 4, {"k": 1}), Entry(2, 5, None, "noop")))
    found = scan(op_record("c_m1", op) + op_record(None, ("entries", 9, ())), PATH)
    assert read_op(found.payloads[0], PATH, 0) == ("c_m1", op)
    assert read_op(found.payloads[1], PATH, 0) == (None, ("entries", 9, ()))
    for bad in (("u", 1, [(1, 1, None, "command")]), ("u", 0, ()), (1, 1, ()), ("u", 1), 5):
        with pytest.raises(CorruptLog, match="offset 3: not a log op"):
            read_op(dumps(bad), PATH, 3)
    with pytest.raises(CorruptLog, match="not a log entry"):
        read_op(dumps(("u", 1, ((1, 1, None),))), PATH, 3)


def test_log_image_overwrites_truncates_and_merges() -> None:
    image = LogImage()
    image.apply(1, [Entry(1, i) for i in range(1, 6)])
    image.apply(3, [Entry(2, 3), Entry(2, 4)])
    assert [(e.index, e.term) for e in image.contiguous(0)] == [(1, 1), (2, 1), (3, 2), (4, 2)]
    image.apply(2, [])
    assert [e.index for e in image.contiguous(0)] == [1]
    assert image.as_op() == ("entries", 1, (Entry(1, 1),))
    assert image.contiguous(1) == []
    assert LogImage().as_op() is None


def test_log_image_as_op_keeps_a_truncation_below_its_entries() -> None:
    image = LogImage()
    image.apply(5, [])  # e.g. a snapshot install's "drop everything after 4"
    image.apply(7, [Entry(3, 7)])
    assert image.as_op() == ("entries", 5, (Entry(3, 7),))
    older = LogImage()
    older.apply(1, [Entry(1, i) for i in range(1, 10)])
    merged = image.as_op()
    assert merged is not None
    older.apply(merged[1], merged[2])  # replaying the merged op on an older log
    assert sorted(older.entries) == [1, 2, 3, 4, 7]
