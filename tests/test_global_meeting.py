"""`global_` when two nodes meet while a name changes: the new node learns the change.

A node that connects while a name's lock is held gets the other node's table from before
the change (its nodeup exchange ran first), and the changer did not ask it. OTP's global
never leaves such a node behind: every connected node agrees on a name once the change is
done. These tests take the lock, connect the new node and wait until it has the old
table, then let the change go through.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from actors import Node, erlang, gen_server, global_, net_kernel, sys
from actors import _global_server as global_server
from actors._terms import Pid

from .conftest import COOKIE
from .helpers import wait_until

_ids = itertools.count(1)


@pytest.fixture
def newcomer(dist_node: Node) -> Iterator[Node]:
    """A second distributed node in this process, not yet connected to `dist_node`."""
    n = net_kernel.start_node(f"newcomer{next(_ids)}@127.0.0.1", cookie=COOKIE)
    yield n
    n.stop()


def seen_from(node: Node, name: Any) -> Any:
    with node.bound():
        return global_.whereis_name(name)


def connect_and_sync(here: Node, newcomer: Node, marker: str) -> None:
    """Connect, then wait until the newcomer has `here`'s table (it shows `marker`)."""
    assert net_kernel.connect_node(newcomer.name) is True
    wait_until(lambda: seen_from(newcomer, marker) == seen_from(here, marker), 5.0)


def test_a_node_that_meets_us_during_a_registration_learns_the_name(
        dist_node: Node, newcomer: Node) -> None:
    marker = erlang.spawn(erlang.receive)
    assert global_.register_name("marker", marker) == "yes"
    pid = erlang.spawn(erlang.receive)

    def register(holders: list[Any]) -> tuple[str, Any]:
        assert holders == []
        connect_and_sync(dist_node, newcomer, "marker")  # its table came before the change
        return "yes", ("register", "leader", pid, "random_exit_name")

    assert global_._with_lock("leader", register) == "yes"
    assert global_.whereis_name("leader") == pid
    wait_until(lambda: seen_from(newcomer, "leader") == pid, 5.0)
    for p in (marker, pid):
        erlang.exit(p, "kill")


def test_a_node_that_meets_us_during_an_unregistration_forgets_the_name(
        dist_node: Node, newcomer: Node) -> None:
    pid = erlang.spawn(erlang.receive)
    assert global_.register_name("leader", pid) == "yes"

    def unregister(holders: list[Any]) -> tuple[str, Any]:
        assert holders == [pid]
        connect_and_sync(dist_node, newcomer, "leader")  # it holds the name now
        return "ok", ("unregister", "leader")

    assert global_._with_lock("leader", unregister) == "ok"
    assert global_.whereis_name("leader") == "undefined"
    wait_until(lambda: seen_from(newcomer, "leader") == "undefined", 5.0)
    assert erlang.is_process_alive(pid)  # the name went, not its process
    erlang.exit(pid, "kill")


def test_a_node_that_meets_us_during_a_re_registration_takes_the_new_pid(
        dist_node: Node, newcomer: Node) -> None:
    old, new = erlang.spawn(erlang.receive), erlang.spawn(erlang.receive)
    assert global_.register_name("leader", old) == "yes"

    def re_register(holders: list[Any]) -> tuple[str, Any]:
        connect_and_sync(dist_node, newcomer, "leader")
        return "yes", ("register", "leader", new, "random_exit_name")

    assert global_._with_lock("leader", re_register) == "yes"
    wait_until(lambda: seen_from(newcomer, "leader") == new, 5.0)
    assert erlang.is_process_alive(old)  # replaced, not a clash: nobody was killed
    for p in (old, new):
        erlang.exit(p, "kill")


def keep_the_smaller_node(name: Any, pid1: Pid, pid2: Pid) -> Pid:
    """OTP's random_exit_name as its code does it: the pid of the smaller node stays."""
    keep, lose = sorted((pid1, pid2), key=lambda p: p.node)
    erlang.exit(lose, "kill")
    return keep


@contextmanager
def three_nodes(prefix: str) -> Iterator[tuple[Node, Node, Node]]:
    """Three new nodes whose names sort as they are yielded (a < m < z); stopped at the end."""
    n = next(_ids)
    a, m, z = (net_kernel.start_node(f"{prefix}{n}-{side}@127.0.0.1", cookie=COOKIE)
               for side in "amz")
    try:
        yield a, m, z
    finally:
        for node in (a, m, z):
            node.stop()


@contextmanager
def clash_across_a_cut_cable(prefix: str, resolve: Any = None) -> Iterator[tuple[
        Node, Node, Node, Pid, Pid]]:
    """Three nodes (the resolver's name the smallest, the far one's the largest): the far
    node registers "leader" and meets the third; then, with the cable between resolver
    and far cut (the resolver's side), the resolver registers its own "leader" and meets
    the third, whose table (the far pid) it has when this yields
    (resolver, third, far, far_pid, mine). Every node is stopped at the end."""
    with three_nodes(prefix) as (resolver, third, far):
        with far.bound():
            far_pid = erlang.spawn(erlang.receive)
            assert global_.register_name("leader", far_pid, resolve) == "yes"
            assert net_kernel.connect_node(third.name) is True
        wait_until(lambda: seen_from(third, "leader") == far_pid, 5.0)
        resolver.dist.block([far.name])
        with resolver.bound():
            mine = erlang.spawn(erlang.receive)
            assert global_.register_name("leader", mine, resolve) == "yes"
            assert net_kernel.connect_node(third.name) is True
            # the third node's table is in: its answer and its nodeup sync come over one
            # connection, and our call queues behind that sync
            sys.get_state((global_server.SERVER, third.name))
            sys.get_state((global_server.SERVER, resolver.name))
            assert far.name not in erlang.nodes()
        yield resolver, third, far, far_pid, mine


def test_a_clash_is_resolved_once_the_losers_node_can_be_reached(dist_node: Node) -> None:
    """During a heal the resolver can see a clash in a third node's table before it is
    connected to the other pid's node: a kill sent then would be lost, and the loser
    would live on, sure it holds the name (a POC leader that never steps down)."""
    with clash_across_a_cut_cable("gclash", keep_the_smaller_node) as (
            resolver, third, far, far_pid, mine):
        resolver.dist.unblock([far.name])
        with resolver.bound():
            assert net_kernel.connect_node(far.name) is True
        with far.bound():
            wait_until(lambda: not erlang.is_process_alive(far_pid), 5.0)
        for node in (resolver, third, far):
            wait_until(lambda node=node: seen_from(node, "leader") == mine, 5.0)


def test_a_clash_with_a_pid_of_a_node_that_is_gone_leaves_the_resolvers_entry(
        dist_node: Node) -> None:
    """The resolver waits to settle a clash with a pid whose node it cannot reach; if that
    node never comes back, the node that listed its pid must still end with the resolver's
    entry, not with no entry at all."""
    with clash_across_a_cut_cable("ggone") as (resolver, third, gone, _, mine):
        gone.stop()
        for node in (resolver, third):
            wait_until(lambda node=node: seen_from(node, "leader") == mine, 5.0)


@contextmanager
def two_holders_apart(prefix: str, resolve: Any = None) -> Iterator[tuple[
        Node, Node, Node, Pid, Pid]]:
    """Nodes a < m < z: a and z each registered "leader" alone (pa, pz) and have never
    met; m is connected to z only and lists pz, and a refuses m (so m never brings pz to
    a, which would settle a clash for other reasons). Yields (a, m, z, pa, pz); stops all."""
    with three_nodes(prefix) as (a, m, z):
        a.dist.block([m.name])
        with a.bound():
            pa = erlang.spawn(erlang.receive)
            assert global_.register_name("leader", pa, resolve) == "yes"
        with z.bound():
            pz = erlang.spawn(erlang.receive)
            assert global_.register_name("leader", pz, resolve) == "yes"
        with m.bound():
            assert net_kernel.connect_node(z.name) is True
        wait_until(lambda: seen_from(m, "leader") == pz, 5.0)
        yield a, m, z, pa, pz


def tell_outcome(sender: Node, to: Node, pid: Pid, method: Any, losers: list[Pid]) -> None:
    """What `sender`'s server sends when it tells `to` an outcome for "leader" (a resolver
    answering a clash report, or a node that met a clash's loser again)."""
    with sender.bound():
        gen_server.cast((global_server.SERVER, to.name), ("resolved", "leader", pid, method,
                                                          losers))


def test_an_outcome_that_does_not_name_our_live_pid_a_loser_makes_a_clash(
        dist_node: Node) -> None:
    """A node told that a name is another pid's, by an outcome in which its own live pid
    lost nothing, must not drop that pid unkilled (it would live on, sure it holds the
    name): the two pids clash, and the resolver settles it with its method."""
    with two_holders_apart("gtold", keep_the_smaller_node) as (a, m, z, pa, pz):
        tell_outcome(m, z, pa, keep_the_smaller_node, [])
        with z.bound():
            wait_until(lambda: not erlang.is_process_alive(pz), 5.0)
        for node in (a, z):  # (m, cut off from a, is told nothing by z)
            wait_until(lambda node=node: seen_from(node, "leader") == pa, 5.0)
        with a.bound():
            assert erlang.is_process_alive(pa)


def test_a_loser_whose_kill_was_lost_is_killed_by_its_own_node(dist_node: Node) -> None:
    """random_exit_name's loser dies. If the resolver's kill was lost (the connection went
    down after the resolver checked it), the loser's node learns the outcome later, with
    the loser named: it kills the loser itself rather than let it live on unaware."""
    with two_holders_apart("glost") as (a, m, z, pa, pz):
        tell_outcome(m, z, pa, "random_exit_name", [pz])
        with z.bound():
            wait_until(lambda: not erlang.is_process_alive(pz), 5.0)
        for node in (a, z):
            wait_until(lambda node=node: seen_from(node, "leader") == pa, 5.0)
