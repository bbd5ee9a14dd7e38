"""Shared fixtures: every test gets its own node, bound to the test's thread."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

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
