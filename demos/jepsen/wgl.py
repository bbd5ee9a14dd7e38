"""Wing & Gong's search for a legal order of one key's operations, with Lowe's cache of
failed configurations: resumable, bounded in time and (estimated) memory. Used by
`linearizability.check` and its shrinking (`shrink`); see `Search` for the prunings.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Generator
from typing import Any, NamedTuple

from .history import Op
from .models import Model

INF = math.inf
STEPS_PER_CHECK = 1024  # search steps between two looks at the clock and the memory


class Item(NamedTuple):
    """An op as the search sees it: it may take effect within [start, end]; an optional
    one may also never take effect."""

    op: Op
    start: float
    end: float
    optional: bool


class Memory:
    """The bytes (estimated) the failed-configuration caches of one `check` hold, and the
    most they may (None: no limit). Shared by its searches; not thread-safe."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: float | None) -> None:
        self.limit = limit
        self.used = 0


class Limits(NamedTuple):
    """What one search (of the shrinking) may spend: until `deadline`, within `memory`."""

    deadline: float | None
    memory: Memory


def deadline(budget_s: float | None) -> float | None:
    """The time.monotonic() `budget_s` from now (None: none)."""
    return None if budget_s is None else time.monotonic() + budget_s


def prepare(op: Op, model: Model) -> Item | None:
    """The op as the search sees it, or None if it constrains nothing."""
    if op.result == "fail":
        return None
    if op.result == "info":
        return None if model.inert(op) else Item(op, op.invoke_ns, INF, True)
    if op.result != "ok":
        raise ValueError(f"op {op.id}: unknown result {op.result!r}")
    if op.complete_ns is None:
        raise ValueError(f"op {op.id} is ok but has no completion time")
    return Item(op, op.invoke_ns, op.complete_ns, False)


def search(items: list[Item], model: Model, limits: Limits,
           inits: Collection[Any] | None = None) -> bool | None:
    """One whole `Search` of `items` from `inits`, within `limits` (None: out of them)."""
    s = Search(items, model, limits.memory, inits)
    try:
        return s.advance(limits.deadline)
    finally:
        s.release()


class Search:
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

    def __init__(self, items: list[Item], model: Model, memory: Memory,
                 inits: Collection[Any] | None = None) -> None:
        self.model = model = specialise(model, items)
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
        """The earliest end of a mandatory read that no reachable state allows, if any
        (each distinct read tried once: a step depends only on f, value and output)."""
        states = self.model.states_after([], self.ops)
        if states is None:
            return None
        states = list(states)
        allowed: dict[tuple[str, Any, Any], bool] = {}
        earliest = None
        for i, it in enumerate(self.items):
            if not self.reads[i] or it.optional:
                continue
            op = it.op
            alike = (op.f, op.value, op.output)
            if alike not in allowed:
                allowed[alike] = any(self.step(state, op)[0] for state in states)
            if not allowed[alike] and (earliest is None or it.end < earliest):
                earliest = it.end
        return earliest

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


def specialise(model: Model, items: list[Item]) -> Model:
    return model.specialise([it.op for it in items if not it.optional],
                            [it.op for it in items if it.optional])


def _lift(call: int, ret: int, nxt: list[int], prv: list[int]) -> None:
    """Take an op's call and return entries out of the list (their own links stay, so the
    search can put them back in the reverse order)."""
    nxt[prv[call]], prv[nxt[call]] = nxt[call], prv[call]
    nxt[prv[ret]], prv[nxt[ret]] = nxt[ret], prv[ret]
