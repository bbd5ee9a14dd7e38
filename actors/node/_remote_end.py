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
from .._terms import Pid, Ref
from ._names import Names
from ._table import ProcessTable

if TYPE_CHECKING:
    from .._process import Process

#: Exit signals to run: (target, from, reason).
Signals = deque[tuple[Pid, Pid, Any]]


class RemoteEnd:
    """This node's side of links and monitors held with processes on other nodes."""

    def __init__(self, table: ProcessTable, names: Names,
                 run_exit_signals: Callable[[Signals], None]) -> None:
        self.name = table.name
        self._table = table
        self._lock = table.lock
        self._names = names
        self._run_exit_signals = run_exit_signals

    def add_remote_link(self, local: Pid, remote: Pid) -> bool:
        """A remote process links to `local`. False if `local` is not alive."""
        with self._lock:
            proc = self._table.lookup(local)
            if proc is None:
                return False
            proc.links.add(remote)
            return True

    def remove_remote_link(self, local: Pid, remote: Pid) -> None:
        with self._lock:
            proc = self._table.lookup(local)
            if proc is not None:
                proc.links.discard(remote)

    def link_exit(self, target_pid: Pid, from_pid: Pid, reason: Any) -> None:
        """A remote process died with `reason`: a signal to `target_pid` if they are linked."""
        with self._lock:
            target = self._table.lookup(target_pid)
            if target is None or from_pid not in target.links:
                return
            target.links.discard(from_pid)
        self._run_exit_signals(deque([(target_pid, from_pid, reason)]))

    def add_remote_monitor(self, watcher: Pid, target: Any, ref: Ref,
                           call: bool = False) -> Any:
        """A remote process monitors a local pid or name (`call`: for a gen call, whose
        reply ends it). Returns None if set, else the DOWN object to answer "noproc" with."""
        obj = target if type(target) is Pid else (target, self.name)
        with self._lock:
            found = (self._table.lookup(target) if type(target) is Pid
                     else self._names.resolve(target))
            if found is None or not found.alive:
                return obj
            found.monitored_by[ref] = (watcher, obj)
            if call:
                if found.call_monitors is None:
                    found.call_monitors = set()
                found.call_monitors.add(ref)
            return None

    def remove_remote_monitor(self, target: Any, ref: Ref) -> None:
        with self._lock:
            found = (self._table.lookup(target) if type(target) is Pid
                     else self._names.resolve(target))
            if found is not None:
                found.monitored_by.pop(ref, None)
                if found.call_monitors:
                    found.call_monitors.discard(ref)

    def end_call_monitor(self, proc: Process, caller: Pid, ref: Ref) -> bool:
        """`proc` replies to a remote call: the call's monitor `ref` ends here, and the
        reply tells the caller's node so (a "reply" control), so the caller sends no
        demonitor. False if `ref` is not a call's monitor of `caller` on `proc`."""
        with self._lock:
            calls = proc.call_monitors
            if not calls or ref not in calls:
                return False
            entry = proc.monitored_by.get(ref)
            if entry is not None and entry[0] != caller:
                return False  # not that caller's call (a made-up From): left as it is
            calls.discard(ref)
            return proc.monitored_by.pop(ref, None) is not None

    def reply_arrived(self, proc: Process, ref: Ref, sender: str) -> None:
        """The caller's side of `end_call_monitor`: its monitor `ref`, of a process of node
        `sender`, ended with the reply."""
        with self._lock:
            target = proc.monitors.get(ref)
            if target is not None and node_of(target) == sender:
                del proc.monitors[ref]

    def monitor_down(self, watcher_pid: Pid, ref: Ref, obj: Any, reason: Any) -> None:
        """A remote DOWN: delivered once, only while the monitor is still held."""
        with self._lock:  # removed and queued in one step (see the node's rules)
            watcher = self._table.lookup(watcher_pid)
            if watcher is None or watcher.monitors.pop(ref, None) is None:
                return
            watcher.deliver(("DOWN", ref, "process", obj, reason))

    def spawned(self, parent: Pid, child: Pid | None, link: bool,
                mref: Ref | None) -> Process | None:
        """A spawn this node asked for is done: the parent's link or monitor to `child` is
        in place (before anything else from that node: its EXIT or DOWN may be next).
        Returns the parent if it is alive."""
        with self._lock:
            proc = self._table.lookup(parent)
            if proc is not None and child is not None:
                if link:
                    proc.links.add(child)
                if mref is not None:
                    proc.monitors[mref] = child
        return proc

    def sever(self, name: str) -> Signals:
        """Node `name` is gone: drop every link and monitor with it. The DOWNs
        ("noconnection") are queued here, under the lock; returns the exit signals due
        (target, from, "noconnection")."""
        signals: Signals = deque()
        with self._lock:
            for proc in self._table.procs.values():
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
                        if proc.call_monitors:
                            proc.call_monitors.discard(ref)
        return signals
