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
    member = rpc.call(leader[1], erlang.whereis, ["c"], 5000)
    system = rpc.call(leader[1], erlang.whereis, ["ra_default_sup"], 5000)
    old = _kill_on(leader[1], victim)
    wait_until(lambda: _restarted(leader[1], victim, old), 10)
    # every victim takes the member down (rest_for_one; its own supervisor; itself): wait
    # for the new one, not for the old one still finishing its exit
    wait_until(lambda: _restarted(leader[1], "c", member), 10)
    assert rpc.call(leader[1], erlang.whereis, ["ra_default_sup"], 5000) == system
    acked += _write(ids, "after", 30)
    h.wait_caught_up(ids, 15.0)
    for sid in ids:
        _index, state = h.local_state(sid)
        assert list(state) == acked, sid  # every acknowledged command, once, in order


def test_a_new_server_supervisor_waits_for_the_members_of_the_one_killed(node: Node) -> None:
    """The members of a killed server supervisor trap exits, so each outlives it until it
    reaches its EXIT. The new one waits for each still registered before it starts the
    new members under the same names, and kills one that takes over the shutdown time."""
    from actors.ra._system import _await_orphans

    def orphan(name: str, ms: int) -> None:
        erlang.register(name, erlang.self())
        erlang.receive(lambda _m: False, ms)  # busy with other work, then gone

    slow = erlang.spawn(orphan, "orphan_slow", 500)
    stuck = erlang.spawn(orphan, "orphan_stuck", 60_000)
    refs = {erlang.monitor("process", pid): pid for pid in (slow, stuck)}
    wait_until(lambda: erlang.whereis("orphan_slow") == slow and
               erlang.whereis("orphan_stuck") == stuck, 5)
    _await_orphans(["orphan_slow", "orphan_stuck", "never_registered"], 1000)
    assert erlang.whereis("orphan_slow") == "undefined"
    assert erlang.whereis("orphan_stuck") == "undefined"
    reasons = {}
    for _ in refs:
        msg = erlang.receive(lambda m: type(m) is tuple and m[0] == "DOWN" and m[1] in refs, 5000)
        assert msg is not erlang.TIMEOUT
        reasons[refs[msg[1]]] = msg[4]
    assert reasons == {slow: "normal", stuck: "killed"}
