"""A node's process table: its live processes by serial, and the lock that guards the node.

Rules of this module:
- `lock` guards the table, the name registries, links and monitors of the whole node (one
  lock, as before the node was split into parts). A mailbox lock may be taken while holding
  it, never the other way round.
- Reads (`lookup`, `lookup_id`) take no lock: a dict read is atomic, and a caller that needs
  a fact to hold acts under `lock` and checks `proc.alive` there.
"""

from __future__ import annotations

import itertools
import threading
from typing import TYPE_CHECKING, Any

from .._terms import Pid

if TYPE_CHECKING:
    from .._process import Process


class ProcessTable:
    """The live processes of node `name` in its incarnation `creation`."""

    def __init__(self, name: str, creation: int) -> None:
        self.name = name
        self.creation = creation
        self.lock = threading.RLock()
        self.procs: dict[int, Process] = {}
        self._ids = itertools.count(1)

    def new_pid(self) -> Pid:
        return Pid(self.name, next(self._ids), self.creation)

    def lookup(self, pid: Pid) -> Process | None:
        """The live process behind a local pid, or None."""
        if pid.node != self.name or pid.creation != self.creation:
            return None
        return self.procs.get(pid.id)

    def lookup_id(self, key: Any) -> Process | None:
        """The live local process a remote "send" names by `wire_id(pid)`."""
        if type(key) is not int or key & 0xFFFFFFFF != self.creation:
            return None
        return self.procs.get(key >> 32)
