"""The `erlang` module: processes, messages, links, monitors, names, timers and time.

Every function works from a process and from a plain thread (which gets a shell process).
Timeouts are milliseconds or "infinity". Errors raise `Error` ("badarg"); exits raise `Exit`.
`ProcessKilled` unwinds the thread of a process that was killed: code that catches
`BaseException` must let it through (`except ProcessKilled: raise`).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from . import _context
from ._process import Predicate
from ._terms import TIMEOUT, Error, Exit, Pid, ProcessKilled, Ref
from ._timers import check_delay
from .node import Node, is_quiet

__all__ = [
    "TIMEOUT",
    "Error",
    "Exit",
    "Pid",
    "ProcessKilled",
    "Ref",
    "cancel_timer",
    "demonitor",
    "disconnect_node",
    "error",
    "exit",
    "exit_reason",
    "get",
    "is_pid",
    "is_process_alive",
    "is_quiet",
    "is_reference",
    "link",
    "make_ref",
    "monitor",
    "monitor_node",
    "monotonic_time",
    "node",
    "nodes",
    "process_flag",
    "process_info",
    "processes",
    "put",
    "read_timer",
    "receive",
    "register",
    "registered",
    "self",
    "send",
    "send_after",
    "spawn",
    "spawn_link",
    "spawn_monitor",
    "start_timer",
    "system_time",
    "unique_integer",
    "unlink",
    "unregister",
    "whereis",
]

def _node() -> Node:
    return _context.current_node()


def self() -> Pid:
    """The calling process's pid; a plain thread gets its shell process's pid."""
    return _context.self_process().pid


def node(arg: Pid | Ref | None = None) -> str:
    """The local node's name, or the node a pid or ref lives on."""
    if arg is not None:
        return arg.node
    return _node().name


def nodes() -> list[str]:
    """The nodes this node is connected to (not itself)."""
    return _node().nodes()


def monitor_node(name: str, flag: bool) -> bool:
    """With True: ("nodedown", name) arrives when the connection to `name` is lost, or at
    once if it cannot be made. Each call adds one such monitor; False removes one."""
    if type(name) is not str or type(flag) is not bool:
        raise Error("badarg")
    proc = _context.self_process()
    proc.node.remote.monitor_node(proc.pid, name, flag)
    return True


def disconnect_node(name: str) -> bool:
    """Drop the connection to `name`; both sides see nodedown."""
    dist = _node().dist
    return dist is not None and dist.disconnect(name)


# -- spawning ---------------------------------------------------------------------------------

def spawn(*args: Any) -> Pid:
    """`spawn(fun, *args)` starts `fun(*args)` as a new process; `spawn(node, fun, *args)`
    starts it on `node` (functions and closures travel with cloudpickle)."""
    pid, _ = _spawn(args, link=False, monitor=False)
    return pid


def spawn_link(*args: Any) -> Pid:
    """As `spawn`, linked to the caller (atomically)."""
    pid, _ = _spawn(args, link=True, monitor=False)
    return pid


def spawn_monitor(*args: Any) -> tuple[Pid, Ref]:
    """As `spawn`, monitored by the caller (atomically): returns (pid, ref)."""
    pid, ref = _spawn(args, link=False, monitor=True)
    assert ref is not None
    return pid, ref


_SPAWN_REPLY_MS = 30_000  # a connected node answers at once; a lost one answers nodedown


def _spawn(args: tuple[Any, ...], *, link: bool, monitor: bool) -> tuple[Pid, Ref | None]:
    proc = _context.self_process()
    node_ = proc.node
    if args and type(args[0]) is str:
        if len(args) < 2:
            raise Error("badarg")  # spawn(node) with no function
        where, fun, fun_args = args[0], args[1], args[2:]
        if where != node_.name:
            return _spawn_remote(proc, where, fun, fun_args, link, monitor)
    elif args:
        fun, fun_args = args[0], args[1:]
    else:
        raise Error("badarg")
    return node_.spawn(fun, fun_args, parent=proc, link=link, monitor=monitor)


def _spawn_remote(proc: Any, where: str, fun: Any, args: tuple[Any, ...], link: bool,
                  monitor: bool) -> tuple[Pid, Ref | None]:
    """A spawn on another node. If it cannot be reached, the pid is a dead one and the
    link or monitor fires at once with noconnection, as Erlang's."""
    if not callable(fun):
        raise Error("badarg")
    node_ = proc.node
    mref = node_.make_ref() if monitor else None
    req = node_.remote.spawn_request(proc.pid, where, fun, tuple(args), link, mref)
    reply = proc.receive(lambda m: type(m) is tuple and len(m) == 3 and m[0] == "$spawn_reply"
                         and m[1] == req, _SPAWN_REPLY_MS)
    child = None if reply is TIMEOUT else reply[2]
    if child is None:
        child = Pid(where, 0)
        if mref is not None:
            proc.deliver(("DOWN", mref, "process", child, "noconnection"))
        if link:
            node_.run_exit_signals(deque([(proc.pid, child, "noconnection")]))
        return child, mref
    return child, mref  # the link or monitor was set when the reply came in


# -- messages ---------------------------------------------------------------------------------

def send(dest: Any, msg: Any) -> Any:
    """`dest ! msg`: dest is a pid, a registered name or (name, node). Returns msg.

    Sending to an unregistered bare name raises badarg; sends to dead pids are dropped,
    and so is anything a killed process's abandoned thread still sends.
    """
    sender = _context.current_process()
    if sender is not None and not sender.alive:
        raise ProcessKilled()  # an abandoned thread: its send is dropped and it unwinds
    node_ = sender.node if sender is not None else _node()
    if not node_.route(dest, msg):
        raise Error("badarg")
    return msg


def receive(pred: Predicate | None = None, timeout: int | str = "infinity") -> Any:
    """Selective receive: the first message for which `pred(msg)` is true (any, if None).

    Skipped messages stay in the mailbox in order. Returns `TIMEOUT` when time runs out.
    """
    return _context.self_process().receive(pred, timeout)


# -- links, monitors, exits -------------------------------------------------------------------

def link(pid: Pid) -> bool:
    """Link to `pid`. To a dead pid: a trapping caller gets ("EXIT", pid, "noproc"),
    any other caller fails with the error "noproc", as OTP's link/1."""
    proc = _context.self_process()
    _check_pid(pid)
    proc.node.link(proc, pid)
    return True


def unlink(pid: Pid) -> bool:
    proc = _context.self_process()
    _check_pid(pid)
    proc.node.unlink(proc, pid)
    return True


def monitor(kind: str, target: Pid | str | tuple[str, str]) -> Ref:
    """Monitor a process by pid or by name: one ("DOWN", ref, "process", obj, reason)."""
    if kind != "process":
        raise Error("badarg")
    proc = _context.self_process()
    return proc.node.monitor(proc, target)


def demonitor(ref: Ref, options: list[str] | None = None) -> bool:
    """Remove a monitor. "flush" also drops its DOWN if queued; "info" returns whether
    the monitor was still there."""
    options = options or []
    proc = _context.self_process()
    found = proc.node.demonitor(proc, ref)
    if "flush" in options:
        proc.flush_down(ref)
    return found if "info" in options else True


def exit(*args: Any) -> Any:
    """`exit(reason)` ends the caller with `reason`; `exit(pid, reason)` sends an exit signal."""
    if len(args) == 1:
        raise Exit(args[0])
    if len(args) != 2:
        raise TypeError("exit(reason) or exit(pid, reason)")
    pid, reason = args
    proc = _context.self_process()
    _check_pid(pid)
    proc.node.exit_signal(pid, proc.pid, reason)
    if not proc.alive:
        proc._unwind()
    return True


def error(reason: Any) -> Any:
    """Raise an Erlang error; uncaught, the process exits with (reason, stacktrace)."""
    raise Error(reason)


# Two rules of the runtime that behaviours built on this module need (supervision/ does):
# - `exit_reason(exc)`: the reason a process exits with when `exc` goes uncaught (what
#   Erlang's `catch` wraps in {'EXIT', Reason}): `exc.reason` for an `Exit`,
#   `(exc.reason, stacktrace)` for an `Error`, `(exc, stacktrace)` for anything else;
# - `is_quiet(reason)` (imported above): True for the exit reasons that are not errors,
#   "normal", "shutdown" and ("shutdown", term), which supervisors do not report.
exit_reason = Node.reason_of


def is_pid(term: Any) -> bool:
    return type(term) is Pid


def is_reference(term: Any) -> bool:
    return type(term) is Ref


def process_flag(flag: str, value: Any) -> Any:
    """Only "trap_exit" is supported. Returns the old value."""
    if flag != "trap_exit" or type(value) is not bool:
        raise Error("badarg")
    proc = _context.self_process()
    old, proc.trap_exit = proc.trap_exit, value
    return old


def is_process_alive(pid: Pid) -> bool:
    """Whether a local process is alive; badarg for a pid of another node, as Erlang's."""
    _check_pid(pid)
    node_ = _node()
    if pid.node != node_.name:
        raise Error("badarg")
    proc = node_.lookup(pid)
    return proc is not None and proc.alive


def processes() -> list[Pid]:
    return _node().processes()


def process_info(pid: Pid, item: str | None = None) -> Any:
    """A dict about a live process, or "undefined". With `item`, (item, value)."""
    _check_pid(pid)
    proc = _node().lookup(pid)
    if proc is None or not proc.alive:
        return "undefined"
    with proc.lock:
        queue_len = len(proc.mailbox)
        status = "suspended" if proc.selector is not None else proc.status
    info = {
        "registered_name": proc.name if proc.name is not None else [],
        "status": status,
        "message_queue_len": queue_len,
        "links": sorted(proc.links),
        "monitors": [("process", p) for p in proc.monitors.values()],
        "monitored_by": [w for w, _ in proc.monitored_by.values()],
        "trap_exit": proc.trap_exit,
        "initial_call": proc.initial_call,
        "dictionary": list(proc.dictionary.items()),
    }
    if item is None:
        return info
    if item not in info:
        raise Error("badarg")
    return (item, info[item])


def put(key: Any, value: Any) -> Any:
    """The process dictionary: returns the old value or "undefined"."""
    d = _context.self_process().dictionary
    old = d.get(key, "undefined")
    d[key] = value
    return old


def get(key: Any) -> Any:
    return _context.self_process().dictionary.get(key, "undefined")


# -- names ------------------------------------------------------------------------------------

def register(name: str, pid: Pid) -> bool:
    """Register a local name. badarg if the name is taken, the pid dead or already named."""
    _check_pid(pid)
    _node().register(name, pid)
    return True


def unregister(name: str) -> bool:
    _node().unregister(name)
    return True


def whereis(name: str) -> Pid | str:
    """The pid registered under `name`, or "undefined"."""
    proc = _node().whereis(name)
    return proc.pid if proc is not None and proc.alive else "undefined"


def registered() -> list[str]:
    return _node().registered()


# -- references, integers, time ---------------------------------------------------------------

def make_ref() -> Ref:
    return _node().make_ref()


def unique_integer(modifiers: list[str] | None = None) -> int:
    """Unique on this node. Always monotonic and positive here (a permitted strengthening)."""
    for modifier in modifiers or []:
        if modifier not in ("monotonic", "positive"):
            raise Error("badarg")
    return _node().unique_integer()


_UNITS = {"second": 10**9, "millisecond": 10**6, "microsecond": 10**3,
          "nanosecond": 1, "native": 1, "seconds": 10**9, "milli_seconds": 10**6}


def _convert(ns: int, unit: str) -> int:
    if unit not in _UNITS:
        raise Error("badarg")
    return ns // _UNITS[unit]


def system_time(unit: str = "native") -> int:
    """OS system time; the native unit is the nanosecond."""
    return _convert(time.time_ns(), unit)


def monotonic_time(unit: str = "native") -> int:
    """Monotonic time; only differences are meaningful, as in Erlang."""
    return _convert(time.monotonic_ns(), unit)


# -- timers -----------------------------------------------------------------------------------

def _check_time(ms: Any) -> None:
    """badarg unless `ms` is an int >= 0 whose expiry is within the node's time span."""
    if not check_delay(ms):
        raise Error("badarg")


def _owner(node_: Node, dest: Any) -> Pid | None:
    """A timer to a local pid belongs to that process: it is cancelled when the process
    dies, as ERTS does. A timer to a name is not (the name may be taken again)."""
    return dest if type(dest) is Pid and dest.node == node_.name else None


def send_after(ms: int, dest: Pid | str, msg: Any) -> Ref:
    """Send `msg` to `dest` after `ms` milliseconds. Returns the timer's ref.

    badarg if `ms` is not a non-negative int, or is too far in the future (see `_timers`)."""
    _check_time(ms)
    node_ = _node()
    ref = node_.make_ref()
    node_.timers.add(ref, ms, (dest, msg), _owner(node_, dest))
    return ref


def start_timer(ms: int, dest: Pid | str, msg: Any) -> Ref:
    """Send ("timeout", ref, msg) to `dest` after `ms` milliseconds."""
    _check_time(ms)
    node_ = _node()
    ref = node_.make_ref()
    node_.timers.add(ref, ms, (dest, ("timeout", ref, msg)), _owner(node_, dest))
    return ref


def cancel_timer(ref: Ref) -> int | bool:
    """Milliseconds that were left, or False if the timer already fired or never was."""
    if type(ref) is not Ref:
        raise Error("badarg")
    return _node().timers.cancel(ref)


def read_timer(ref: Ref) -> int | bool:
    if type(ref) is not Ref:
        raise Error("badarg")
    return _node().timers.read(ref)


def _check_pid(pid: Any) -> None:
    if type(pid) is not Pid:
        raise Error("badarg")
