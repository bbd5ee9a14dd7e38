"""A call's receive marker and its monitor flush (OTP's gen:do_call).

- The messages queued before a call are skipped, not scanned, and stay queued in order.
- A server that replies and then stops leaves no DOWN behind: the call demonitors with
  flush, as OTP's `erlang:demonitor(Mref, [flush])` after the reply.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from actors import Node, erlang, gen_server
from actors._process import _NOTHING, Process
from actors._terms import Pid

from .helpers import no_message


class StopAfterReply(gen_server.GenServer):
    def init(self, args: Any) -> Any:
        return ("ok", None)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return ("stop", "normal", ("done", request), state)


class Echo(gen_server.GenServer):
    def init(self, args: Any) -> Any:
        return ("ok", None)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return ("reply", request, state)


def test_no_down_left_after_a_server_replies_and_stops(node: Node) -> None:
    for i in range(200):
        _, pid = gen_server.start(StopAfterReply, None)
        assert gen_server.call(pid, i) == ("done", i)
    no_message(lambda m: type(m) is tuple and m[0] == "DOWN", 200)


def test_a_call_skips_a_long_queue_and_leaves_it_in_order(node: Node) -> None:
    me = erlang.self()
    for i in range(20_000):
        erlang.send(me, ("queued", i))
    _, pid = gen_server.start(Echo, None)
    for i in range(50):
        assert gen_server.call(pid, ("ping", i)) == ("ping", i)
    for i in range(20_000):
        assert erlang.receive(timeout=0) == ("queued", i)
    assert erlang.receive(timeout=0) is erlang.TIMEOUT


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 5), max_size=40), st.integers(0, 45), st.integers(0, 5))
def test_take_from_a_marker_is_the_first_match_after_it(msgs: list[int], start: int,
                                                        wanted: int) -> None:
    """`_take` scans from the end when the marker is in the back half: same answer, and the
    same mailbox afterwards, as a plain scan from the marker."""
    node = Node("marker@localhost")
    try:
        proc = Process(node, Pid(node.name, 1, node.creation), "shell")
        proc.mailbox.extend(msgs)
        expected = list(msgs)
        index = next((i for i in range(min(start, len(msgs)), len(msgs))
                      if msgs[i] == wanted), None)
        got = proc._take(lambda m: m == wanted, min(start, len(msgs)))
        if index is None:
            assert got is _NOTHING
        else:
            assert got == wanted
            del expected[index]
        assert list(proc.mailbox) == expected
    finally:
        node.stop()
