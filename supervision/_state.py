"""A supervisor's state and the answers it computes from it without any I/O.

Rules of this module:
- `State` holds the flags, the callback module and its init args (code_change calls init
  again), the children (static or simple_one_for_one), and the recent restart times.
- Answers have OTP's shapes: which_children is newest first for static children and in
  start order for simple_one_for_one ones, a child in a restart loop shows "restarting",
  count_children counts a restarting simple_one_for_one child as a spec but not active.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from actors.erlang import Pid

from ._store import DynamicChildren, Restarting, StaticChildren
from .childspec import Child, Flags

ChildInfo = tuple[Any, Any, str, Any]


@dataclass
class State:
    name: Any
    module: Any
    args: Any
    flags: Flags
    callbacks: Any = None  # the module's instance, or the module
    children: StaticChildren = field(default_factory=StaticChildren)
    template: Child | None = None  # simple_one_for_one's only spec
    dynamic: DynamicChildren = field(default_factory=DynamicChildren)
    restarts: deque[float] = field(default_factory=deque)

    @property
    def simple(self) -> bool:
        return self.flags.strategy == "simple_one_for_one"

    def add_restart(self) -> bool:
        """Record a restart; False when there were more than `intensity` in `period` s."""
        now = time.monotonic()
        restarts = self.restarts
        while restarts and now - restarts[0] > self.flags.period:
            restarts.popleft()
        restarts.append(now)
        return len(restarts) <= self.flags.intensity

    # -- answers --------------------------------------------------------------------------

    def which_children(self) -> list[ChildInfo]:
        if self.template is not None:
            t = self.template
            return [("undefined", k if type(k) is Pid else "restarting", t.type, t.modules)
                    for k in self.dynamic.in_start_order()]
        return [(c.id, c.pid, c.type, c.modules) for c in self.children.newest_first()]

    def which_child(self, key: Any) -> Any:
        """("ok", (id, pid, type, modules)) | ("error", "not_found" | "simple_one_for_one")."""
        if self.template is not None:
            if type(key) is not Pid:
                return ("error", "simple_one_for_one")
            t = self.template
            if key in self.dynamic:
                return ("ok", ("undefined", key, t.type, t.modules))
            if Restarting(key) in self.dynamic:
                return ("ok", ("undefined", "restarting", t.type, t.modules))
            return ("error", "not_found")
        child = self.children.get(key)
        if child is None:
            return ("error", "not_found")
        return ("ok", (child.id, child.pid, child.type, child.modules))

    def count_children(self) -> list[tuple[str, int]]:
        if self.template is not None:
            n = len(self.dynamic)
            active = len(self.dynamic.running())
            sups = n if self.template.type == "supervisor" else 0
            return [("specs", 1), ("active", active), ("supervisors", sups),
                    ("workers", n - sups)]
        children = self.children.start_order()
        active = sum(1 for c in children if type(c.pid) is Pid)
        sups = sum(1 for c in children if c.type == "supervisor")
        return [("specs", len(children)), ("active", active), ("supervisors", sups),
                ("workers", len(children) - sups)]

    def dynamic_key(self, pid: Pid) -> Pid | Restarting | None:
        """The key of simple_one_for_one child `pid`, running or restarting, if any."""
        if pid in self.dynamic:
            return pid
        if Restarting(pid) in self.dynamic:
            return Restarting(pid)
        return None

    def childspec(self, key: Any) -> Any:
        """get_childspec: ("ok", spec_map) | ("error", "not_found")."""
        if self.template is not None:
            if type(key) is Pid and self.dynamic_key(key) is not None:
                return ("ok", self.template.as_map())
            return ("error", "not_found")
        child = self.children.get(key)
        return ("ok", child.as_map()) if child is not None else ("error", "not_found")
