"""Messages bigger than one frame travel in several (MORE frames, then DATA), in order with
the messages around them; a message over the node's limit is refused at the sender."""

from __future__ import annotations

import os

import pytest

from actors import _dist, erlang, net_kernel
from actors._terms import Error
from actors.node import Node
from tests.conftest import COOKIE
from tests.helpers import recv
from transport import codec


def test_a_message_over_max_frame_arrives_whole_and_in_order(dist_node: Node) -> None:
    other = net_kernel.start_node(f"frag{os.getpid()}@127.0.0.1", cookie=COOKIE)
    try:
        me = erlang.self()
        big = os.urandom(3 * codec.DEFAULT_MAX_FRAME + 12345)
        with other.bound():
            erlang.send(me, ("before", 1))
            erlang.send(me, ("big", big))
            erlang.send(me, ("after", 2))
        assert recv(lambda m: True, 10_000) == ("before", 1)
        assert recv(lambda m: True, 10_000) == ("big", big)
        assert recv(lambda m: True, 10_000) == ("after", 2)
        with other.bound(), pytest.raises(Error):
            erlang.send(me, bytes(_dist.MAX_MESSAGE))  # over the limit: badarg, not sent
        assert other.dist is not None and sum(other.dist.rejected.values()) == 0
        assert dist_node.dist is not None and sum(dist_node.dist.rejected.values()) == 0
    finally:
        other.stop()
