"""The cluster lab: what the demo, the Jepsen harness, the benchmarks and the tests share to
run nodes in OS processes on loopback and to cut them apart.

- `world`: `Lab` (private port mapper, random cookie, peers, a temporary data directory,
  and their clean-up), `private_node` (the same for a short run without peers of its
  own), `call_on`, `wait_for`, `free_port`, `peer_pythonpath`, `leader_views`;
- `node`: (on a peer) the functions the lab calls on its nodes;
- `agent`: `Agent`, a hand on a node that a partition cuts the controller from;
- `partition`: `cut` and `heal`;
- `tools`: the tool registry the lab's nodes run the service with.
"""

from __future__ import annotations

from .agent import Agent
from .partition import cut, heal
from .world import (
    BOOT_MS,
    ROOT,
    Lab,
    accepts,
    call_on,
    children_of,
    elapsed_ms,
    free_port,
    leader_views,
    peer_pythonpath,
    private_node,
    server,
    wait_for,
)

__all__ = ["BOOT_MS", "ROOT", "Agent", "Lab", "accepts", "call_on", "children_of", "cut",
           "elapsed_ms", "free_port", "heal", "leader_views", "peer_pythonpath", "private_node",
           "server", "wait_for"]
