"""One process: its mailbox, its flags, and the bookkeeping its node keeps for it.

Rules of this module:
- Only the process's own thread takes messages out (`take`, `receive`). Any thread may
  `deliver`. The mailbox lock (`lock`) guards the queue, `alive`, `waiting` and `thread`.
- A process is one of three kinds:
  * "thread": `spawn(fun)`; the function runs on a borrowed worker until it returns.
  * "handler": gen_server-like; a worker is borrowed only while there are messages to handle.
  * "shell": a plain Python thread that called into the runtime, as the Erlang shell.
- Once `alive` is False the mailbox is closed: deliveries are dropped, and a thread still
  running the process unwinds with `ProcessKilled` at its next runtime call.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from itertools import islice
from typing import TYPE_CHECKING, Any, final

from . import _gc_pauses, _inline, _thread
from ._terms import TIMEOUT, Exit, Pid, ProcessKilled, Ref

if TYPE_CHECKING:
    from .node import Node

Predicate = Callable[[Any], bool]
Handler = Callable[[Any], None]

_NOTHING = object()
SLOW_MS = 50  # a server run on a caller's thread that takes longer gets workers for a while
SLOW_PAUSE_S = 1.0  # that while


def deadline_of(timeout: int | str) -> float | None:
    """Milliseconds or "infinity" to an absolute monotonic deadline (None = never)."""
    if timeout == "infinity":
        return None
    if not isinstance(timeout, int | float) or timeout < 0:
        raise Exit(("badarg", ("timeout", timeout)))
    return time.monotonic() + timeout / 1000.0


@final
class Process:
    """The runtime's record of one process. User code sees only its `Pid`."""

    __slots__ = (
        "__weakref__",
        "aliases",
        "alive",
        "call_monitors",
        "dictionary",
        "exit_reason",
        "exit_seen",
        "global_names",
        "handler",
        "initial_call",
        "interrupted",
        "kind",
        "links",
        "lock",
        "mailbox",
        "monitored_by",
        "monitors",
        "name",
        "node",
        "pid",
        "poll_wake",
        "scheduled",
        "selector",
        "slow_until",
        "status",
        "thread",
        "trap_exit",
        "waiting",
        "wakeup",
    )

    def __init__(self, node: Node, pid: Pid, kind: str, initial_call: Any = None) -> None:
        self.node = node
        self.pid = pid
        self.kind = kind
        self.initial_call = initial_call
        self.mailbox: deque[Any] = deque()
        self.lock = threading.Lock()
        self.wakeup = threading.Lock()  # held while nobody is to be woken; see `_wait`
        self.wakeup.acquire()
        self.alive = True
        self.exit_reason: Any = None
        self.exit_seen = False  # a shell's thread has been told of its exit
        self.waiting = False
        self.scheduled = False
        self.thread: int | None = None
        self.handler: Handler | None = None
        self.selector: Predicate | None = None
        self.trap_exit = False
        self.links: set[Pid] = set()
        self.monitors: dict[Ref, Pid | tuple[str, str]] = {}  # held: ref -> pid or (name, node)
        self.monitored_by: dict[Ref, tuple[Pid, Any]] = {}  # ref -> (watcher, DOWN object)
        # of those, remote calls' monitors: they end with our reply (see `_remote_end`)
        self.call_monitors: set[Ref] | None = None
        self.aliases: set[Ref] = set()
        self.name: str | None = None
        self.global_names: tuple[Any, ...] = ()  # a tuple: no object for the GC while empty
        self.dictionary: dict[Any, Any] = {}
        self.status = "runnable"
        self.interrupted = False
        self.poll_wake: Callable[[], None] | None = None  # set while it polls for a reply
        self.slow_until = 0.0  # a run on a caller's thread took too long: workers till then

    def __repr__(self) -> str:
        return f"Process({self.pid!r}, {self.kind}, alive={self.alive})"

    # -- delivery: any thread --------------------------------------------------------------

    def deliver(self, msg: Any) -> None:
        """Append `msg` and wake or schedule the process. Dropped if it is dead."""
        with self.lock:
            if not self.alive:
                return
            schedule = self._push(msg)
        if schedule:
            self.node.pool.submit_handler(self.run_handler)

    def deliver_many(self, msgs: list[Any]) -> None:
        """`deliver` each of `msgs`, in order, with one lock and at most one wake-up."""
        with self.lock:
            if not self.alive or not msgs:
                return
            last = msgs.pop()
            self.mailbox.extend(msgs)
            schedule = self._push(last)
        if schedule:
            self.node.pool.submit_handler(self.run_handler)

    def deliver_to_alias(self, alias: Ref, msg: Any) -> None:
        """Deliver only while `alias` is active: a reply after the caller gave up is dropped."""
        with self.lock:
            if not self.alive or alias not in self.aliases:
                return
            schedule = self._push(msg)
        if schedule:
            self.node.pool.submit_handler(self.run_handler)

    def _push(self, msg: Any) -> bool:
        """With `lock` held: queue `msg`, wake a waiting thread; True if a worker is needed."""
        self.mailbox.append(msg)
        if self.waiting:
            self.notify()
            return False
        if self.handler is None or self.scheduled:
            return False
        self.scheduled = True
        return True

    # -- taking messages: the process's own thread ------------------------------------------

    def _take(self, pred: Predicate | None, start: int) -> Any:
        """Pop the first message from index `start` on that matches; `_NOTHING` if none.

        A `start` in the back half of the mailbox is scanned from the end, so a receive
        that skips a long queue (a call's marker, see `receive`) costs what is new, not
        what is queued."""
        mailbox = self.mailbox
        if pred is None:
            return mailbox.popleft() if len(mailbox) > start else _NOTHING
        size = len(mailbox)
        if start > size >> 1:
            found = -1
            for back, msg in enumerate(islice(reversed(mailbox), size - start)):
                if pred(msg):
                    found = size - 1 - back  # the earliest match so far, seen from the end
            if found < 0:
                return _NOTHING
            msg = mailbox[found]
            del mailbox[found]
            return msg
        for index, msg in enumerate(islice(mailbox, start, None), start):
            if pred(msg):
                del mailbox[index]
                return msg
        return _NOTHING

    def receive(self, pred: Predicate | None, timeout: int | str, start: int = 0,
                lent: Callable[[], None] | None = None, remote: bool = False) -> Any:
        """Selective receive: the first message matching `pred`, or TIMEOUT.

        `pred` runs with the mailbox locked: it must be a pure test of the message.
        `start` is a receive marker (OTP's optimisation for a fresh reference): the mailbox
        length taken before the awaited message could have been sent, so the messages
        queued before it are not scanned. `lent`: another process's run, done on this
        thread at the first wait, while this process is formally waiting (`_gen.call`).
        `remote`: the awaited message comes from another node, so the thread may poll the
        node's link for it itself (`ZmqLink.lead_until`) rather than be woken by another.
        A `lent` run that is not done here (this process is dead, or the message was there
        already) goes to a worker: the other process must run all the same."""
        try:
            deadline = deadline_of(timeout)
            with self.lock:
                scanned = min(start, len(self.mailbox))
                while True:
                    if not self.alive:
                        self._unwind()
                    msg = self._take(pred, scanned if pred is not None else 0)
                    if msg is not _NOTHING:
                        return msg
                    scanned = len(self.mailbox)
                    if deadline is None:
                        remaining = None
                    else:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            return TIMEOUT
                    run, lent = lent, None  # from here on, `_wait` runs it
                    self._wait(remaining, run, remote)
        finally:
            if lent is not None:
                self.node.pool.submit(lent)

    def _wait(self, seconds: float | None, lent: Callable[[], None] | None = None,
              remote: bool = False) -> None:
        """Called with `lock` held: release it, sleep until `notify` or timeout, retake it.
        With `lent`, first do that run on this thread (the wait then sleeps only for what
        is left of `seconds`)."""
        self.waiting = True
        self.status = "waiting"
        dist = self.node.dist if remote else None
        if dist is not None:
            self.poll_wake = dist.wake_poller
        self.lock.release()
        woken = False  # stays False if the wait is interrupted (KeyboardInterrupt)
        try:
            if lent is not None:
                seconds = self._run_lent(lent, seconds)
            if self.waiting:
                _inline.before_block()  # a leading I/O thread passes its role on first
            how = "no" if dist is None or not self.waiting else dist.poll_until(
                lambda: not self.waiting, None if seconds is None else time.monotonic() + seconds)
            if how == "polled":
                woken = self.wakeup.acquire(False)
            else:
                try:
                    woken = self.wakeup.acquire(True, -1 if seconds is None else seconds)
                finally:
                    if how == "ride":
                        dist.ride_done()  # type: ignore[union-attr]
        finally:
            self.lock.acquire()
            self.poll_wake = None
            if self.waiting:  # nobody released `wakeup` for us
                self.waiting = False
            elif not woken:  # released after our timeout: consume it to rearm
                self.wakeup.acquire(False)
            self.status = "running"

    def _run_lent(self, run: Callable[[], None], seconds: float | None) -> float | None:
        """Run a called server on this waiting thread; what is left of `seconds`. A run
        that took over `SLOW_MS`, not counting the garbage collector's pauses (which stop
        every thread alike), sends the server's next runs to workers for `SLOW_PAUSE_S`."""
        t0, gc0 = time.monotonic(), _gc_pauses.paused_s()
        try:
            run()
        except ProcessKilled:
            pass  # the server was killed on this thread: it is settled, we go on waiting
        now = time.monotonic()
        took = now - t0
        server = getattr(run, "__self__", None)
        if took - (_gc_pauses.paused_s() - gc0) > SLOW_MS / 1000.0 and server is not None:
            server.slow_until = now + SLOW_PAUSE_S
        return None if seconds is None else max(0.0, seconds - took)

    def notify(self) -> None:
        """Called with `lock` held: wake the process's thread if it is waiting."""
        if self.waiting:
            self.waiting = False
            self.wakeup.release()
            if self.poll_wake is not None:
                self.poll_wake()  # its thread polls the link rather than wait on `wakeup`

    def _unwind(self) -> None:
        """Leave the code of a dead process: a shell sees the exit; a worker just unwinds."""
        if self.kind == "shell":
            self.exit_seen = True
            raise Exit(self.exit_reason)
        raise ProcessKilled()

    def flush_down(self, ref: Ref, start: int = 0) -> None:
        """Drop the queued DOWN of monitor `ref`, if any (demonitor's "flush"); `start` is a
        receive marker taken before the monitor was made."""
        self.take_nowait(
            lambda m: type(m) is tuple and len(m) == 5 and m[0] == "DOWN" and m[1] == ref,
            start)

    def take_nowait(self, pred: Predicate, start: int = 0) -> Any:
        """Remove and return the first matching message, or None (used by flushes)."""
        with self.lock:
            msg = self._take(pred, min(start, len(self.mailbox)))
        return None if msg is _NOTHING else msg

    # -- the handler loop: runs on a borrowed worker ----------------------------------------

    def run_handler(self, budget: int = 200) -> None:
        """Handle queued messages, then give the worker back. Requeues after `budget`.

        Kept short on purpose: after a reply, the caller cannot run until this thread
        blocks again (the GIL), so the idle path takes the mailbox lock only once.
        """
        state = _thread.state
        previous, state.process = state.process, self
        lock, handler, me = self.lock, self.handler, threading.get_ident()
        idle = False
        try:
            for _ in range(budget):
                with lock:
                    if not self.alive:
                        return
                    msg = self._take(self.selector, 0)
                    if msg is _NOTHING:  # alive, so never interrupted: nothing to settle
                        self.scheduled = False
                        self.status = "waiting"
                        self.thread = None
                        idle = True
                        return
                    self.status = "running"
                    self.thread = me
                try:
                    handler(msg)  # type: ignore[misc]
                except ProcessKilled:
                    raise
                except BaseException as exc:  # the process ends; the worker carries on
                    self.node.exit_process(self, self.node.reason_of(exc))
                    return
        finally:
            if not idle:
                self.node.settle(self)
            state.process = previous
        self.node.pool.submit_handler(self.run_handler)
