"""How long the interpreter has spent in cyclic garbage collection, process-wide.

A collection holds the GIL, so it stops every thread of every node in the process at
once; a run that it interrupted took longer through no fault of its own. `paused_s()`
lets a caller subtract those pauses from a duration it measures (see
`Process._run_lent`). The counter is a fact about the interpreter, like its clock, so it
is one per process; it is kept by a `gc.callbacks` entry installed on first import.
"""

from __future__ import annotations

import gc
import time
from typing import Any

_clock = time.monotonic
_started = [0.0]  # when the collection under way began (0.0: none)
_total = [0.0]  # seconds spent in finished collections


def _on_collection(phase: str, _info: dict[str, Any], clock: Any = _clock,
                   started: list[float] = _started, total: list[float] = _total) -> None:
    # (bound as defaults: a collection during shutdown may run after module globals go)
    if phase == "start":
        started[0] = clock()
    elif started[0]:
        total[0] += clock() - started[0]
        started[0] = 0.0


def paused_s() -> float:
    """Seconds spent in garbage collection since this module was imported (monotonic)."""
    return _total[0]


if _on_collection not in gc.callbacks:
    gc.callbacks.append(_on_collection)
