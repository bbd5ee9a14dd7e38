"""Which process is running on this thread, and which node a plain thread talks to.

Rules of this module:
- A worker thread is bound to the process it runs (`bind_process`).
- A plain thread talks to the node it bound with `Node.bound()`, else to the default node,
  and gets a "shell" process on that node on first use, as the Erlang shell has one.
- Nothing here is shared between nodes: the thread-local holds per-thread facts only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from . import _terms
from ._terms import ProcessKilled

if TYPE_CHECKING:
    from ._inline import InlineRunner
    from ._process import Process
    from .node import Node


class _Shells(dict[int, "Process"]):
    """A thread's shell processes, one per node. They exit "normal" when the thread ends."""

    def __del__(self) -> None:
        for shell in list(self.values()):
            try:
                shell.node.exit_process(shell, "normal")
            except Exception:  # interpreter shutdown: nothing left to tell
                pass


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.process: Process | None = None
        self.nodes: list[Node] = []  # the stack of nodes bound with `Node.bound()`
        self.shells: _Shells = _Shells()  # id(node) -> this thread's shell on it
        self.inline: InlineRunner | None = None  # set while this thread leads a link
        self.lend: Process | None = None  # a local call's server, while its request is sent
        self.lent: Callable[[], None] | None = None  # that server's run, to do on this thread


_state = _ThreadState()


def _default_node() -> Node:
    global _default_node
    from .node import default_node

    _default_node = default_node  # later calls skip the import
    return default_node()


def current_process() -> Process | None:
    """The process running on this thread, or None on a plain thread."""
    return _state.process


@contextmanager
def bind_process(proc: Process) -> Iterator[None]:
    previous = _state.process
    _state.process = proc
    try:
        yield
    finally:
        _state.process = previous


def current_node() -> Node:
    """The node of the running process, else the node bound to this thread, else the default."""
    proc = _state.process
    if proc is not None:
        return proc.node
    if _state.nodes:
        return _state.nodes[-1]
    return _default_node()


def push_node(node: Node) -> None:
    _state.nodes.append(node)


def pop_node(node: Node) -> None:
    if _state.nodes and _state.nodes[-1] is node:
        _state.nodes.pop()


def self_process() -> Process:
    """The calling process; a plain thread gets (or renews) its shell process.

    A killed process's abandoned thread unwinds here, at its next runtime call."""
    proc = _state.process
    if proc is not None:
        if not proc.alive:
            raise ProcessKilled()
        return proc
    node = current_node()
    shell = _state.shells.get(id(node))
    if shell is not None and not shell.alive and not shell.exit_seen:
        shell._unwind()  # the shell died between calls: say so once, as Erlang's shell does
    if shell is None or not shell.alive or shell.node is not node:
        shell = node.new_shell()
        _state.shells[id(node)] = shell
    return shell


def _local_node_name() -> str | None:
    proc = _state.process
    if proc is not None:
        return proc.node.name
    if _state.nodes:
        return _state.nodes[-1].name
    from .node import existing_default_node

    default = existing_default_node()
    return default.name if default is not None else None


_terms._local_node_name = _local_node_name
