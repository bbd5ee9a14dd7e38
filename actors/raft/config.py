"""Configurations read from a log: pure functions over a `RaftLog`.

Rules of this module:
* A configuration is a set of voters, carried by a `config` entry whose
  command is the new frozenset; the newest config entry held is in force
  (appended, not necessarily committed). Without one, `base` is in force: the
  initial voters, or the snapshot's.
"""

from __future__ import annotations

from .log import RaftLog
from .messages import NodeId


def last_config_index(log: RaftLog, at_most: int | None = None) -> int:
    """Index of the newest config entry held at or below `at_most` (0 if none)."""
    index = log.last_index if at_most is None else min(at_most, log.last_index)
    for _ in range(index - log.snapshot_index):
        if log.entry(index).kind == "config":
            return index
        index -= 1
    return 0


def config_from_log(
    log: RaftLog, base: frozenset[NodeId], at_most: int | None = None
) -> frozenset[NodeId]:
    """The voters in force: the newest config entry, else `base` (initial or snapshot)."""
    index = last_config_index(log, at_most)
    if index == 0:
        return base
    command = log.entry(index).command
    assert isinstance(command, frozenset)
    return command
