"""The node's write-ahead log: one file sequence shared by every member, group commit.

Rules of this module:
* Files are ``<dir>/00000001.wal``, ``00000002.wal``, ... Only the newest is
  written to (opened ``O_APPEND``); the directory is fsynced after a file is
  created or deleted. A record's payload is ``(uid, op)``, see `_records`.
* `recover()` comes first, exactly once. It replays every file in order and
  returns each uid's ops in the order they were written. A torn tail in the
  newest file (bytes after its last committed batch that look like a cut
  write) is kept in a ``.corrupt`` file, truncated and logged; any other
  damage raises `CorruptLog` and changes nothing. A newest file in format 1
  (no batches) is closed and a new file started.
* `append` only buffers. `flush` writes every buffered record as one batch
  (BEGIN marker naming the file's number, the records, COMMIT marker: see
  `_records`) with one ``write`` and one ``fdatasync`` (group commit) and
  returns how many records are now durable. A failed write or fdatasync stops the `Wal`
  and cuts the file back to the end of the last synced batch (see `_fail_write`). With
  ``sync=False`` there is no fdatasync (nor directory
  fsync): records survive a process crash but **not** a power loss (tests and
  benchmarks only).
* Each file keeps an in-memory memtable per uid (a `LogImage`). When a flush
  leaves the file at more than `max_file_bytes`, it is closed and handed to the
  segment writer as a `RolledFile`: per uid, one op with the same effect as all
  the ops the file holds. Files recovered before the newest are handed over the
  same way, since they may never have reached the segments. `current_op(uid)`
  is the same merged op for the file being written (for a member that
  recovers while the node runs: its rolled files' ops, then this one).
* The segment writer flushes rolled files to segments **in order** and then
  `delete`s them, oldest first (enforced): a WAL file replayed after segments
  that already hold a later file would resurrect overwritten entries.
* uids are opaque strings here (`MemberStore` validates them). Records of a
  `forget`-ten uid stay in their files until those are deleted, and `recover`
  still returns them: callers drop uids they no longer know, so a uid should
  name one incarnation of a member (as ra's UIds do).
* Not thread-safe: one WAL process owns a `Wal`.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from actors.raft.messages import Entry

from ._records import (
    CorruptLog,
    LogImage,
    Op,
    batch,
    fsync_dir,
    make_dirs,
    op_record,
    open_append,
    read_op,
    read_records,
    write_all,
)

log = logging.getLogger("actors.ra.wal")
DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024
_NAME = re.compile(r"^(\d{8})\.wal$")


@dataclass(frozen=True, slots=True)
class RolledFile:
    """A closed WAL file and, per uid, the ops that replay what it holds."""

    path: str
    ops: dict[str, tuple[Op, ...]]

    @property
    def number(self) -> int:
        """The WAL file's number (a segment batch names it as its source)."""
        return int(os.path.basename(self.path).split(".")[0])


def _name(number: int) -> str:
    return f"{number:08d}.wal"


class Wal:
    """The write-ahead log in `directory`; see the module rules."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        sync: bool = True,
    ) -> None:
        if max_file_bytes <= 0:
            raise ValueError("max_file_bytes must be positive")
        self.directory = os.fspath(directory)
        self.max_file_bytes = max_file_bytes
        self.sync = sync
        self._fd: int | None = None
        self._number = 0  # the newest file's number
        self._size = 0
        self._mem: dict[str, LogImage] = {}  # the newest file's memtables
        self._buffer: list[tuple[str, Op, bytes]] = []
        self._rolled: list[RolledFile] = []  # closed, not yet taken
        self._closed: list[int] = []  # numbers of closed files still on disk, oldest first
        self._recovered = False

    @property
    def path(self) -> str:
        """The file being written."""
        return os.path.join(self.directory, _name(self._number))

    # ------------------------------------------------------------ recovery

    def recover(self) -> dict[str, list[Op]]:
        """Replay every WAL file; per uid, its ops in order. Opens the newest for writing."""
        if self._recovered:
            raise RuntimeError("Wal.recover() runs once, before any append")
        self._recovered = True
        make_dirs(self.directory, self.sync)
        numbers = self._file_numbers()
        ops: dict[str, list[Op]] = {}
        version = 2
        for pos, number in enumerate(numbers):
            mem, version = self._replay(number, ops, newest=pos == len(numbers) - 1)
            if pos < len(numbers) - 1:
                self._rolled.append(self._rolled_file(number, mem))
                self._closed.append(number)
            else:
                self._mem = mem
        if not numbers:
            self._open(1, create=True)
        elif version == 1:  # never append batches to a format-1 file: roll it
            self._number = numbers[-1]
            self._roll()
        else:
            self._open(numbers[-1], create=False)
        return ops

    def _file_numbers(self) -> list[int]:
        numbers = sorted(
            int(m.group(1)) for n in os.listdir(self.directory) if (m := _NAME.match(n))
        )
        for a, b in itertools.pairwise(numbers):
            if b != a + 1:
                raise CorruptLog(self.directory, 0, f"WAL file {_name(a + 1)} is missing")
        return numbers

    def _replay(
        self, number: int, ops: dict[str, list[Op]], newest: bool
    ) -> tuple[dict[str, LogImage], int]:
        """The file's memtables and format version; its ops are added to `ops`."""
        path = os.path.join(self.directory, _name(number))
        found = read_records(path, tail_ok=newest, sync=self.sync)
        mem: dict[str, LogImage] = {}
        for payload, offset in zip(found.payloads, found.offsets, strict=True):
            uid, op = read_op(payload, path, offset)
            if uid is None:
                raise CorruptLog(path, offset, "a WAL record without a uid")
            ops.setdefault(uid, []).append(op)
            mem.setdefault(uid, LogImage()).apply(op[1], op[2])
        return mem, found.version if found.end > 0 else 2

    # ------------------------------------------------------------ writing

    def append(self, uid: str, from_index: int, entries: Sequence[Entry]) -> None:
        """Buffer "drop uid's entries >= from_index, then store `entries`" (no I/O)."""
        if not self._recovered:
            raise RuntimeError("Wal.recover() must run before append")
        entries = tuple(entries)
        if from_index < 1:
            raise ValueError(f"from_index must be >= 1, got {from_index}")
        for pos, e in enumerate(entries):
            if e.index != from_index + pos:
                raise ValueError(f"entries must run contiguously from {from_index}, got {e.index}")
        op: Op = ("entries", from_index, entries)
        self._buffer.append((uid, op, op_record(uid, op)))

    def flush(self) -> int:
        """Write the buffer with one write and one fdatasync; roll over when full."""
        if not self._buffer:
            return 0
        if self._fd is None:
            raise RuntimeError("the Wal is closed (or a write failed): recover in a new Wal")
        buffer, self._buffer = self._buffer, []
        data = batch([record for _, _, record in buffer], self._number)
        try:
            write_all(self._fd, data)
            if self.sync:
                os.fdatasync(self._fd)
        except BaseException:
            self._fail_write()
            raise
        self._size += len(data)
        for uid, (_, from_index, entries), _ in buffer:
            self._mem.setdefault(uid, LogImage()).apply(from_index, entries)
        if self._size > self.max_file_bytes:
            self._roll()
        return len(buffer)

    def _fail_write(self) -> None:
        """A write or fdatasync failed: stop writing. The batch is not durable and was not
        acknowledged, and after a failed fdatasync the page cache may hold pages that never
        reach the disk yet read back as whole batches ("fsyncgate"), so the file is cut back
        to the end of the last synced batch before anything can read it again."""
        fd, self._fd = self._fd, None
        assert fd is not None
        try:
            os.ftruncate(fd, self._size)
            if self.sync:
                os.fdatasync(fd)
        except OSError as exc:
            log.critical("WAL %s: could not cut back to the last synced offset %d after a "
                         "failed write (%s): do not restart this node on this disk until it "
                         "is checked", self.path, self._size, exc)
        finally:
            os.close(fd)

    def _roll(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._rolled.append(self._rolled_file(self._number, self._mem))
        self._closed.append(self._number)
        self._mem = {}
        self._open(self._number + 1, create=True)

    def _rolled_file(self, number: int, mem: dict[str, LogImage]) -> RolledFile:
        ops: dict[str, tuple[Op, ...]] = {
            uid: (op,) for uid, image in mem.items() if (op := image.as_op()) is not None
        }
        return RolledFile(os.path.join(self.directory, _name(number)), ops)

    def _open(self, number: int, create: bool) -> None:
        self._fd, self._size = open_append(self.directory, _name(number), create, self.sync)
        self._number = number

    # ------------------------------------------------------------ hand-off

    def take_rolled(self) -> list[RolledFile]:
        """The files closed since the last call, oldest first, for the segment writer."""
        rolled, self._rolled = self._rolled, []
        return rolled

    def delete(self, rolled_path: str) -> None:
        """Remove a closed WAL file whose ops are in the segments (oldest first)."""
        m = _NAME.match(os.path.basename(rolled_path))
        here = os.path.dirname(os.path.abspath(rolled_path)) == os.path.abspath(self.directory)
        if m is None or not here:
            raise ValueError(f"{rolled_path} is not a file of this WAL")
        number = int(m.group(1))
        if number not in self._closed:
            raise ValueError(f"{rolled_path} is not a closed WAL file (or is already deleted)")
        if any(os.path.basename(r.path) == _name(number) for r in self._rolled):
            raise ValueError(f"{rolled_path} was never taken (take_rolled) for the segments")
        if number != self._closed[0]:
            raise ValueError(f"WAL files are deleted oldest first: {_name(self._closed[0])} first")
        os.remove(rolled_path)
        fsync_dir(self.directory, self.sync)
        self._closed.pop(0)

    def current_op(self, uid: str) -> Op | None:
        """One op replaying what the file being written holds for `uid` (None if nothing)."""
        image = self._mem.get(uid)
        return image.as_op() if image is not None else None

    def forget(self, uid: str) -> None:
        """Drop a deleted member from the memtables and from files not yet taken."""
        self._mem.pop(uid, None)
        self._rolled = [
            RolledFile(r.path, {u: o for u, o in r.ops.items() if u != uid}) for r in self._rolled
        ]

    def close(self, flush: bool = True) -> None:
        """Flush what is buffered (unless `flush` is False: it is dropped, as a crash
        would drop it), then close the file."""
        if self._fd is None:
            return
        if flush:
            self.flush()
        self._buffer = []
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
