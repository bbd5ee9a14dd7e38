"""`ra.pipeline_command` coalesced on the caller's side (`actors.ra._pipeline`), on a real
three-node cluster (node OS processes on loopback): each caller's commands apply in its own
order and are answered once each; a command that cannot be sent is answered with an error
while the others apply; a caller's relay ends with the caller.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from actors import Node, erlang, ra, rpc
from tests.helpers import no_message, wait_until

from . import ra_helpers as h


def _events(n: int, timeout_ms: int = 15_000) -> list[tuple[Any, Any, Any]]:
    """(sender, correlation, reply) of the next `n` applied pipeline replies."""
    got: list[tuple[Any, Any, Any]] = []
    while len(got) < n:
        msg = erlang.receive(lambda m: type(m) is tuple and m[0] == "ra_event", timeout_ms)
        assert msg is not erlang.TIMEOUT, f"only {len(got)} of {n} answered"
        assert msg[2][0] == "applied", msg
        got.extend((msg[1], corr, reply) for corr, reply in msg[2][1])
    return got


def _pipeliner(test: Any, leader: Any, tag: str, n: int) -> None:
    """(a process) Pipeline n commands, gather their replies, report them and its relay."""
    for i in range(n):
        ra.pipeline_command(leader, (tag, i), i)
    replies = [(corr, reply) for _, corr, reply in _events(n)]
    erlang.send(test, ("done", tag, replies, erlang.get(("$ra_relay", leader))))


def test_each_callers_commands_apply_in_its_order_and_its_relay_ends_with_it(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    c = h.Cluster(peers, tmp_path, "pl")
    leader = c.start(c.add_nodes([f"pl{i}" for i in range(3)]), h.log_machine())
    me, n = erlang.self(), 300
    for tag in ("a", "b", "c"):
        erlang.spawn(_pipeliner, me, leader, tag, n)
    relays = []
    for _ in range(3):
        msg = erlang.receive(lambda m: type(m) is tuple and m[0] == "done", 30_000)
        assert msg is not erlang.TIMEOUT, "a pipelining process did not finish"
        _, tag, replies, relay = msg
        assert [corr for corr, _ in replies] == list(range(n)), tag  # once each, in order
        assert all(type(r) is int for _, r in replies), tag
        relays.append(relay)
    views = h.wait_caught_up(c.ids)
    state = h.local_state(leader)[1]
    assert len(state) == 3 * n and views[leader]["last_applied"] >= 3 * n
    for tag in ("a", "b", "c"):  # interleaved with the others, each in its own order
        assert [cmd for cmd in state if cmd[0] == tag] == [(tag, i) for i in range(n)]
    # the callers have ended, and so have their relays
    wait_until(lambda: not any(erlang.is_process_alive(r) for r in relays), 5)


def test_a_command_that_cannot_be_sent_is_answered_and_the_others_apply(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    c = h.Cluster(peers, tmp_path, "pb")
    leader = c.start(c.add_nodes([f"pb{i}" for i in range(3)]), h.log_machine())
    for i in range(10):
        command = ("lock", threading.Lock()) if i == 4 else ("ok", i)
        assert ra.pipeline_command(leader, command, i) == "ok"
    got = {corr: (sender, reply) for sender, corr, reply in _events(10)}
    assert sorted(got) == list(range(10))
    sender, reply = got[4]
    assert sender == leader and reply[0] == "error" and reply[1][0] == "bad_command", reply
    assert all(got[i] == (leader, reply) for i, reply in
               zip([0, 1, 2, 3, 5, 6, 7, 8, 9], range(1, 10), strict=True))
    no_message(lambda m: type(m) is tuple and m[0] == "ra_event", 300)
    assert h.local_state(leader)[1] == tuple(("ok", i) for i in range(10) if i != 4)


def pipeline_here(leader: Any, tag: str, n: int) -> tuple[list[Any], list[Any], Any]:
    """(on the leader's node) Pipeline n commands to the member next to us: the senders and
    the correlations of the replies in the order they came, and this process's relay."""
    half = n // 2
    for i in range(half):
        ra.pipeline_command(leader, (tag, i), i)
    assert ra.pipeline_commands(leader, [((tag, i), i) for i in range(half, n)]) == "ok"
    got = _events(n)
    return [s for s, _, _ in got], [c for _, c, _ in got], erlang.get(("$ra_relay", leader))


def test_a_caller_on_the_members_node_sends_to_it_directly_in_order(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    """A member on the caller's node gets each command (and each `pipeline_commands` batch)
    by a local cast: no relay process, the same order, each answered once."""
    c = h.Cluster(peers, tmp_path, "pd")
    leader = c.start(c.add_nodes([f"pd{i}" for i in range(3)]), h.log_machine())
    n = 200
    senders, correlations, relay = rpc.call(leader[1], pipeline_here, [leader, "d", n], 30_000)
    assert relay == "undefined"  # no relay was started
    assert correlations == list(range(n)) and set(senders) == {leader}
    h.wait_caught_up(c.ids)
    assert h.local_state(leader)[1] == tuple(("d", i) for i in range(n))


def test_pipeline_commands_refuses_what_is_not_a_list_of_pairs(node: Node) -> None:
    for bad in ("x", [("a",)], [("a", 1, 2)], ("tuple", "of", "pairs"), [["a", 1]]):
        with pytest.raises(erlang.Error):
            ra.pipeline_commands(("member", node.name), bad)
