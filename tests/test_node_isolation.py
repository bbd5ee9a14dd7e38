"""Several Node objects in one Python process are separate runtimes, as separate Erlang nodes
are: each has its own process table and name registry, and stopping one leaves the others."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from actors import Node, erlang
from actors.erlang import Pid
from tests.helpers import down_of, recv

_ids = itertools.count(1)


@pytest.fixture
def two_nodes() -> Iterator[tuple[Node, Node]]:
    n = next(_ids)
    a = Node(f"iso_a{n}@localhost", idle_seconds=1.0)
    b = Node(f"iso_b{n}@localhost", idle_seconds=1.0)
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def wait_for(msg: str) -> None:
    """Block until `msg` arrives (or the process is killed)."""
    erlang.receive(lambda m: m == msg)


def echo() -> None:
    """Answer ("ping", from) with ("pong", node name) until "stop"."""
    for _ in range(1000):
        msg = erlang.receive(lambda m: m == "stop" or (type(m) is tuple and m[0] == "ping"))
        if msg == "stop":
            return
        erlang.send(msg[1], ("pong", erlang.node()))


def spawn_on(n: Node, count: int) -> list[Pid]:
    with n.bound():
        return [erlang.spawn(echo) for _ in range(count)]


def test_same_name_registered_on_both_nodes(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    with a.bound():
        pa = erlang.spawn(echo)
        erlang.register("svc", pa)
    with b.bound():
        pb = erlang.spawn(echo)
        erlang.register("svc", pb)  # no badarg: B's registry is its own
        assert erlang.whereis("svc") == pb
        assert erlang.registered() == ["svc"]
        erlang.send("svc", ("ping", erlang.self()))
        assert recv() == ("pong", b.name)
    with a.bound():
        assert erlang.whereis("svc") == pa
        erlang.send("svc", ("ping", erlang.self()))
        assert recv() == ("pong", a.name)
        erlang.unregister("svc")
    with b.bound():
        assert erlang.whereis("svc") == pb


def test_pid_of_one_node_is_not_alive_on_the_other(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    # Spawn the same number of processes on each node so the serial numbers coincide: only
    # the node part tells the pids apart.
    pids_a = spawn_on(a, 3)
    pids_b = spawn_on(b, 3)
    assert [p.node for p in pids_a] == [a.name] * 3
    assert [p.node for p in pids_b] == [b.name] * 3
    assert not set(pids_a) & set(pids_b)
    with a.bound():
        assert all(erlang.is_process_alive(p) for p in pids_a)
        for p in pids_b:  # a pid of another node: badarg, as erlang:is_process_alive/1
            with pytest.raises(erlang.Error):
                erlang.is_process_alive(p)
        assert all(erlang.process_info(p) == "undefined" for p in pids_b)
        assert not set(erlang.processes()) & set(pids_b)
    with b.bound():
        assert all(erlang.is_process_alive(p) for p in pids_b)
        for p in pids_a:
            with pytest.raises(erlang.Error):
                erlang.is_process_alive(p)
        assert not set(erlang.processes()) & set(pids_a)


def test_shell_pid_differs_per_node(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    with a.bound():
        shell_a = erlang.self()
        assert erlang.node() == a.name
    with b.bound():
        shell_b = erlang.self()
        assert erlang.node() == b.name
    assert shell_a.node == a.name and shell_b.node == b.name
    assert shell_a != shell_b


def test_spawned_process_runs_on_the_bound_node(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    with b.bound():
        me = erlang.self()
        pid = erlang.spawn(lambda: erlang.send(me, ("on", erlang.node(), erlang.self())))
        assert recv(lambda m: m[0] == "on") == ("on", b.name, pid)
    assert pid.node == b.name
    with a.bound():
        assert erlang.whereis("anything") == "undefined"


def test_stopping_one_node_leaves_the_other_running(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    pids_a = spawn_on(a, 5)
    pids_b = spawn_on(b, 5)
    with b.bound():
        refs_b = [erlang.monitor("process", p) for p in pids_b]
    a.stop()
    with a.bound():
        assert not any(erlang.is_process_alive(p) for p in pids_a)
        assert erlang.processes() == []
    with b.bound():
        assert all(erlang.is_process_alive(p) for p in pids_b)
        for p in pids_b:
            erlang.send(p, ("ping", erlang.self()))
            assert recv(lambda m: m[0] == "pong") == ("pong", b.name)
        for ref in refs_b:
            assert erlang.receive(down_of(ref), 0) is erlang.TIMEOUT
        for p, ref in zip(pids_b, refs_b, strict=True):
            erlang.send(p, "stop")
            assert recv(down_of(ref))[4] == "normal"


def test_stopping_a_node_kills_processes_and_frees_names(
        two_nodes: tuple[Node, Node]) -> None:
    a, _ = two_nodes
    with a.bound():
        target = erlang.spawn(wait_for, "never")
        erlang.register("on_a", target)
    a.stop()
    with a.bound():
        assert not erlang.is_process_alive(target)
        assert erlang.whereis("on_a") == "undefined"
        assert erlang.registered() == []


def test_timers_are_per_node(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    with a.bound():
        me_a = erlang.self()
        ref_a = erlang.send_after(2000, me_a, "a tick")
    with b.bound():
        me_b = erlang.self()
        ref_b = erlang.send_after(50, me_b, "b tick")
        assert ref_b != ref_a and ref_b.node == b.name
        # B's timer service neither sees nor cancels A's timer, even with the same serial.
        assert erlang.read_timer(ref_a) is False
        assert erlang.cancel_timer(ref_a) is False
    with a.bound():
        left = erlang.read_timer(ref_a)
        assert type(left) is int and left > 0
    a.stop()
    with b.bound():
        assert recv(lambda m: m == "b tick") == "b tick"
        erlang.send_after(10, me_b, "b still ticks")
        assert recv() == "b still ticks"
