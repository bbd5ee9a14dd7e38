"""Timers for one node: `send_after`, `start_timer`, `cancel_timer`.

Rules of this module:
- One daemon thread per node sleeps until the earliest timer is due, then calls `fire(entry)`.
- Cancelling returns the milliseconds that were left, or False when the timer is gone.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from typing import Any

Fire = Callable[[Any], None]


class TimerService:
    """A heap of due times served by one lazily started thread."""

    def __init__(self, name: str, fire: Fire) -> None:
        self._name = name
        self._fire = fire
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Any]] = []
        self._live: dict[Any, float] = {}  # key -> due time, for the timers not yet fired
        self._seq = 0
        self._thread: threading.Thread | None = None
        self._stopped = False

    def add(self, key: Any, delay_ms: int, entry: Any) -> None:
        due = time.monotonic() + max(delay_ms, 0) / 1000.0
        with self._cond:
            if self._stopped:
                return
            self._seq += 1
            heapq.heappush(self._heap, (due, self._seq, (key, entry)))
            self._live[key] = due
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"{self._name}-timers", daemon=True
                )
                self._thread.start()
            elif self._heap[0][2][0] == key:
                self._cond.notify()

    def cancel(self, key: Any) -> int | bool:
        with self._cond:
            due = self._live.pop(key, None)
        if due is None:
            return False
        return max(0, round((due - time.monotonic()) * 1000))

    def read(self, key: Any) -> int | bool:
        with self._cond:
            due = self._live.get(key)
        if due is None:
            return False
        return max(0, round((due - time.monotonic()) * 1000))

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._live.clear()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    if not self._heap:
                        self._cond.wait()
                        continue
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._stopped:
                    return
                _, _, (key, entry) = heapq.heappop(self._heap)
                if self._live.pop(key, None) is None:
                    continue  # cancelled
            self._fire(entry)
