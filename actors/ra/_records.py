"""Records: the framing of every file under a ra data dir, its payloads, and log ops.

Rules of this module:
* A record is a 9-byte header then the payload. The header is a magic/version
  byte, the payload length (u32, little-endian) and the zlib CRC32 of the
  payload. `encode` and `scan` are pure: bytes in, bytes or payloads out.
* `scan` never skips anything. Data that ends inside a record is a **torn
  tail**: a partial header, a declared length running past EOF, or a bad magic
  byte or checksum in the last record of the file. "Last" allows only zero
  bytes after it: the OS can extend a file without writing the new blocks.
  The caller truncates a torn tail and logs it. A bad magic byte or checksum
  with other data after it is **corruption**: `CorruptLog(path, offset, detail)`.
  So is a length running past EOF when a complete valid record starts after
  that header, because that is a flipped length bit and not a torn write.
  (A torn record whose payload holds a whole valid record, framed bytes inside
  a command, looks the same; recovery then stops loudly and does not guess.)
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
  logged with the file's path and re-raised), and reading a record file with its
  torn tail truncated and logged.
"""

from __future__ import annotations

import logging
import os
import pickle
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import cloudpickle

from actors.raft.messages import Entry

log = logging.getLogger("actors.ra")

MAGIC = 0xA1  # 0xA_: a ra record; _1: format version 1
_HEADER = struct.Struct("<BII")
HEADER_SIZE = _HEADER.size
MAX_PAYLOAD = 0xFFFFFFFF

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


# ---------------------------------------------------------------- framing (pure)


def header(payload: bytes) -> bytes:
    """The header that goes before `payload`."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"record payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload))


def encode(payload: bytes) -> bytes:
    """One framed record."""
    return header(payload) + payload


def scan(data: bytes, path: str) -> Scan:
    """Split `data` (a whole file named `path`) into payloads; see the module rules."""
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


def _zeros(data: bytes, start: int) -> bool:
    return data.count(0, start) == len(data) - start


def _next_valid_record(data: bytes, start: int) -> int | None:
    """The offset of the first complete, non-empty record with a good checksum at or
    after `start` (we never write empty payloads; an empty one is 0xA1 + 8 zero bytes,
    too easily found inside a torn payload)."""
    magic = bytes([MAGIC])
    pos = data.find(magic, start)
    while pos != -1 and len(data) - pos >= HEADER_SIZE:
        _, length, crc = _HEADER.unpack_from(data, pos)
        end = pos + HEADER_SIZE + length
        if length > 0 and end <= len(data) and zlib.crc32(data[pos + HEADER_SIZE : end]) == crc:
            return pos
        pos = data.find(magic, pos + 1)
    return None


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


def read_records(path: str, tail_ok: bool) -> Scan:
    """Scan the file at `path`. A torn tail is truncated on disk and logged when
    `tail_ok` (the newest file of a log), and is CorruptLog otherwise."""
    with open(path, "rb") as f:
        data = f.read()
    found = scan(data, path)
    if found.torn:
        if not tail_ok:
            raise CorruptLog(path, found.end, f"torn record before the newest file: {found.detail}")
        log.warning(
            "%s: torn tail at byte offset %d (%s): truncating %d bytes",
            path, found.end, found.detail, len(data) - found.end,
        )
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, found.end)
            os.fsync(fd)
        finally:
            os.close(fd)
    return found
