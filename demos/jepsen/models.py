"""Sequential specifications the linearizability checker tests histories against.

A model is a small immutable object; `Model` lists what the checker asks of it, with
defaults for all but `init` and `step`:

- `init()`: the initial state. States are hashable and cheap to hash (the checker caches
  them);
- `step(state, op) -> (legal, new_state)`: is `op`, with the output it observed, legal in
  `state`, and what is the state after it. It must depend on nothing of the op but its f,
  value and output;
- `is_read(op)`: the op only observes (its step never changes the state). The checker
  drops an info read and takes a legal read at once;
- `inert(op)`: taking the op never makes a later step legal that would not be legal
  without it (a read, say): the checker drops it where it may also never happen;
- `states_after(done, maybe)`: every state the model can be in after all the ops `done`
  and some of the ops `maybe` took effect, in some order, from `init()` (listing more is
  fine), or None if it cannot tell. The checker uses it to cut a counterexample short;
- `specialise(must, may)`: the model the checker uses for a history of the ops `must`
  (which take effect) and `may` (which may or may not). It may refuse steps, or call ops
  inert, where no legal order of those very ops needs them (to prune the search), never
  where one does; `anchors` are the ops it learnt that from, when a part of the history
  without them could need what it refuses.

Values reach the models frozen (see `history.freeze`: lists are tuples), so a list and a
tuple with the same items are the same value.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Hashable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .history import Op


class Model:
    """The checker's view of a model (see the module docstring); subclasses override
    `init` and `step`, and whichever defaults do not fit."""

    name: ClassVar[str] = "model"
    anchors: ClassVar[tuple[Op, ...]] = ()

    def init(self) -> Hashable:
        raise NotImplementedError

    def step(self, state: Any, op: Op) -> tuple[bool, Any]:
        raise NotImplementedError

    def is_read(self, op: Op) -> bool:
        return op.f == "read"

    def inert(self, op: Op) -> bool:
        return self.is_read(op)

    def states_after(self, done: list[Op], maybe: list[Op]) -> Collection[Hashable] | None:
        return None

    def specialise(self, must: list[Op], may: list[Op]) -> Model:
        return self


@dataclass(frozen=True)
class Register(Model):
    """One value, `initial` at first. f="read" (output: the value read), f="write"
    (value: the new value), f="cas" (value: (old, new); ok only if the value is `old`,
    and it becomes `new`)."""

    initial: Hashable = None
    name: ClassVar[str] = "register"
    _seen: frozenset[Any] | None = field(default=None, compare=False, repr=False)

    def init(self) -> Hashable:
        return self.initial

    def step(self, state: Any, op: Op) -> tuple[bool, Any]:
        if op.f == "read":
            return op.output == state, state
        if op.f == "write":
            return True, op.value
        if op.f == "cas":
            old, new = op.value
            return (True, new) if state == old else (False, state)
        raise ValueError(f"a register has no operation {op.f!r}")

    def inert(self, op: Op) -> bool:
        """Reads; and, specialised, writes and cas of a value no read that must happen
        shows and no cas expects (from it the next op can only be a write)."""
        if op.f == "read":
            return True
        if self._seen is None:
            return False
        return (op.value if op.f == "write" else op.value[1]) not in self._seen

    def specialise(self, must: list[Op], may: list[Op]) -> Register:
        seen = {op.output for op in must if op.f == "read"}
        seen |= {op.value[0] for op in must + may if op.f == "cas"}
        return Register(self.initial, frozenset(seen))

    def states_after(self, done: list[Op], maybe: list[Op]) -> Collection[Hashable] | None:
        """The initial value and every value written (or swapped in)."""
        states = [self.initial]
        states += [op.value if op.f == "write" else op.value[1]
                   for op in done + maybe if op.f in ("write", "cas")]
        return list(dict.fromkeys(states))


_EMPTY = (0, 0)  # (length, chained hash) of the empty list


def _chain(items: Any) -> tuple[int, int]:
    """(length, h_n) of `items`, where h_0 = 0 and h_k = hash((h_(k-1), item_k))."""
    length, h = _EMPTY
    for x in items or ():
        length, h = length + 1, hash((h, x))
    return length, h


@dataclass(frozen=True)
class AppendList(Model):
    """An append-only list (an audit log). f="append" (value: the item), f="read"
    (output: the whole list, in order; None counts as empty).

    The state is (length, chained hash), not the list: appending is O(1) and hashing the
    state is cheap however long the list grows. A read is legal iff its output has the
    state's length and chained hash; each read's chain is computed once and memoised by op
    id (the memo checks it holds the very same op, so one model may check many histories).
    The checker uses `specialise(must, may)`, a `PlannedList`, which needs no hashing.
    """

    name: ClassVar[str] = "append-only list"
    _reads: dict[int, tuple[Op, tuple[int, int]]] = field(
        default_factory=dict, compare=False, repr=False)

    def init(self) -> tuple[int, int]:
        return _EMPTY

    def step(self, state: Any, op: Op) -> tuple[bool, Any]:
        if op.f == "append":
            length, h = state
            return True, (length + 1, hash((h, op.value)))
        if op.f == "read":
            return self._read_chain(op) == state, state
        raise ValueError(f"an append-only list has no operation {op.f!r}")

    def specialise(self, must: list[Op], may: list[Op]) -> PlannedList:
        reads = [op for op in must if op.f == "read" and op.result == "ok"]
        longest = max(reads, key=lambda op: len(op.output or ()), default=None)
        if longest is None:
            return PlannedList(())
        return PlannedList(tuple(longest.output or ()), (longest,))

    def _read_chain(self, op: Op) -> tuple[int, int]:
        memo = self._reads.get(op.id)
        if memo is not None and memo[0] is op:
            return memo[1]
        chain = _chain(op.output)
        self._reads[op.id] = (op, chain)
        return chain


@dataclass(frozen=True)
class PlannedList(Model):
    """`AppendList` for one history, whose longest ok read is `longest` (from the op in
    `anchors`). In any legal order every read is a prefix of the final list, and so is
    `longest`: an item `longest` shows is appended where it shows it, and any other after
    its end. So an append of x is legal only at a length n where longest[n] == x, or at
    n >= len(longest); the state is just the length (the content is then longest[:n]), and
    every length past len(longest) is one state, since no read can tell them apart. A read
    is legal iff it is a prefix of `longest` as long as the state. The search then follows
    the reads' order instead of trying every order of concurrent appends."""

    longest: tuple[Any, ...]
    anchors: tuple[Op, ...] = ()
    name: ClassVar[str] = "append-only list"
    _prefix: dict[int, tuple[Op, bool]] = field(default_factory=dict, compare=False,
                                                repr=False)
    _places: dict[Any, list[int]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for i, x in enumerate(self.longest):
            self._places.setdefault(x, []).append(i)

    def init(self) -> int:
        return 0

    def step(self, state: Any, op: Op) -> tuple[bool, Any]:
        end = len(self.longest)
        if op.f == "append":
            if state >= end:
                return True, end + 1
            return (True, state + 1) if self.longest[state] == op.value else (False, state)
        if op.f == "read":
            output = op.output or ()
            return state == len(output) and self._is_prefix(op, output), state
        raise ValueError(f"an append-only list has no operation {op.f!r}")

    def inert(self, op: Op) -> bool:
        """Reads, and appends of items `longest` does not show: those only ever go past
        `longest`, where no read is legal."""
        return op.f == "read" or op.value not in self._places

    def states_after(self, done: list[Op], maybe: list[Op]) -> Collection[Hashable] | None:
        """The lengths n such that the appends can fill longest[:n] (each item from one
        append) and it holds every item `longest` shows that an append `done` added; and
        the one state past `longest` if they can fill all of it and have one to spare."""
        end = len(self.longest)
        done_items = Counter(op.value for op in done if op.f == "append")
        left = done_items + Counter(op.value for op in maybe if op.f == "append")
        most = 0
        while most < end and left[self.longest[most]] > 0:
            left[self.longest[most]] -= 1
            most += 1
        least = 0
        for x, count in done_items.items():
            places = self._places.get(x, ())
            if places:
                least = max(least, places[min(count, len(places)) - 1] + 1)
        past = [end + 1] if most == end and left.total() > 0 else []
        return [*range(least, most + 1), *past]

    def _is_prefix(self, op: Op, output: Any) -> bool:
        memo = self._prefix.get(op.id)
        if memo is not None and memo[0] is op:
            return memo[1]
        found = self.longest[:len(output)] == tuple(output)
        self._prefix[op.id] = (op, found)
        return found
