"""The node's name registries (local names, its replica of the global names), and where a
destination is: `locate` resolves it once, and the send path acts on the answer.

Rules of this module:
- Local names are `str`; a process has at most one. Global names are any term; on a
  distributed node the global name server (`_global_server`) keeps the replica with
  `set_global`, and frees the names of dead processes itself.
- Writes take the table's lock; reads are single dict reads and take none.
- `Located` is what the send path resolves a destination to, once: a local `Process`, a
  `Pid` on another node, or a `RemoteName` (name, node) for a name on another node. Send,
  call, monitor and stop act on it without resolving again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

from .._terms import Error, Pid
from ._table import ProcessTable

if TYPE_CHECKING:
    from .._process import Process

#: (registered name, node) of a name on another node.
RemoteName = tuple[str, str]
#: Where a destination is: a local process, a pid on another node, or a remote name.
Located = Union["Process", Pid, RemoteName]


class Names:
    """Local and global names of one node, over its process table."""

    def __init__(self, table: ProcessTable) -> None:
        self.name = table.name
        self._table = table
        self._procs = table.procs
        self._creation = table.creation
        self._lock = table.lock
        self.local: dict[str, Process] = {}
        self.globals: dict[Any, Pid] = {}

    # -- resolving ----------------------------------------------------------------------------

    def resolve(self, dest: Any) -> Process | None:
        """A pid, a registered name, (name, node) or ("global", name) to a live process."""
        if type(dest) is Pid:
            return self._table.lookup(dest)
        if type(dest) is str:
            return self.local.get(dest)
        if type(dest) is tuple and len(dest) == 2:
            first, second = dest
            if first == "global":
                pid = self.globals.get(second)
                return self._table.lookup(pid) if pid is not None else None
            if first == "local" and type(second) is str:
                return self.local.get(second)
            if type(first) is str and second == self.name:
                return self.local.get(first)
        if type(dest) is tuple and len(dest) == 3 and dest[0] == "via":
            pid = dest[1].whereis_name(dest[2])
            return self._table.lookup(pid) if type(pid) is Pid else None
        return None

    def locate(self, dest: Any) -> Located | None:
        """Like `resolve`, but a destination on another node comes back as itself: a remote
        pid, or (name, node). None if it is local and not there."""
        if type(dest) is Pid:  # the table's `lookup`, inline: every send comes here
            if dest.node != self.name:
                return dest
            return self._procs.get(dest.id) if dest.creation == self._creation else None
        if type(dest) is tuple and len(dest) == 2:
            first, second = dest
            if first == "global":
                pid = self.globals.get(second)
                if pid is None:
                    return None
                return self._table.lookup(pid) if pid.node == self.name else pid
            if (type(first) is str and type(second) is str and first != "local"
                    and second != self.name):
                return (first, second)
        return self.resolve(dest)

    # -- local names --------------------------------------------------------------------------

    def whereis(self, name: str) -> Process | None:
        return self.local.get(name)

    def register(self, name: str, pid: Pid) -> None:
        if type(name) is not str or name == "undefined":
            raise Error("badarg")
        with self._lock:
            proc = self._table.lookup(pid)
            if proc is None or name in self.local or proc.name is not None:
                raise Error("badarg")
            self.local[name] = proc
            proc.name = name

    def unregister(self, name: str) -> None:
        with self._lock:
            proc = self.local.pop(name, None)
            if proc is None:
                raise Error("badarg")
            proc.name = None

    def registered(self) -> list[str]:
        with self._lock:
            return list(self.local)

    # -- global names -------------------------------------------------------------------------

    def register_global(self, name: Any, pid: Pid) -> bool:
        with self._lock:
            proc = self._table.lookup(pid)
            if proc is None or name in self.globals:
                return False
            self.globals[name] = proc.pid
            proc.global_names = (*proc.global_names, name)
            return True

    def unregister_global(self, name: Any) -> None:
        with self._lock:
            pid = self.globals.pop(name, None)
            proc = self._table.lookup(pid) if pid is not None else None
            if proc is not None:
                proc.global_names = tuple(n for n in proc.global_names if n != name)

    def set_global(self, name: Any, pid: Pid | None) -> None:
        """The distributed registry's replica on this node: `name` now means `pid` (or
        nothing). The registry itself frees names of dead processes."""
        with self._lock:
            if pid is None:
                self.globals.pop(name, None)
            else:
                self.globals[name] = pid

    def global_names(self) -> list[Any]:
        with self._lock:
            return list(self.globals)

    def forget(self, proc: Process) -> None:
        """With the lock held: `proc` died; free its local and global names."""
        if proc.name is not None and self.local.get(proc.name) is proc:
            del self.local[proc.name]
        for gname in proc.global_names:
            if self.globals.get(gname) == proc.pid:
                del self.globals[gname]
