"""The node's links and monitors, local or with a process on another node.

Rules of this module:
- Both ends of a local link or monitor are updated under the node's lock. For a remote
  pid, this end is recorded first and the other end is asked by a control tuple (see
  `_remote`); a node that cannot be reached answers with noconnection (`Remote.nodedown`).
- A monitor ends with its DOWN: `demonitor` of a fired monitor returns False.
- `monitor_located` acts on a destination already resolved (`Names.locate`): a call
  resolves its server once, and monitors and sends to what it found.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from .._process import Process
from .._remote import node_of, wire_id
from .._terms import Error, Pid, Ref
from ._names import Located, Names
from ._table import ProcessTable


class SendControl(Protocol):
    """`Remote.send`: one control tuple to another node."""

    def __call__(self, name: str, control: Any, *, autoconnect: bool = ...,
                 lazy: bool = ...) -> None: ...


def down_object(name: str, target: Any) -> Any:
    """What a DOWN names for a monitor of `target` on node `name`: the pid, or (name, node)
    for a monitor by name."""
    if type(target) is Pid:
        return target
    return (target[0] if type(target) is tuple else target, name)


class Links:
    """Links and monitors of one node's processes."""

    def __init__(self, table: ProcessTable, names: Names, make_ref: Callable[[], Ref],
                 send_control: SendControl) -> None:
        self.name = table.name
        self._table = table
        self._lock = table.lock
        self._names = names
        self._make_ref = make_ref
        self._send = send_control

    def link(self, proc: Process, pid: Pid) -> None:
        """Link; to a dead pid: ("EXIT", pid, "noproc") if trapping, else error noproc."""
        if pid == proc.pid:
            return
        if pid.node != self.name:
            with self._lock:
                proc.links.add(pid)
            self._send(pid.node, ("link", proc.pid, pid))
            return
        with self._lock:
            other = self._table.lookup(pid)
            if other is not None:
                other.links.add(proc.pid)
                proc.links.add(pid)
                return
        if not proc.trap_exit:
            raise Error("noproc")
        proc.deliver(("EXIT", pid, "noproc"))

    def unlink(self, proc: Process, pid: Pid) -> None:
        with self._lock:
            proc.links.discard(pid)
            other = self._table.lookup(pid)
            if other is not None:
                other.links.discard(proc.pid)
        if pid.node != self.name:
            self._send(pid.node, ("unlink", proc.pid, pid), autoconnect=False)

    def monitor(self, proc: Process, target: Any, ref: Ref | None = None,
                then_send: Any = None) -> Ref:
        """Monitor a pid or a registered name; DOWN "noproc" at once if it is not alive.

        With `then_send`, also send it to the target right after the monitor is set (a
        call's request: on another node, both go in one frame)."""
        where = (self._names.locate(target) if type(target) is not str
                 else self._names.local.get(target))
        return self.monitor_located(proc, where, down_object(self.name, target),
                                    ref or self._make_ref(), then_send)

    def monitor_located(self, proc: Process, where: Located | None, obj: Any, ref: Ref,
                        then_send: Any = None) -> Ref:
        """`monitor` of a destination already located; `obj` is what a local DOWN names
        (see `down_object`)."""
        if type(where) is Pid:
            control: Any = ("monitor", proc.pid, where, ref)
            if then_send is not None:
                control = ("batch", [control, ("send", wire_id(where), then_send)])
            with self._lock:
                proc.monitors[ref] = where
            self._send(where.node, control)
            return ref
        if where is not None and type(where) is not Process:
            control = ("monitor", proc.pid, where[0], ref)
            if then_send is not None:
                control = ("batch", [control, ("reg_send", where[0], then_send)])
            with self._lock:
                proc.monitors[ref] = where
            self._send(where[1], control)
            return ref
        if where is not None:
            with self._lock:
                alive = where.alive
                if alive:
                    proc.monitors[ref] = where.pid
                    where.monitored_by[ref] = (proc.pid, obj)
            if alive:
                if then_send is not None:
                    where.deliver(then_send)
                return ref
        proc.deliver(("DOWN", ref, "process", obj, "noproc"))
        return ref

    def call_remote(self, proc: Process, where: Pid | tuple[str, str], ref: Ref, tag: str,
                    request: Any) -> None:
        """A gen call of a server on another node (a pid or a (name, node)): its monitor
        and its request go as one "call" control, in which the caller, the alias and the
        server are plain numbers that the receiver makes into terms again (see `_remote`).
        The server's own reply ends the monitor (`RemoteEnd.end_call_monitor`)."""
        target: int | str
        if type(where) is Pid:
            node, target = where.node, wire_id(where)
        else:
            target, node = where
        with self._lock:
            proc.monitors[ref] = where
        self._send(node, ("call", wire_id(proc.pid), ref.id, target, tag, request))

    def demonitor(self, proc: Process, ref: Ref) -> bool:
        with self._lock:
            target_pid = proc.monitors.pop(ref, None)
            if target_pid is None:
                return False
            if type(target_pid) is Pid and target_pid.node == self.name:
                target = self._table.lookup(target_pid)
                if target is not None:
                    target.monitored_by.pop(ref, None)
                return True
        # lazy: it rides with the next frame to that node (or its next tick)
        self._send(node_of(target_pid), ("demonitor", target_pid, ref),
                   autoconnect=False, lazy=True)
        return True
