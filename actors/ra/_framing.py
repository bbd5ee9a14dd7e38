"""Framing: how every file under a ra data dir splits into records (pure).

Rules of this module:
* A record is a 9-byte header then the payload. The header is a magic/version
  byte, the payload length (u32, little-endian) and the zlib CRC32 of the
  payload. `encode` and `scan` are pure: bytes in, bytes or payloads out.
* **Batches (format 2).** The WAL and segment files group records into batches
  written with one ``write`` and one fdatasync: a BEGIN marker (the batch's
  source: a segment batch names the WAL file it came from), the data records,
  then a COMMIT marker (how many data records and bytes the batch holds). A
  marker is a record with magic byte `MARKER`, so a format-1 reader refuses
  these files loudly. A file whose first byte is `MARKER` is read as batches;
  any other file (format 1: the snapshot and hard-state files, and WAL or
  segment files written before batches) with the format-1 rules below.
* `scan` never skips anything. Only data after the last COMMIT can be a
  **torn tail**, and only if its bytes look like what a crash leaves: a prefix
  of a batch (complete records, then a partial header or a record running
  past EOF), then possibly zeros (blocks the OS allocated but never wrote; a
  record that ends inside those zeros counts as cut there: a whole record
  never ends in a zero byte, pickles end in ``.`` and markers in their kind).
  Anything else is **corruption**, `CorruptLog(path, offset, detail)`: a
  whole record with a bad checksum or magic byte (even the last one), a
  marker that does not match its batch, damage followed by a valid record
  (so a flipped length bit that swallows the COMMIT is caught too).
  `Scan.end` is then the end of the last committed batch and `Scan.source`
  the BEGIN source of the cut batch (None if its BEGIN did not survive).
* Format 1: a torn tail is a partial header, a declared length running past
  EOF, or a bad magic byte or checksum in the last record of the file (only
  zero bytes may follow); the rest as above. Writers never append batches to
  a format-1 file: they start a new file.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

MAGIC = 0xA1  # 0xA_: a ra record; _1: a data record (format versions 1 and 2)
MARKER = 0xA2  # a batch marker: files that start with one are format 2
_HEADER = struct.Struct("<BII")
HEADER_SIZE = _HEADER.size
MAX_PAYLOAD = 0xFFFFFFFF
_MARK = struct.Struct("<QQc")  # (source, 0, b"B") or (records, bytes, b"C"): never ends in 0
BEGIN, COMMIT = b"B", b"C"


class CorruptLog(Exception):
    """A record file is damaged where a crash cannot have damaged it."""

    def __init__(self, path: str, offset: int, detail: str) -> None:
        super().__init__(path, offset, detail)
        self.path = path
        self.offset = offset
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.path}: corrupt record at byte offset {self.offset}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Scan:
    """What `scan` found: the payloads (and where each record starts), where the
    valid data ends, and whether bytes after `end` are a torn tail."""

    payloads: list[bytes]
    offsets: list[int]
    end: int
    torn: bool
    detail: str = ""
    version: int = 1  # 2: the file is batches (and empty files are 2)
    source: int | None = None  # a cut format-2 batch's BEGIN source, if it survived

# ---------------------------------------------------------------- framing (pure)


def header(payload: bytes) -> bytes:
    """The header that goes before `payload`."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"record payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload))


def encode(payload: bytes) -> bytes:
    """One framed record."""
    return header(payload) + payload


def _marker(a: int, b: int, kind: bytes) -> bytes:
    payload = _MARK.pack(a, b, kind)
    return _HEADER.pack(MARKER, len(payload), zlib.crc32(payload)) + payload


def batch(records: Sequence[bytes], source: int) -> bytes:
    """Framed `records` (from `encode`) as one format-2 batch: BEGIN, records, COMMIT."""
    body = b"".join(records)
    return b"".join((_marker(source, 0, BEGIN), body, _marker(len(records), len(body), COMMIT)))


def scan(data: bytes, path: str) -> Scan:
    """Split `data` (a whole file named `path`) into payloads; see the module rules."""
    if not data or data[0] == MARKER:
        return _scan_batches(data, path)
    return _scan_v1(data, path)


def _scan_v1(data: bytes, path: str) -> Scan:
    payloads: list[bytes] = []
    offsets: list[int] = []
    pos, n = 0, len(data)
    while pos < n:
        if n - pos < HEADER_SIZE:
            return Scan(payloads, offsets, pos, True, "partial header")
        magic, length, crc = _HEADER.unpack_from(data, pos)
        if magic != MAGIC:
            if pos + HEADER_SIZE == n or _zeros(data, pos):
                return Scan(payloads, offsets, pos, True, f"bad magic byte 0x{magic:02x} at end")
            raise CorruptLog(path, pos, f"bad magic byte 0x{magic:02x}")
        end = pos + HEADER_SIZE + length
        if end > n:
            later = _next_valid_record(data, pos + 1)
            if later is not None:
                raise CorruptLog(
                    path, pos, f"length {length} runs past EOF, but a record starts at {later}"
                )
            return Scan(payloads, offsets, pos, True, f"length {length} runs past EOF")
        payload = data[pos + HEADER_SIZE : end]
        if zlib.crc32(payload) != crc:
            if end == n or _zeros(data, end):
                return Scan(payloads, offsets, pos, True, "checksum mismatch in last record")
            raise CorruptLog(path, pos, "checksum mismatch")
        payloads.append(payload)
        offsets.append(pos)
        pos = end
    return Scan(payloads, offsets, pos, False)


class _Torn(Exception):
    """The record at hand is what a crash leaves (internal to `_scan_batches`)."""


def _record_at(data: bytes, pos: int, live: int, path: str) -> tuple[int, bytes, int]:
    """(magic, payload, end) of the whole, valid record at `pos`; `_Torn` if the bytes
    there are a cut record (`live`: only zeros follow), CorruptLog if damaged."""
    n = len(data)
    if pos >= live:
        raise _Torn("zeros at the end")
    if n - pos < HEADER_SIZE:
        if data[pos] in (MAGIC, MARKER):
            raise _Torn("partial header")
        raise CorruptLog(path, pos, f"bad magic byte 0x{data[pos]:02x}")
    magic, length, crc = _HEADER.unpack_from(data, pos)
    if magic not in (MAGIC, MARKER):
        raise CorruptLog(path, pos, f"bad magic byte 0x{magic:02x}")
    if pos + HEADER_SIZE > live:
        raise _Torn("a header cut by zeros")
    if magic == MARKER and length != _MARK.size:
        raise CorruptLog(path, pos, f"a batch marker of length {length}")
    end = pos + HEADER_SIZE + length
    if end > n:
        later = _next_valid_record(data, pos + 1)
        if later is not None:
            raise CorruptLog(
                path, pos, f"length {length} runs past EOF, but a record starts at {later}"
            )
        raise _Torn(f"length {length} runs past EOF")
    payload = data[pos + HEADER_SIZE : end]
    if zlib.crc32(payload) != crc:
        if end > live:
            raise _Torn("a record cut by zeros")
        raise CorruptLog(path, pos, "checksum mismatch")
    return magic, payload, end


def _scan_batches(data: bytes, path: str) -> Scan:
    """`scan` for format 2 (see the module rules)."""
    payloads: list[bytes] = []
    offsets: list[int] = []
    pending: list[tuple[bytes, int]] = []
    source: int | None = None  # the open batch's BEGIN source (None: no open batch)
    committed = pos = body = 0
    live = len(data.rstrip(b"\0"))
    while pos < len(data):
        try:
            magic, payload, end = _record_at(data, pos, live, path)
        except _Torn as torn:
            return Scan(payloads, offsets, committed, True, str(torn), 2, source)
        if magic == MAGIC:
            if source is None:
                raise CorruptLog(path, pos, "a data record outside a batch")
            pending.append((payload, pos))
            body += end - pos
        else:
            a, b, kind = _MARK.unpack(payload)
            if kind == BEGIN and source is None:
                source, pending, body = a, [], 0
            elif kind == COMMIT and source is not None and (a, b) == (len(pending), body):
                payloads.extend(p for p, _ in pending)
                offsets.extend(o for _, o in pending)
                source, committed = None, end
            else:
                raise CorruptLog(path, pos, f"a batch marker out of place: {(a, b, kind)!r}")
        pos = end
    if source is not None:
        return Scan(payloads, offsets, committed, True, "a batch without its commit", 2, source)
    return Scan(payloads, offsets, committed, False, "", 2)


def _zeros(data: bytes, start: int) -> bool:
    return data.count(0, start) == len(data) - start


def _next_valid_record(data: bytes, start: int) -> int | None:
    """The offset of the first complete, non-empty record (data or marker) with a good
    checksum at or after `start` (we never write empty payloads; an empty one is 0xA1 +
    8 zero bytes, too easily found inside a torn payload)."""
    for m in _MAGICS.finditer(data, start):
        pos = m.start()
        if len(data) - pos < HEADER_SIZE:
            return None
        _, length, crc = _HEADER.unpack_from(data, pos)
        end = pos + HEADER_SIZE + length
        if length > 0 and end <= len(data) and zlib.crc32(data[pos + HEADER_SIZE : end]) == crc:
            return pos
    return None


_MAGICS = re.compile(bytes([ord("["), MAGIC, MARKER, ord("]")]))
