"""The ra system's supervision: killing any process of the tree loses no acknowledged
command. Three in-process nodes (a real distribution between them); the kills are
`exit(pid, "kill")`, which no process can trap or clean up after."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import Node, erlang, ra, rpc
from tests.helpers import wait_until

from . import ra_helpers as h

COOKIE = "test-cookie-0123456789abcdef"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Node, list[tuple[str, str]]]]:
    nodes, ids = h.in_process_cluster(tmp_path, "crash", "crash", "c", COOKIE)
    with nodes[0].bound():
        yield nodes[0], ids
    for n in nodes:
        n.stop()


def _write(ids: list[tuple[str, str]], tag: str, count: int) -> list[Any]:
    acked = []
    for i in range(count):
        result = ra.process_command(ids, (tag, i), 5000)
        assert result[0] == "ok", result
        acked.append((tag, i))
    return acked


def _kill_on(node: str, name: str) -> Any:
    pid = rpc.call(node, erlang.whereis, [name], 5000)
    assert erlang.is_pid(pid), (node, name, pid)
    rpc.call(node, erlang.exit, [pid, "kill"], 5000)
    return pid


def _restarted(node: str, name: str, old: Any) -> bool:
    pid = rpc.call(node, erlang.whereis, [name], 5000)
    return erlang.is_pid(pid) and pid != old


@pytest.mark.parametrize("victim", ["ra_default_log_wal", "ra_default_segment_writer",
                                    "ra_default_server_sup", "c"])
def test_a_killed_process_of_the_tree_loses_no_acknowledged_command(
        cluster: tuple[Node, list[tuple[str, str]]], victim: str) -> None:
    _client, ids = cluster
    acked = _write(ids, "before", 30)
    leader = h.wait_leader(ids)
    old = _kill_on(leader[1], victim)
    wait_until(lambda: _restarted(leader[1], victim, old), 10)
    wait_until(lambda: _restarted(leader[1], "c", None), 10)  # the member is back
    acked += _write(ids, "after", 30)
    h.wait_caught_up(ids, 15.0)
    for sid in ids:
        _index, state = h.local_state(sid)
        assert list(state) == acked, sid  # every acknowledged command, once, in order
