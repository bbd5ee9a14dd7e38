"""actors/_statem_actions: the pure parser of gen_statem results and actions.

The fuzz invariant (h11's): any term parses, or raises BadReturn with an OTP error term,
and never anything else. Plus the shapes OTP documents."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from actors._statem_actions import (
    KEEP,
    Actions,
    BadReturn,
    Result,
    parse_actions,
    parse_init,
    parse_result,
)

ATOMS = ["next_state", "keep_state", "keep_state_and_data", "repeat_state",
         "repeat_state_and_data", "stop", "stop_and_reply", "reply", "postpone",
         "hibernate", "next_event", "timeout", "state_timeout", "update", "cancel",
         "infinity", "abs", "internal", "cast", "info", "call", "enter", "ok"]

terms = st.recursive(
    st.sampled_from(ATOMS) | st.integers(-5, 2**64) | st.booleans() | st.none(),
    lambda inner: st.lists(inner, max_size=4) | st.lists(inner, max_size=5).map(tuple),
    max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(terms, st.booleans())
def test_any_result_parses_or_is_a_bad_return(term: Any, enter: bool) -> None:
    try:
        result = parse_result(term, enter)
    except BadReturn as bad:
        assert bad.term[0] in ("bad_return_from_state_function",
                               "bad_state_enter_return_from_state_function")
        assert bad.term[1] is term
        return
    assert isinstance(result, Result) and result.kind in ("next", "repeat", "stop")


@settings(max_examples=400, deadline=None)
@given(terms, st.booleans())
def test_any_action_list_parses_with_at_most_one_bad_action(term: Any, enter: bool) -> None:
    actions, bad = parse_actions(term, enter)
    assert isinstance(actions, Actions)
    if bad is not None:
        assert bad[0] in ("bad_action_from_state_function",
                          "bad_state_enter_action_from_state_function")
    if enter:
        assert not actions.postpone and not actions.next_events


def test_result_shapes() -> None:
    assert parse_result(("next_state", "s", 1), False) == Result("next", "s", 1, [])
    assert parse_result(("keep_state", 2, ["postpone"]), False) == \
        Result("next", KEEP, 2, ["postpone"])
    assert parse_result("keep_state_and_data", False) == Result("next")
    assert parse_result(("repeat_state_and_data", []), False).kind == "repeat"
    assert parse_result("stop", False) == Result("stop", reason="normal")
    stop = parse_result(("stop_and_reply", "r", [("reply", (1, 2), "x")], 9), False)
    assert (stop.kind, stop.reason, stop.data, stop.replies) == \
        ("stop", "r", 9, [("reply", (1, 2), "x")])
    assert parse_init(("ok", "s", "d", [("next_event", "internal", 1)])).actions == \
        [("next_event", "internal", 1)]


def test_action_shapes() -> None:
    acts, bad = parse_actions([("reply", ("pid", "alias"), 1), "postpone", 5,
                               (("timeout", "n"), 10, "c"), ("state_timeout", "cancel"),
                               ("timeout", "update", "u"), ("next_event", "cast", 1),
                               "hibernate"], False)
    assert bad is None
    assert acts.replies == [(("pid", "alias"), 1)] and acts.postpone
    assert acts.next_events == [("cast", 1)]
    assert [(t.type, t.time, t.content) for t in acts.timeouts] == [
        ("timeout", 5, 5), (("timeout", "n"), 10, "c"), ("state_timeout", "infinity", None),
        ("timeout", "update", "u")]
    assert parse_actions(["postpone"], True)[1] == \
        ("bad_state_enter_action_from_state_function", "postpone")
    assert parse_actions([("timeout", 2**63, "x")], False)[1] == \
        ("bad_action_from_state_function", ("timeout", 2**63, "x"))
    assert parse_actions(("badtimeout", 4711, "ouch"), False)[1] == \
        ("bad_action_from_state_function", ("badtimeout", 4711, "ouch"))
