"""A member's snapshot files: ``<dir>/<index>-<term>.snap``, the newest one kept.

Rules of this module:
* A snapshot file is two records (see `_records`): the pickled `SnapshotMeta`,
  then the raw snapshot bytes. It is written as ``<name>.tmp``, fsynced, renamed
  into place and the directory fsynced, so a snapshot file is whole or absent.
* Only after the new file is durable are the other ``.snap`` files (older
  snapshots) and leftover ``.tmp`` files deleted. The core only ever stores a
  snapshot newer than the last, so the one just written is the latest.
* `latest` picks the highest index (two files remain after a crash between the
  rename and the clean-up). Since the file was renamed only once whole, any
  damage to it, torn or not, raises `CorruptLog`; it never falls back to an
  older snapshot (whose entries may already be compacted away). A leftover
  ``.tmp`` file is ignored and removed.
"""

from __future__ import annotations

import os
import re

from actors.raft.messages import SnapshotMeta

from ._records import (
    CorruptLog,
    atomic_write,
    dumps,
    encode,
    fsync_dir,
    header,
    loads,
    make_dirs,
    scan,
)

_NAME = re.compile(r"^(\d+)-(\d+)\.snap$")


def _path(directory: str, meta: SnapshotMeta) -> str:
    return os.path.join(directory, f"{meta.index}-{meta.term}.snap")


def write(directory: str, meta: SnapshotMeta, data: bytes, sync: bool = True) -> str:
    """Store the snapshot durably, then delete every other snapshot file; its path."""
    make_dirs(directory, sync)
    path = _path(directory, meta)
    atomic_write(path, [encode(dumps(meta)), header(data), data], sync=sync)
    removed = False
    for name in os.listdir(directory):
        if name != os.path.basename(path) and (_NAME.match(name) or name.endswith(".tmp")):
            os.remove(os.path.join(directory, name))
            removed = True
    if removed:
        fsync_dir(directory, sync)
    return path


def latest(directory: str) -> tuple[SnapshotMeta, bytes] | None:
    """The newest snapshot in `directory`, or None."""
    if not os.path.isdir(directory):
        return None
    best: tuple[int, int, str] | None = None
    for name in os.listdir(directory):
        if name.endswith(".tmp"):
            os.remove(os.path.join(directory, name))
        elif m := _NAME.match(name):
            key = (int(m.group(1)), int(m.group(2)), name)
            best = key if best is None or key > best else best
    if best is None:
        return None
    index, term, name = best
    path = os.path.join(directory, name)
    return _load(path, index, term)


def _load(path: str, index: int, term: int) -> tuple[SnapshotMeta, bytes]:
    with open(path, "rb") as f:
        found = scan(f.read(), path)
    if found.torn:
        raise CorruptLog(path, found.end, f"damaged snapshot: {found.detail}")
    if len(found.payloads) != 2:
        raise CorruptLog(path, found.end, f"{len(found.payloads)} records, expected 2")
    meta = loads(found.payloads[0], path, found.offsets[0])
    if not isinstance(meta, SnapshotMeta) or (meta.index, meta.term) != (index, term):
        raise CorruptLog(path, found.offsets[0], f"meta {meta!r} does not match the file name")
    return meta, found.payloads[1]
