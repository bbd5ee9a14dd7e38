"""The ra system's supervision: killing any process of the tree loses no acknowledged
command. Three in-process nodes (a real distribution between them); the kills are
`exit(pid, "kill")`, which no process can trap or clean up after."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import Node, erlang, gen_server, ra, rpc
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


class RaServer(gen_server.GenServer):
    """Stands in for a member: `_await_orphans` knows members by their initial call,
    ("RaServer", "init", 1). With a time, it stops normally after it."""

    def init(self, ms: int | None) -> Any:
        return ("ok", None) if ms is None else ("ok", None, ms)

    def handle_info(self, msg: Any, state: Any) -> Any:
        return ("stop", "normal", state) if msg == "timeout" else ("noreply", state)


def test_a_new_server_supervisor_waits_for_the_members_of_the_one_killed(node: Node) -> None:
    """The members of a killed server supervisor trap exits, so each outlives it until it
    reaches its EXIT. The new one waits for each member still registered before it starts
    the new members under the same names, and kills one that takes over the shutdown time.
    A process of another kind under such a name is left alone (the start then fails with
    already_started, as in OTP)."""
    from actors.ra._system import _await_orphans

    slow = gen_server.start(("local", "orphan_slow"), RaServer, 500)[1]
    stuck = gen_server.start(("local", "orphan_stuck"), RaServer, None)[1]
    other = erlang.spawn(lambda: erlang.receive(lambda _m: False, 60_000))
    erlang.register("not_a_member", other)
    refs = {erlang.monitor("process", pid): pid for pid in (slow, stuck)}
    _await_orphans(["orphan_slow", "orphan_stuck", "not_a_member", "never_registered"], 1000)
    assert erlang.whereis("orphan_slow") == "undefined"
    assert erlang.whereis("orphan_stuck") == "undefined"
    assert erlang.whereis("not_a_member") == other and erlang.is_process_alive(other)
    reasons = {}
    for _ in refs:
        msg = erlang.receive(lambda m: type(m) is tuple and m[0] == "DOWN" and m[1] in refs, 5000)
        assert msg is not erlang.TIMEOUT
        reasons[refs[msg[1]]] = msg[4]
    assert reasons == {slow: "normal", stuck: "killed"}
    erlang.exit(other, "kill")
