"""A cached pool of worker threads: processes borrow a thread only while they run.

Rules of this module:
- `submit(task)` runs `task()` on some worker soon. Tasks never share a worker at once.
- A worker idle for `idle_seconds` exits; a burst of tasks starts as many workers as it needs,
  so a task that blocks (a process in `receive`) never starves the others.
- A task that ends with `ProcessKilled` (the interrupt of a killed process) retires its
  worker, so a thread abandoned mid-callback never serves another process.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from ._terms import ProcessKilled

Task = Callable[[], None]


class WorkerPool:
    """A per-node thread pool. Several pools (several nodes) live side by side."""

    def __init__(self, name: str, idle_seconds: float = 5.0) -> None:
        self._name = name
        self._idle_seconds = idle_seconds
        self._tasks: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # workers blocked in get() that no submitted task has claimed yet
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
                self._idle -= 1
                start = False
            else:
                self._threads += 1
                start = True
        self._tasks.put(task)
        if start:
            threading.Thread(target=self._work, name=f"{self._name}-worker", daemon=True).start()

    def stop(self) -> None:
        """Let every idle worker exit; running tasks finish on their own."""
        with self._lock:
            self._stopped = True
            idle, self._idle = self._idle, 0
        for _ in range(idle):
            self._tasks.put(None)

    def _work(self) -> None:
        tasks, lock = self._tasks, self._lock
        try:
            while True:
                try:
                    task = tasks.get(timeout=self._idle_seconds)
                except queue.Empty:
                    with lock:
                        if self._idle == 0:
                            continue  # every idle worker is claimed: a task is on its way
                        self._idle -= 1
                        return
                if task is None:
                    return
                task()
                with lock:
                    if self._stopped:
                        return
                    self._idle += 1
        except ProcessKilled:
            return  # the interrupt of a killed process: this thread leaves the pool
        finally:
            with lock:
                self._threads -= 1
