"""Which process is running on this thread, and which node a plain thread talks to.

Rules of this module:
- A worker thread is bound to the process it runs (`_thread.bind_process`).
- A plain thread talks to the node it bound with `Node.bound()`, else to the default node,
  and gets a "shell" process on that node on first use, as the Erlang shell has one.
- Nothing here is shared between nodes: the thread state (`_thread`) holds per-thread
  facts only. This module sits above `node`; the layers below use `_thread` directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._terms import ProcessKilled
from ._thread import bind_process, current_process, pop_node, push_node, state
from .node import default_node

if TYPE_CHECKING:
    from ._process import Process
    from .node import Node

__all__ = ["bind_process", "current_node", "current_process", "pop_node", "push_node",
           "self_process"]

_state = state  # the thread state, as `_gen` and the tests name it


def current_node() -> Node:
    """The node of the running process, else the node bound to this thread, else the default."""
    proc = state.process
    if proc is not None:
        return proc.node
    if state.nodes:
        return state.nodes[-1]
    return default_node()


def self_process() -> Process:
    """The calling process; a plain thread gets (or renews) its shell process.

    A killed process's abandoned thread unwinds here, at its next runtime call."""
    proc = state.process
    if proc is not None:
        if not proc.alive:
            raise ProcessKilled()
        return proc
    node = current_node()
    shell = state.shells.get(id(node))
    if shell is not None and not shell.alive and not shell.exit_seen:
        shell._unwind()  # the shell died between calls: say so once, as Erlang's shell does
    if shell is None or not shell.alive or shell.node is not node:
        shell = node.new_shell()
        state.shells[id(node)] = shell
    return shell
