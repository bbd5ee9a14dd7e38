"""Records: the payloads of the records `_framing` splits files into, log ops, and the
file helpers (the only I/O here).

Rules of this module:
* Framing (records, batches, torn tails versus corruption) is `_framing`'s;
  its names are re-exported here.
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
from collections.abc import Iterable, Sequence
from typing import Literal

import cloudpickle

from actors.raft.messages import Entry

from ._framing import (
    BEGIN,
    COMMIT,
    HEADER_SIZE,
    MAGIC,
    MARKER,
    MAX_PAYLOAD,
    CorruptLog,
    Scan,
    batch,
    encode,
    header,
    scan,
)

__all__ = [
    "BEGIN", "COMMIT", "HEADER_SIZE", "MAGIC", "MARKER", "MAX_PAYLOAD", "CorruptLog",
    "LogImage", "Op", "Scan", "atomic_write", "batch", "cut_tail", "dumps", "encode",
    "fsync_dir", "header", "loads", "make_dirs", "op_record", "open_append", "read_file",
    "read_op", "read_records", "scan", "write_all",
]

log = logging.getLogger("actors.ra")

Op = tuple[Literal["entries"], int, tuple[Entry, ...]]


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
