"""Real faults on real OS-process nodes: SIGKILL, SIGSTOP, partitions (`block_nodes`), and the
global name registry across a healed partition.

Every peer is a `python -m actors.node` OS process (the `peers` fixture). Functions that run
on peers are module-level here, so they travel by reference (`tests.test_dist_faults`).
Measured times are printed (run with -s to see them); the bounds asserted are generous.
"""

from __future__ import annotations

import itertools
import os
import pickle
import signal
import socket
import time
from collections import Counter
from typing import Any

import pytest

from actors import Node, erlang, gen_server, global_, net_kernel, peer, rpc
from actors._terms import Pid
from tests.conftest import COOKIE
from tests.helpers import down_of, no_message, recv, wait_until

QUIET_MS = 300  # "exactly once": nothing more within this after the expected messages
IDLE_MS = 30_000  # processes left behind end themselves after this

_ids = itertools.count(1)


def _ms_since(t0: float) -> float:
    return (time.monotonic() - t0) * 1000.0


def _rpc(node: str, fun: Any, *args: Any, timeout: int = 3000) -> Any:
    """rpc.call that fails the test on a badrpc."""
    result = rpc.call(node, fun, list(args), timeout)
    assert not (type(result) is tuple and result[:1] == ("badrpc",)), (node, fun, result)
    return result


# -- processes used on both sides ------------------------------------------------------------

def _idle() -> None:
    erlang.receive(lambda m: m == "stop", IDLE_MS)


def _idle_for(ms: int) -> None:
    erlang.receive(lambda m: m == "stop", ms)


def _collect(test: Pid, tag: Any, expected: int, within_ms: int = 5000) -> None:
    """Gather `expected` messages (within `within_ms`), then whatever else comes in the next
    QUIET_MS, and send them all to `test` as ("report", tag, [msgs])."""
    got: list[Any] = []
    deadline = time.monotonic() + within_ms / 1000.0
    while len(got) < expected and (left := deadline - time.monotonic()) > 0:
        msg = erlang.receive(None, int(left * 1000) + 1)
        if msg is erlang.TIMEOUT:
            break
        got.append(msg)
    while len(got) < expected + 20:
        msg = erlang.receive(None, QUIET_MS)
        if msg is erlang.TIMEOUT:
            break
        got.append(msg)
    erlang.send(test, ("report", tag, got))


def _watcher(test: Pid, tag: str, remote: list[Pid], monitors: int, link: bool, trap: bool,
             expected: int) -> None:
    """Monitor (`monitors` times each) and/or link to every pid of `remote`, tell the test
    the refs, then report what arrives."""
    if trap:
        erlang.process_flag("trap_exit", True)
    refs = []
    for pid in remote:
        for _ in range(monitors):
            refs.append((erlang.monitor("process", pid), pid))
        if link:
            erlang.link(pid)
    erlang.send(test, ("ready", tag, refs))
    _collect(test, tag, expected)


def _node_watcher(test: Pid, tag: str, node: str) -> None:
    """monitor_node(node); report what arrives (one nodedown expected)."""
    erlang.monitor_node(node, True)
    erlang.send(test, ("ready", tag, erlang.monotonic_time("millisecond")))
    _collect(test, tag, 1, within_ms=8000)


def _nodes_subscriber(test: Pid, tag: str) -> None:
    """net_kernel.monitor_nodes(True); report what arrives (one nodedown expected)."""
    net_kernel.monitor_nodes(True)
    erlang.send(test, ("ready", tag, None))
    _collect(test, tag, 1)


def _forwarder(test: Pid, tag: str, link_to: Pid | None) -> None:
    """Trap exits, link to `link_to` if given, then forward everything to the test as
    ("fwd", tag, msg) -- except ("relay", dest, msg), which it sends on to `dest`, and
    ("history", from, ref), answered with ("history", ref, [every msg forwarded so far])
    (for a node whose messages to the test are lost in a cut)."""
    erlang.process_flag("trap_exit", True)
    if link_to is not None:
        erlang.link(link_to)
    erlang.send(test, ("ready", tag, erlang.self()))
    seen: list[Any] = []
    for _ in range(100_000):
        msg = erlang.receive(None, IDLE_MS)
        if msg is erlang.TIMEOUT:
            return
        if type(msg) is tuple and len(msg) == 3 and msg[0] == "relay":
            erlang.send(msg[1], msg[2])
        elif type(msg) is tuple and len(msg) == 3 and msg[0] == "history":
            erlang.send(msg[1], ("history", msg[2], list(seen)))
        else:
            seen.append(msg)
            erlang.send(test, ("fwd", tag, msg))


def _history(pid: Pid) -> list[Any]:
    """What forwarder `pid` has received (call it from a process on a node it can reach)."""
    ref = erlang.make_ref()
    erlang.send(pid, ("history", erlang.self(), ref))
    reply = erlang.receive(lambda m: type(m) is tuple and m[:2] == ("history", ref), 3000)
    assert reply is not erlang.TIMEOUT
    return reply[2]


def _register_holder(test: Pid, tag: str, name: Any, method: str) -> tuple[str, Pid]:
    """On the node it runs on: a new forwarder process, registered globally as `name`."""
    holder = erlang.spawn(_forwarder, test, tag, None)
    return global_.register_name(name, holder, getattr(global_, method)), holder


def _receiver(test: Pid) -> None:
    """Count ("seq", i) messages until ("done", n); report whether they came 0, 1, 2, ..."""
    expected = 0
    bad: list[Any] = []
    for _ in range(10_000_000):
        msg = erlang.receive(None, 10_000)
        if msg is erlang.TIMEOUT:
            break
        if msg[0] == "done":
            erlang.send(test, ("received", expected, msg[1], bad[:5]))
            return
        if msg[1] != expected:
            bad.append((expected, msg[1]))
        expected = msg[1] + 1
    erlang.send(test, ("received", expected, None, [*bad[:5], "timeout"]))


# -- an out-of-band control channel to a node whose distribution is cut ----------------------

def _agent(test: Pid, tag: str) -> None:
    """A process that obeys the test over a plain localhost socket, so the test can drive a
    node it is cut from: each line is a hex pickle of (fun, args); `fun(*args)` runs in this
    process and its result comes back the same way."""
    net_kernel.monitor_nodes(True)  # for _wait_alone / _wait_nodeup
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(15)
        erlang.send(test, ("agent", tag, server.getsockname()[1]))
        conn, _ = server.accept()
    with conn, conn.makefile("rwb") as f:
        conn.settimeout(20)
        for line in f:
            fun, args = pickle.loads(bytes.fromhex(line.decode().strip()))
            try:
                result: Any = ("ok", fun(*args))
            except Exception as exc:
                result = ("raised", repr(exc))
            f.write(pickle.dumps(result).hex().encode() + b"\n")
            f.flush()


class Agent:
    """The test's end of `_agent`."""

    def __init__(self, node: str, tag: str) -> None:
        erlang.spawn(node, _agent, erlang.self(), tag)
        port = recv(lambda m: m[:2] == ("agent", tag), 5000)[2]
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.file = self.sock.makefile("rwb")

    def __call__(self, fun: Any, *args: Any) -> Any:
        self.file.write(pickle.dumps((fun, args)).hex().encode() + b"\n")
        self.file.flush()
        line = self.file.readline()
        assert line, "the agent is gone"
        status, result = pickle.loads(bytes.fromhex(line.decode().strip()))
        assert status == "ok", result
        return result

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def _wait_alone(within_ms: int) -> list[str]:
    """(In the agent) wait for nodedowns until this node has no connection left."""
    deadline = time.monotonic() + within_ms / 1000.0
    while erlang.nodes() and (left := deadline - time.monotonic()) > 0:
        erlang.receive(lambda m: type(m) is tuple and m[0] == "nodedown", int(left * 1000) + 1)
    return erlang.nodes()


# -- helpers of the test process ---------------------------------------------------------------

def _ready(tag: str, timeout: int = 5000) -> Any:
    return recv(lambda m: type(m) is tuple and m[:2] == ("ready", tag), timeout)[2]


def _report(tag: str, timeout: int = 8000) -> list[Any]:
    return recv(lambda m: type(m) is tuple and m[:2] == ("report", tag), timeout)[2]


def _fwd(tag: str, pred: Any = lambda _: True) -> Any:
    return lambda m: (type(m) is tuple and len(m) == 3 and m[:2] == ("fwd", tag) and pred(m[2]))


def _is_nodedown(node: str) -> Any:
    return lambda m: m == ("nodedown", node)


def _connected(a: str, b: str) -> bool:
    return b in _rpc(a, erlang.nodes)


# -- 1. SIGKILL reaches every link and monitor, exactly once --------------------------------

def test_sigkill_reaches_every_link_and_monitor_exactly_once(peers: Any) -> None:
    ppid, p = peers()
    me = erlang.self()
    remote = [erlang.spawn(p, _idle) for _ in range(18)]
    # tag: (monitors per remote pid, link, trap). Non-trapping linkers die.
    modes = {"mon": (1, False, False), "mon2": (2, False, True), "link_trap": (0, True, True),
             "both_trap": (1, True, True), "link": (0, True, False), "both": (1, True, False)}
    watchers: dict[str, tuple[Pid, Any, list[Pid]]] = {}
    for i, (tag, (monitors, link, trap)) in enumerate(modes.items()):
        mine = remote[3 * i:3 * i + 3]
        expected = 3 * monitors + (3 if link and trap else 0)
        pid, mref = erlang.spawn_monitor(_watcher, me, tag, mine, monitors, link, trap, expected)
        watchers[tag] = (pid, mref, mine)
    refs = {tag: _ready(tag) for tag in modes}
    erlang.spawn(_node_watcher, me, "node", p)
    erlang.spawn(_nodes_subscriber, me, "nodes")
    _ready("node")
    _ready("nodes")
    assert _rpc(p, erlang.node) == p  # everything above has reached the peer
    no_message(lambda m: type(m) is tuple and m[0] == "DOWN", 0)  # all watchers alive

    peer.kill(ppid)

    for tag, (_, link, trap) in modes.items():
        pid, mref, mine = watchers[tag]
        if link and not trap:
            down = recv(down_of(mref), 3000)
            assert down[4] == "noconnection", (tag, down)
            continue
        got = _report(tag)
        downs = [m for m in got if m[0] == "DOWN"]
        exits = [m for m in got if m[0] == "EXIT"]
        assert len(downs) + len(exits) == len(got), (tag, got)
        assert sorted((m[1], m[3]) for m in downs) == sorted(refs[tag]), (tag, got)
        assert all(m[2:] == ("process", m[3], "noconnection") for m in downs), (tag, got)
        if link:
            assert Counter(exits) == Counter(("EXIT", r, "noconnection") for r in mine), (tag, got)
        else:
            assert exits == [], (tag, got)
        assert recv(down_of(mref), 3000)[4] == "normal"  # it reported and ended
    assert _report("node") == [("nodedown", p)]
    assert _report("nodes") == [("nodedown", p)]


# -- 2. detection time after SIGKILL ------------------------------------------------------------

def test_sigkill_detected_at_once_and_late_monitor_fires_at_once(peers: Any) -> None:
    ppid, p = peers()
    pid = erlang.spawn(p, _idle)
    ref = erlang.monitor("process", pid)
    assert _rpc(p, erlang.node) == p
    t0 = time.monotonic()
    peer.kill(ppid)
    down = recv(down_of(ref), 3000)
    ms = _ms_since(t0)
    print(f"\nSIGKILL -> DOWN noconnection: {ms:.1f} ms")
    assert down == ("DOWN", ref, "process", pid, "noconnection")
    assert ms < 1000

    t1 = time.monotonic()
    late = erlang.monitor("process", pid)
    down = recv(down_of(late), 1000)
    print(f"monitor on a pid of the dead node -> DOWN: {_ms_since(t1):.1f} ms")
    assert down == ("DOWN", late, "process", pid, "noconnection")
    assert _ms_since(t1) < 500
    no_message(down_of(ref), 0)


# -- 3. SIGSTOP: the heartbeat notices ------------------------------------------------------------

def _settled(p: str) -> None:
    """Wait until peer `p` has taken in its connection to us: it lists us in nodes() and its
    global name server has handled its nodeup. (A peer stopped before that would, once
    continued, see us up and then down, and its name server would dial us again to sync.)"""
    me = erlang.node()
    wait_until(lambda: me in _rpc(p, erlang.nodes), 3)
    assert _rpc(p, gen_server.call, "global_name_server", "settle") == ("error", "bad_request")


def _stop_and_time(ppid: Pid, p: str) -> float:
    """SIGSTOP the peer; ms until ("nodedown", p) reaches the caller (which monitors p)."""
    t0 = time.monotonic()
    peer.kill(ppid, signal.SIGSTOP)
    try:
        recv(_is_nodedown(p), 5000)
        return _ms_since(t0)
    finally:
        peer.kill(ppid, signal.SIGCONT)


def test_sigstop_nodedown_comes_from_the_heartbeat_and_peer_reconnects(peers: Any) -> None:
    ppid, p = peers()
    ticktime = net_kernel.get_net_ticktime()
    _settled(p)
    erlang.monitor_node(p, True)
    ms = _stop_and_time(ppid, p)
    print(f"\nSIGSTOP -> nodedown (net_ticktime {ticktime} ms): {ms:.1f} ms")
    assert ticktime / 2 <= ms < 2000
    no_message(_is_nodedown(p), QUIET_MS)
    assert p not in erlang.nodes()

    assert net_kernel.connect_node(p) is True
    assert _rpc(p, erlang.node) == p
    assert p in erlang.nodes()


def test_sigstop_with_a_short_net_ticktime_is_detected_sooner() -> None:
    n = net_kernel.start_node(f"ftick{os.getpid()}x{next(_ids)}@127.0.0.1", cookie=COOKIE,
                              net_ticktime=300)
    try:
        with n.bound():
            result = peer.start(None, net_ticktime=300)
            assert result[0] == "ok", result
            ppid, p = result[1], result[2]
            try:
                assert net_kernel.get_net_ticktime() == 300
                assert _rpc(p, net_kernel.get_net_ticktime) == 300
                _settled(p)
                erlang.monitor_node(p, True)
                ms = _stop_and_time(ppid, p)
                print(f"\nSIGSTOP -> nodedown (net_ticktime 300 ms): {ms:.1f} ms")
                assert 150 <= ms < 1000
                assert net_kernel.connect_node(p) is True
                assert _rpc(p, erlang.node) == p
            finally:
                peer.stop(ppid)
    finally:
        n.stop()


# -- 4. a partition between two peers ------------------------------------------------------------

def test_partition_between_peers_heartbeat_loss_and_heal(peers: Any) -> None:
    _, a = peers()
    _, b = peers()
    me = erlang.self()
    wait_until(lambda: _connected(a, b) and _connected(b, a), 5)
    erlang.spawn(b, _forwarder, me, "sink", None)
    sink = _ready("sink")
    erlang.spawn(a, _forwarder, me, "linker", sink)
    linker = _ready("linker")
    erlang.send(linker, ("relay", sink, ("before", 1)))
    recv(_fwd("sink", lambda m: m == ("before", 1)))  # the link is in place on b by now
    erlang.spawn(a, _node_watcher, me, "a_sees_b", b)
    erlang.spawn(b, _node_watcher, me, "b_sees_a", a)
    _ready("a_sees_b")
    _ready("b_sees_a")

    t0 = time.monotonic()
    assert _rpc(a, net_kernel.block_nodes, [b]) == "ok"
    assert _rpc(b, net_kernel.block_nodes, [a]) == "ok"
    erlang.send(linker, ("relay", sink, ("lost", 1)))  # the cable is cut, not yet noticed

    assert _report("a_sees_b") == [("nodedown", b)]
    ms = _ms_since(t0)
    assert _report("b_sees_a") == [("nodedown", a)]
    print(f"\npartition -> nodedown on both sides: {ms:.1f} ms (first side)")
    ticktime = _rpc(a, net_kernel.get_net_ticktime)
    assert ms >= ticktime / 2  # the heartbeat, not a socket error
    recv(_fwd("linker", lambda m: m == ("EXIT", sink, "noconnection")))
    recv(_fwd("sink", lambda m: m == ("EXIT", linker, "noconnection")))
    erlang.send(linker, ("relay", sink, ("lost", 2)))  # after the nodedown: still cut
    assert not _connected(a, b) and not _connected(b, a)
    assert a in erlang.nodes() and b in erlang.nodes()  # the test node sees both all along

    assert _rpc(a, net_kernel.unblock_nodes, [b]) == "ok"
    assert _rpc(b, net_kernel.unblock_nodes, [a]) == "ok"
    assert _rpc(a, net_kernel.connect_node, b, timeout=6000) is True
    wait_until(lambda: _connected(b, a), 3)
    erlang.send(linker, ("relay", sink, ("after", 1)))
    recv(_fwd("sink", lambda m: m == ("after", 1)))
    no_message(_fwd("sink", lambda m: type(m) is tuple and m[0] == "lost"), QUIET_MS)
    no_message(_fwd("linker", lambda m: m[0] == "EXIT"), 0)  # one EXIT each, no more
    no_message(_fwd("sink", lambda m: m[0] == "EXIT"), 0)


# -- 5. global names across a healed partition ------------------------------------------

def _global_conflict(peers: Any, method: str, *, resolver: str = "a",
                     staged: bool = False) -> tuple[str, str, Pid, Pid, Any, Agent]:
    """T, A and B connected; then B is cut from both (blocked on every side) and the same name
    is registered on A's side (from A) and on B (from B); then everything heals, B connecting
    to A and to T. Returns (a, b, holder_a, holder_b, name, agent on b).

    The clash is resolved by the node with the smaller name: `resolver` says which peer
    that is. `staged` heals A<->B first and T<->B only once A and B agree."""
    run = f"{os.getpid()}x{next(_ids)}"
    first, second = ("ga", "gb") if resolver == "a" else ("gb", "ga")
    _, a = peers(f"{first}a{run}")
    _, b = peers(f"{second}b{run}")
    assert min(a, b, erlang.node()) == (a if resolver == "a" else b)
    t = erlang.node()
    me = erlang.self()
    name = ("conflict", method, run)
    wait_until(lambda: _connected(a, b) and _connected(b, a), 5)
    agent = Agent(b, "b")
    erlang.monitor_node(b, True)

    agent(net_kernel.block_nodes, [a, t])  # B alone: cut on every side
    assert _rpc(a, net_kernel.block_nodes, [b]) == "ok"
    net_kernel.block_nodes([b])
    recv(_is_nodedown(b), 5000)
    wait_until(lambda: _rpc(a, erlang.nodes) == [t], 5)
    assert agent(_wait_alone, 5000) == []

    result_a, holder_a = _rpc(a, _register_holder, me, "holder_a", name, method, timeout=8000)
    assert result_a == "yes"
    result_b, holder_b = agent(_register_holder, me, "holder_b", name, method)
    assert result_b == "yes"
    _ready("holder_a")
    assert global_.whereis_name(name) == holder_a
    assert agent(global_.whereis_name, name) == holder_b

    if staged:
        assert _rpc(a, net_kernel.unblock_nodes, None) == "ok"
        agent(net_kernel.unblock_nodes, [a])
        assert agent(net_kernel.connect_node, a) is True
        wait_until(lambda: _rpc(a, global_.whereis_name, name)
                   == agent(global_.whereis_name, name), 5)
        net_kernel.unblock_nodes(None)
        agent(net_kernel.unblock_nodes, None)
        assert agent(net_kernel.connect_node, t) is True
    else:
        net_kernel.unblock_nodes(None)
        assert _rpc(a, net_kernel.unblock_nodes, None) == "ok"
        agent(net_kernel.unblock_nodes, None)
        assert agent(net_kernel.connect_node, a) is True
        assert agent(net_kernel.connect_node, t) is True
    wait_until(lambda: sorted(erlang.nodes()) == sorted([a, b]), 5)
    return a, b, holder_a, holder_b, name, agent


def _where_everywhere(a: str, b: str, name: Any) -> list[Any]:
    return [global_.whereis_name(name), _rpc(a, global_.whereis_name, name),
            _rpc(b, global_.whereis_name, name)]


def _agreed(a: str, b: str, name: Any, expected: Any) -> bool:
    return _where_everywhere(a, b, name) == [expected] * 3


def _dead_of(refs: dict[Any, Pid]) -> Any:
    return lambda m: type(m) is tuple and len(m) == 5 and m[0] == "DOWN" and m[1] in refs


def test_global_conflict_after_heal_random_exit_name_keeps_one(peers: Any) -> None:
    a, b, holder_a, holder_b, name, agent = _global_conflict(peers, "random_exit_name")
    try:
        refs = {erlang.monitor("process", pid): pid for pid in (holder_a, holder_b)}
        down = recv(_dead_of(refs), 5000)
        loser = refs[down[1]]
        assert down[4] in ("killed", "noproc"), down
        survivor = holder_b if loser == holder_a else holder_a
        no_message(_dead_of(refs), QUIET_MS)
        wait_until(lambda: _agreed(a, b, name, survivor), 5)
        assert _rpc(survivor.node, erlang.is_process_alive, survivor) is True
        assert _rpc(loser.node, erlang.is_process_alive, loser) is False
        no_message(_fwd("holder_a", lambda m: m[0] == "global_name_conflict"), 0)
        no_message(_fwd("holder_b", lambda m: m[0] == "global_name_conflict"), 0)
    finally:
        agent.close()


def _check_notify_all(peers: Any, **options: Any) -> None:
    a, b, holder_a, holder_b, name, agent = _global_conflict(peers, "notify_all_name", **options)
    try:
        conflict_a = ("global_name_conflict", name, holder_b)
        conflict_b = ("global_name_conflict", name, holder_a)
        recv(_fwd("holder_a", lambda m: m == conflict_a), 5000)
        wait_until(lambda: conflict_b in agent(_history, holder_b), 5)
        wait_until(lambda: _agreed(a, b, name, "undefined"), 3)
        assert _rpc(a, erlang.is_process_alive, holder_a) is True
        assert _rpc(b, erlang.is_process_alive, holder_b) is True
        no_message(_fwd("holder_a", lambda m: m[0] == "global_name_conflict"), QUIET_MS)
        assert _rpc(a, _history, holder_a) == [conflict_a]
        assert agent(_history, holder_b) == [conflict_b]
    finally:
        agent.close()


@pytest.mark.parametrize("staged", [False, True], ids=["heal_at_once", "heal_a_b_first"])
def test_global_conflict_after_heal_notify_all_name_unregisters(peers: Any, staged: bool) -> None:
    _check_notify_all(peers, staged=staged)


def test_global_conflict_resolution_reaches_a_node_that_reconnects_later(peers: Any) -> None:
    """B (the resolver: the smaller name) meets A first, resolves the clash, and tells A;
    T still maps the name to A's holder, and meeting B later does not change that."""
    _check_notify_all(peers, resolver="b", staged=True)


def test_global_conflict_after_heal_random_notify_name_keeps_both_alive(peers: Any) -> None:
    a, b, holder_a, holder_b, name, agent = _global_conflict(peers, "random_notify_name")
    try:
        msg = recv(lambda m: (_fwd("holder_a")(m) or _fwd("holder_b")(m))
                   and m[2] == ("global_name_conflict", name), 5000)
        loser, survivor = ((holder_a, holder_b) if msg[1] == "holder_a"
                           else (holder_b, holder_a))
        wait_until(lambda: _agreed(a, b, name, survivor), 5)
        assert _rpc(a, erlang.is_process_alive, holder_a) is True
        assert _rpc(b, erlang.is_process_alive, holder_b) is True
        other = "holder_b" if msg[1] == "holder_a" else "holder_a"
        no_message(_fwd(other, lambda m: m[0] == "global_name_conflict"), QUIET_MS)
        no_message(_fwd(msg[1], lambda m: m[0] == "global_name_conflict"), 0)
        assert loser != survivor
    finally:
        agent.close()


# -- 6. a name dies with its node ------------------------------------------------------------

def test_global_name_is_freed_when_its_node_is_killed(peers: Any) -> None:
    ppid, p = peers()
    name = ("doomed", next(_ids))
    result, holder = _rpc(p, _register_holder, erlang.self(), "doomed", name,
                          "random_exit_name", timeout=5000)
    assert result == "yes"
    assert global_.whereis_name(name) == holder
    peer.kill(ppid)
    wait_until(lambda: global_.whereis_name(name) == "undefined", 3)
    assert name not in global_.registered_names()


# -- 7. a dying bystander costs nothing ------------------------------------------------------------

def test_killing_one_peer_loses_no_message_to_another(peers: Any) -> None:
    _, a = peers()
    pb, b = peers()
    wait_until(lambda: _connected(a, b), 5)
    receiver = erlang.spawn(a, _receiver, erlang.self())
    erlang.monitor_node(b, True)
    sent = 0
    killed_at = None
    t0 = time.monotonic()
    while (elapsed := time.monotonic() - t0) < 1.5 and sent < 2_000_000:
        erlang.send(receiver, ("seq", sent))
        sent += 1
        if killed_at is None and elapsed > 0.3:
            peer.kill(pb)
            killed_at = sent
    erlang.send(receiver, ("done", sent))
    recv(_is_nodedown(b), 3000)
    report = recv(lambda m: type(m) is tuple and m[0] == "received", 20_000)
    print(f"\nsent {sent} messages, peer b killed after {killed_at}")
    assert killed_at is not None and 0 < killed_at < sent
    assert report == ("received", sent, sent, []), report
    assert a in erlang.nodes()


# -- a quick remote process's DOWN / exit signal must not outrun the spawn reply -----------------

def _exit_with(reason: Any) -> None:
    erlang.exit(reason)


@pytest.fixture
def descheduled_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    """The parent of a remote spawn loses the CPU for 100 ms right after it takes the spawn
    reply from its mailbox -- as any thread can -- so the new process's DOWN or exit signal
    reaches the node first. (A regression: the link/monitor used to be recorded by the parent
    after that point, and the signal was dropped: rpc.call lost up to 9% of its results on a
    busy machine.) Test-side only: it wraps `Process.receive`, changing nothing else."""
    from actors._process import Process

    original = Process.receive

    def receive(self: Any, pred: Any, timeout: Any, *args: Any, **kwargs: Any) -> Any:
        msg = original(self, pred, timeout, *args, **kwargs)
        if type(msg) is tuple and msg and msg[0] == "$spawn_reply":
            time.sleep(0.1)
        return msg

    monkeypatch.setattr(Process, "receive", receive)


def test_rpc_call_never_loses_the_result_of_a_quick_function(
        peers: Any, descheduled_parent: None) -> None:
    _, p = peers()
    assert rpc.call(p, erlang.node, [], 1000) == p


def test_spawn_link_never_loses_the_exit_of_a_quick_remote_process(
        peers: Any, descheduled_parent: None) -> None:
    _, p = peers()
    erlang.process_flag("trap_exit", True)
    pid = erlang.spawn_link(p, _exit_with, "done")
    recv(lambda m: m == ("EXIT", pid, "done"), 1000)


def test_spawn_monitor_of_a_slower_remote_process_delivers_its_down(
        peers: Any, descheduled_parent: None) -> None:
    """With the same 100 ms pause, a process that outlives it is seen to end too."""
    _, p = peers()
    pid, ref = erlang.spawn_monitor(p, _idle_for, 300)
    assert recv(down_of(ref), 3000) == ("DOWN", ref, "process", pid, "normal")


def test_partition_api_cuts_two_sets_both_ways_and_heals(dist_node: Node, peers: Any) -> None:
    """net_kernel.partition/heal, run from a controller outside both sides."""
    _, a = peers()
    _, b = peers()
    wait_until(lambda: b in rpc.call(a, erlang.nodes))
    me = erlang.self()

    def watch(node: str) -> None:
        erlang.monitor_node(node, True)
        erlang.send(me, ("watching", erlang.node()))
        erlang.send(me, ("seen", erlang.node(), erlang.receive()))

    erlang.spawn(a, watch, b)
    erlang.spawn(b, watch, a)
    recv(lambda m: m == ("watching", a))
    recv(lambda m: m == ("watching", b))
    assert net_kernel.partition([a], [b]) == "ok"
    assert recv(lambda m: m[:2] == ("seen", a), timeout=5000)[2] == ("nodedown", b)
    assert recv(lambda m: m[:2] == ("seen", b), timeout=5000)[2] == ("nodedown", a)
    assert sorted(erlang.nodes()) == sorted([a, b])  # the controller still reaches both
    assert net_kernel.heal([a], [b]) == "ok"
    wait_until(lambda: b in rpc.call(a, erlang.nodes) and a in rpc.call(b, erlang.nodes))
