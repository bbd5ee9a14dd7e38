"""Helpers for consensus tests on real node OS processes.

Functions marked (on a peer) run on peer nodes, by reference: peers import this module.
`Agent` drives a peer over a plain localhost socket, so a test can still act on a node its
own node is cut from by a partition.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import Any

from actors import Pid, erlang, rpc
from actors.consensus import app, client
from actors.consensus.client import SERVER_NAME
from demos.lab import leader_views
from tests.helpers import recv

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
    deadline = time.monotonic() + timeout
    while (result := converged(nodes)) is None:
        if time.monotonic() >= deadline:
            raise AssertionError(f"no one leader agreed within {timeout} s:\n{leader_views(nodes)}")
        time.sleep(0.02)
    return result


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


# -- a partition with the controller on one side ------------------------------------------------
# The test acts on side B through an agent (`demos.lab.Agent`), since it is cut from it; `cut`
# and `heal` are the lab's (`demos.lab.partition`).


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
