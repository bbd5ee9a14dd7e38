"""Is a history linearizable? Each key is checked on its own (linearizability is
compositional), by Wing & Gong's backtracking search with Lowe's memoisation, the
algorithm Porcupine uses.

What each result means to the checker:

- ok: the op took effect exactly once, at an instant between its invoke and its
  completion, and observed its output there;
- fail: it never took effect; it is dropped;
- info: unknown. A read is dropped (it observed nothing we know). Any other op may take
  effect once, at any instant after its invoke (its completion is +infinity), or never.

A key is "valid" if some order of its ok ops and some of its info ops, each placed inside
its interval, is legal for the model; "invalid" if none is; "unknown" if the search ran out
of `budget_s` (seconds, per key) first, as Knossos times out. Ops that touch (one completes
at the very nanosecond another is invoked) count as concurrent.

Keys and limits:

- with `first_invalid`, the keys are searched side by side, round-robin, each for a slice
  of time that doubles every round (5 ms, 10 ms, ...; a key's slices add up to at most
  `budget_s`), and the check stops at the first key found invalid; keys left undecided
  then are "unchecked". Otherwise each key is searched to the end, one after another;
- the searches' caches of failed configurations are bounded by `cache_mb` (estimated
  bytes, over all the searches alive at once, shrinking's included): a search that would
  grow past it gives up, and its key is "unknown" (`Result.why` says why), as it is when
  it runs out of time;
- shrinking is bounded by `shrink_budget_s` and by `shrink_ratio` times the time the key's
  own search took (but at least SHRINK_FLOOR_S): past either it stops, and reports a
  counterexample that may not be minimal.

Besides Lowe's cache, a key whose model can list every state its ops may reach
(`states_after`) fails at once, at a read no such state allows (a value nobody wrote).

For the first invalid key, `Result.counterexample` is a small part of its history that no
order makes legal on its own (from the model's initial state). Each step below is decided
by the search itself:

1. the window ends at the earliest completion after which the history is no longer
   linearizable: where the search could not get past (or, if the model learnt from later
   ops, found between there and them); ops still running then are pending: they may take
   effect later, or never;
2. its start is cut as late as the violation allows (keeping 4, 8, 16, ... ok ops from the
   end), if the model can list the states the ops cut away may leave (`states_after`):
   what is kept must fail from every such state;
3. the ok ops are shrunk, in chunks of halving size: an op is dropped when the rest still
   fails with every dropped op *relaxed*, free to take effect anywhere within its own
   interval or not at all. The kept ops are 1-minimal in that sense (within the window,
   from the states it may start in) unless `Result.minimal` is False (shrinking ran out of
   `shrink_budget_s`);
4. the ops the kept ones need as a backdrop (typically the writes behind the values read:
   the violation would go if that op could take effect at any time) are added back;
5. if the result fails only from the states the cut left, not on its own, the next longer
   cut is tried, and last the whole window, whose shrunk ops always fail on their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .history import Op
from .models import Model
from .shrink import counterexample
from .wgl import INF, Item, Limits, Memory, Search, deadline, prepare

VALID, INVALID, UNKNOWN, UNCHECKED = "valid", "invalid", "unknown", "unchecked"
FIRST_SLICE_S = 0.005  # a key's first round-robin slice (first_invalid); it doubles
SHRINK_FLOOR_S = 0.25  # shrinking may always take this long, whatever the search took
__all__ = ["INF", "INVALID", "UNCHECKED", "UNKNOWN", "VALID", "Result", "check"]


def _by_key(op: Op) -> Any:
    return op.key


@dataclass(frozen=True)
class Result:
    """The verdict over all keys: "invalid" if any key is, else "unknown" if any key ran out
    of budget (time, or memory for its cache), else "valid". `keys` maps each key to its
    own verdict ("unchecked" if the check stopped at another, invalid key first); `why`
    maps each unknown key to "time" or "memory". For an invalid history, `counterexample`
    (in invoke order) is from `counterexample_key`, `pending` are other ops still pending
    in its window, and `cut` says its window starts after other ops (it fails from any
    state those may leave, too)."""

    verdict: str
    keys: dict[Any, str]
    model: str = ""
    budget_s: float | None = None
    counterexample_key: Any = None
    counterexample: list[Op] = field(default_factory=list)
    pending: list[Op] = field(default_factory=list)
    minimal: bool = True
    cut: bool = False
    elapsed_s: float = 0.0
    why: dict[Any, str] = field(default_factory=dict)
    shrink_s: float = 0.0  # of elapsed_s, the time spent on the counterexample

    @property
    def valid(self) -> bool | str:
        """True, False, or "unknown" (which is truthy: test `valid is True`)."""
        return UNKNOWN if self.verdict == UNKNOWN else self.verdict == VALID

    def explain(self) -> str:
        """The verdict for people: for an invalid history, the counterexample as a table."""
        if self.verdict == VALID:
            return f"linearizable: {len(self.keys)} key(s), each legal for the {self.model}"
        if self.verdict == UNKNOWN:
            parts = []
            for why, budget in (("time", f"its {self.budget_s} s budget"),
                                ("memory", "the memory allowed its cache")):
                undecided = [k for k, v in self.keys.items()
                             if v == UNKNOWN and self.why.get(k, "time") == why]
                if undecided:
                    parts.append(f"the search for key(s) {_keys_text(undecided)} ran out of "
                                 f"{budget}")
            return f"unknown: {'; '.join(parts)}; every other key is linearizable"
        n = len(self.counterexample)
        ops_text = "1 operation" if n == 1 else f"{n} operations"
        lead = ("This operation alone is not legal" if n == 1
                else f"No order of these {n} operations is legal")
        base = min((op.invoke_ns for op in self.counterexample + self.pending), default=0)
        lines = [f"key {self.counterexample_key!r} is not linearizable for the {self.model}; "
                 f"counterexample of {ops_text} (times in ms from the window's start):",
                 *_table(self.counterexample, base),
                 f"{lead} for the {self.model} (an ok op takes effect once between its invoke "
                 f"and its completion, an info op at most once after its invoke)."]
        if self.cut:
            lines.append("Nor is one from any state the operations before them (not shown) "
                         "may have left.")
        if self.pending:
            lines += ["Also pending in the window (the violation stands whether or not these "
                      "took effect):", *_table(self.pending, base)]
        if not self.minimal:
            lines.append("(shrinking ran out of time: the counterexample may not be minimal)")
        return "\n".join(lines)


def check(ops: Iterable[Op], model: Model, *, key_fn: Callable[[Op], Any] = _by_key,
          budget_s: float | None = 30.0, shrink_budget_s: float | None = 10.0,
          first_invalid: bool = False, cache_mb: float | None = 1024.0,
          shrink_ratio: float | None = 4.0) -> Result:
    """Check `ops` against `model`, each key (`key_fn(op)`) on its own, spending at most
    `budget_s` seconds on each key's search (None: no limit), at most `cache_mb` MiB on
    the search caches, and on the counterexample at most `shrink_budget_s` and
    `shrink_ratio` times its key's search time (see the module docstring; None: no such
    limit). With `first_invalid`, keys are searched side by side and the check stops at
    the first invalid one. Raises ValueError for an unknown result or an ok op with no
    completion, or for a negative limit."""
    for name, limit in (("budget_s", budget_s), ("shrink_budget_s", shrink_budget_s),
                        ("cache_mb", cache_mb), ("shrink_ratio", shrink_ratio)):
        if limit is not None and not (isinstance(limit, int | float) and limit >= 0):
            raise ValueError(f"{name} must be a number >= 0 or None, got {limit!r}")
    started = time.monotonic()
    by_key: dict[Any, list[Item]] = {}
    for op in ops:
        items = by_key.setdefault(key_fn(op), [])
        item = prepare(op, model)
        if item is not None:
            items.append(item)
    memory = Memory(None if cache_mb is None else cache_mb * 2**20)
    searches = {key: Search(items, model, memory) for key, items in by_key.items()}
    verdicts, why, spent = (_side_by_side if first_invalid else _one_by_one)(searches,
                                                                             budget_s)
    invalid = [key for key, verdict in verdicts.items() if verdict == INVALID]
    if not invalid:
        verdict = UNKNOWN if UNKNOWN in verdicts.values() else VALID
        return Result(verdict, verdicts, model.name, budget_s,
                      elapsed_s=time.monotonic() - started, why=why)
    key = invalid[0]
    dead_end = searches[key].deepest, searches[key].model.anchors
    searches.clear()
    shrink_s = _least(shrink_budget_s,
                      None if shrink_ratio is None else max(SHRINK_FLOOR_S,
                                                            shrink_ratio * spent[key]))
    shrink_started = time.monotonic()
    found, pending, minimal, cut = counterexample(by_key[key], dead_end, model,
                                                   Limits(deadline(shrink_s), memory))
    done = time.monotonic()
    return Result(INVALID, verdicts, model.name, budget_s, key, found, pending, minimal, cut,
                  done - started, why, done - shrink_started)


_Outcome = tuple[dict[Any, str], dict[Any, str], dict[Any, float]]  # verdicts, why, spent


def _verdict(found: bool | None) -> str:
    return VALID if found else UNKNOWN if found is None else INVALID


def _one_by_one(searches: dict[Any, Search], budget_s: float | None) -> _Outcome:
    """Search each key to the end (or its budget), one after another."""
    verdicts: dict[Any, str] = {}
    why: dict[Any, str] = {}
    spent: dict[Any, float] = {}
    for key, search in searches.items():
        t0 = time.monotonic()
        found = search.advance(deadline(budget_s))
        spent[key] = time.monotonic() - t0
        search.release()
        verdicts[key] = _verdict(found)
        if found is None:
            why[key] = search.gave_up or "time"
    return verdicts, why, spent


def _side_by_side(searches: dict[Any, Search], budget_s: float | None) -> _Outcome:
    """Round-robin over the keys, each for a slice that doubles every round (a key's slices
    add up to at most `budget_s`), until every key is decided or one is invalid."""
    verdicts = dict.fromkeys(searches, UNCHECKED)
    why: dict[Any, str] = {}
    spent = dict.fromkeys(searches, 0.0)
    undecided = list(searches)
    slice_s = FIRST_SLICE_S
    while undecided:
        for key in list(undecided):
            search = searches[key]
            allowed = slice_s if budget_s is None else min(slice_s, budget_s - spent[key])
            t0 = time.monotonic()
            found = search.advance(t0 + allowed)
            spent[key] += time.monotonic() - t0
            if found is None and not search.gave_up and (
                    budget_s is None or spent[key] < budget_s):
                continue  # its slice is over: next round
            undecided.remove(key)
            search.release()
            verdicts[key] = _verdict(found)
            if found is None:
                why[key] = search.gave_up or "time"
            if found is False:
                for other in undecided:
                    searches[other].release()
                return verdicts, why, spent
        slice_s *= 2
    return verdicts, why, spent


def _least(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


# -- explain --------------------------------------------------------------------------------


def _keys_text(keys: list[Any]) -> str:
    more = f" and {len(keys) - 10} more" if len(keys) > 10 else ""
    return ", ".join(repr(k) for k in keys[:10]) + more


def _short(value: Any, width: int = 32) -> str:
    if isinstance(value, tuple) and len(value) > 6:
        ends = [*map(repr, value[:2]), "...", *map(repr, value[-2:])]
        text = f"[{len(value)} items: {', '.join(ends)}]"
    else:
        text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def _table(ops: list[Op], base_ns: int) -> list[str]:
    rows = [("id", "process", "f", "value", "output", "result", "invoke ms", "complete ms")]
    for op in ops:
        done = "-" if op.complete_ns is None else f"{(op.complete_ns - base_ns) / 1e6:.3f}"
        rows.append((str(op.id), str(op.process), op.f, _short(op.value), _short(op.output),
                     op.result, f"{(op.invoke_ns - base_ns) / 1e6:.3f}", done))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows]
