"""Where a supervisor keeps its children: O(1) add, find and remove, so that starting and
stopping N children costs O(N) in all.

Rules of this module:
- Static children (every strategy but simple_one_for_one) live in a dict by id, whose
  insertion order is their start order, plus an index by pid. `which_children` lists them
  newest first, as OTP's supervisor does.
- A simple_one_for_one child is a key in a dict: its pid while it runs, or
  `Restarting(old_pid)` while its restart keeps failing. The value is its extra start
  arguments, or None for a temporary child (OTP keeps no arguments for those).
- Nothing here sends a message: the supervisor process owns the store and does the I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from actors.erlang import Pid

from .childspec import Child


@dataclass(frozen=True)
class Restarting:
    """The key of a simple_one_for_one child whose restart failed: its last pid."""

    pid: Pid


class StaticChildren:
    """Children by id in start order, with an index by pid."""

    def __init__(self, children: list[Child] | None = None) -> None:
        self._by_id: dict[Any, Child] = {}
        self._by_pid: dict[Pid, Child] = {}
        for child in children or []:
            self.add(child)

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, child: Child) -> None:
        """Append a child (the newest). Its id must not be taken."""
        self._by_id[child.id] = child
        if type(child.pid) is Pid:
            self._by_pid[child.pid] = child

    def remove(self, child: Child) -> None:
        self._by_id.pop(child.id, None)
        if type(child.pid) is Pid:
            self._by_pid.pop(child.pid, None)

    def get(self, child_id: Any) -> Child | None:
        try:
            return self._by_id.get(child_id)
        except TypeError:  # an unhashable key names no child
            return None

    def of_pid(self, pid: Pid) -> Child | None:
        return self._by_pid.get(pid)

    def set_pid(self, child: Child, pid: Any) -> None:
        """Set a child's pid (a Pid, "undefined" or "restarting") and keep the index."""
        if type(child.pid) is Pid:
            self._by_pid.pop(child.pid, None)
        child.pid = pid
        if type(pid) is Pid:
            self._by_pid[pid] = child

    def start_order(self) -> list[Child]:
        return list(self._by_id.values())

    def newest_first(self) -> Iterator[Child]:
        return reversed(self._by_id.values())

    def from_child(self, child: Child) -> list[Child]:
        """`child` and every child started after it (rest_for_one's group)."""
        order = self.start_order()
        for index, other in enumerate(order):
            if other is child:
                return order[index:]
        return []


class DynamicChildren:
    """simple_one_for_one children: key (Pid or Restarting) -> extra args (None if temporary)."""

    def __init__(self) -> None:
        self._args: dict[Pid | Restarting, list[Any] | None] = {}

    def __len__(self) -> int:
        return len(self._args)

    def __contains__(self, key: Any) -> bool:
        return key in self._args

    def store(self, key: Pid | Restarting, args: list[Any] | None) -> None:
        self._args[key] = args

    def pop(self, key: Any) -> tuple[bool, list[Any] | None]:
        """(was there, its args)."""
        if key in self._args:
            return True, self._args.pop(key)
        return False, None

    def in_start_order(self) -> list[Pid | Restarting]:
        """In start order."""
        return list(self._args)

    def running(self) -> list[Pid]:
        return [k for k in self._args if type(k) is Pid]

    def clear(self) -> None:
        self._args.clear()
