"""A cached pool of worker threads: processes borrow a thread only while they run.

Rules of this module:
- `submit(task)` runs `task()` on some worker soon. Tasks never share a worker at once.
- Idle workers wait on a stack: the most recently idle worker, whose stack and caches are
  warm, gets the next task. A burst starts as many workers as it needs, so a task that
  blocks (a process in `receive`) never starves the others.
- A worker idle for `idle_seconds` exits.
- `submit_handler` may leave the task to the calling thread instead: to a caller about to
  wait for the reply of the server whose run it is (see `_gen.call`), or to a thread that
  leads the node's distribution link (see `_inline`).
- A task that ends with `ProcessKilled` (the interrupt of a killed process) retires its
  worker, so a thread abandoned mid-callback never serves another process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from . import _thread
from ._terms import ProcessKilled

Task = Callable[[], None]


class _Worker:
    __slots__ = ("task", "wake")

    def __init__(self, task: Task | None) -> None:
        self.task = task
        self.wake = threading.Lock()  # held while the worker has nothing to do
        self.wake.acquire()


class WorkerPool:
    """A per-node thread pool. Several pools (several nodes) live side by side."""

    def __init__(self, name: str, idle_seconds: float = 5.0) -> None:
        self._name = name
        self._idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []  # a stack: the last one in is the warmest
        self._threads = 0
        self._stopped = False

    @property
    def thread_count(self) -> int:
        return self._threads

    def submit(self, task: Task) -> None:
        with self._lock:
            if self._stopped:
                return
            if self._idle:
                worker = self._idle.pop()
                worker.task = task
            else:
                worker = None
                self._threads += 1
        if worker is not None:
            worker.wake.release()
            return
        threading.Thread(target=self._work, args=(_Worker(task),),
                         name=f"{self._name}-worker", daemon=True).start()

    def submit_handler(self, task: Task) -> None:
        """`submit` a process's handler run; on a thread that leads this node's link, the
        thread itself runs it after its poll round (`_inline`), with no hand-off."""
        state = _thread.state
        lend = state.lend
        if lend is not None and getattr(task, "__self__", None) is lend:
            state.lend, state.lent = None, task  # the caller runs it (see `_gen.call`)
            return
        runner = state.inline
        if runner is not None and runner.pool is self and runner.offer(task):
            return
        self.submit(task)

    def stop(self) -> None:
        """Let every idle worker exit; running tasks finish on their own."""
        with self._lock:
            self._stopped = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.task = None
            worker.wake.release()

    def _work(self, me: _Worker) -> None:
        lock = self._lock
        try:
            while (task := me.task) is not None:
                me.task = None
                task()
                task = None  # an idle worker must not keep the last process it ran alive
                with lock:
                    if self._stopped:
                        return
                    self._idle.append(me)
                if not me.wake.acquire(True, self._idle_seconds):
                    with lock:
                        if me in self._idle:  # nobody claimed us: retire
                            self._idle.remove(me)
                            return
                    me.wake.acquire()  # claimed just as we timed out: the task is coming
        except ProcessKilled:
            return  # the interrupt of a killed process: this thread leaves the pool
        finally:
            with lock:
                self._threads -= 1
