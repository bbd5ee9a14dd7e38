"""How a process dies: in one place, `exit_process`, whatever the death comes from.

Rules of this module:
- A process dies in `exit_process` (its own return, a crash, an exit signal, a kill). Death
  is immediate for every observer: the name is freed, the mailbox closed, monitors fire once
  and link signals go out, even if the process's thread is still stuck in Python code. That
  thread unwinds at its next runtime call; if it makes none within `grace_ms`, it is
  interrupted (see `_interrupt`).
- A monitor is removed and its DOWN queued under the node's lock, in one step: so when
  `demonitor` finds a monitor gone, its DOWN is already in the watcher's mailbox, and
  demonitor(ref, ["flush"]) always removes it (OTP's promise).
- A dying process's timers are cancelled (`cancel_timers`), as ERTS does.
- Exit signals follow Erlang: "kill" via `exit/2` cannot be trapped and kills with "killed";
  a trapping process gets ("EXIT", from, reason); "normal" is ignored unless trapping.
- Once `stopping` (the node stops), nobody gets to react: no DOWN, no link signal.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from .. import _interrupt
from .._process import Process
from .._remote import node_of
from .._terms import Error, Pid, Ref
from ._links import SendControl
from ._names import Names
from ._remote_end import Signals
from ._table import ProcessTable

log = logging.getLogger("actors.proc_lib")


class Exits:
    """Deaths and exit signals of one node's processes."""

    def __init__(self, table: ProcessTable, names: Names,
                 cancel_timers: Callable[[Pid], None], send_control: SendControl,
                 grace_ms: int) -> None:
        self.name = table.name
        self.stopping = False
        self._table = table
        self._lock = table.lock
        self._names = names
        self._cancel_timers = cancel_timers
        self._send = send_control
        self._grace_ms = grace_ms
        self._hooks: dict[int, list[Callable[[Any], None]]] = {}

    def exit_process(self, proc: Process, reason: Any) -> None:
        """End `proc` with `reason` now, and send its link signals and DOWNs."""
        work: Signals = deque(self._terminate(proc, reason))
        self.run_exit_signals(work)

    def _terminate(self, proc: Process, reason: Any) -> list[tuple[Pid, Pid, Any]]:
        """`proc` dies now (once): the local exit signals it leaves are returned."""
        with proc.lock:
            if not proc.alive:
                return []
            proc.alive = False
            proc.exit_reason = reason
            proc.handler = None  # its loop holds the process: no cycle left for the GC
            proc.mailbox.clear()
            proc.aliases.clear()
            thread = proc.thread
            if proc.status == "waiting":
                proc.notify()
            elif (thread is not None and thread != threading.get_ident()
                  and proc.kind != "shell"):
                _interrupt.interrupt_later(proc, thread, self._grace_ms)
            proc.status = "exiting"
        self._cancel_timers(proc.pid)  # ERTS cancels a dead process's timers
        with self._lock:
            self._table.procs.pop(proc.pid.id, None)
            self._names.forget(proc)
            links, proc.links = proc.links, set()
            remote_links = [p for p in links if p.node != self.name]
            for other_pid in links:
                other = self._table.lookup(other_pid)
                if other is not None:
                    other.links.discard(proc.pid)
            remote_monitors: list[tuple[Ref, Pid | tuple[str, str]]] = []
            for ref, target in proc.monitors.items():
                if type(target) is not Pid or target.node != self.name:
                    remote_monitors.append((ref, target))
                    continue
                found = self._table.lookup(target)
                if found is not None:
                    found.monitored_by.pop(ref, None)
            proc.monitors = {}
            watchers, proc.monitored_by = proc.monitored_by, {}
            proc.call_monitors = None
            for ref, (watcher_pid, obj) in watchers.items():
                watcher = self._table.lookup(watcher_pid)
                if watcher is not None:
                    # a monitor ends with its DOWN, queued under the same lock: whoever
                    # finds the monitor gone (demonitor -> False) finds the DOWN queued
                    watcher.monitors.pop(ref, None)
                    if not self.stopping:
                        watcher.deliver(("DOWN", ref, "process", obj, reason))
            hooks = self._hooks.pop(proc.pid.id, [])
        for hook in hooks:
            try:
                hook(reason)
            except Exception:
                log.exception("an exit hook of %r failed", proc.pid)
        if self.stopping:
            return []
        for ref, target in remote_monitors:
            self._send(node_of(target), ("demonitor", target, ref), autoconnect=False)
        for ref, (watcher_pid, obj) in watchers.items():
            if watcher_pid.node != self.name:
                self._send(watcher_pid.node, ("down", ref, watcher_pid, obj, reason),
                                 autoconnect=False)
        for other_pid in remote_links:
            self._send(other_pid.node, ("exit", proc.pid, other_pid, reason),
                             autoconnect=False)
        return [(other_pid, proc.pid, reason) for other_pid in links
                if other_pid.node == self.name]

    def run_exit_signals(self, work: Signals) -> None:
        """Act on each exit signal (target, from, reason); deaths add theirs. The deaths of
        the whole cascade happen first, and the EXIT messages to trapping processes go out
        after them, in order: a supervisor that hears of one death never sees the others
        of the same cascade still alive (or still holding their names), as in ERTS, where
        a link's victim dies as it gets the signal. Erlang orders no signals to different
        processes, so this is one of its allowed orders."""
        trapped: list[tuple[Process, tuple[str, Pid, Any]]] = []
        while work:
            target_pid, from_pid, reason = work.popleft()
            target = self._table.lookup(target_pid)
            if target is None:
                continue
            if target.trap_exit:
                trapped.append((target, ("EXIT", from_pid, reason)))
            elif reason != "normal":
                work.extend(self._terminate(target, reason))
        for target, message in trapped:
            target.deliver(message)

    def exit_signal(self, target_pid: Pid, from_pid: Pid, reason: Any) -> None:
        """`exit(Pid, Reason)`: an exit signal that does not come from a link."""
        if target_pid.node != self.name:
            self._send(target_pid.node, ("exit2", from_pid, target_pid, reason))
            return
        target = self._table.lookup(target_pid)
        if target is None:
            return
        if reason == "kill":
            work = deque(self._terminate(target, "killed"))
        elif target.trap_exit:
            target.deliver(("EXIT", from_pid, reason))
            return
        elif reason == "normal" and target_pid != from_pid:
            return
        else:
            work = deque(self._terminate(target, reason))
        self.run_exit_signals(work)

    def at_exit(self, pid: Pid, hook: Callable[[Any], None]) -> None:
        """Run `hook(reason)` when local process `pid` dies, however it dies (even killed).
        For resources a process owns outside the runtime, such as an OS child process."""
        with self._lock:
            if self._table.lookup(pid) is None:
                raise Error("noproc")
            self._hooks.setdefault(pid.id, []).append(hook)
