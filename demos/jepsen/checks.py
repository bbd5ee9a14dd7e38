"""The checks beyond linearizability, over the members' final states after the last heal.

Each returns a list of human-readable problems, empty when all is well.

    lost_acknowledged  every acknowledged append is in the final read of every member
    duplicates         no element (request id) appears twice in a member's read
    unexpected         no member holds an element that no client ever tried to append
    converged          every member's final state is identical
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from typing import Any

SHOWN = 5  # elements named per problem; the rest are counted


def lost_acknowledged(ok_appends: Iterable[Hashable], final_reads: dict[str, Any]) -> list[str]:
    wanted = list(dict.fromkeys(ok_appends))
    problems = []
    for member, read in sorted(final_reads.items()):
        if not isinstance(read, list | tuple):
            problems.append(f"{member}: no final read ({read!r})")
            continue
        held = set(read)
        lost = [x for x in wanted if x not in held]
        if lost:
            problems.append(f"{member}: {len(lost)} acknowledged appends missing: "
                            f"{_some(lost)}")
    return problems


def duplicates(final_reads: dict[str, Any],
               id_of: Callable[[Any], Hashable] = lambda x: x) -> list[str]:
    problems = []
    for member, read in sorted(final_reads.items()):
        if not isinstance(read, list | tuple):
            continue
        twice = [x for x, n in Counter(id_of(x) for x in read).items() if n > 1]
        if twice:
            problems.append(f"{member}: {len(twice)} elements appear more than once: "
                            f"{_some(twice)}")
    return problems


def unexpected(final_reads: dict[str, Any], possible: set[Any]) -> list[str]:
    problems = []
    for member, read in sorted(final_reads.items()):
        if not isinstance(read, list | tuple):
            continue
        made_up = [x for x in read if x not in possible]
        if made_up:
            problems.append(f"{member}: {len(made_up)} elements no client appended: "
                            f"{_some(made_up)}")
    return problems


def converged(final_states: dict[str, Any]) -> list[str]:
    """The members whose state differs from the most common one (for lists: from which
    index)."""
    if not final_states:
        return []
    groups = Counter(repr(s) for s in final_states.values())
    majority_repr, _ = groups.most_common(1)[0]
    reference = next(s for s in final_states.values() if repr(s) == majority_repr)
    problems = []
    for member, state in sorted(final_states.items()):
        if repr(state) == majority_repr:
            continue
        where = ""
        if isinstance(state, list | tuple) and isinstance(reference, list | tuple):
            where = f" from index {_first_difference(state, reference)}" \
                    f" (length {len(state)} vs {len(reference)})"
        problems.append(f"{member}: its state differs from the majority's{where}")
    return problems


def _first_difference(a: Any, b: Any) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))


def _some(items: list[Any]) -> str:
    shown = ", ".join(repr(x) for x in items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")
