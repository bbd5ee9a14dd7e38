"""Two nodes that both open a new half towards the other while their connection is up (each
gave the other up at once, or a stale attempt completes on both sides) settle on one
connection. Each side takes a new half from a peer whose half is up as a reconnect and
replaces the whole connection; a replacement's own dial-back then reaches the other side's
fresh replacement, which must not replace it again, or the two replace each other for ever
(seen in a Jepsen run: ~400 replacements a second between two nodes, for 90 s)."""

from __future__ import annotations

import itertools
import time

import pytest

from actors import Node, erlang, net_kernel, rpc
from actors._dist_records import Peer
from transport.connection import Connection

from .conftest import COOKIE
from .helpers import wait_until

_ids = itertools.count(1)


def _redial(node: Node, other: str) -> Peer:
    """Open a second half from `node` towards `other`, beside the connection that is up;
    the record of that half is not listed (it stands for an attempt gone stale)."""
    dist = node.dist
    old = dist._peers[other]
    spare = Peer(other, Connection(dist._local, other, time.monotonic()), address=old.address)
    dist._link.call_soon(lambda: dist._open(spare))
    return spare


def _drop(node: Node, spare: Peer) -> None:
    """Close the unlisted half's socket quietly, once the peer has taken its ACK."""
    dist = node.dist

    def close() -> None:
        if spare.channel is not None:
            dist._by_channel.pop(spare.channel, None)
            dist._link.close_channel(spare.channel)
    dist._link.call_soon(close)


def _listed(node: Node, other: str) -> bool:
    with node.bound():
        return other in erlang.nodes()


@pytest.mark.parametrize("attempt", range(3))
def test_two_nodes_that_redial_each_other_at_once_settle(attempt: int) -> None:
    n = next(_ids)
    a = net_kernel.start_node(f"cross_a{n}@127.0.0.1", cookie=COOKIE)
    b = net_kernel.start_node(f"cross_b{n}@127.0.0.1", cookie=COOKIE)
    try:
        with a.bound():
            assert net_kernel.connect_node(b.name) is True
        wait_until(lambda: _listed(b, a.name))
        before = (a.dist._peers[b.name], b.dist._peers[a.name])
        spares = (_redial(a, b.name), _redial(b, a.name))
        # each takes the other's new half as a reconnect: both replace their connection
        wait_until(lambda: a.dist._peers.get(b.name) is not before[0]
                   and b.dist._peers.get(a.name) is not before[1], timeout=5.0)
        _drop(a, spares[0])
        _drop(b, spares[1])
        # with traffic both ways, the nodes must settle: each lists the other, on records
        # that last a second
        deadline = time.monotonic() + 15.0
        seen, since = None, time.monotonic()
        while True:
            for node, other in ((a, b), (b, a)):
                with node.bound():
                    rpc.call(other.name, erlang.node, [], 200)
            now = time.monotonic()
            both = _listed(a, b.name) and _listed(b, a.name)
            records = (a.dist._peers.get(b.name), b.dist._peers.get(a.name))
            if not both or seen is None or any(
                    x is not y for x, y in zip(records, seen, strict=True)):
                seen, since = records, now
            elif now - since >= 1.0:
                break
            assert now < deadline, "the two nodes did not settle on one connection"
        with a.bound():
            assert rpc.call(b.name, erlang.node) == b.name
        # the replacements crossed, and only the node with the greater name dropped a half
        assert a.dist.rejected["crossing"] == 0 and b.dist.rejected["crossing"] >= 1
    finally:
        a.stop()
        b.stop()
