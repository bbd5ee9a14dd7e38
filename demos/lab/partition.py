"""A partition with this node on side A (`cut`, `heal`), acted on across the cut through
an `Agent` on side B.
"""

from __future__ import annotations

from typing import Any

from actors import erlang, net_kernel, rpc

from . import node as on_peer
from .agent import Agent

__all__ = ["cut", "heal"]


def _here_or_rpc(node: str, fun: Any, *args: Any) -> Any:
    return fun(*args) if node == erlang.node() else rpc.call(node, fun, list(args), 5000)


def _block(side_a: list[str], side_b: list[str], agent: Agent) -> None:
    for node in side_a:
        _expect(_here_or_rpc(node, net_kernel.block_nodes, side_b), node)
    for node in side_b:
        _expect(agent(on_peer.on, node, net_kernel.block_nodes, side_a), node)


def _expect(result: Any, node: str) -> None:
    if result != "ok":
        raise RuntimeError(f"partition: {node} answered {result!r}")


def cut(side_a: list[str], side_b: list[str], agent: Agent, last: str) -> None:
    """Cut side A (this node among them) from side B, both ways; A's node `last` (the POC
    leader's) only once side B has seen the rest of A go down, so that global's locks on
    side B never wait on a node of A that B still believes up."""
    first = [n for n in side_a if n != last]
    _block(first, side_b, agent)
    for node in side_b:
        if agent(on_peer.on, node, on_peer.nodes_gone, first, 5000) is not True:
            raise RuntimeError(f"partition: {node} still sees {first}")
    _block([last], side_b, agent)


def heal(side_a: list[str], side_b: list[str], agent: Agent) -> list[tuple[str, str]]:
    """Undo `cut` (RuntimeError if a node refuses to unblock) and reconnect every pair
    across it: the pairs (node of A, node of B) whose `connect_node` did not answer True.
    The demo carries on whatever that is; a test asserts it is []."""
    for node in side_b:
        _expect(agent(on_peer.on, node, net_kernel.unblock_nodes, side_a), node)
    for node in side_a:
        _expect(_here_or_rpc(node, net_kernel.unblock_nodes, side_b), node)
    return [(node, other) for node in side_a for other in side_b
            if _here_or_rpc(node, net_kernel.connect_node, other) is not True]
