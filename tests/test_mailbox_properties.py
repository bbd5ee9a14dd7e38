"""Property tests: the mailbox behaves like Erlang's list model of a message queue."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from actors import Node, erlang

# An operation is ("send", value) or ("receive", modulus): receive the first message
# divisible by `modulus` (1 matches anything), or nothing if none matches (timeout 0).
ops = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(0, 50)),
        st.tuples(st.just("receive"), st.integers(1, 4)),
    ),
    max_size=60,
)


def model_receive(queue: list[int], modulus: int) -> Any:
    for index, value in enumerate(queue):
        if value % modulus == 0:
            return queue.pop(index)
    return erlang.TIMEOUT


@settings(max_examples=150, deadline=None)
@given(ops)
def test_selective_receive_matches_the_list_model(operations: list[tuple[str, int]]) -> None:
    node = Node("prop@localhost")
    try:
        with node.bound():
            me = erlang.self()
            model: list[int] = []
            for op, value in operations:
                if op == "send":
                    erlang.send(me, value)
                    model.append(value)
                else:
                    got = erlang.receive(lambda m, k=value: m % k == 0, 0)
                    assert got == model_receive(model, value)
            rest = []
            while (msg := erlang.receive(None, 0)) is not erlang.TIMEOUT:
                rest.append(msg)
            assert rest == model
    finally:
        node.stop()
