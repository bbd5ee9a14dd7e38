"""The node's end of links, monitors and spawns that other nodes ask for (see `_remote`).

Rules of this module:
- These run on the distribution's I/O thread: they take the node's lock briefly and never
  block.
- A remote signal acts only while the link or monitor it belongs to exists, so each fires
  exactly once, whether it comes from the peer or from losing the peer (`sever`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._remote import node_of
from .._terms import Error, Pid, Ref

if TYPE_CHECKING:
    from .._process import Process
    from . import Node


class RemoteEnd:
    """Mixed into `Node`."""

    def spawn_for_remote(self: Node, fun: Callable[..., Any], args: tuple[Any, ...], parent: Pid,
                         link: bool, mref: Ref | None, announce: Callable[[Pid], None]) -> None:
        """A spawn asked by a process on another node: the link or monitor to `parent` is in
        place, and `announce(pid)` has gone out, before the new process runs."""
        if not callable(fun):
            raise Error("badarg")
        proc, _ = self._new_process("thread", fun, None, False, False)
        with self._lock:
            if link:
                proc.links.add(parent)
            if mref is not None:
                proc.monitored_by[mref] = (parent, proc.pid)
        announce(proc.pid)
        proc.scheduled = True
        self.pool.submit(lambda: self._run_function(proc, fun, args))

    def add_remote_link(self: Node, local: Pid, remote: Pid) -> bool:
        """A remote process links to `local`. False if `local` is not alive."""
        with self._lock:
            proc = self.lookup(local)
            if proc is None:
                return False
            proc.links.add(remote)
            return True

    def remove_remote_link(self: Node, local: Pid, remote: Pid) -> None:
        with self._lock:
            proc = self.lookup(local)
            if proc is not None:
                proc.links.discard(remote)

    def link_exit(self: Node, target_pid: Pid, from_pid: Pid, reason: Any) -> None:
        """A remote process died with `reason`: a signal to `target_pid` if they are linked."""
        with self._lock:
            target = self.lookup(target_pid)
            if target is None or from_pid not in target.links:
                return
            target.links.discard(from_pid)
        self.run_exit_signals(deque([(target_pid, from_pid, reason)]))

    def add_remote_monitor(self: Node, watcher: Pid, target: Any, ref: Ref) -> Any:
        """A remote process monitors a local pid or name. Returns None if set, else the
        DOWN object to answer "noproc" with."""
        obj = target if type(target) is Pid else (target, self.name)
        with self._lock:
            found = self.lookup(target) if type(target) is Pid else self.resolve(target)
            if found is None or not found.alive:
                return obj
            found.monitored_by[ref] = (watcher, obj)
            return None

    def remove_remote_monitor(self: Node, target: Any, ref: Ref) -> None:
        with self._lock:
            found = self.lookup(target) if type(target) is Pid else self.resolve(target)
            if found is not None:
                found.monitored_by.pop(ref, None)

    def monitor_down(self: Node, watcher_pid: Pid, ref: Ref, obj: Any, reason: Any) -> None:
        """A remote DOWN: delivered once, only while the monitor is still held."""
        with self._lock:  # removed and queued in one step (see the node's rules)
            watcher = self.lookup(watcher_pid)
            if watcher is None or watcher.monitors.pop(ref, None) is None:
                return
            watcher.deliver(("DOWN", ref, "process", obj, reason))

    def sever(self: Node, name: str) -> tuple[list[tuple[Pid, Pid, Any]],
                                        list[tuple[Process, Ref, Any]]]:
        """Node `name` is gone: drop every link and monitor with it. The DOWNs
        ("noconnection") are queued here, under the lock; returns the exit signals due
        (target, from, "noconnection"), and an empty list where the DOWNs used to be."""
        signals: list[tuple[Pid, Pid, Any]] = []
        downs: list[tuple[Process, Ref, Any]] = []
        with self._lock:
            for proc in self._procs.values():
                for other in [p for p in proc.links if p.node == name]:
                    proc.links.discard(other)
                    signals.append((proc.pid, other, "noconnection"))
                for ref, target in list(proc.monitors.items()):
                    if node_of(target) == name:  # removed and queued in one step
                        del proc.monitors[ref]
                        proc.deliver(("DOWN", ref, "process", target, "noconnection"))
                for ref, (watcher, _) in list(proc.monitored_by.items()):
                    if watcher.node == name:
                        del proc.monitored_by[ref]
        return signals, downs
