"""The history recorder: what an op records, info for the unfinished, several client
threads at once, and the JSON-lines round trip."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest

from demos.jepsen.history import History, Op, counts, freeze, load_ops, save_ops


def test_an_op_records_both_ends_with_times_relative_to_the_start() -> None:
    h = History()
    before = time.time()
    op_id = h.invoke(3, "write", "k", 7)
    h.complete(op_id, "ok")
    read_id = h.invoke(4, "read", "k", None)
    h.complete(read_id, "ok", 7)
    after = time.time()
    write, read = h.ops()
    assert (write.id, write.process, write.f, write.key, write.value) == (0, 3, "write", "k", 7)
    assert (write.result, write.output) == ("ok", None)
    assert (read.id, read.f, read.output) == (1, "read", 7)
    assert 0 <= write.invoke_ns <= write.complete_ns <= read.invoke_ns <= read.complete_ns
    assert write.complete_ns < 10**9  # relative to the history's start, not the epoch
    assert before <= write.invoke_wall <= write.complete_wall <= after


def test_an_op_never_completed_is_info_with_no_completion() -> None:
    h = History()
    h.invoke(1, "write", "k", 1)
    (op,) = h.ops()
    assert (op.result, op.output, op.complete_ns, op.complete_wall) == ("info", None, None, None)


def test_an_info_completion_keeps_its_output_and_wall_time_but_no_completion_time() -> None:
    h = History()
    h.complete(h.invoke(1, "cas", "k", (1, 2)), "info", "timeout")
    (op,) = h.ops()
    assert (op.result, op.output, op.complete_ns) == ("info", "timeout", None)
    assert op.complete_wall is not None


def test_complete_refuses_an_unknown_result_a_second_completion_and_an_unknown_id() -> None:
    h = History()
    op_id = h.invoke(1, "read", "k", None)
    with pytest.raises(ValueError):
        h.complete(op_id, "maybe")
    h.complete(op_id, "fail")
    with pytest.raises(ValueError):
        h.complete(op_id, "ok")
    with pytest.raises(KeyError):
        h.complete(op_id + 1, "ok")
    assert h.ops()[0].result == "fail"


def test_values_are_frozen_so_ops_are_hashable_and_lists_equal_tuples() -> None:
    assert freeze([1, [2, (3, [4])], "x"]) == (1, (2, (3, (4,))), "x")
    h = History()
    h.complete(h.invoke(1, "read", ["k", 1], None), "ok", [1, [2, 3]])
    (op,) = h.ops()
    assert op.key == ("k", 1) and op.output == (1, (2, 3))
    built = Op(0, 1, "read", ["k", 1], None, "ok", [1, [2, 3]], op.invoke_ns, op.complete_ns,
               op.invoke_wall, op.complete_wall)
    assert built == op and hash(built) == hash(op)


def test_counts_tallies_every_result() -> None:
    h = History()
    h.complete(h.invoke(1, "write", "k", 1), "ok")
    h.complete(h.invoke(2, "write", "k", 2), "fail")
    h.complete(h.invoke(3, "write", "k", 3), "ok")
    h.invoke(4, "write", "k", 4)
    assert counts(h.ops()) == {"ok": 2, "fail": 1, "info": 1}
    assert counts([]) == {"ok": 0, "fail": 0, "info": 0}


def test_ten_client_threads_record_every_op_in_invoke_order() -> None:
    h = History()
    per_thread = 200
    start = threading.Barrier(10)

    def client(process: int) -> None:
        start.wait()
        for i in range(per_thread):
            op_id = h.invoke(process, "write", process % 3, i)
            h.complete(op_id, "ok" if i % 5 else "info", i)

    threads = [threading.Thread(target=client, args=(p,)) for p in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ops = h.ops()
    assert [op.id for op in ops] == list(range(10 * per_thread))
    assert [op.invoke_ns for op in ops] == sorted(op.invoke_ns for op in ops)
    for process in range(10):
        mine = [op for op in ops if op.process == process]
        assert [op.value for op in mine] == list(range(per_thread))
        for a, b in itertools.pairwise(mine):  # one client: one op at a time
            assert a.complete_ns is None or a.complete_ns <= b.invoke_ns
    assert counts(ops) == {"ok": 8 * 2 * 100, "fail": 0, "info": 2 * 2 * 100}


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    h = History()
    h.complete(h.invoke(1, "write", "k", [1, [2]]), "ok")
    h.complete(h.invoke(2, "cas", ("k", 2), (1, 2)), "fail", "mismatch")
    h.complete(h.invoke(3, "read", "k", None), "ok", ["a", "b"])
    h.invoke(4, "append", "audit", "r1")
    path = tmp_path / "out" / "history.jsonl"
    h.save(path)
    loaded = load_ops(path)
    assert loaded == h.ops()
    assert loaded[0].value == (1, (2,)) and loaded[2].output == ("a", "b")
    assert loaded[3].result == "info" and loaded[3].complete_ns is None
    assert len(path.read_text().splitlines()) == 4
    path.write_text(path.read_text() + "\n")
    save_ops(load_ops(path), tmp_path / "again.jsonl")
    assert load_ops(tmp_path / "again.jsonl") == loaded
