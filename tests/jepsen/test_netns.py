"""`demos.jepsen.netns`: nodes in Linux network namespaces on one bridge, cut for real by
blackhole routes while the controller (this process, in the root namespace) still reaches
them all. Needs root and `ip netns`; skipped otherwise. Every wait is bounded."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from actors import Node, erlang, net_kernel, peer, rpc
from demos.jepsen import netns
from demos.jepsen.netns import NetnsNetwork, NetnsUnavailable, reconnect
from tests.conftest import COOKIE

SIZE = 3
BOOT_MS = 20000
WAIT_S = 5.0  # net_ticktime is 800 ms: a cut is seen within about 1 s
_ids = itertools.count(1)


def _ms(t0: float) -> float:
    return (time.monotonic() - t0) * 1000.0


def _wait(cond: Callable[[], Any], what: str, within_s: float = WAIT_S) -> float:
    """Poll `cond` (every 20 ms) until true; the ms it took. Fails the test past the bound."""
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < within_s, f"{what}: not within {within_s} s"
        erlang.receive(lambda _m: False, 20)
    return _ms(t0)


def _leftovers(net: NetnsNetwork) -> list[str]:
    """Our namespaces and links still on the machine."""
    names = [net.namespace(i) for i in range(net.size)]
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=10)
    found = [n for n in names if n in ns.stdout.split()]
    found += [line.split(":")[1].strip() for line in links.stdout.splitlines()
              if f"ej{net.tag}v" in line or net.bridge in line]
    return found


def _created(size: int, tag: str | None = None) -> NetnsNetwork:
    net = NetnsNetwork(size, tag)
    try:
        net.create()
    except NetnsUnavailable as exc:
        pytest.skip(f"no network namespaces here: {exc}")
    return net


class Cluster:
    """A network of SIZE namespaces, a controller node on its bridge, a node per namespace."""

    def __init__(self, net: NetnsNetwork, ctl: Node) -> None:
        self.net, self.ctl = net, ctl
        self.peers: dict[int, Any] = {}

    def start(self, i: int) -> str:
        result = self.net.start_node(i, wait_boot=BOOT_MS)
        assert result[0] == "ok", result
        self.peers[i] = result[1]
        return result[2]

    def nodes(self) -> list[str]:
        return self.net.nodes()

    def sees(self, i: int) -> set[str]:
        """Node i's erlang.nodes(), asked by rpc (an empty set if it does not answer)."""
        seen = rpc.call(self.net.node(i), erlang.nodes, [], 2000)
        return set(seen) if type(seen) is list else set()

    def full_mesh(self) -> bool:
        everyone = {*self.nodes(), self.ctl.name}
        return set(erlang.nodes()) >= set(self.nodes()) and all(
            self.sees(i) == everyone - {self.net.node(i)} for i in range(self.net.size))

    def stop(self) -> None:
        for pid in self.peers.values():
            try:
                peer.stop(pid)
            except Exception:
                pass


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    t0 = time.monotonic()
    net = _created(SIZE)
    print(f"\ncreate {SIZE} namespaces: {_ms(t0):.0f} ms")
    ctl_host = net.controller_host()
    ctl = None
    c = None
    try:
        ctl = net_kernel.start_node(f"ctl{os.getpid()}x{next(_ids)}@{ctl_host}", cookie=COOKIE,
                                    listen=f"tcp://{ctl_host}:0", epmd=False)
        with ctl.bound():
            c = Cluster(net, ctl)
            t0 = time.monotonic()
            for i in range(SIZE):
                c.start(i)
            print(f"start {SIZE} nodes: {_ms(t0):.0f} ms")
            yield c
    finally:
        if c is not None:
            c.stop()
        if ctl is not None:
            ctl.stop()
        t0 = time.monotonic()
        net.delete()
        print(f"delete: {_ms(t0):.0f} ms")


def test_a_real_cut_isolates_a_node_but_not_from_the_controller(cluster: Cluster) -> None:
    net, nodes = cluster.net, cluster.nodes()
    print(f"full mesh after start: {_wait(cluster.full_mesh, 'full mesh'):.0f} ms")

    def dial(address: str) -> str:  # runs on a node: a raw TCP connect, under our dist layer
        host, port = address.removeprefix("tcp://").rsplit(":", 1)
        try:
            socket.create_connection((host, int(port)), timeout=0.5).close()
            return "ok"
        except OSError as exc:
            return type(exc).__name__

    t0 = time.monotonic()
    net.cut([0], [1, 2])
    print(f"cut [0] | [1, 2]: {_ms(t0):.1f} ms")
    gone = _wait(lambda: not cluster.sees(0) & {nodes[1], nodes[2]}, "0 sees 1 and 2 go down")
    back = _wait(lambda: nodes[0] not in cluster.sees(1) | cluster.sees(2), "1, 2 see 0 go down")
    print(f"down seen: by 0 after {gone:.0f} ms, then by 1 and 2 {back:.0f} ms later")
    assert cluster.sees(0) == {cluster.ctl.name}
    assert cluster.sees(1) == {cluster.ctl.name, nodes[2]}  # the majority side is intact
    assert set(erlang.nodes()) == set(nodes)  # the controller still has every node
    assert [rpc.call(n, erlang.node, [], 2000) for n in nodes] == nodes
    assert rpc.call(nodes[0], dial, [net.address(1)], 3000) != "ok"  # cut for real
    assert rpc.call(nodes[1], dial, [net.address(0)], 3000) != "ok"
    assert rpc.call(nodes[1], dial, [net.address(2)], 3000) == "ok"

    t0 = time.monotonic()
    net.heal()
    print(f"heal: {_ms(t0):.1f} ms")
    assert rpc.call(nodes[0], dial, [net.address(1)], 3000) == "ok"
    print(f"0 sees after heal: {sorted(cluster.sees(0))} (a lost peer is not redialled)")
    t0 = time.monotonic()
    assert reconnect(nodes) == []
    print(f"reconnect: {_ms(t0):.0f} ms; full mesh after "
          f"{_wait(cluster.full_mesh, 'full mesh after heal'):.0f} ms more")


def test_a_killed_node_restarts_in_its_namespace_and_rejoins(cluster: Cluster) -> None:
    nodes = cluster.nodes()
    _wait(cluster.full_mesh, "full mesh")
    old = cluster.peers[2]
    os_pid = peer.os_pid(old)
    assert rpc.call(nodes[2], os.getpid, [], 2000) == os_pid  # `ip netns exec` exec'd python

    peer.kill(cluster.peers[1], signal.SIGSTOP)  # a signal reaches the node itself
    stopped = peer.os_pid(cluster.peers[1])
    _wait(lambda: _state(stopped) == "T", "SIGSTOP stops the node")
    peer.kill(cluster.peers[1], signal.SIGCONT)
    _wait(lambda: _state(stopped) != "T", "SIGCONT resumes it")

    erlang.monitor_node(nodes[2], True)
    peer.kill(old)  # SIGKILL
    assert erlang.receive(lambda m: m == ("nodedown", nodes[2]), 5000) != erlang.TIMEOUT
    _wait(lambda: nodes[2] not in cluster.sees(0) | cluster.sees(1), "0, 1 see 2 go down")
    peer.stop(old)
    t0 = time.monotonic()
    assert cluster.start(2) == nodes[2]
    print(f"restart node 2: {_ms(t0):.0f} ms")
    assert rpc.call(nodes[2], os.getpid, [], 2000) == peer.os_pid(cluster.peers[2]) != os_pid
    print(f"full mesh after restart: {_wait(cluster.full_mesh, 'mesh after restart'):.0f} ms")


def _state(os_pid: int) -> str:
    with open(f"/proc/{os_pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


def test_delete_removes_everything_even_after_a_failed_create(
        monkeypatch: pytest.MonkeyPatch) -> None:
    net = _created(2)
    assert _leftovers(net)
    net.delete()
    assert _leftovers(net) == []
    net.delete()  # again: nothing to do, no error

    real_batch = netns._batch  # the namespaces' own setup fails, after the links are made

    def failing_batch(commands: dict[Any, list[str]], namespace: Any = None) -> None:
        if None not in commands:
            raise RuntimeError("injected failure")
        real_batch(commands, namespace)

    monkeypatch.setattr(netns, "_batch", failing_batch)
    half = NetnsNetwork(3)
    with pytest.raises(NetnsUnavailable, match="injected failure"):
        half.create()
    assert _leftovers(half) == []
    monkeypatch.undo()

    clash = NetnsNetwork(3)  # a name taken: create refuses, and leaves that one alone
    subprocess.run(["ip", "netns", "add", clash.namespace(1)], check=True, timeout=10)
    try:
        with pytest.raises(NetnsUnavailable, match="exist"):
            clash.create()
        assert _leftovers(clash) == [clash.namespace(1)]
    finally:
        subprocess.run(["ip", "netns", "del", clash.namespace(1)], timeout=10)
