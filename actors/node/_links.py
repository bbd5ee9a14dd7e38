"""The node's links and monitors, local or with a process on another node.

Rules of this module:
- Both ends of a local link or monitor are updated under the node's lock. For a remote
  pid, this end is recorded first and the other end is asked by a control tuple (see
  `_remote`); a node that cannot be reached answers with noconnection (`Remote.nodedown`).
- A monitor ends with its DOWN: `demonitor` of a fired monitor returns False.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._remote import node_of, wire_id
from .._terms import Error, Pid, Ref

if TYPE_CHECKING:
    from .._process import Process
    from . import Node


class Links:
    """Mixed into `Node`."""

    def link(self: Node, proc: Process, pid: Pid) -> None:
        """Link; to a dead pid: ("EXIT", pid, "noproc") if trapping, else error noproc."""
        if pid == proc.pid:
            return
        if pid.node != self.name:
            with self._lock:
                proc.links.add(pid)
            self.remote.send(pid.node, ("link", proc.pid, pid))
            return
        with self._lock:
            other = self.lookup(pid)
            if other is not None:
                other.links.add(proc.pid)
                proc.links.add(pid)
                return
        if not proc.trap_exit:
            raise Error("noproc")
        proc.deliver(("EXIT", pid, "noproc"))

    def unlink(self: Node, proc: Process, pid: Pid) -> None:
        with self._lock:
            proc.links.discard(pid)
            other = self.lookup(pid)
            if other is not None:
                other.links.discard(proc.pid)
        if pid.node != self.name:
            self.remote.send(pid.node, ("unlink", proc.pid, pid), autoconnect=False)

    def monitor(self: Node, proc: Process, target: Any, ref: Ref | None = None,
                then_send: Any = None) -> Ref:
        """Monitor a pid or a registered name; DOWN "noproc" at once if it is not alive.

        With `then_send`, also send it to the target right after the monitor is set (a
        call's request: on another node, both go in one frame)."""
        ref = ref or self.make_ref()
        where = self.locate(target) if type(target) is not str else None
        if type(where) is Pid or type(where) is tuple:
            with self._lock:
                proc.monitors[ref] = where  # type: ignore[assignment]
            wire = where if type(where) is Pid else where[0]  # type: ignore[index]
            control: Any = ("monitor", proc.pid, wire, ref)
            if then_send is not None:
                send = (("send", wire_id(where), then_send) if type(where) is Pid  # type: ignore[arg-type]
                        else ("reg_send", wire, then_send))
                control = ("batch", [control, send])
            self.remote.send(node_of(where), control)
            return ref
        by_name = type(target) is not Pid
        obj = target
        if by_name:
            name = target[0] if type(target) is tuple else target
            obj = (name, self.name)
        with self._lock:
            found = self.resolve(target)
            if found is not None and found.alive:
                proc.monitors[ref] = found.pid
                found.monitored_by[ref] = (proc.pid, obj)
        if found is not None and found.alive:
            if then_send is not None:
                found.deliver(then_send)
            return ref
        proc.deliver(("DOWN", ref, "process", obj, "noproc"))
        return ref

    def demonitor(self: Node, proc: Process, ref: Ref) -> bool:
        with self._lock:
            target_pid = proc.monitors.pop(ref, None)
            if target_pid is None:
                return False
            if node_of(target_pid) == self.name:
                target = self.lookup(target_pid)
                if target is not None:
                    target.monitored_by.pop(ref, None)
                return True
        # lazy: it rides with the next frame to that node (or its next tick)
        self.remote.send(node_of(target_pid), ("demonitor", target_pid, ref),
                         autoconnect=False, lazy=True)
        return True
