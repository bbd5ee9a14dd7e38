"""What crosses between nodes: the control tuples, and what a node does with each.

Rules of this module:
- Every signal between processes on two nodes is one control tuple on the connection
  between those nodes, so signals between one pair of processes keep their order:
    ("send", id, msg)                    a message to the pid of this node with serial `id`
    ("reg_send", name, msg)              a message to a registered name
    ("alias", to, alias, msg)            a message through an alias (dropped once withdrawn)
    ("call", caller, alias, server, tag, request)
                                         a gen call: the monitor of `server` (a wire id
                                         or a registered name) and (tag, (caller, alias),
                                         request) sent to it; caller and alias are wire
                                         ids of the sender's node, made into terms here
    ("reply", to, alias, msg)            a call's reply from the server itself, which also
                                         ends the call's monitor (OTP's caller then
                                         demonitors; ours has nothing left to send); `to`
                                         and `alias` are wire ids of the receiver's node
    ("link", from, to) / ("unlink", from, to)
    ("exit", from, to, reason)           a link's exit signal (only while the link exists)
    ("exit2", from, to, reason)          exit(to, reason)
    ("monitor", watcher, target, ref)    target is a pid or a registered name
    ("demonitor", target, ref)
    ("down", ref, watcher, obj, reason)  (only while the monitor exists: exactly once)
    ("spawn", req, parent, blob, link, mref) / ("spawn_reply", req, parent, child)
                                         blob: the function and arguments, pickled apart
    ("mesh", [(node, address)])          the peers of a new peer, to keep a full mesh
    ("batch", [control, ...])            several, in order (send_request: monitor + request)
- A lost connection (`nodedown`) ends, exactly once, every link and monitor between this
  node's processes and that node's: links give ("EXIT", pid, "noconnection"), monitors
  ("DOWN", ref, "process", obj, "noconnection"), monitor_node ("nodedown", node).
- Handlers run on the distribution's I/O thread: they never block.
"""

from __future__ import annotations

import logging
import pickle
import threading
from typing import TYPE_CHECKING, Any

from ._dist_pickle import dumps_fun
from ._terms import Exit, Pid, Ref

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger("actors.dist")


def _run_blob(blob: bytes) -> Any:
    """The body of a remotely spawned process: load the function, then run it."""
    try:
        fun, args = pickle.loads(blob)
    except Exception as exc:
        raise Exit(("badfun", f"{type(exc).__name__}: {exc}")) from None
    return fun(*args)


_SIGNALS = ("exit", "exit2", "down")  # controls whose last field is an exit reason


def portable(reason: Any) -> Any:
    """An exit reason that the other node can unpickle. A signal must arrive whatever its
    reason holds, so a reason that does not survive a pickle round trip (say, an exception
    whose constructor wants other arguments) travels as ("unpicklable", repr(reason))."""
    if reason is None or type(reason) in (str, int):
        return reason
    try:
        pickle.loads(pickle.dumps(reason, 5))
        return reason
    except Exception:
        return ("unpicklable", repr(reason))


def wire_id(pid: Pid) -> int:
    """How a remote "send" names its target: serial and creation in one int."""
    return pid.id << 32 | pid.creation


def pid_of_wire(node: str, wid: int) -> Pid:
    """The pid of `node` that `wire_id` made `wid` of."""
    return Pid(node, wid >> 32, wid & 0xFFFFFFFF)


def node_of(target: Any) -> str:
    """The node of a pid or of a (name, node) pair."""
    return target.node if type(target) is Pid else target[1]


class Remote:
    """One node's side of the signals it exchanges with other nodes."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._lock = threading.Lock()
        self._node_watchers: dict[str, list[Pid]] = {}
        self._subscribers: list[Pid] = []
        self._spawns: dict[Ref, tuple[Pid, str, bool, Ref | None]] = {}

    def send(self, name: str, control: Any, *, autoconnect: bool = True,
             lazy: bool = False) -> None:
        dist = self.node.dist
        if dist is None:
            if autoconnect:
                self.nodedown(name, False)
            return
        if control[0] in _SIGNALS:
            control = (*control[:-1], portable(control[-1]))
        dist.send(name, control, autoconnect=autoconnect, lazy=lazy)

    # -- incoming controls (I/O thread) -----------------------------------------------------

    def handle(self, sender: str, control: Any) -> bool | None:
        """Act on one control from `sender`. False: a monitor found no process (so a call's
        request in the same batch is dropped: its caller gets DOWN noproc, and a process
        registered under that name a moment later must not run what the caller was told
        never arrived)."""
        node = self.node
        if type(control) is not tuple or not control:
            log.error("node %s: dropped a malformed control from %s: %.200r",
                      node.name, sender, control)
            return None
        op = control[0]
        if op == "send" and len(control) == 3:  # the common cases first
            proc = node.lookup_id(control[1])
            if proc is not None:
                proc.deliver(control[2])
            return None
        if op == "batch" and len(control) == 2 and type(control[1]) is list:
            for one in control[1]:
                if self.handle(sender, one) is False:
                    return None  # a request to a process that is not there goes nowhere
            return None
        if op == "call" and len(control) == 6 and type(control[1]) is int and type(
                control[2]) is int and type(control[4]) is str:  # the other common cases
            self._call(sender, control[1], control[2], control[3], control[4], control[5])
            return None
        if op == "reply" and len(control) == 4 and type(control[1]) is int and type(
                control[2]) is int:
            proc = node.lookup_id(control[1])
            if proc is not None:
                ref = Ref(node.name, control[2])
                node.remote_end.reply_arrived(proc, ref, sender)  # first: the call is over
                proc.deliver_to_alias(ref, (ref, control[3]))
            return None
        if op == "alias" and len(control) == 4 and type(control[1]) is Pid:
            proc = node.lookup(control[1])
            if proc is not None:
                proc.deliver_to_alias(control[2], control[3])
            return None
        if op == "monitor" and len(control) == 4 and type(control[1]) is Pid and type(
                control[3]) is Ref:
            _, watcher, target, ref = control
            obj = node.add_remote_monitor(watcher, target, ref)
            if obj is not None:
                self.send(sender, ("down", ref, watcher, obj, "noproc"), autoconnect=False)
                return False  # (a name registered a moment later must not get the call)
            return None
        if op == "demonitor" and len(control) == 3 and type(control[2]) is Ref:
            node.remove_remote_monitor(control[1], control[2])
            return None
        match control:
            case ("reg_send", str(name), msg):
                proc = node.whereis(name)
                if proc is not None:
                    proc.deliver(msg)
            case ("link", Pid() as from_, Pid() as to):
                if not node.add_remote_link(to, from_):
                    self.send(sender, ("exit", to, from_, "noproc"), autoconnect=False)
            case ("unlink", Pid() as from_, Pid() as to):
                node.remove_remote_link(to, from_)
            case ("exit", Pid() as from_, Pid() as to, reason):
                node.link_exit(to, from_, reason)
            case ("exit2", Pid() as from_, Pid() as to, reason):
                node.exit_signal(to, from_, reason)
            case ("down", Ref() as ref, Pid() as watcher, obj, reason):
                node.monitor_down(watcher, ref, obj, reason)
            case ("spawn", Ref() as req, Pid() as parent, bytes(blob), bool(link), mref):
                self._spawn_for(sender, req, parent, blob, link, mref)
            case ("spawn_reply", Ref() as req, Pid() as parent, child):
                self._spawned(req, parent, child)
            case ("mesh", list(peers)) if node.dist is not None:
                node.dist.learn_mesh(peers)
            case _:
                log.error("node %s: dropped a malformed control from %s: %.200r",
                          node.name, sender, control)
        return None

    def _call(self, sender: str, caller_id: int, ref_id: int, server: Any, tag: str,
              request: Any) -> None:
        """A gen call from a process of node `sender`: monitor the server for the caller,
        then deliver the request; or answer DOWN "noproc" (and drop the request, so a
        name registered a moment later never runs what its caller was told never came)."""
        node = self.node
        if type(server) is int:
            target: Any = pid_of_wire(node.name, server)
        elif type(server) is str:
            target = server
        else:
            log.error("node %s: dropped a malformed call from %s: %.200r", node.name, sender,
                      server)
            return
        caller = pid_of_wire(sender, caller_id)
        ref = Ref(sender, ref_id)
        obj = node.add_remote_monitor(caller, target, ref, True)
        if obj is not None:
            self.send(sender, ("down", ref, caller, obj, "noproc"), autoconnect=False)
            return
        proc = node.lookup_id(server) if type(server) is int else node.whereis(server)
        if proc is not None:
            proc.deliver((tag, (caller, ref), request))

    # -- remote spawn -----------------------------------------------------------------------

    def spawn_request(self, parent: Pid, name: str, fun: Any, args: tuple[Any, ...],
                      link: bool, mref: Ref | None) -> Ref:
        """Ask node `name` to spawn `fun(*args)`. The parent later receives
        ("$spawn_reply", req, pid_or_None); the link or monitor is in place before."""
        blob = dumps_fun(fun, args)
        req = self.node.make_ref()
        with self._lock:
            self._spawns[req] = (parent, name, link, mref)
        self.send(name, ("spawn", req, parent, blob, link, mref))
        return req

    def _spawn_for(self, sender: str, req: Ref, parent: Pid, blob: bytes, link: bool,
                   mref: Any) -> None:
        """Spawn at once; the function is unpickled in the new process, so one that cannot
        be loaded here makes the process exit with ("badfun", why), seen by the link or
        monitor, as an undefined function does in Erlang."""
        def announce(child: Pid) -> None:
            self.send(sender, ("spawn_reply", req, parent, child), autoconnect=False)

        try:
            self.node.spawn_for_remote(_run_blob, (blob,), parent, link, mref, announce)
        except Exception as exc:
            log.error("node %s: remote spawn from %s failed: %r", self.node.name, sender, exc)
            self.send(sender, ("spawn_reply", req, parent, None), autoconnect=False)

    def _spawned(self, req: Ref, parent: Pid, child: Pid | None) -> None:
        with self._lock:
            entry = self._spawns.pop(req, None)
        if entry is None:
            return
        _, _, link, mref = entry
        proc = self.node.spawned(parent, child, link, mref)
        if proc is not None:
            proc.deliver(("$spawn_reply", req, child))

    # -- nodes coming and going -------------------------------------------------------------

    def monitor_node(self, watcher: Pid, name: str, flag: bool) -> None:
        """erlang:monitor_node/2. An unreachable node gives ("nodedown", name) at once."""
        with self._lock:
            watchers = self._node_watchers.setdefault(name, [])
            if not flag:
                if watcher in watchers:
                    watchers.remove(watcher)
                return
            watchers.append(watcher)
        dist = self.node.dist
        if dist is None:
            self.nodedown(name, False)
        elif not dist.is_up(name):
            dist.connect(name)

    def monitor_nodes(self, watcher: Pid, flag: bool) -> None:
        with self._lock:
            if flag:
                self._subscribers.append(watcher)
            elif watcher in self._subscribers:
                self._subscribers.remove(watcher)

    def nodeup(self, name: str) -> None:
        for pid in self._live(self._subscribers):
            self.node.send(pid, ("nodeup", name))

    def _live(self, pids: list[Pid]) -> list[Pid]:
        with self._lock:
            pids[:] = [p for p in pids if self.node.lookup(p) is not None]
            return list(pids)

    def nodedown(self, name: str, was_up: bool) -> None:
        """Every link, monitor and pending spawn that involves node `name` ends now."""
        node = self.node
        with self._lock:
            watchers = self._node_watchers.pop(name, [])
            spawns = [(req, e[0]) for req, e in self._spawns.items() if e[1] == name]
            for req, _ in spawns:
                del self._spawns[req]
        node.run_exit_signals(node.sever(name))
        for pid in watchers:
            node.send(pid, ("nodedown", name))
        for req, parent in spawns:
            node.send(parent, ("$spawn_reply", req, None))
        if was_up:
            for pid in self._live(self._subscribers):
                node.send(pid, ("nodedown", name))
