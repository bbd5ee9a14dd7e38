"""Back-pressure: when ZeroMQ has no room for a peer's frames, senders wait without holding
the peer's lock, frames keep their order, the I/O thread keeps serving, and a peer that
goes down releases its waiting senders."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from actors import Node, erlang, net_kernel
from transport import zmq_link

from .conftest import COOKIE
from .helpers import recv, wait_until

_ids = itertools.count(1)


@pytest.fixture
def pair() -> Iterator[tuple[Node, Node]]:
    a = net_kernel.start_node(f"bpa{next(_ids)}@127.0.0.1", cookie=COOKIE)
    b = net_kernel.start_node(f"bpb{next(_ids)}@127.0.0.1", cookie=COOKIE)
    with a.bound():
        assert net_kernel.connect_node(b.name)
    yield a, b
    a.stop()
    b.stop()


class _Valve:
    """Makes one node's link report FULL (ZeroMQ at its high-water mark) while closed."""

    def __init__(self, node: Node) -> None:
        assert node.dist is not None
        self.link = node.dist._link
        self.closed = threading.Event()
        self.refused = 0
        real = self.link.send

        def send(channel: int, frame: bytes) -> str:
            if self.closed.is_set():
                self.refused += 1
                return zmq_link.FULL
            return real(channel, frame)

        self.link.send = send  # type: ignore[method-assign]


def _collector(n: int, report: Any) -> None:
    erlang.send(report, ("got", [erlang.receive() for _ in range(n)]))


def test_a_full_queue_holds_senders_back_in_order_and_the_node_keeps_serving(
        pair: tuple[Node, Node]) -> None:
    a, b = pair
    valve = _Valve(a)
    with b.bound():
        report = erlang.self()
        sink = erlang.spawn(_collector, 50, report)
    done = threading.Event()

    def sender() -> None:
        with a.bound():
            for i in range(50):
                erlang.send(sink, i)
        done.set()

    valve.closed.set()
    threading.Thread(target=sender, daemon=True).start()
    wait_until(lambda: valve.refused > 0)
    assert not done.is_set()  # held back: ZeroMQ has no room
    heard = threading.Event()  # a's I/O thread still takes frames in while its sender waits
    with a.bound():
        here = erlang.spawn(lambda: erlang.receive() == "ping" and heard.set())
    with b.bound():
        erlang.send(here, "ping")
    assert heard.wait(5)
    valve.closed.clear()
    assert done.wait(5)
    with b.bound():
        assert recv(lambda m: m[0] == "got") == ("got", list(range(50)))


def test_a_peer_going_down_releases_a_waiting_sender(pair: tuple[Node, Node]) -> None:
    a, b = pair
    valve = _Valve(a)
    with b.bound():
        sink = erlang.spawn(erlang.receive)
    done = threading.Event()

    def sender() -> None:
        with a.bound():
            erlang.send(sink, "stuck")
        done.set()

    valve.closed.set()
    threading.Thread(target=sender, daemon=True).start()
    wait_until(lambda: valve.refused > 0)
    assert not done.is_set()
    b.stop()  # a sees the connection close and gives the sender up
    assert done.wait(5)
    with a.bound():
        wait_until(lambda: b.name not in erlang.nodes())
