"""The linearizability checker on hand-written histories (times in ms), linearizable and
not, on generated ones, and against a brute-force oracle on small random ones."""

from __future__ import annotations

import random
import time
import tracemalloc
from itertools import combinations
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from demos.jepsen import bench_checker as bench
from demos.jepsen import linearizability as lin
from demos.jepsen import wgl
from demos.jepsen.history import Op
from demos.jepsen.linearizability import INF, Result, check
from demos.jepsen.models import AppendList, Model, Register

MS = 1_000_000


def op(ops: list[Op], process: int, f: str, value: Any = None, output: Any = None, *,
       start: float, end: float | None = None, result: str = "ok", key: Any = "k") -> Op:
    """Append an op to `ops` (times in ms) and return it."""
    made = Op(len(ops), process, f, key, value, result, output, int(start * MS),
              None if result == "info" else int((end if end is not None else start) * MS),
              0.0, None)
    ops.append(made)
    return made


def verdict(ops: list[Op], model: Model | None = None) -> str:
    return check(ops, model or Register(), budget_s=None).verdict


# -- registers --------------------------------------------------------------------------------


def test_an_empty_history_and_a_sequential_one_are_valid() -> None:
    assert verdict([]) == "valid"
    ops: list[Op] = []
    op(ops, 1, "write", 1, start=0, end=1)
    op(ops, 2, "read", output=1, start=2, end=3)
    op(ops, 1, "write", 2, start=4, end=5)
    op(ops, 2, "read", output=2, start=6, end=7)
    result = check(ops, Register())
    assert result.verdict == "valid" and result.valid is True and result.keys == {"k": "valid"}
    assert result.counterexample == [] and "linearizable" in result.explain()


@pytest.mark.parametrize("seen", [None, 1])
def test_a_read_concurrent_with_a_write_may_see_either_value(seen: int | None) -> None:
    ops: list[Op] = []
    op(ops, 1, "write", 1, start=0, end=10)
    op(ops, 2, "read", output=seen, start=2, end=8)
    assert verdict(ops) == "valid"


def test_a_stale_read_after_a_write_completed_is_invalid_and_shrinks_to_the_pair() -> None:
    ops: list[Op] = []
    write = op(ops, 1, "write", 1, start=0, end=10)
    op(ops, 3, "read", output=None, start=1, end=2)  # concurrent: fine
    stale = op(ops, 2, "read", output=None, start=20, end=30)
    op(ops, 4, "read", output=1, start=31, end=32)
    result = check(ops, Register())
    assert result.verdict == "invalid" and result.valid is False
    assert result.counterexample == [write, stale] and result.minimal
    text = result.explain()
    assert "key 'k' is not linearizable for the register" in text
    assert "No order of these 2 operations is legal" in text
    assert "20.000" in text and "30.000" in text  # times relative to the window's start
    seen = op(ops, 3, "read", output=1, start=11, end=12)  # another pair that shows it
    result = check(ops, Register())
    assert result.counterexample in ([write, stale], [seen, stale])


def test_a_stale_read_of_an_older_value_keeps_both_writes() -> None:
    ops: list[Op] = []
    old = op(ops, 1, "write", 0, start=0, end=1)
    new = op(ops, 1, "write", 1, start=2, end=3)
    stale = op(ops, 2, "read", output=0, start=4, end=5)
    assert check(ops, Register()).counterexample == [old, new, stale]


def test_a_read_of_a_value_nobody_wrote_is_invalid_on_its_own() -> None:
    ops: list[Op] = []
    op(ops, 1, "write", 1, start=0, end=1)
    op(ops, 2, "read", output=1, start=2, end=3)
    ghost = op(ops, 2, "read", output=99, start=4, end=5)
    op(ops, 1, "write", 2, start=6, end=7)
    result = check(ops, Register())
    assert result.counterexample == [ghost]


def test_an_info_write_may_take_effect_long_after_its_invoke() -> None:
    ops: list[Op] = []
    op(ops, 1, "write", 1, start=0, result="info")
    op(ops, 2, "read", output=None, start=10, end=20)
    op(ops, 2, "read", output=None, start=30, end=40)
    op(ops, 3, "read", output=1, start=100, end=110)
    op(ops, 3, "read", output=1, start=120, end=130)
    assert verdict(ops) == "valid"


def test_an_info_write_may_never_take_effect() -> None:
    ops: list[Op] = []
    op(ops, 1, "write", 5, start=0, result="info")
    op(ops, 1, "cas", (0, 2), start=1, result="info")  # could never apply: never does
    for t in range(10, 100, 10):
        op(ops, 2, "read", output=None, start=t, end=t + 5)
    assert verdict(ops) == "valid"


def test_an_info_write_seen_then_an_older_value_again_is_invalid() -> None:
    ops: list[Op] = []
    op(ops, 1, "write", 0, start=0, end=1)
    pending = op(ops, 2, "write", 1, start=2, result="info")
    new = op(ops, 3, "read", output=1, start=3, end=4)
    old_again = op(ops, 3, "read", output=0, start=5, end=6)
    result = check(ops, Register())
    assert result.verdict == "invalid"
    assert new in result.counterexample and old_again in result.counterexample
    assert pending in result.counterexample + result.pending


def test_a_failed_cas_is_ignored_and_never_takes_effect() -> None:
    ops: list[Op] = []
    op(ops, 1, "write", 0, start=0, end=1)
    op(ops, 2, "cas", (0, 1), "no", start=2, end=3, result="fail")
    op(ops, 3, "read", output=0, start=4, end=5)
    assert verdict(ops) == "valid"
    op(ops, 3, "read", output=1, start=6, end=7)  # the failed cas's value: nobody wrote it
    assert verdict(ops) == "invalid"


def test_a_chain_of_ok_cas_is_valid_and_a_cas_from_the_wrong_value_is_not() -> None:
    ops: list[Op] = []
    op(ops, 1, "write", 0, start=0, end=1)
    op(ops, 2, "cas", (0, 1), start=2, end=3)
    op(ops, 3, "cas", (1, 2), start=2.5, end=4)  # concurrent with the first: after it
    op(ops, 1, "cas", (2, 3), start=5, end=6)
    op(ops, 2, "read", output=3, start=7, end=8)
    assert verdict(ops) == "valid"
    wrong = op(ops, 3, "cas", (0, 9), start=9, end=10)
    result = check(ops, Register())
    assert result.verdict == "invalid" and wrong in result.counterexample


def test_two_writes_seen_in_opposite_orders_by_two_readers_is_invalid() -> None:
    ops: list[Op] = []
    op(ops, 1, "write", 1, start=0, end=100)
    op(ops, 2, "write", 2, start=0, end=100)
    reads = [op(ops, 3, "read", output=1, start=10, end=20),
             op(ops, 3, "read", output=2, start=30, end=40),
             op(ops, 4, "read", output=2, start=10, end=20),
             op(ops, 4, "read", output=1, start=30, end=40)]
    result = check(ops, Register())
    assert result.verdict == "invalid"
    assert sorted(result.counterexample, key=lambda o: o.id) == reads
    assert len(result.pending) == 2  # the writes, still running when the window ends


def test_a_split_brain_where_each_side_reads_back_only_its_own_write_is_invalid() -> None:
    ops: list[Op] = []
    writes = [op(ops, 1, "write", 1, start=0, end=10), op(ops, 2, "write", 2, start=0, end=10)]
    reads = [op(ops, 1, "read", output=1, start=20, end=30),
             op(ops, 2, "read", output=2, start=20, end=30)]
    result = check(ops, Register())
    assert result.verdict == "invalid"
    assert sorted(result.counterexample, key=lambda o: o.id) == writes + reads


# -- append-only lists ------------------------------------------------------------------------


def _appends(ops: list[Op], items: str, t0: float = 0) -> list[Op]:
    return [op(ops, i, "append", x, start=t0 + 2 * i, end=t0 + 2 * i + 1, key="audit")
            for i, x in enumerate(items)]


def test_an_append_only_list_read_in_order_is_valid() -> None:
    ops: list[Op] = []
    _appends(ops, "abc")
    op(ops, 9, "read", output=["a", "b", "c"], start=10, end=11, key="audit")
    op(ops, 8, "append", "d", start=12, end=20, key="audit")
    op(ops, 9, "read", output=("a", "b", "c"), start=13, end=14, key="audit")  # concurrent
    op(ops, 9, "read", output=["a", "b", "c", "d"], start=21, end=22, key="audit")
    assert verdict(ops, AppendList()) == "valid"


def test_a_read_that_skips_an_acknowledged_append_is_invalid() -> None:
    ops: list[Op] = []
    _, b, _ = _appends(ops, "abc")
    skip = op(ops, 9, "read", output=["a", "c"], start=10, end=11, key="audit")
    result = check(ops, AppendList())
    assert result.verdict == "invalid" and result.counterexample == [b, skip]
    assert result.counterexample_key == "audit"


def test_reads_that_reorder_the_list_are_invalid() -> None:
    ops: list[Op] = []
    op(ops, 1, "append", "a", start=0, end=5, key="audit")
    op(ops, 2, "append", "b", start=0, end=5, key="audit")
    alone = [op(ops, 8, "read", output=["a", "b"], start=10, end=11, key="audit")]
    assert verdict(ops, AppendList()) == "valid"
    second = op(ops, 9, "read", output=["b", "a"], start=12, end=13, key="audit")
    result = check(ops, AppendList())
    assert result.verdict == "invalid"
    assert result.counterexample == [alone[0], second]
    ops[1] = Op(*[getattr(ops[1], f) for f in Op.__slots__][:7], 6 * MS, 7 * MS, 0.0, None)
    assert check(ops, AppendList()).counterexample == [ops[0], ops[1], second]  # a, then b


def test_an_info_append_may_show_up_later_or_never() -> None:
    ops: list[Op] = []
    _appends(ops, "ab")
    op(ops, 7, "append", "x", start=5, result="info", key="audit")
    op(ops, 7, "append", "never", start=5, result="info", key="audit")
    op(ops, 9, "read", output=["a", "b"], start=10, end=11, key="audit")
    op(ops, 8, "append", "c", start=12, end=13, key="audit")
    op(ops, 9, "read", output=["a", "b", "c", "x"], start=50, end=51, key="audit")
    assert verdict(ops, AppendList()) == "valid"


def test_a_read_holding_an_element_twice_is_invalid() -> None:
    ops: list[Op] = []
    _appends(ops, "ab")
    twice = op(ops, 9, "read", output=["a", "b", "a"], start=10, end=11, key="audit")
    result = check(ops, AppendList())
    assert result.verdict == "invalid" and result.counterexample == [twice]


# -- keys, budget, contract -------------------------------------------------------------------


def test_each_key_is_checked_alone_and_an_invalid_key_is_reported_by_its_key() -> None:
    ops: list[Op] = []
    for key in ("x", "y", "z"):  # interleaved in time: valid key by key, not as one register
        op(ops, 1, "write", key, start=0, end=1, key=key)
    for key in ("x", "y", "z"):
        op(ops, 2, "read", output=key, start=2, end=3, key=key)
    assert check(ops, Register()).keys == {"x": "valid", "y": "valid", "z": "valid"}
    assert verdict(ops, Register()) == "valid"
    assert check(ops, Register(), key_fn=lambda o: "one").verdict == "invalid"
    bad = op(ops, 3, "read", output="x", start=4, end=5, key="y")
    result = check(ops, Register())
    assert result.keys == {"x": "valid", "y": "invalid", "z": "valid"}
    assert result.counterexample_key == "y" and bad in result.counterexample
    assert all(o.key == "y" for o in result.counterexample)
    assert "key 'y'" in result.explain()


class Blind(Register):
    """A register that cannot list its states: the search cannot see at once that no
    write gave a read its value."""

    def states_after(self, done: list[Op], maybe: list[Op]) -> None:
        return None

    def specialise(self, must: list[Op], may: list[Op]) -> Register:
        return self


def test_a_search_that_runs_out_of_budget_is_unknown() -> None:
    ops: list[Op] = []
    for i in range(20):  # writes and cas that may each take effect any time, or never
        op(ops, i, "write", i, start=0, result="info")
        op(ops, 100 + i, "cas", (i, (i + 1) % 20), start=0, result="info")
    op(ops, 99, "read", output=-1, start=100, end=101)  # so the search must try them all
    started = time.monotonic()
    result = check(ops, Blind(), budget_s=0.05)
    assert time.monotonic() - started < 2
    assert result.verdict == "unknown" and result.valid == "unknown"
    assert result.keys == {"k": "unknown"} and result.counterexample == []
    assert "unknown" in result.explain()


def test_fail_ops_and_info_reads_are_dropped_and_bad_results_refused() -> None:
    ops: list[Op] = []
    op(ops, 1, "read", output=42, start=0, end=1, result="fail")
    op(ops, 1, "read", output=42, start=2, result="info")
    assert verdict(ops) == "valid"
    with pytest.raises(ValueError):
        check([Op(0, 1, "read", "k", None, "lost", None, 0, 1, 0.0, None)], Register())
    with pytest.raises(ValueError):
        check([Op(0, 1, "read", "k", None, "ok", None, 0, None, 0.0, None)], Register())


# -- generated histories ----------------------------------------------------------------------


def register_history(rng: random.Random, n: int) -> list[Op]:
    """A real register's history (linearizable by construction): the benchmark's
    generator, with 5 values so that reads often see a value written more than once."""
    return bench.register_history(rng, n, values=5)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(0, 2**32), st.integers(5, 150))
def test_a_real_register_is_valid_and_one_corrupted_read_makes_it_invalid(seed: int,
                                                                         n: int) -> None:
    rng = random.Random(seed)
    ops = register_history(rng, n)
    assert check(ops, Register(), budget_s=None).verdict == "valid"
    reads = [i for i, o in enumerate(ops) if o.f == "read" and o.result == "ok"]
    if not reads:
        return
    i = rng.choice(reads)
    bad = Op(**{**{f: getattr(ops[i], f) for f in Op.__slots__}, "output": -1})
    ops[i] = bad
    result = check(ops, Register(), budget_s=None)
    assert result.verdict == "invalid" and bad in result.counterexample
    assert check(result.counterexample, Register(), budget_s=None).verdict == "invalid"


def test_two_thousand_ops_on_one_key_from_ten_processes_check_quickly() -> None:
    ops = register_history(random.Random(7), 2000)
    started = time.monotonic()
    assert check(ops, Register()).verdict == "valid"
    assert time.monotonic() - started < 5  # typically 0.1 s


# -- against a brute-force oracle -------------------------------------------------------------


def brute_force(ops: list[Op], model: Model) -> bool:
    """Is some subset of the info ops, with every ok op, legal in some order that respects
    real time? (fail ops and info reads dropped; every order tried, depth first.)"""
    must = [o for o in ops if o.result == "ok"]
    may = [o for o in ops if o.result == "info" and not model.is_read(o)]

    def end(o: Op) -> float:
        return INF if o.complete_ns is None else o.complete_ns

    def order_exists(state: Any, left: list[Op]) -> bool:
        if not left:
            return True
        for o in left:
            rest = [x for x in left if x is not o]
            if any(end(x) < o.invoke_ns for x in rest):
                continue  # another op left must come before o
            legal, after = model.step(state, o)
            if legal and order_exists(after, rest):
                return True
        return False

    return any(order_exists(model.init(), must + list(chosen))
               for k in range(len(may) + 1) for chosen in combinations(may, k))


def small_history(draw: Any, model: str) -> list[Op]:
    ops: list[Op] = []
    for i in range(draw(st.integers(0, 6))):
        start = draw(st.integers(0, 12))
        end = start + draw(st.integers(0, 6))
        result = draw(st.sampled_from(["ok", "ok", "ok", "info", "fail"]))
        if model == "register":
            f = draw(st.sampled_from(["read", "write", "cas"]))
            value = (None if f == "read" else draw(st.integers(0, 2)) if f == "write"
                     else (draw(st.integers(0, 2)), draw(st.integers(0, 2))))
            output = draw(st.sampled_from([None, 0, 1, 2])) if f == "read" else None
        else:
            f = draw(st.sampled_from(["read", "append", "append"]))
            value = None if f == "read" else draw(st.sampled_from("abc"))
            output = draw(st.lists(st.sampled_from("abc"), max_size=3)) if f == "read" else None
        ops.append(Op(i, i, f, "k", value, result, output, start,
                      None if result == "info" else end, 0.0, None))
    return ops


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.data(), st.sampled_from(["register", "list"]))
def test_the_checker_agrees_with_brute_force_on_small_histories(data: Any, kind: str) -> None:
    ops = small_history(data.draw, kind)
    model: Model = Register() if kind == "register" else AppendList()
    result: Result = check(ops, model, budget_s=None)
    assert result.verdict == ("valid" if brute_force(ops, model) else "invalid")
    if result.verdict == "invalid":
        assert set(result.counterexample) <= set(ops) and result.minimal
        assert not brute_force(result.counterexample, model)


# -- limits: keys side by side, memory, shrinking ---------------------------------------------


def hard_key(ops: list[Op], key: Any) -> None:
    """Ops on `key` whose search (with the Blind model) runs for a long time: writes and cas
    that may each take effect any time, or never, and a read no order allows."""
    for i in range(20):
        op(ops, i, "write", i, start=0, result="info", key=key)
        op(ops, 100 + i, "cas", (i, (i + 1) % 20), start=0, result="info", key=key)
    op(ops, 99, "read", output=-1, start=100, end=101, key=key)


def stale_key(ops: list[Op], key: Any) -> list[Op]:
    """A stale read after a write completed, on `key`: invalid, found at once."""
    return [op(ops, 1, "write", 1, start=0, end=10, key=key),
            op(ops, 2, "read", output=None, start=20, end=30, key=key)]


def test_first_invalid_stops_at_an_invalid_key_while_a_hard_one_runs() -> None:
    ops: list[Op] = []
    hard_key(ops, "hard")  # first: one by one, it is searched first, to its budget
    bad = stale_key(ops, "bad")
    started = time.monotonic()
    slow = check(ops, Blind(), budget_s=1.0)
    assert time.monotonic() - started >= 1.0
    assert slow.keys == {"hard": "unknown", "bad": "invalid"} and slow.why == {"hard": "time"}
    started = time.monotonic()
    fast = check(ops, Blind(), budget_s=1.0, first_invalid=True)
    assert time.monotonic() - started < 0.5
    assert fast.verdict == "invalid" and fast.keys == {"hard": "unchecked", "bad": "invalid"}
    assert fast.counterexample_key == "bad" and fast.counterexample == bad


def test_side_by_side_gives_every_key_its_verdict_within_its_budget() -> None:
    ops = [replace_key(o, f"k{k}") for k in range(5)
           for o in register_history(random.Random(k), 60)]
    hard_key(ops, "hard")
    one_by_one = check(ops, Blind(), budget_s=0.3)
    side_by_side = check(ops, Blind(), budget_s=0.3, first_invalid=True)
    expected = {**{f"k{k}": "valid" for k in range(5)}, "hard": "unknown"}
    assert one_by_one.keys == side_by_side.keys == expected
    assert side_by_side.why == {"hard": "time"} and side_by_side.elapsed_s < 2
    assert "ran out of its 0.3 s budget" in side_by_side.explain()


def replace_key(o: Op, key: Any) -> Op:
    return Op(**{**{f: getattr(o, f) for f in Op.__slots__}, "key": key})


def test_a_cache_past_its_memory_bound_gives_unknown_not_an_exhausted_machine() -> None:
    rng = random.Random(6)
    ops = bench.corrupt_read(rng, bench.register_history(rng, 1000, info=0.2, processes=20))
    started = time.monotonic()
    result = check(ops, Register(), budget_s=60, cache_mb=0.25)
    assert time.monotonic() - started < 30
    assert result.verdict == "unknown" and result.why == {"k": "memory"}
    assert "ran out of the memory allowed its cache" in result.explain()


def test_a_read_no_write_explains_fails_at_once_however_hard_the_rest() -> None:
    ops: list[Op] = []
    hard_key(ops, "k")  # with a register that lists its states, this read is hopeless
    started = time.monotonic()
    result = check(ops, Register(), budget_s=10)
    assert time.monotonic() - started < 1
    assert result.verdict == "invalid" and [o.output for o in result.counterexample] == [-1]


def test_shrinking_is_bounded_by_a_ratio_of_the_search_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(11)
    ops = register_history(rng, 150)
    reads = [i for i, o in enumerate(ops) if o.f == "read" and o.result == "ok"]
    ops[reads[len(reads) // 2]] = Op(**{**{f: getattr(ops[reads[len(reads) // 2]], f)
                                           for f in Op.__slots__}, "output": -1})
    full = check(ops, Register(), shrink_budget_s=None, shrink_ratio=None)
    assert full.verdict == "invalid" and full.minimal
    monkeypatch.setattr(lin, "SHRINK_FLOOR_S", 0.0)
    cut_short = check(ops, Register(), shrink_budget_s=None, shrink_ratio=0.0)
    assert cut_short.verdict == "invalid" and not cut_short.minimal
    assert cut_short.shrink_s < 1.0
    assert len(cut_short.counterexample) >= len(full.counterexample)
    assert check(cut_short.counterexample, Register()).verdict == "invalid"
    assert "may not be minimal" in cut_short.explain()


@pytest.mark.parametrize("limit", ["budget_s", "shrink_budget_s", "cache_mb", "shrink_ratio"])
def test_limits_must_be_non_negative_numbers(limit: str) -> None:
    for bad in (-1, "1", float("nan")):
        with pytest.raises(ValueError, match=limit):
            check([], Register(), **{limit: bad})  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(8))
def test_the_benchmarks_stale_read_is_surely_invalid(seed: int) -> None:
    rng = random.Random(seed)
    ops = bench.register_history(rng, 120, info=0.1)
    bad = bench.corrupt_read(rng, ops)
    changed = [b for o, b in zip(ops, bad, strict=True) if o != b]
    assert len(changed) == 1 and changed[0].f == "read"
    assert check(ops, Register(), budget_s=None).verdict == "valid"
    result = check(bad, Register(), budget_s=None)
    assert result.verdict == "invalid" and changed[0] in result.counterexample


def test_the_cache_estimate_is_near_what_the_cache_really_holds() -> None:
    rng = random.Random(6)
    ops = bench.corrupt_read(rng, bench.register_history(rng, 1000, info=0.2, processes=20))
    items = [it for it in (wgl.prepare(o, Register()) for o in ops) if it is not None]
    memory = wgl.Memory(None)
    tracemalloc.start()
    try:
        search = wgl.Search(items, Register(), memory)
        before = tracemalloc.get_traced_memory()[0]
        assert search.advance(time.monotonic() + 1.0) is None  # still searching
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert memory.used == search.bytes > 100_000
    assert 0.5 < held / memory.used < 2, (held, memory.used)
    search.release()
    assert memory.used == 0 and search.failed == {}
