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

import math
import time
from collections.abc import Callable, Collection, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .history import Op
from .models import Model

VALID, INVALID, UNKNOWN, UNCHECKED = "valid", "invalid", "unknown", "unchecked"
INF = math.inf
FIRST_SLICE_S = 0.005  # a key's first round-robin slice (first_invalid); it doubles
SHRINK_FLOOR_S = 0.25  # shrinking may always take this long, whatever the search took
STEPS_PER_CHECK = 1024  # search steps between two looks at the clock and the memory
FIRST_CUT = 4  # ok ops kept from the window's end in the first cut tried
BACKDROP_CANDIDATES = 32  # relaxed ops nearest the kept ones tried as their backdrop
PENDING_SHOWN = 8


class _Item(NamedTuple):
    """An op as the search sees it: it may take effect within [start, end]; an optional
    one may also never take effect."""

    op: Op
    start: float
    end: float
    optional: bool


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
    by_key: dict[Any, list[_Item]] = {}
    for op in ops:
        items = by_key.setdefault(key_fn(op), [])
        item = _prepare(op, model)
        if item is not None:
            items.append(item)
    memory = _Memory(None if cache_mb is None else cache_mb * 2**20)
    searches = {key: _Search(items, model, memory) for key, items in by_key.items()}
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
    found, pending, minimal, cut = _counterexample(by_key[key], dead_end, model,
                                                   _Limits(_deadline(shrink_s), memory))
    done = time.monotonic()
    return Result(INVALID, verdicts, model.name, budget_s, key, found, pending, minimal, cut,
                  done - started, why, done - shrink_started)


_Outcome = tuple[dict[Any, str], dict[Any, str], dict[Any, float]]  # verdicts, why, spent


def _verdict(found: bool | None) -> str:
    return VALID if found else UNKNOWN if found is None else INVALID


def _one_by_one(searches: dict[Any, _Search], budget_s: float | None) -> _Outcome:
    """Search each key to the end (or its budget), one after another."""
    verdicts: dict[Any, str] = {}
    why: dict[Any, str] = {}
    spent: dict[Any, float] = {}
    for key, search in searches.items():
        t0 = time.monotonic()
        found = search.advance(_deadline(budget_s))
        spent[key] = time.monotonic() - t0
        search.release()
        verdicts[key] = _verdict(found)
        if found is None:
            why[key] = search.gave_up or "time"
    return verdicts, why, spent


def _side_by_side(searches: dict[Any, _Search], budget_s: float | None) -> _Outcome:
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


class _Memory:
    """The bytes (estimated) the failed-configuration caches of one `check` hold, and the
    most they may (None: no limit). Shared by its searches; not thread-safe."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: float | None) -> None:
        self.limit = limit
        self.used = 0


class _Limits(NamedTuple):
    """What one search (of the shrinking) may spend: until `deadline`, within `memory`."""

    deadline: float | None
    memory: _Memory


def _deadline(budget_s: float | None) -> float | None:
    return None if budget_s is None else time.monotonic() + budget_s


def _prepare(op: Op, model: Model) -> _Item | None:
    """The op as the search sees it, or None if it constrains nothing."""
    if op.result == "fail":
        return None
    if op.result == "info":
        return None if model.inert(op) else _Item(op, op.invoke_ns, INF, True)
    if op.result != "ok":
        raise ValueError(f"op {op.id}: unknown result {op.result!r}")
    if op.complete_ns is None:
        raise ValueError(f"op {op.id} is ok but has no completion time")
    return _Item(op, op.invoke_ns, op.complete_ns, False)


def _search(items: list[_Item], model: Model, limits: _Limits,
            inits: Collection[Any] | None = None) -> bool | None:
    search = _Search(items, model, limits.memory, inits)
    try:
        return search.advance(limits.deadline)
    finally:
        search.release()


class _Search:
    """Wing & Gong's search over one key's items, with the model `specialise`d to them and
    the optional items it finds `inert` dropped, from the states `inits` (by default the
    initial state). `advance(until)` runs it on: True if some legal order places every
    mandatory item (and any optional ones) inside its interval; False if none does; None
    if time.monotonic() passed `until` first (call again to go on) or if its cache would
    outgrow the memory allowed (`gave_up` is then "memory", for good). `release()` frees
    the cache. After a False, `deepest` is the time of the latest return the search could
    not get past: unless the model learnt from later ops (`anchors`), the history up to it
    is the shortest prefix that fails.

    Besides Lowe's cache of failed configurations (the ops taken out as two int bitsets,
    the state), these sound prunings:
    - a mandatory read that no state the model lists (`states_after` of every op, from
      the initial state) allows fails the search at once;
    - a legal read is taken at once, with no alternative (any legal order with it later
      stays legal with it moved earlier);
    - a configuration fails if one with the same state and the same other ops taken out,
      but a subset of its ops pending forever, failed (that one could have let the extra
      ones never happen); the cache drops, per (ops taken out, state), most of the
      supersets it need not keep;
    - an optional op that would leave the state as it is is never taken (it may as well
      not happen), and optional ops are tried after the mandatory candidates, so the
      configurations that spare them come first;
    - alike ops pending forever are used in invoke order (so a model's step must depend on
      nothing but the op's f, value and output)."""

    def __init__(self, items: list[_Item], model: Model, memory: _Memory,
                 inits: Collection[Any] | None = None) -> None:
        self.model = model = _specialise(model, items)
        items = [it for it in items if not (it.optional and model.inert(it.op))]
        n = len(items)
        events = sorted([(it.start, 0, i) for i, it in enumerate(items)]
                        + [(it.end, 1, i) for i, it in enumerate(items)])
        # A doubly linked list of the events in time order: head 0, entries 1..2n, tail
        # 2n+1. Linearizing an op, or deciding it never happens, lifts its two entries out.
        self.nxt = list(range(1, 2 * n + 3))
        self.prv = list(range(-1, 2 * n + 1))
        self.time = [-INF] + [t for t, _, _ in events] + [INF]
        self.op_of = [0] + [i for _, _, i in events] + [0]
        self.is_call = [False] + [kind == 0 for _, kind, _ in events] + [False]
        self.call_at = [0] * n
        self.ret_at = [0] * n
        for pos, (_, kind, i) in enumerate(events, start=1):
            (self.ret_at if kind else self.call_at)[i] = pos
        self.items = items
        self.ops = [it.op for it in items]
        self.optional = [it.optional for it in items]
        self.endless = [it.end == INF for it in items]
        self.reads = [model.is_read(it.op) for it in items]
        self.bits = [1 << i for i in range(n)]
        self.step = model.step
        # Pending-forever ops alike (f, value, output) are interchangeable: use them in
        # invoke order, each only once the one invoked before it is used.
        self.after: list[int | None] = [None] * n
        last: dict[tuple[str, Any, Any], int] = {}
        for i in sorted(range(n), key=lambda i: items[i].start):
            if self.optional[i] and self.endless[i]:
                op = items[i].op
                self.after[i] = last.get((op.f, op.value, op.output))
                last[op.f, op.value, op.output] = i
        self.failed: dict[tuple[int, Any], list[int]] = {}  # (done, state) -> failed `used`s
        self.deepest = -INF
        self.memory = memory
        self.bytes = 0  # what `failed` holds, as counted in `memory`
        self.gave_up: str | None = None
        self._steps = self._explore(inits)

    def advance(self, until: float | None) -> bool | None:
        """Run on until done, or until time.monotonic() passes `until` (None: no limit)."""
        if self.gave_up is not None:
            return None
        steps = self._steps
        try:
            while True:
                next(steps)
                if until is not None and time.monotonic() > until:
                    return None
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def release(self) -> None:
        """Free the cache (the search cannot go on after this)."""
        self.memory.used -= self.bytes
        self.bytes = 0
        self.failed = {}
        self._steps = iter(())

    def _explore(self, inits: Collection[Any] | None) -> Generator[None, None, bool | None]:
        if all(self.optional):
            return True  # none of them need take effect
        if inits is None and (impossible := self._impossible_read()) is not None:
            self.deepest = impossible
            return False
        for state in [self.model.init()] if inits is None else inits:
            found = yield from self._run_from(state)
            if found is not False:
                return found
        return False

    def _impossible_read(self) -> float | None:
        """The earliest end of a mandatory read that no reachable state allows, if any."""
        states = self.model.states_after([], self.ops)
        if states is None:
            return None
        states = list(states)
        ends = [it.end for i, it in enumerate(self.items) if self.reads[i] and not it.optional
                and not any(self.step(state, it.op)[0] for state in states)]
        return min(ends, default=None)

    def _run_from(self, state: Any) -> Generator[None, None, bool | None]:
        """The search from `state`; yields every STEPS_PER_CHECK steps, and returns None
        (having set `gave_up`) if its cache outgrows the memory allowed."""
        nxt, prv, op_of, is_call = self.nxt, self.prv, self.op_of, self.is_call
        call_at, ret_at, reads, failed = self.call_at, self.ret_at, self.reads, self.failed
        ops, optional, endless, bits = self.ops, self.optional, self.endless, self.bits
        step, after_twin, memory = self.step, self.after, self.memory
        head, tail = 0, len(nxt) - 1
        done = used = 0  # bitsets of the ops taken out: pending forever (used), others (done)
        stack: list[tuple[int, Any, bool]] = []  # (call entry, state before, no alternative?)
        entry = nxt[head]
        deferred = skipped = False  # trying the optional candidates? any passed over?
        countdown = STEPS_PER_CHECK
        grown = 0  # bytes added to the cache since the last look at the memory
        times, deepest = self.time, self.deepest
        while True:
            countdown -= 1
            if not countdown:
                countdown = STEPS_PER_CHECK
                self.bytes += grown
                memory.used += grown
                grown = 0
                if memory.limit is not None and memory.used > memory.limit:
                    self.gave_up = "memory"
                    self.release()
                    return None
                yield
            i = op_of[entry]
            if is_call[entry]:  # a candidate to linearize next
                if optional[i] != deferred or (
                        (twin := after_twin[i]) is not None and not used & bits[twin]):
                    skipped = skipped or optional[i]
                    entry = nxt[entry]
                    continue
                legal, after = step(state, ops[i])
                if legal and not (optional[i] and after == state):  # no point otherwise
                    to_done, to_used = (done, used | bits[i]) if endless[i] else (
                        done | bits[i], used)
                    prior = failed.get((to_done, after))
                    if prior is not None:  # failed before, with a subset pending forever?
                        for u in prior:
                            if u & to_used == u:
                                break
                        else:
                            prior = None
                    if prior is None:
                        stack.append((entry, state, reads[i]))
                        done, used, state = to_done, to_used, after
                        _lift(entry, ret_at[i], nxt, prv)
                        entry = nxt[head]
                        if entry == tail:
                            return True
                        deferred = skipped = False
                        continue
                entry = nxt[entry]
                continue
            # The return of an op not linearized yet: it must have taken effect by now.
            if optional[i] and endless[i]:
                return True  # every op left is free to never happen
            if skipped and not deferred:  # first try the optional candidates passed over
                deferred, entry = True, nxt[head]
                continue
            if optional[i]:  # it never happens
                prior = failed.get((to_done := done | bits[i], state))
                if prior is not None:
                    for u in prior:
                        if u & used == u:
                            break
                    else:
                        prior = None
                if prior is None:
                    stack.append((call_at[i], state, True))
                    done = to_done
                    _lift(call_at[i], entry, nxt, prv)
                    entry = nxt[head]
                    if entry == tail:
                        return True
                    deferred = skipped = False
                    continue
            if times[entry] > deepest:
                deepest = times[entry]
            while True:  # this configuration fails: undo the last choice, try the next one
                if not stack:
                    self.deepest = deepest
                    return False
                grown += _remember(failed, done, state, used)
                call, state, forced = stack.pop()
                i = op_of[call]
                if endless[i]:
                    used ^= bits[i]
                else:
                    done ^= bits[i]
                ret = ret_at[i]
                nxt[prv[ret]] = prv[nxt[ret]] = ret
                nxt[prv[call]] = prv[nxt[call]] = call
                if not forced:
                    break
            entry, deferred, skipped = nxt[call], optional[i], True


def _remember(failed: dict[tuple[int, Any], list[int]], done: int, state: Any,
              used: int) -> int:
    """Cache that (done, state) fails with `used` pending forever; the bytes this added
    (an estimate: the dict slot, key tuple, list and ints, the state being shared). A
    `used` of 0 replaces every other; any other drops those it is a subset of, once there
    are a few (it has no subset there, or the configuration would have been pruned)."""
    prior = failed.get((done, state))
    if prior is None:
        failed[done, state] = [used]
        return 200 + done.bit_length() // 7 + _int_bytes(used)
    before = len(prior)
    if not used:
        dropped = sum(map(_int_bytes, prior))
        prior.clear()
    elif before >= 4:
        kept = [u for u in prior if u & used != used]
        dropped = sum(map(_int_bytes, prior)) - sum(map(_int_bytes, kept)) if len(
            kept) < before else 0
        prior[:] = kept
    else:
        dropped = 0
    prior.append(used)
    return 8 * (len(prior) - before) + _int_bytes(used) - dropped


def _int_bytes(bits: int) -> int:
    """About what a bitset int costs beyond a list slot (0 is shared: nothing)."""
    return 28 + bits.bit_length() // 7 if bits else 0


def _specialise(model: Model, items: list[_Item]) -> Model:
    return model.specialise([it.op for it in items if not it.optional],
                            [it.op for it in items if it.optional])


def _lift(call: int, ret: int, nxt: list[int], prv: list[int]) -> None:
    """Take an op's call and return entries out of the list (their own links stay, so the
    search can put them back in the reverse order)."""
    nxt[prv[call]], prv[nxt[call]] = nxt[call], prv[call]
    nxt[prv[ret]], prv[nxt[ret]] = nxt[ret], prv[ret]


# -- the counterexample --------------------------------------------------------------------


def _counterexample(items: list[_Item], dead_end: tuple[float, tuple[Op, ...]],
                    model: Model,
                    limits: _Limits) -> tuple[list[Op], list[Op], bool, bool]:
    """(the counterexample's ops, other ops pending in its window, shrunk to 1-minimal?,
    window cut?) for a key whose search could not get past time `dead_end[0]` with its
    model learnt from the ops `dead_end[1]`. Windows are tried from the shortest failing
    tail on, up to the whole failing prefix: the first whose shrunk ops fail on their own,
    from the initial state, wins (the whole prefix's always do)."""
    for window, inits in _windows(_failing_prefix(items, dead_end, model, limits), model,
                                  limits):
        # The states a cut tail starts from are the model's as specialised to the tail:
        # keep the ops it learnt from, so that every search below reads them the same way.
        anchors = () if inits is None else _specialise(model, window).anchors
        pinned = [i for i, it in enumerate(window) if it.op in anchors]
        core, minimal = _shrink(window, pinned, inits, model, limits)
        kept = sorted(core + _backdrop(window, core, inits, model, limits))
        found = [window[i].op for i in kept]
        alone = [it for it in (_prepare(op, model) for op in found) if it is not None]
        if inits is None or _search(alone, model, limits) is False:
            break
    last = max((window[i].end for i in kept if window[i].end != INF), default=INF)
    pending = [it.op for i, it in enumerate(window)
               if i not in kept and it.end == INF and it.start <= last]
    return _in_order(found), _in_order(pending)[-PENDING_SHOWN:], minimal, inits is not None


def _in_order(ops: list[Op]) -> list[Op]:
    return sorted(ops, key=lambda op: (op.invoke_ns, op.id))


def _truncate(items: list[_Item], t: float, model: Model) -> list[_Item]:
    """The history as it stood at time `t`: ops running then become pending (they may take
    effect later, or never; a pending read observed nothing yet and is dropped)."""
    out = []
    for it in items:
        if it.start > t:
            continue
        if it.end > t:
            if model.inert(it.op):
                continue
            it = it._replace(end=INF, optional=True)
        out.append(it)
    return out


def _failing_prefix(items: list[_Item], dead_end: tuple[float, tuple[Op, ...]],
                    model: Model, limits: _Limits) -> list[_Item]:
    """The history truncated at the earliest completion after which it fails. If the search
    used a model learnt from no op, that is where it could not get past. If it learnt from
    anchors (later ops, say the longest read), that point may come earlier than the failure
    a prefix shows on its own: then search between it and the anchors' last completion
    (which shows it, the model being the same), a failing history staying so as it grows."""
    t, anchors = dead_end
    if not anchors:
        return _truncate(items, t, model)
    last = max(t, *(it.end for it in items if it.op in anchors))
    ends = sorted({it.end for it in items if not it.optional and t <= it.end <= last})
    lo, hi = 0, len(ends) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if _search(_truncate(items, ends[mid], model), model, limits) is False:
            hi = mid
        else:
            lo = mid + 1
    return _truncate(items, ends[hi], model)


def _windows(window: list[_Item], model: Model,
             limits: _Limits) -> Iterator[tuple[list[_Item], list[Any] | None]]:
    """The tails of `window` that still fail, shortest first, each with the states it
    starts from; then `window` itself and None (from the initial state). A tail starts at
    the invoke of the FIRST_CUT-th last ok op (then of twice as many, ...): ops invoked from
    then on are kept, ops running then are relaxed (they may take effect before, during or
    after the tail, within their interval), and ops done by then are cut. The tail starts
    from any state the cut and the running ops may leave (`states_after`), so a legal
    order of the window always yields one of the tail."""
    starts = sorted(it.start for it in window if not it.optional)
    k = FIRST_CUT
    while k < len(starts):
        cut_at = starts[-k]
        k *= 2
        tail = [it._replace(optional=True) if it.start < cut_at else it for it in window
                if it.start >= cut_at or (it.end >= cut_at and not model.inert(it.op))]
        tail_model = _specialise(model, tail)
        states = tail_model.states_after(
            [it.op for it in window if it.end < cut_at],
            [it.op for it in window if it.start < cut_at <= it.end
             and not tail_model.inert(it.op)])
        if states is None:
            break
        inits = list(dict.fromkeys(states))  # none: the ops cut away contradict the tail
        if inits and _search(tail, model, limits, inits) is False:
            yield tail, inits
    yield window, None


def _relaxed_search(window: list[_Item], keep: Iterable[int], inits: list[Any] | None,
                    model: Model, limits: _Limits,
                    anytime: int | None = None) -> bool | None:
    """Search `window` with the items outside `keep` relaxed (free to never happen: a read
    then constrains nothing), and item `anytime` free to happen at any time at all."""
    kept = set(keep)
    items = []
    for i, it in enumerate(window):
        if i == anytime:
            items.append(it._replace(start=-INF, end=INF, optional=True))
        elif i in kept:
            items.append(it)
        else:
            items.append(it._replace(optional=True))
    return _search(items, model, limits, inits)


def _shrink(window: list[_Item], pinned: list[int], inits: list[Any] | None, model: Model,
            limits: _Limits) -> tuple[list[int], bool]:
    """The mandatory items of `window` to keep (`pinned` ones always), the others dropped
    in chunks of halving size while the rest, with the dropped ones relaxed, still fails;
    and whether that finished (then no single kept item can be dropped: relaxing more only
    admits more orders)."""
    core = [i for i, it in enumerate(window) if not it.optional and i not in pinned]
    size = max(1, len(core) // 2)
    finished = True
    while core:
        i = 0
        while i < len(core):
            if limits.deadline is not None and time.monotonic() > limits.deadline:
                return core + pinned, False
            rest = core[:i] + core[i + size:] + pinned
            found = _relaxed_search(window, rest, inits, model, limits) if rest else True
            if found is False:
                core = rest[:len(rest) - len(pinned)]
            else:
                finished = finished and found is not None
                i += size
        if size == 1:
            break
        size = max(1, size // 2)
    return core + pinned, finished


def _backdrop(window: list[_Item], core: list[int], inits: list[Any] | None, model: Model,
              limits: _Limits) -> list[int]:
    """The relaxed items nearest the core without which, were they free to take effect at
    any time, the core would no longer fail (the writes behind its reads). Ops pending
    forever come last: they are shown as pending anyway."""
    kept = set(core)
    lo = min(window[i].start for i in core)
    hi = max(window[i].end for i in core)

    def distance(i: int) -> tuple[bool, float]:
        it = window[i]
        end = it.start if it.end == INF else it.end
        return it.end == INF, max(0.0, lo - end, it.start - hi)

    candidates = sorted((i for i, it in enumerate(window)
                         if i not in kept and not model.inert(it.op)), key=distance)
    return [i for i in candidates[:BACKDROP_CANDIDATES]
            if _relaxed_search(window, kept, inits, model, limits, anytime=i) is True]


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
