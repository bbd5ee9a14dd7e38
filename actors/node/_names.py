"""The node's name registries: local names, and its replica of the global names.

Rules of this module:
- Local names are `str`; a process has at most one. Global names are any term; on a
  distributed node the global name server (`_global_server`) keeps the replica with
  `set_global`, and frees the names of dead processes itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._terms import Error, Pid

if TYPE_CHECKING:
    from .._process import Process
    from . import Node


class Names:
    """Mixed into `Node`."""

    def whereis(self: Node, name: str) -> Process | None:
        return self._names.get(name)

    def register(self: Node, name: str, pid: Pid) -> None:
        if type(name) is not str or name == "undefined":
            raise Error("badarg")
        with self._lock:
            proc = self.lookup(pid)
            if proc is None or name in self._names or proc.name is not None:
                raise Error("badarg")
            self._names[name] = proc
            proc.name = name

    def unregister(self: Node, name: str) -> None:
        with self._lock:
            proc = self._names.pop(name, None)
            if proc is None:
                raise Error("badarg")
            proc.name = None

    def registered(self: Node) -> list[str]:
        with self._lock:
            return list(self._names)

    def register_global(self: Node, name: Any, pid: Pid) -> bool:
        with self._lock:
            proc = self.lookup(pid)
            if proc is None or name in self._globals:
                return False
            self._globals[name] = proc.pid
            proc.global_names.add(name)
            return True

    def unregister_global(self: Node, name: Any) -> None:
        with self._lock:
            pid = self._globals.pop(name, None)
            proc = self.lookup(pid) if pid is not None else None
            if proc is not None:
                proc.global_names.discard(name)

    def set_global(self: Node, name: Any, pid: Pid | None) -> None:
        """The distributed registry's replica on this node: `name` now means `pid` (or
        nothing). The registry itself frees names of dead processes."""
        with self._lock:
            if pid is None:
                self._globals.pop(name, None)
            else:
                self._globals[name] = pid

    def global_names(self: Node) -> list[Any]:
        with self._lock:
            return list(self._globals)
