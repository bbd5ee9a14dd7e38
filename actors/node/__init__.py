"""A node: one runtime with its own process table, name registry, timers and workers.

Rules of this module:
- Nothing is module-global except the lazily made default node. Several nodes can live in
  one Python process; each has its own tables and threads.
- A node is its process table (`_table`, a base class with no other idea) and owns its
  other parts, each given only what it needs: names (`_names`), links and monitors
  (`_links`), deaths and exit signals (`_exits`), the end of remote links and monitors
  (`_remote_end`), and the signals to other nodes (`_remote.Remote`). The parts'
  per-message methods are bound onto the node at construction, so `node.monitor(...)`
  costs no extra call.
- The table's lock guards the process table, the registries, links and monitors. A mailbox
  lock may be taken while holding it, never the other way round.
- A process dies in `exit_process`, wherever the death comes from, at once for every
  observer (the rules are `_exits`'s).
"""

from __future__ import annotations

import itertools
import logging
import secrets
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .. import _interrupt, _thread
from .._dist import DistConfig, Distribution
from .._process import Process
from .._remote import Remote, wire_id
from .._scheduler import WorkerPool
from .._terms import Error, Exit, Pid, ProcessKilled, Ref
from .._timers import TimerService
from ._exits import Exits
from ._links import Links, down_object
from ._names import Located, Names, RemoteName
from ._remote_end import RemoteEnd, Signals
from ._table import ProcessTable

__all__ = ["Located", "Node", "RemoteName", "default_node", "down_object",
           "existing_default_node", "is_quiet", "set_default_node"]

log = logging.getLogger("actors.proc_lib")

QUIET_REASONS = ("normal", "shutdown")


def is_quiet(reason: Any) -> bool:
    """Reasons that are not errors: normal, shutdown and ("shutdown", _)."""
    return reason in QUIET_REASONS or (
        type(reason) is tuple and len(reason) == 2 and reason[0] == "shutdown"
    )


def stacktrace(exc: BaseException) -> list[tuple[str, str, int | None]]:
    return [(f.filename, f.name, f.lineno) for f in traceback.extract_tb(exc.__traceback__)]


class Node(ProcessTable):
    """One runtime. Use `with node.bound():` to make plain threads talk to it.

    A node is its process table (`lookup` is the hottest call there is); its other parts are
    objects it owns, each given the table and what else it needs."""

    def __init__(self, name: str = "nonode@nohost", *, idle_seconds: float = 5.0,
                 interrupt_grace_ms: int = 100) -> None:
        # name, and creation: this incarnation, in every local pid
        ProcessTable.__init__(self, name, secrets.randbits(32) | 1)
        self._ref_ids = itertools.count(1)
        self._unique = itertools.count(1)
        self.pool = WorkerPool(name, idle_seconds)
        self.timers = TimerService(name, self._fire_timer)
        self.dist: Distribution | None = None
        self.remote = Remote(self)
        self._bind_parts(interrupt_grace_ms)

    def _bind_parts(self, interrupt_grace_ms: int) -> None:
        """Make the parts, and bind onto the node the methods the send and call paths use
        (no extra call per use). Keep the node's attributes at most 30: past that, CPython
        3.11 stops sharing instance-dict keys and every method lookup on a node slows."""
        table: ProcessTable = self
        self.names = names = Names(table)
        self.locate = names.locate
        self.resolve = names.resolve
        self.whereis = names.whereis
        self.links = links = Links(table, names, self.make_ref, self.remote.send)
        self.monitor = links.monitor
        self.monitor_located = links.monitor_located
        self.demonitor = links.demonitor
        self.exits = exits = Exits(table, names, self.timers.cancel_owner, self.remote.send,
                                   interrupt_grace_ms)
        self.exit_process = exits.exit_process
        self.run_exit_signals = exits.run_exit_signals
        self.remote_end = end = RemoteEnd(table, names, exits.run_exit_signals)
        self.add_remote_monitor = end.add_remote_monitor
        self.remove_remote_monitor = end.remove_remote_monitor

    # -- the parts' other methods, by delegation (none is on a per-message path) ------------

    def link(self, proc: Process, pid: Pid) -> None:
        self.links.link(proc, pid)

    def unlink(self, proc: Process, pid: Pid) -> None:
        self.links.unlink(proc, pid)

    def register(self, name: str, pid: Pid) -> None:
        self.names.register(name, pid)

    def unregister(self, name: str) -> None:
        self.names.unregister(name)

    def registered(self) -> list[str]:
        return self.names.registered()

    def register_global(self, name: Any, pid: Pid) -> bool:
        return self.names.register_global(name, pid)

    def unregister_global(self, name: Any) -> None:
        self.names.unregister_global(name)

    def set_global(self, name: Any, pid: Pid | None) -> None:
        self.names.set_global(name, pid)

    def global_names(self) -> list[Any]:
        return self.names.global_names()

    def add_remote_link(self, local: Pid, remote: Pid) -> bool:
        return self.remote_end.add_remote_link(local, remote)

    def remove_remote_link(self, local: Pid, remote: Pid) -> None:
        self.remote_end.remove_remote_link(local, remote)

    def link_exit(self, target_pid: Pid, from_pid: Pid, reason: Any) -> None:
        self.remote_end.link_exit(target_pid, from_pid, reason)

    def monitor_down(self, watcher_pid: Pid, ref: Ref, obj: Any, reason: Any) -> None:
        self.remote_end.monitor_down(watcher_pid, ref, obj, reason)

    def spawned(self, parent: Pid, child: Pid | None, link: bool,
                mref: Ref | None) -> Process | None:
        return self.remote_end.spawned(parent, child, link, mref)

    def sever(self, name: str) -> Signals:
        return self.remote_end.sever(name)

    def exit_signal(self, target_pid: Pid, from_pid: Pid, reason: Any) -> None:
        """`exit(Pid, Reason)`: an exit signal that does not come from a link."""
        self.exits.exit_signal(target_pid, from_pid, reason)

    def at_exit(self, pid: Pid, hook: Callable[[Any], None]) -> None:
        """Run `hook(reason)` when local process `pid` dies, however it dies (even killed).
        For resources a process owns outside the runtime, such as an OS child process."""
        self.exits.at_exit(pid, hook)

    def __repr__(self) -> str:
        return f"Node({self.name!r})"

    # -- context ------------------------------------------------------------------------------

    @contextmanager
    def bound(self) -> Iterator[Node]:
        """Within the block, plain threads' `erlang.*` calls talk to this node."""
        _thread.push_node(self)
        try:
            yield self
        finally:
            _thread.pop_node(self)

    def stop(self) -> None:
        """Kill every process and stop the node's threads. No process gets to react: link
        signals and DOWNs between dying processes are not delivered."""
        self.exits.stopping = True
        for proc in list(self.procs.values()):
            self.exit_process(proc, "killed")
        if self.dist is not None:
            self.dist.stop()
        self.timers.stop()
        self.pool.stop()

    def start_distribution(self, config: DistConfig) -> Distribution:
        """Make this node reachable from other nodes (see `net_kernel.start`)."""
        if "@" not in self.name:
            raise Error(("badarg", self.name))
        dist = Distribution(self, config)
        try:
            dist.start()
        except BaseException:
            dist.stop()  # a failed start releases its ZeroMQ context and sockets at once
            raise
        self.dist = dist
        return dist

    def nodes(self) -> list[str]:
        return self.dist.nodes() if self.dist is not None else []

    # -- identities ---------------------------------------------------------------------------

    def make_ref(self) -> Ref:
        return Ref(self.name, next(self._ref_ids))

    def unique_integer(self) -> int:
        return next(self._unique)

    def route(self, dest: Any, msg: Any) -> bool:
        """Send `msg` to a local or remote destination. False only for a name that is not
        registered here (a bare name, or (name, this node)): the caller's badarg."""
        found = self.names.locate(dest)
        if found is None:
            return type(dest) is not str
        if type(found) is Pid:  # (inline, not `send_located`: the hot path)
            self.remote.send(found.node, ("send", wire_id(found), msg))
        elif type(found) is not Process:
            self.remote.send(found[1], ("reg_send", found[0], msg))
        else:
            found.deliver(msg)
        return True

    def send_located(self, where: Located, msg: Any) -> None:
        """Send `msg` to a destination already located (see `Names.locate`)."""
        if type(where) is Pid:
            self.remote.send(where.node, ("send", wire_id(where), msg))
        elif type(where) is not Process:
            self.remote.send(where[1], ("reg_send", where[0], msg))
        else:
            where.deliver(msg)

    # -- spawning -----------------------------------------------------------------------------

    def _new_process(self, kind: str, initial_call: Any, parent: Process | None,
                     link: bool, monitor: bool) -> tuple[Process, Ref | None]:
        proc = Process(self, self.new_pid(), kind, initial_call)
        ref = None
        with self.lock:
            self.procs[proc.pid.id] = proc
            if parent is not None and link:
                proc.links.add(parent.pid)
                parent.links.add(proc.pid)
            if parent is not None and monitor:
                ref = self.make_ref()
                parent.monitors[ref] = proc.pid
                proc.monitored_by[ref] = (parent.pid, proc.pid)
        return proc, ref

    def new_shell(self) -> Process:
        proc, _ = self._new_process("shell", ("erlang", "shell"), None, False, False)
        proc.thread = threading.get_ident()
        proc.status = "running"
        return proc

    def spawn(self, fun: Callable[..., Any], args: tuple[Any, ...] = (), *,
              parent: Process | None = None, link: bool = False,
              monitor: bool = False) -> tuple[Pid, Ref | None]:
        """Run `fun(*args)` as a new process on a borrowed worker thread."""
        if not callable(fun):
            raise Error("badarg")
        proc, ref = self._new_process("thread", fun, parent, link, monitor)
        proc.scheduled = True
        self.pool.submit(lambda: self._run_function(proc, fun, args))
        return proc.pid, ref

    def spawn_handler(self, init: Callable[[Process], None], initial_call: Any, *,
                      parent: Process | None = None, link: bool = False,
                      monitor: bool = False,
                      lend: list[Callable[[], None]] | None = None) -> tuple[Process, Ref | None]:
        """A handler process: `init(proc)` runs first and must set `proc.handler`. With
        `lend`, its first run is appended there for the caller to do, not given a worker."""
        proc, ref = self._new_process("handler", initial_call, parent, link, monitor)
        proc.scheduled = True
        if lend is not None:
            lend.append(lambda: self._run_init(proc, init))
        else:
            self.pool.submit(lambda: self._run_init(proc, init))
        return proc, ref

    def spawn_for_remote(self, fun: Callable[..., Any], args: tuple[Any, ...], parent: Pid,
                         link: bool, mref: Ref | None, announce: Callable[[Pid], None]) -> None:
        """A spawn asked by a process on another node: the link or monitor to `parent` is in
        place, and `announce(pid)` has gone out, before the new process runs."""
        if not callable(fun):
            raise Error("badarg")
        proc, _ = self._new_process("thread", fun, None, False, False)
        with self.lock:
            if link:
                proc.links.add(parent)
            if mref is not None:
                proc.monitored_by[mref] = (parent, proc.pid)
        announce(proc.pid)
        proc.scheduled = True
        self.pool.submit(lambda: self._run_function(proc, fun, args))

    def _run_function(self, proc: Process, fun: Callable[..., Any], args: tuple[Any, ...]) -> None:
        reason = self._run_as(proc, lambda: fun(*args))
        if reason is not None:
            self.exit_process(proc, reason)

    def _run_init(self, proc: Process, init: Callable[[Process], None]) -> None:
        reason = self._run_as(proc, lambda: init(proc))
        if reason == "normal":
            proc.run_handler()
        elif reason is not None:
            self.exit_process(proc, reason)

    def _run_as(self, proc: Process, body: Callable[[], Any]) -> Any:
        """Run `body()` on this worker as `proc`. Returns the exit reason it implies:
        "normal" when it returns, the crash reason when it raises, None if `proc` was killed."""
        with _thread.bind_process(proc):
            try:
                with proc.lock:
                    if not proc.alive:
                        return None
                    proc.thread = threading.get_ident()
                    proc.status = "running"
                body()
                return "normal"
            except ProcessKilled:
                return None
            except BaseException as exc:
                reason = self.reason_of(exc)
                if not isinstance(exc, Exit) or isinstance(exc, Error):
                    log.error("Error in process %r on node %s with exit value:\n%r",
                              proc.pid, self.name, reason)
                return reason
            finally:
                self.settle(proc)

    def settle(self, proc: Process) -> None:
        """The thread leaves the process: withdraw an interrupt that it outran."""
        with proc.lock:
            me = threading.get_ident()
            if proc.thread == me:
                proc.thread = None
                if proc.interrupted:
                    _interrupt.clear(me)

    @staticmethod
    def reason_of(exc: BaseException) -> Any:
        """The exit reason a process gets from an uncaught exception."""
        if isinstance(exc, Error):
            return (exc.reason, stacktrace(exc))
        if isinstance(exc, Exit):
            return exc.reason
        return (exc, stacktrace(exc))

    # -- messages and timers ----------------------------------------------------------------

    def send(self, dest: Any, msg: Any) -> None:
        """Deliver `msg`, here or on another node; dropped when the destination is gone."""
        self.route(dest, msg)

    def _fire_timer(self, entry: tuple[Any, Any]) -> None:
        dest, msg = entry
        self.send(dest, msg)

    def process_count(self) -> int:
        return len(self.procs)

    def processes(self) -> list[Pid]:
        with self.lock:
            return [p.pid for p in self.procs.values()]


def default_node() -> Node:
    """The node plain threads talk to when they bound none: "nonode@nohost", as in Erlang."""
    default = _thread.DEFAULT
    node = default.node
    if node is None:
        with default.lock:
            node = default.node
            if node is None:
                node = default.node = Node()
    return node


def existing_default_node() -> Node | None:
    return _thread.DEFAULT.node


def set_default_node(node: Node | None) -> None:
    """Make `node` the one plain threads talk to (net_kernel.start distributes it)."""
    default = _thread.DEFAULT
    with default.lock:
        default.node = node
