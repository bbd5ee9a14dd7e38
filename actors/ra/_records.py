"""Records: the framing of every file under a ra data dir, its payloads, and log ops.

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
* Payloads are pickles (protocol 5; `cloudpickle` for what pickle refuses, such
  as lambdas). Loading runs `pickle.loads`, so **the data dir is trusted**, as
  ra's is: whoever can write it can run code in the node.
* An op ``("entries", from_index, entries)`` means: drop every stored entry
  with index >= from_index, then store `entries` (PersistEntries' meaning).
  `op_record` frames one as ``(uid or None, from_index, rows)``, the entries
  as plain tuples; `read_op` checks the shape and rebuilds the `Entry`s.
  `LogImage` replays ops in memory; the WAL's memtables, segment replay and
  member recovery all use it, so the three agree by construction.
* The file helpers at the bottom are the only I/O here: durable directory
  creation, atomic replacement (tmp + fsync + rename + fsync dir; a failure is
  logged with the file's path and re-raised), and `cut_tail`, which first keeps
  the bytes it cuts in ``<file>.<offset>.corrupt`` (fsynced), then truncates.
  Nothing here truncates by itself: the caller decides (the WAL cuts a torn
  tail of its newest file; a segment only when a live WAL file re-supplies it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import re
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import cloudpickle

from actors.raft.messages import Entry

log = logging.getLogger("actors.ra")

MAGIC = 0xA1  # 0xA_: a ra record; _1: a data record (format versions 1 and 2)
MARKER = 0xA2  # a batch marker: files that start with one are format 2
_HEADER = struct.Struct("<BII")
HEADER_SIZE = _HEADER.size
MAX_PAYLOAD = 0xFFFFFFFF
_MARK = struct.Struct("<QQc")  # (source, 0, b"B") or (records, bytes, b"C"): never ends in 0
BEGIN, COMMIT = b"B", b"C"

Op = tuple[Literal["entries"], int, tuple[Entry, ...]]


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


# ---------------------------------------------------------------- payloads


def dumps(obj: object) -> bytes:
    """Pickle `obj` (protocol 5), with cloudpickle for what plain pickle refuses."""
    try:
        return pickle.dumps(obj, protocol=5)
    except (pickle.PicklingError, AttributeError, TypeError):
        data: bytes = cloudpickle.dumps(obj, protocol=5)
        return data


def loads(payload: bytes, path: str, offset: int) -> object:
    """Unpickle a record's payload; a failure names the record (its checksum was good,
    so this is a bug or a code change, reported like corruption)."""
    try:
        return pickle.loads(payload)
    except Exception as e:
        raise CorruptLog(path, offset, f"cannot unpickle the payload: {e!r}")


def op_record(uid: str | None, op: Op) -> bytes:
    """A framed record of `op` (the WAL names its uid; a segment, None).

    Entries are stored as plain ``(term, index, command, kind)`` tuples: about 5x
    faster to pickle than the dataclass, and the format outlives its renames.
    """
    _, from_index, entries = op
    rows = tuple((e.term, e.index, e.command, e.kind) for e in entries)
    return encode(dumps((uid, from_index, rows)))


def read_op(payload: bytes, path: str, offset: int) -> tuple[str | None, Op]:
    """The (uid, op) of an `op_record` payload, or CorruptLog naming the record."""
    match loads(payload, path, offset):
        case (str() | None as uid, int(from_index), tuple(rows)) if from_index >= 1:
            entries = []
            for row in rows:
                match row:
                    case (int(term), int(index), command, str(kind)):
                        entries.append(Entry(term, index, command, kind))  # type: ignore[arg-type]
                    case _:
                        raise CorruptLog(path, offset, f"not a log entry: {row!r:.80}")
            return uid, ("entries", from_index, tuple(entries))
        case other:
            raise CorruptLog(path, offset, f"not a log op: {other!r:.80}")


# ---------------------------------------------------------------- log ops (pure)


class LogImage:
    """Stored entries after replaying ops: index -> Entry, plus the lowest
    `from_index` any op carried (so the image can be re-expressed as one op)."""

    __slots__ = ("_hi", "entries", "lo")

    def __init__(self) -> None:
        self.entries: dict[int, Entry] = {}
        self.lo: int | None = None
        self._hi = 0  # no stored index is above this

    def apply(self, from_index: int, entries: Iterable[Entry]) -> None:
        self.lo = from_index if self.lo is None else min(self.lo, from_index)
        self._drop_from(from_index)
        for e in entries:
            self.entries[e.index] = e
            self._hi = max(self._hi, e.index)

    def apply_ops(self, ops: Iterable[Op]) -> None:
        for _, from_index, entries in ops:
            self.apply(from_index, entries)

    def _drop_from(self, index: int) -> None:
        if index > self._hi:
            return
        if self._hi - index < len(self.entries):
            for i in range(index, self._hi + 1):
                self.entries.pop(i, None)
        else:
            for i in [i for i in self.entries if i >= index]:
                del self.entries[i]
        self._hi = index - 1

    def as_op(self) -> Op | None:
        """One op with the same effect as every op applied so far (None if none was)."""
        if self.lo is None:
            return None
        return ("entries", self.lo, tuple(self.entries[i] for i in sorted(self.entries)))

    def contiguous(self, after: int) -> list[Entry]:
        """The entries after + 1, after + 2, ... up to the first missing index."""
        out: list[Entry] = []
        index = after + 1
        while (e := self.entries.get(index)) is not None:
            out.append(e)
            index += 1
        return out


# ---------------------------------------------------------------- file helpers (I/O)


def open_append(directory: str, name: str, create: bool, sync: bool = True) -> tuple[int, int]:
    """Open `directory/name` append-only (creating it, and fsyncing the directory, when
    `create`): (fd, its current size)."""
    flags = os.O_WRONLY | os.O_APPEND | (os.O_CREAT | os.O_EXCL if create else 0)
    fd = os.open(os.path.join(directory, name), flags, 0o644)
    if create:
        fsync_dir(directory, sync)
    return fd, os.fstat(fd).st_size


def fsync_dir(path: str, sync: bool = True) -> None:
    """Make a directory's entries (created, renamed, removed files) durable
    (nothing when `sync` is False)."""
    if not sync:
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: str, sync: bool = True) -> None:
    """`mkdir -p path`, fsyncing the parent of every directory it creates."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        return
    make_dirs(os.path.dirname(path), sync)
    try:
        os.mkdir(path)
    except FileExistsError:
        return
    fsync_dir(os.path.dirname(path), sync)


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def atomic_write(path: str, chunks: Sequence[bytes], sync: bool = True) -> None:
    """Replace `path` by `chunks` all at once: write `path.tmp`, fsync, rename, fsync dir."""
    tmp = path + ".tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for chunk in chunks:
                write_all(fd, chunk)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_dir(os.path.dirname(path) or ".", sync)
    except OSError as exc:  # a failed write names no file: say which one
        log.error("writing %s failed: %s", path, exc)
        raise


def read_file(path: str) -> tuple[bytes, Scan]:
    """The bytes of the record file at `path`, and their `scan` (nothing is changed)."""
    with open(path, "rb") as f:
        data = f.read()
    return data, scan(data, path)


def cut_tail(path: str, data: bytes, found: Scan, sync: bool = True) -> None:
    """Cut the torn tail `found` reported in `data` (the bytes of `path`): keep the cut
    bytes in ``<path>.<offset>.corrupt`` (fsynced), then truncate `path` (fsynced); logged.
    Only a torn write is ever cut, one that was never acknowledged: if there is no room to
    keep its bytes (a full disk), that is logged and the tail is cut all the same, so
    that a node can restart and free space."""
    keep = f"{path}.{found.end}.corrupt"
    log.warning(
        "%s: torn tail at byte offset %d (%s): truncating %d bytes (kept in %s)",
        path, found.end, found.detail, len(data) - found.end, keep,
    )
    try:
        atomic_write(keep, [data[found.end :]], sync=sync)
    except OSError as exc:
        log.error("%s: cannot keep the torn tail (%s): truncating it anyway", path, exc)
        for leftover in (keep + ".tmp", keep):
            with contextlib.suppress(OSError):
                os.remove(leftover)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, found.end)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def read_records(path: str, tail_ok: bool, sync: bool = True) -> Scan:
    """Scan the file at `path`. A torn tail is cut (`cut_tail`) when `tail_ok` (the
    newest file of a log), and is CorruptLog otherwise."""
    data, found = read_file(path)
    if found.torn:
        if not tail_ok:
            raise CorruptLog(path, found.end, f"torn record before the newest file: {found.detail}")
        cut_tail(path, data, found, sync)
    return found
