"""Exit reasons cross nodes whatever they hold: a link or monitor fires even when its
reason cannot be rebuilt on the other node."""

from __future__ import annotations

from typing import Any

from actors import Node, erlang

from .helpers import down_of, exit_from, recv


class Picky(Exception):
    """Pickles, but does not unpickle: its constructor wants two arguments."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}/{b}")


def crash() -> None:
    raise Picky(1, 2)


def test_a_reason_that_does_not_unpickle_still_fires_monitor_and_link(
        dist_node: Node, peers: Any) -> None:
    _, node = peers()
    erlang.process_flag("trap_exit", True)
    _, ref = erlang.spawn_monitor(node, crash)
    reason = recv(down_of(ref))[4]
    assert reason[0] == "unpicklable" and "Picky" in reason[1]
    pid = erlang.spawn_link(node, crash)
    kind, _, reason = recv(exit_from(pid))
    assert kind == "EXIT" and reason[0] == "unpicklable"


def test_a_plain_reason_crosses_unchanged(dist_node: Node, peers: Any) -> None:
    _, node = peers()
    _, ref = erlang.spawn_monitor(node, erlang.exit, ("shutdown", {"why": [1, 2]}))
    assert recv(down_of(ref))[4] == ("shutdown", {"why": [1, 2]})
