"""Shrinking an invalid key's history to a small counterexample (the steps are described
in `linearizability`'s docstring), each step decided by the search itself (`wgl`)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from .history import Op
from .models import Model
from .wgl import INF, Item, Limits, prepare, search, specialise

FIRST_CUT = 4  # ok ops kept from the window's end in the first cut tried
BACKDROP_CANDIDATES = 32  # relaxed ops nearest the kept ones tried as their backdrop
PENDING_SHOWN = 8


def counterexample(items: list[Item], dead_end: tuple[float, tuple[Op, ...]],
                   model: Model, limits: Limits) -> tuple[list[Op], list[Op], bool, bool]:
    """(the counterexample's ops, other ops pending in its window, shrunk to 1-minimal?,
    window cut?) for a key whose search could not get past time `dead_end[0]` with its
    model learnt from the ops `dead_end[1]`. Windows are tried from the shortest failing
    tail on, up to the whole failing prefix: the first whose shrunk ops fail on their own,
    from the initial state, wins (the whole prefix's always do)."""
    for window, inits in _windows(_failing_prefix(items, dead_end, model, limits), model,
                                  limits):
        # The states a cut tail starts from are the model's as specialised to the tail:
        # keep the ops it learnt from, so that every search below reads them the same way.
        anchors = () if inits is None else specialise(model, window).anchors
        pinned = [i for i, it in enumerate(window) if it.op in anchors]
        core, minimal = _shrink(window, pinned, inits, model, limits)
        kept = sorted(core + _backdrop(window, core, inits, model, limits))
        found = [window[i].op for i in kept]
        alone = [it for it in (prepare(op, model) for op in found) if it is not None]
        if inits is None or search(alone, model, limits) is False:
            break
    last = max((window[i].end for i in kept if window[i].end != INF), default=INF)
    pending = [it.op for i, it in enumerate(window)
               if i not in kept and it.end == INF and it.start <= last]
    return _in_order(found), _in_order(pending)[-PENDING_SHOWN:], minimal, inits is not None


def _in_order(ops: list[Op]) -> list[Op]:
    return sorted(ops, key=lambda op: (op.invoke_ns, op.id))


def _truncate(items: list[Item], t: float, model: Model) -> list[Item]:
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


def _failing_prefix(items: list[Item], dead_end: tuple[float, tuple[Op, ...]],
                    model: Model, limits: Limits) -> list[Item]:
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
        if search(_truncate(items, ends[mid], model), model, limits) is False:
            hi = mid
        else:
            lo = mid + 1
    return _truncate(items, ends[hi], model)


def _windows(window: list[Item], model: Model,
             limits: Limits) -> Iterator[tuple[list[Item], list[Any] | None]]:
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
        tail_model = specialise(model, tail)
        states = tail_model.states_after(
            [it.op for it in window if it.end < cut_at],
            [it.op for it in window if it.start < cut_at <= it.end
             and not tail_model.inert(it.op)])
        if states is None:
            break
        inits = list(dict.fromkeys(states))  # none: the ops cut away contradict the tail
        if inits and search(tail, model, limits, inits) is False:
            yield tail, inits
    yield window, None


def _relaxed_search(window: list[Item], keep: Iterable[int], inits: list[Any] | None,
                    model: Model, limits: Limits,
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
    return search(items, model, limits, inits)


def _shrink(window: list[Item], pinned: list[int], inits: list[Any] | None, model: Model,
            limits: Limits) -> tuple[list[int], bool]:
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


def _backdrop(window: list[Item], core: list[int], inits: list[Any] | None, model: Model,
              limits: Limits) -> list[int]:
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
