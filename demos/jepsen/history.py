"""The record of a test run: every operation a client invoked, and how it ended.

A client calls `History.invoke` just before it sends a request and `History.complete` as
soon as it knows the outcome. The result is one of:

- "ok": the operation took effect, once, at some instant between its invoke and its
  completion; `output` is what it returned (the value read, for a read);
- "fail": the operation certainly did not take effect (the cluster said so);
- "info": unknown. It may have taken effect at any instant after its invoke, or never
  (a timeout, a lost connection). An operation never completed (the client died, the run
  ended) is info as well.

Times are `time.monotonic_ns()` relative to the history's start (for ordering) and
`time.time()` (for people). Values are JSON-able data: str, int, float, bool, None and
lists or tuples of them. Every `Op` stores its key, value and output *frozen*: lists become
tuples, recursively, so operations are hashable and compare equal whether built in memory
or loaded from a file (JSON turns tuples into lists; `load_ops` freezes them back).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

RESULTS = ("ok", "fail", "info")


def freeze(value: Any) -> Any:
    """`value` with every list (and tuple) turned into a tuple, recursively."""
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


@dataclass(frozen=True, slots=True)
class Op:
    """One operation, both ends. `complete_ns` is None for an info op (it may take effect
    at any time after its invoke); `complete_wall` still says when the client gave up, or
    is None if it never did."""

    id: int
    process: int
    f: str
    key: Any
    value: Any
    result: str
    output: Any
    invoke_ns: int
    complete_ns: int | None
    invoke_wall: float
    complete_wall: float | None

    def __post_init__(self) -> None:
        for name in ("key", "value", "output"):
            object.__setattr__(self, name, freeze(getattr(self, name)))


class History:
    """A thread-safe recorder of invocations and completions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._start_ns = time.monotonic_ns()
        self._invokes: list[tuple[int, str, Any, Any, int, float]] = []
        self._completions: dict[int, tuple[str, Any, int, float]] = {}

    def invoke(self, process: int, f: str, key: Any, value: Any) -> int:
        """Record that `process` invokes `f` on `key` with `value`; the new op's id."""
        with self._lock:
            now_ns = time.monotonic_ns() - self._start_ns
            self._invokes.append((process, f, key, value, now_ns, time.time()))
            return len(self._invokes) - 1

    def complete(self, op_id: int, result: str, output: Any = None) -> None:
        """Record how op `op_id` ended: "ok", "fail" or "info". Raises ValueError for another
        result or a second completion, KeyError for an id never invoked."""
        if result not in RESULTS:
            raise ValueError(f"result must be one of {RESULTS}, not {result!r}")
        with self._lock:
            now_ns = time.monotonic_ns() - self._start_ns
            if not 0 <= op_id < len(self._invokes):
                raise KeyError(op_id)
            if op_id in self._completions:
                raise ValueError(f"op {op_id} is already complete")
            self._completions[op_id] = (result, output, now_ns, time.time())

    def ops(self) -> list[Op]:
        """Every op so far, in invoke order; ops not yet completed are info."""
        with self._lock:
            invokes = list(self._invokes)
            completions = dict(self._completions)
        ops = []
        for op_id, (process, f, key, value, invoke_ns, invoke_wall) in enumerate(invokes):
            result, output, complete_ns, complete_wall = completions.get(
                op_id, ("info", None, None, None))
            ops.append(Op(op_id, process, f, key, value, result, output, invoke_ns,
                          None if result == "info" else complete_ns, invoke_wall,
                          complete_wall))
        return ops

    def save(self, path: str | Path) -> None:
        """Write `ops()` to `path` as JSON lines (creating its directory)."""
        save_ops(self.ops(), path)


_FIELDS = tuple(field.name for field in fields(Op))


def save_ops(ops: Iterable[Op], path: str | Path) -> None:
    """Write `ops` to `path`, one JSON object per line (creating its directory)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for op in ops:
            out.write(json.dumps({name: getattr(op, name) for name in _FIELDS}) + "\n")


def load_ops(path: str | Path) -> list[Op]:
    """The ops `save_ops` wrote to `path`, values frozen again (lists become tuples)."""
    with Path(path).open(encoding="utf-8") as lines:
        return [Op(**json.loads(line)) for line in lines if line.strip()]


def counts(ops: Iterable[Op]) -> dict[str, int]:
    """How many ops ended ok, fail and info (all three keys always present)."""
    tally = dict.fromkeys(RESULTS, 0)
    for op in ops:
        tally[op.result] += 1
    return tally
