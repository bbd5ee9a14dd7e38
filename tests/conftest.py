"""Shared fixtures: every test gets its own node, bound to the test's thread."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from actors import Node

_ids = itertools.count(1)


@pytest.fixture
def node() -> Iterator[Node]:
    """A fresh node; plain-thread `erlang.*` calls in the test talk to it."""
    n = Node(f"test{next(_ids)}@localhost", idle_seconds=1.0)
    with n.bound():
        yield n
    n.stop()


# -- distribution: a private port mapper, a distributed test node, peers in OS processes ----

COOKIE = "test-cookie-0123456789abcdef"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session", autouse=True)
def private_epmd() -> Iterator[int]:
    """Every test run gets its own port mapper port (inherited by peers through the
    environment), so runs never meet each other's nodes. Stopped at the end."""
    import os

    from transport import epmd

    port = _free_port()
    os.environ[epmd.PORT_ENV] = str(port)
    os.environ["ERLPY_COOKIE"] = COOKIE
    yield port
    try:
        epmd.stop(port, force=True)
    except epmd.EpmdError:
        pass


@pytest.fixture
def dist_node() -> Iterator[Node]:
    """A fresh distributed node ("t<N>@127.0.0.1"), bound to the test's thread."""
    from actors import net_kernel

    n = net_kernel.start_node(f"t{next(_ids)}@127.0.0.1", cookie=COOKIE)
    with n.bound():
        yield n
    n.stop()


@pytest.fixture
def peers(dist_node: Node) -> Iterator[Callable[..., tuple[Any, str]]]:
    """`start(name=None, **opts) -> (peer_pid, node)`: a peer node in a new OS process,
    stopped (or killed) when the test ends."""
    from actors import peer

    started: list[Any] = []

    def start(name: str | None = None, **options: Any) -> tuple[Any, str]:
        result = peer.start(name, **options)
        assert result[0] == "ok", result
        started.append(result[1])
        return result[1], result[2]

    yield start
    for pid in started:
        try:
            peer.stop(pid)
        except Exception:
            pass
