"""Timers for one node: `send_after`, `start_timer`, `cancel_timer`.

Rules of this module:
- One daemon thread per node sleeps until the earliest timer is due, then calls `fire(entry)`.
  It survives anything `fire` raises (logged), and sleeps in bounded slices, so no timer,
  however long, can stop the others from firing.
- Cancelling returns the milliseconds that were left, or False when the timer is gone.
  A cancelled timer's heap entry is skipped when due, or dropped earlier by `_compact`.
- A timer may name an `owner` (the local process it is for): `cancel_owner` drops all of an
  owner's timers at once, as ERTS cancels the timers of a process that dies.
- `check_delay` is the range rule: a timer must expire within the node's time span, that is
  at a monotonic time of at most 2**63 - 1 ns (ERTS: erlang:system_info(end_time)).
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

Fire = Callable[[Any], None]

log = logging.getLogger("actors.timers")

END_TIME_NS = 2**63 - 1  # the last monotonic time (native unit: ns) a timer may expire at
_SLICE_S = 3600.0  # the longest single sleep; far timers are re-checked this often


def check_delay(delay_ms: Any) -> bool:
    """Whether `delay_ms` is a valid timer time: an int >= 0 that expires by END_TIME_NS."""
    return (type(delay_ms) is int and delay_ms >= 0
            and time.monotonic_ns() + delay_ms * 1_000_000 <= END_TIME_NS)


class TimerService:
    """A heap of due times served by one lazily started thread."""

    def __init__(self, name: str, fire: Fire) -> None:
        self._name = name
        self._fire = fire
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Any]] = []
        self._live: dict[Any, tuple[float, Any]] = {}  # key -> (due, owner), not yet fired
        self._owned: dict[Any, set[Any]] = {}  # owner -> keys of its live timers
        self._seq = 0
        self._thread: threading.Thread | None = None
        self._stopped = False

    def add(self, key: Any, delay_ms: int, entry: Any, owner: Any = None) -> None:
        """Fire `entry` after `delay_ms`; `owner` (optional) ties the timer to a process."""
        due = time.monotonic() + max(delay_ms, 0) / 1000.0
        with self._cond:
            if self._stopped:
                return
            self._seq += 1
            heapq.heappush(self._heap, (due, self._seq, (key, entry)))
            self._live[key] = (due, owner)
            if owner is not None:
                self._owned.setdefault(owner, set()).add(key)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"{self._name}-timers", daemon=True
                )
                self._thread.start()
            elif self._heap[0][2][0] == key:
                self._cond.notify()

    def _forget(self, key: Any) -> float | None:
        """With the lock held: drop a live timer; its due time, or None if it is gone."""
        found = self._live.pop(key, None)
        if found is None:
            return None
        due, owner = found
        if owner is not None:
            keys = self._owned.get(owner)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._owned[owner]
        return due

    def cancel(self, key: Any) -> int | bool:
        with self._cond:
            due = self._forget(key)
            self._compact()
        if due is None:
            return False
        return max(0, round((due - time.monotonic()) * 1000))

    def cancel_owner(self, owner: Any) -> None:
        """Cancel every live timer of `owner` (its process died)."""
        with self._cond:
            for key in self._owned.pop(owner, ()):
                self._live.pop(key, None)
            self._compact()

    def _compact(self) -> None:
        """With the lock held: drop cancelled entries once they outnumber the live ones
        (a busy gen_server cancels its timeout on every message; a far one would stay in
        the heap until its due time otherwise)."""
        if len(self._heap) > 2 * len(self._live) + 1024:
            self._heap = [e for e in self._heap if e[2][0] in self._live]
            heapq.heapify(self._heap)

    def read(self, key: Any) -> int | bool:
        with self._cond:
            found = self._live.get(key)
        if found is None:
            return False
        return max(0, round((found[0] - time.monotonic()) * 1000))

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._live.clear()
            self._owned.clear()
            self._cond.notify()

    def _next(self) -> Any:
        """Wait for the next due, live timer; its entry, or None once stopped."""
        with self._cond:
            while not self._stopped:
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(min(wait, _SLICE_S))
                    continue
                _, _, (key, entry) = heapq.heappop(self._heap)
                if self._forget(key) is not None:
                    return entry
            return None

    def _run(self) -> None:
        while True:
            try:
                entry = self._next()
                if entry is None:
                    return
                self._fire(entry)
            except Exception:
                log.exception("node %s: a timer failed to fire", self._name)
