"""One member's segment files: the entries the WAL handed over, as CRC-framed ops.

Rules of this module:
* Files are ``<member_dir>/segments/00000001.seg``, ``00000002.seg``, ... Each
  record's payload is one op (see `_records`); replaying every file in order
  gives the stored log, exactly as the WAL's ops would have.
* Only the newest file is written to (``O_APPEND``). `write(ops, source)`
  appends the ops as one batch (see `_records`) whose BEGIN marker names
  `source`, the number of the WAL file they came from, with one write and one
  fsync (fdatasync); before a batch, a file that has reached `max_file_bytes`
  (or a format-1 file) is closed and a new one created (directory fsynced).
* The first `write`, `replay`, `read` or `compact` scans every file. Damage
  raises `CorruptLog` and changes nothing, with one exception: a torn tail of
  the newest file (a cut write, see `_records`) whose batch came from a WAL
  file that is still on disk (``<wal_dir>/<source>.wal``), or that holds no
  entries (its BEGIN was cut), is kept in a ``.corrupt`` file, truncated and
  logged; the WAL hands that file to the segments again. Once the WAL file is
  deleted, the segment is the only copy: the batch was fsynced before the
  deletion, so a damaged tail is corruption, not a torn write. A torn tail of
  a format-1 file cannot name its WAL file and is corruption too. So is any
  damage to an older file, or a file missing from the numbering.
* `compact(snapshot_index)` deletes the longest run of *oldest* files whose
  entries are all <= snapshot_index, never the newest. Only a prefix is safe: an
  op may drop entries of every earlier file, so removing a file from the middle
  could bring back entries it had dropped.
* `wal_dir` defaults to ``D/wal`` for a member dir ``D/members/<uid>`` (the
  `_member_store` layout), else to None: no WAL file covers anything.
* ``sync=False`` skips every fsync (tests and benchmarks only).
* Not thread-safe: the member's segment writer owns its `SegmentLog`.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Sequence

from actors.raft.messages import Entry

from ._records import (
    CorruptLog,
    LogImage,
    Op,
    Scan,
    batch,
    cut_tail,
    fsync_dir,
    make_dirs,
    op_record,
    open_append,
    read_file,
    read_op,
    write_all,
)

DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024
_NAME = re.compile(r"^(\d{8})\.seg$")


def _name(number: int) -> str:
    return f"{number:08d}.seg"


class SegmentLog:
    """The segment files under `member_dir/segments`; see the module rules."""

    def __init__(
        self,
        member_dir: str | os.PathLike[str],
        max_file_bytes: int = DEFAULT_SEGMENT_BYTES,
        sync: bool = True,
        wal_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if max_file_bytes <= 0:
            raise ValueError("max_file_bytes must be positive")
        member_dir = os.path.abspath(os.fspath(member_dir))
        if wal_dir is None and os.path.basename(os.path.dirname(member_dir)) == "members":
            wal_dir = os.path.join(os.path.dirname(os.path.dirname(member_dir)), "wal")
        self.wal_dir = None if wal_dir is None else os.fspath(wal_dir)
        self.directory = os.path.join(member_dir, "segments")
        self.max_file_bytes = max_file_bytes
        self.sync = sync
        self._fd: int | None = None
        self._number = 0  # the file `_fd` appends to
        self._size = 0
        self._max_index: dict[int, int] | None = None  # file number -> highest entry index
        self._newest_v1 = False  # the newest file is format 1 (never append batches to it)

    def files(self) -> list[str]:
        """The segment files on disk, oldest first."""
        return [os.path.join(self.directory, _name(n)) for n in self._numbers()]

    def _numbers(self) -> list[int]:
        if not os.path.isdir(self.directory):
            return []
        return sorted(int(m.group(1)) for n in os.listdir(self.directory) if (m := _NAME.match(n)))

    # ------------------------------------------------------------ reading

    def replay(self) -> LogImage:
        """Replay every file: the stored log (entries below a snapshot may remain)."""
        image = LogImage()
        max_index: dict[int, int] = {}
        numbers = self._numbers()
        for a, b in itertools.pairwise(numbers):
            if b != a + 1:
                raise CorruptLog(self.directory, 0, f"segment file {_name(a + 1)} is missing")
        for pos, number in enumerate(numbers):
            path = os.path.join(self.directory, _name(number))
            found = self._read(path, newest=pos == len(numbers) - 1)
            self._newest_v1 = found.version == 1 and found.end > 0
            top = 0
            for payload, offset in zip(found.payloads, found.offsets, strict=True):
                _, (_, from_index, entries) = read_op(payload, path, offset)
                image.apply(from_index, entries)
                top = max([top, *(e.index for e in entries)])
            max_index[number] = top
        self._max_index = max_index
        return image

    def _read(self, path: str, newest: bool) -> Scan:
        """Scan one file; cut its torn tail only where the module rules allow."""
        data, found = read_file(path)
        if not found.torn:
            return found
        if not newest:
            raise CorruptLog(path, found.end, f"torn record before the newest file: {found.detail}")
        if found.version == 1:
            raise CorruptLog(path, found.end, f"damaged last record ({found.detail}) in a "
                             "format-1 segment, whose WAL file cannot be known")
        if found.source is not None and not self._wal_holds(found.source):
            fed = (f"the WAL file {found.source:08d}.wal that fed it is gone" if found.source
                   else "it names no WAL file")
            raise CorruptLog(path, found.end, f"damaged last batch ({found.detail}), and {fed}: "
                             "this is the only copy of its entries")
        cut_tail(path, data, found, self.sync)
        return found

    def _wal_holds(self, source: int) -> bool:
        return (
            source > 0
            and self.wal_dir is not None
            and os.path.exists(os.path.join(self.wal_dir, f"{source:08d}.wal"))
        )

    def read(self, after_index: int) -> list[Entry]:
        """The contiguous stored entries with index > after_index."""
        return self.replay().contiguous(after_index)

    # ------------------------------------------------------------ writing

    def write(self, ops: Sequence[Op], source: int = 0) -> None:
        """Append `ops` durably (one write, one fsync) as a batch from WAL file number
        `source` (0: none; a torn tail of such a batch is never cut)."""
        if not ops:
            return
        if source < 0:
            raise ValueError(f"source must be a WAL file number >= 0, got {source}")
        data = batch([op_record(None, op) for op in ops], source)
        top = max(e.index for op in ops for e in op[2]) if any(op[2] for op in ops) else 0
        number = self._writable()
        assert self._fd is not None
        try:
            write_all(self._fd, data)
            if self.sync:
                os.fdatasync(self._fd)
        except BaseException:
            self.close()  # a partial record may end the file: the next use rescans
            self._max_index = None
            raise
        self._size += len(data)
        assert self._max_index is not None
        self._max_index[number] = max(self._max_index.get(number, 0), top)

    def _writable(self) -> int:
        """The number of the file to append to, opened (and created when needed)."""
        if self._max_index is None:
            self.close()
            self.replay()
        assert self._max_index is not None
        numbers = sorted(self._max_index)
        if self._fd is None and numbers:
            self._open(numbers[-1], create=False)
        if self._fd is None or self._size >= self.max_file_bytes or self._newest_v1:
            self._newest_v1 = False
            self.close()
            self._open(numbers[-1] + 1 if numbers else 1, create=True)
            self._max_index[self._number] = 0
        return self._number

    def _open(self, number: int, create: bool) -> None:
        if create:
            make_dirs(self.directory, self.sync)
        self._fd, self._size = open_append(self.directory, _name(number), create, self.sync)
        self._number = number

    # ------------------------------------------------------------ compaction

    def compact(self, snapshot_index: int) -> list[str]:
        """Delete the oldest files holding only entries <= snapshot_index; their paths."""
        if self._max_index is None:
            self.close()
            self.replay()
        assert self._max_index is not None
        numbers = sorted(self._max_index)
        deleted: list[str] = []
        for number in numbers[:-1]:
            if self._max_index[number] > snapshot_index:
                break
            path = os.path.join(self.directory, _name(number))
            os.remove(path)
            del self._max_index[number]
            deleted.append(path)
        if deleted:
            fsync_dir(self.directory, self.sync)
        return deleted

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
