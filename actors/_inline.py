"""Running processes on the distribution's I/O thread, so a frame reaches its handler with
no thread hand-off (see `transport.zmq_link`: the I/O role moves between threads).

Rules of this module:
- While a thread leads the link, `WorkerPool.submit_handler` offers it the handler tasks
  that the thread's own deliveries schedule (`InlineRunner.offer`). After each poll round the
  leader runs them (`run`), oldest first, for at most `BUDGET_S`; what is left goes to the
  pool's workers. Messages are in their mailboxes before a task is queued, so who runs a
  process, and when, changes no order.
- A task that is about to block (a receive, a call, back-pressure) first calls
  `before_block()`: the I/O role passes to another thread and the runner is `abandon`ed,
  its queued tasks handed to the pool. The blocked thread finishes its task as a worker would.
- A task that runs long without blocking is caught by the link's watchdog, which does the
  same from outside. `offer` and `abandon` share a lock, so a task is never lost between them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import _thread
from ._terms import ProcessKilled

if TYPE_CHECKING:
    from ._scheduler import WorkerPool

log = logging.getLogger("actors.dist")

BUDGET_S = 0.002  # inline work per poll round before the rest goes to the pool

Task = Callable[[], None]


class InlineRunner:
    """The handler tasks queued on one leading thread."""

    __slots__ = ("_handoff", "_lock", "_tasks", "abandoned", "pool")

    def __init__(self, pool: WorkerPool, handoff: Callable[[], None]) -> None:
        self.pool = pool
        self._handoff = handoff
        self._tasks: deque[Task] = deque()
        self._lock = threading.Lock()
        self.abandoned = False

    def offer(self, task: Task) -> bool:
        """Queue `task` to run on this thread after the poll round; False once abandoned."""
        with self._lock:
            if self.abandoned:
                return False
            self._tasks.append(task)
            return True

    def run(self) -> None:
        """The leader, after a poll round: run what is queued, within the budget."""
        deadline = time.monotonic() + BUDGET_S
        tasks, lock = self._tasks, self._lock
        while True:
            with lock:
                if self.abandoned or not tasks:
                    return
                task = tasks.popleft()
                if time.monotonic() > deadline:
                    rest, self._tasks = [task, *tasks], deque()
                    tasks = self._tasks
                else:
                    rest = None
            if rest is not None:
                for one in rest:
                    self.pool.submit(one)
                return
            try:
                task()
            except ProcessKilled:  # a killed process's interrupt: this thread stops leading
                self.before_block()
                return
            except Exception:
                log.exception("error in a process run on the I/O thread")

    def before_block(self) -> None:
        """This thread is about to wait: pass the I/O role on and give the queue away."""
        if not self.abandoned:
            self._handoff()

    def abandon(self) -> None:
        """Take no more tasks; the pool's workers get the queued ones (any thread)."""
        with self._lock:
            self.abandoned = True
            tasks, self._tasks = self._tasks, deque()
        for task in tasks:
            self.pool.submit(task)


def before_block() -> None:
    """Call before any wait that a process makes: a no-op except on a leading thread."""
    runner = _thread.state.inline
    if runner is not None and not runner.abandoned:
        runner.before_block()
