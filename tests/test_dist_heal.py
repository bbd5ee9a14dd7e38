"""A cut cable (`net_kernel.block_nodes`) loses frames, but the handshake of a node that
dials across a cut being mended is delayed, as TCP's retransmissions would deliver it, not
lost: healing runs node by node, and a node whose side is mended first may dial one that
still cuts it. Before, that attempt waited out its setup time (3 s) and failed, and a
`connect_node` made meanwhile joined it and returned False (seen as a Jepsen heal that took
6 s longer than the others)."""

from __future__ import annotations

import itertools
import time

from actors import Node, erlang, net_kernel
from actors._dist import Distribution

from .conftest import COOKIE
from .helpers import wait_until

_ids = itertools.count(1)


def _two(**options: object) -> tuple[Node, Node]:
    n = next(_ids)
    a = net_kernel.start_node(f"heal_a{n}@127.0.0.1", cookie=COOKIE, **options)
    b = net_kernel.start_node(f"heal_b{n}@127.0.0.1", cookie=COOKIE, **options)
    return a, b


def _dist(node: Node) -> Distribution:
    assert node.dist is not None
    return node.dist


def _cut(a: Node, b: Node) -> None:
    with a.bound():
        net_kernel.block_nodes([b.name])
    with b.bound():
        net_kernel.block_nodes([a.name])


def _dial(a: Node, b: Node) -> None:
    """`a` starts connecting to `b` (a send does, as a Raft member's would), without waiting."""
    with a.bound():
        erlang.send(("nobody", b.name), "hello")


def test_a_node_that_dials_across_a_cut_being_mended_connects_once_it_is_mended() -> None:
    a, b = _two()
    try:
        _cut(a, b)
        with a.bound():
            net_kernel.unblock_nodes([b.name])  # a's side is mended first
        _dial(a, b)
        wait_until(lambda: _dist(b).held_answers() == 1, 3)  # b, still cut, holds its answer
        with b.bound():
            net_kernel.unblock_nodes([a.name])
        t0 = time.monotonic()
        with a.bound():
            assert net_kernel.connect_node(b.name) is True
        print(f"\nconnect_node after the heal: {(time.monotonic() - t0) * 1000:.1f} ms")
        with b.bound():
            wait_until(lambda: a.name in erlang.nodes(), 3)
        assert _dist(b).held_answers() == 0
    finally:
        a.stop()
        b.stop()


def test_after_an_answer_was_held_past_the_setup_time_a_new_attempt_connects() -> None:
    a, b = _two(setup_time=400)
    try:
        _cut(a, b)
        with a.bound():
            net_kernel.unblock_nodes([b.name])
        _dial(a, b)
        wait_until(lambda: _dist(b).held_answers() == 1, 3)
        with a.bound():  # a gives the attempt up after its setup time
            wait_until(lambda: b.name not in _dist(a)._peers, 3)
        with b.bound():
            net_kernel.unblock_nodes([a.name])
        wait_until(lambda: _dist(b).held_answers() == 0, 3)  # stale: gone, not kept
        with a.bound():
            assert net_kernel.connect_node(b.name) is True
        with b.bound():
            wait_until(lambda: a.name in erlang.nodes(), 3)
    finally:
        a.stop()
        b.stop()
