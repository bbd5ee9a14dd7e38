"""The checks of the members' final reads: lost acknowledged appends, duplicates,
fabricated elements, convergence."""

from __future__ import annotations

from demos.jepsen.checks import converged, duplicates, lost_acknowledged, unexpected


def test_no_acknowledged_append_lost_when_every_member_holds_them_all() -> None:
    reads = {"n1": ["a", "b", "c"], "n2": ["a", "b", "c", "d"]}
    assert lost_acknowledged(["a", "b", "c"], reads) == []
    assert lost_acknowledged([], {"n1": []}) == []


def test_a_lost_acknowledged_append_is_reported_for_each_member_missing_it() -> None:
    reads = {"n2": ["a", "c"], "n1": ["a", "b", "c"], "n3": ["c"]}
    problems = lost_acknowledged(["a", "b", "c", "b"], reads)
    assert len(problems) == 2
    assert problems[0].startswith("n2: 1 acknowledged") and "'b'" in problems[0]
    assert problems[1].startswith("n3: 2 acknowledged") and "'a'" in problems[1]


def test_many_lost_appends_are_counted_not_all_listed() -> None:
    (problem,) = lost_acknowledged([f"r{i}" for i in range(20)], {"n1": []})
    assert problem.startswith("n1: 20 acknowledged") and "and 15 more" in problem


def test_a_member_with_no_final_read_has_lost_them() -> None:
    (problem,) = lost_acknowledged(["a"], {"n1": ["a"], "n2": "timeout"})
    assert problem.startswith("n2: no final read")


def test_duplicates_are_found_per_member_by_request_id() -> None:
    assert duplicates({"n1": ["a", "b"], "n2": []}) == []
    (problem,) = duplicates({"n1": ["a", "b"], "n2": ["a", "b", "a"]})
    assert problem.startswith("n2: 1 elements appear more than once") and "'a'" in problem
    entries = {"n1": [{"request_id": "r1", "at": 1}, {"request_id": "r1", "at": 2}]}
    (problem,) = duplicates(entries, id_of=lambda e: e["request_id"])
    assert "'r1'" in problem


def test_elements_no_client_appended_are_unexpected() -> None:
    assert unexpected({"n1": ["a", "b"]}, {"a", "b", "c"}) == []
    (problem,) = unexpected({"n1": ["a", "zz"], "n2": ["a"]}, {"a", "b"})
    assert problem.startswith("n1: 1 elements no client appended") and "'zz'" in problem


def test_converged_members_have_identical_states() -> None:
    assert converged({}) == []
    assert converged({"n1": [1, 2], "n2": [1, 2], "n3": [1, 2]}) == []
    assert converged({"n1": {"k": 1}, "n2": {"k": 1}}) == []


def test_a_member_that_differs_from_the_majority_is_named_with_the_first_difference() -> None:
    states = {"n1": ["a", "b", "c"], "n2": ["a", "x", "c"], "n3": ["a", "b", "c"]}
    (problem,) = converged(states)
    assert problem.startswith("n2:") and "from index 1" in problem and "length 3 vs 3" in problem
    (problem,) = converged({"n1": ["a", "b"], "n2": ["a", "b", "c"], "n3": ["a", "b", "c"]})
    assert problem.startswith("n1:") and "from index 2" in problem and "length 2 vs 3" in problem


def test_members_with_other_kinds_of_state_are_reported_without_an_index() -> None:
    (problem,) = converged({"n1": {"k": 1}, "n2": {"k": 2}, "n3": {"k": 1}})
    assert problem.startswith("n2:") and "index" not in problem
