"""Helpers for consensus tests on real node OS processes.

Functions marked (on a peer) run on peer nodes, by reference: peers import this module.
`Agent` drives a peer over a plain localhost socket, so a test can still act on a node its
own node is cut from by a partition.
"""

from __future__ import annotations

import importlib
import socket
import time
from collections.abc import Callable
from typing import Any

from actors import Pid, erlang, net_kernel, rpc
from actors.consensus import app, client
from actors.consensus.client import SERVER_NAME
from demos._demo_node import seal, unseal  # the agent's lines: HMAC'd with the cookie
from tests.helpers import recv, wait_until

Peers = Callable[..., tuple[Pid, str]]


def server(node: str) -> tuple[str, str]:
    return (SERVER_NAME, node)


def status(node: str) -> Any:
    return client.get_status(server(node))


def start_app(node: str, mode: str = "poc") -> None:
    result = rpc.call(node, "actors.consensus.app", "start", [mode], 10000)
    assert result[0] == "ok", result


def start_cluster(peers: Peers, count: int) -> tuple[list[Pid], list[str]]:
    """`count` peers, each running the service; returns once they agree on one leader."""
    started = [peers() for _ in range(count)]
    nodes = [node for _, node in started]
    me, module = erlang.self(), __name__
    for node in nodes:  # import this module there first (for functions passed by reference)
        erlang.spawn(node, lambda: erlang.send(me, ("loaded", importlib.import_module(
            module).__name__)))
        recv(lambda m: type(m) is tuple and m[0] == "loaded", 20_000)
    for node in nodes:
        start_app(node)
    wait_converged(nodes)
    return [pid for pid, _ in started], nodes


def converged(nodes: list[str]) -> tuple[str, Pid] | None:
    """(leader's node, leader pid) if exactly one node leads and every other follows it."""
    statuses = [status(n) for n in nodes]
    if not all(type(s) is dict for s in statuses):
        return None
    leaders = [s for s in statuses if s["role"] == "leader"]
    if len(leaders) != 1:
        return None
    pid = leaders[0]["leader_pid"]
    if any(s["leader_pid"] != pid for s in statuses):
        return None
    return leaders[0]["node"], pid


def wait_converged(nodes: list[str], timeout: float = 10.0) -> tuple[str, Pid]:
    found: list[tuple[str, Pid]] = []

    def check() -> bool:
        result = converged(nodes)
        if result is not None:
            found.append(result)
        return result is not None

    wait_until(check, timeout, step=0.02)
    return found[-1]


# -- (on a peer) --------------------------------------------------------------------------------

def converged_within(side: list[str], within_ms: int) -> Pid | None:
    """(on a peer) Wait until the nodes of `side` agree on one leader among them."""
    deadline = time.monotonic() + within_ms / 1000.0
    while time.monotonic() < deadline:
        found = converged(side)
        if found is not None and found[0] in side:
            return found[1]
        erlang.receive(lambda _m: False, 20)
    return None


def down_reason(ref: Any, within_ms: int) -> Any:
    """(on a peer) The reason of the DOWN for `ref`, or "no_down"."""
    msg = erlang.receive(lambda m: type(m) is tuple and m[:2] == ("DOWN", ref), within_ms)
    return "no_down" if msg is erlang.TIMEOUT else msg[4]


def local_audit() -> Any:
    """(on a peer) This node's own AuditLog, whatever the role of its server."""
    from actors.consensus import audit_log

    return audit_log.query(audit_log.NAME)


def stop_app() -> Any:
    """(on a peer)"""
    return app.stop()


def on(node: str, fun: Callable[..., Any], *args: Any) -> Any:
    """(on a peer) fun(*args) on `node`: here, or by rpc from here."""
    if node == erlang.node():
        return fun(*args)
    return rpc.call(node, fun, list(args), 5000)


# -- a partition with the controller on one side ------------------------------------------------
# net_kernel.partition/heal cannot be run from a node on one of the sides (see
# test_poc_split_brain), so the test cuts its own side itself and the other through an agent.

def _block(side_a: list[str], side_b: list[str], agent: Agent) -> None:
    for node in side_a:
        assert on(node, net_kernel.block_nodes, side_b) == "ok"
    for node in side_b:
        assert agent(on, node, net_kernel.block_nodes, side_a) == "ok"


def cut(side_a: list[str], side_b: list[str], agent: Agent, last: str) -> None:
    """Cut side A (this node among them) from side B, both ways; the links to A's node
    `last` only once side B has seen every other node of A go down.

    Why `last`: a send to a node that is blocked and already down is dropped without a
    nodedown, so a monitor set then never fires (see test_poc_split_brain). Side B's
    election starts when it sees the leader's node go down; if another node of side A
    were still in B's nodes() then, global's lock request to it could wait 5 s for an
    answer that never comes. Cutting the leader's node last closes that window."""
    first = [n for n in side_a if n != last]
    _block(first, side_b, agent)
    for node in side_b:
        assert agent(on, node, nodes_gone, first, 5000) is True
    _block([last], side_b, agent)


def nodes_gone(names: list[str], within_ms: int) -> bool:
    """(on a peer) Wait until none of `names` is in this node's nodes()."""
    deadline = time.monotonic() + within_ms / 1000.0
    while any(n in erlang.nodes() for n in names):
        if time.monotonic() >= deadline:
            return False
        erlang.receive(lambda _m: False, 10)
    return True


def heal(side_a: list[str], side_b: list[str], agent: Agent) -> None:
    """Undo `cut` and reconnect every pair across it."""
    for node in side_b:
        assert agent(on, node, net_kernel.unblock_nodes, side_a) == "ok"
    for node in side_a:
        assert on(node, net_kernel.unblock_nodes, side_b) == "ok"
    for node in side_a:
        for other in side_b:
            assert on(node, net_kernel.connect_node, other) is True


# -- an out-of-band control channel ----------------------------------------------------------------

def _agent(test: Pid) -> None:
    """(on a peer) Obey the test over a localhost socket: each line is an authenticated
    (see `demos._demo_node.seal`) pickle of (fun, args); fun(*args) runs in this process
    and its result comes back the same way."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(15)
        erlang.send(test, ("agent", listener.getsockname()[1]))
        conn, _ = listener.accept()
    with conn, conn.makefile("rwb") as f:
        conn.settimeout(30)
        for line in f:
            fun, args = unseal(line)
            try:
                result: Any = ("ok", fun(*args))
            except Exception as exc:
                result = ("raised", repr(exc))
            f.write(seal(result))
            f.flush()


class Agent:
    """The test's end of `_agent`: `agent(fun, *args)` runs fun(*args) in a process on the
    agent's node and returns the result."""

    def __init__(self, node: str) -> None:
        erlang.spawn(node, _agent, erlang.self())
        port = recv(lambda m: type(m) is tuple and m[0] == "agent", 10_000)[1]
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.file = self.sock.makefile("rwb")

    def __call__(self, fun: Callable[..., Any], *args: Any) -> Any:
        self.file.write(seal((fun, args)))
        self.file.flush()
        line = self.file.readline()
        assert line, "the agent is gone"
        outcome, result = unseal(line)
        assert outcome == "ok", result
        return result

    def close(self) -> None:
        self.file.close()
        self.sock.close()


# -- Raft mode ----------------------------------------------------------------------------------

def start_raft_app(nodes: list[str], data_dir: str) -> Any:
    """(on a peer) Start the service in Raft mode, a member of the cluster of `nodes`."""
    return app.start("raft", nodes=nodes, data_dir=data_dir)


def start_raft_cluster(peers: Peers, count: int, data_root: Any,
                       names: list[str] | None = None) -> tuple[list[Pid], list[str]]:
    """`count` peers running the service in Raft mode; returns once one leads."""
    started = [peers(names[i] if names else None) for i in range(count)]
    nodes = [node for _, node in started]
    for node in nodes:
        result = rpc.call(node, start_raft_app, [nodes, str(data_root / node)], 15000)
        assert result[0] == "ok", result
    wait_converged(nodes, timeout=15.0)
    return [pid for pid, _ in started], nodes
