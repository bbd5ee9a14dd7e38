"""Per-thread facts: the process a thread runs, the nodes it bound, and the default node.

Rules of this module:
- It imports nothing from the runtime (types only), so every layer may use it: `_terms`
  to print pids, the scheduler and processes to bind a thread, `_context` above the node.
- The thread-local holds per-thread facts only; nothing in it is shared between nodes.
- `DEFAULT.node` is the one process-wide fact: the node plain threads talk to when they
  bound none (made lazily by `node.default_node`, replaced by `net_kernel.start`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

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


class ThreadState(threading.local):
    """What one thread is doing for the runtime."""

    def __init__(self) -> None:
        self.process: Process | None = None
        self.nodes: list[Node] = []  # the stack of nodes bound with `Node.bound()`
        self.shells: _Shells = _Shells()  # id(node) -> this thread's shell on it
        self.inline: InlineRunner | None = None  # set while this thread leads a link
        self.lend: Process | None = None  # a local call's server, while its request is sent
        self.lent: Callable[[], None] | None = None  # that server's run, to do on this thread


class Default:
    """Holds the default node (None until one is made or set)."""

    __slots__ = ("lock", "node")

    def __init__(self) -> None:
        self.node: Node | None = None
        self.lock = threading.Lock()


state = ThreadState()
DEFAULT = Default()


def current_process() -> Process | None:
    """The process running on this thread, or None on a plain thread."""
    return state.process


@contextmanager
def bind_process(proc: Process) -> Iterator[None]:
    """Within the block, this thread runs as `proc`."""
    previous = state.process
    state.process = proc
    try:
        yield
    finally:
        state.process = previous


def push_node(node: Node) -> None:
    state.nodes.append(node)


def pop_node(node: Node) -> None:
    if state.nodes and state.nodes[-1] is node:
        state.nodes.pop()


def local_node_name() -> str | None:
    """The name of the node this thread talks to, without making a default node."""
    proc = state.process
    if proc is not None:
        return proc.node.name
    if state.nodes:
        return state.nodes[-1].name
    default = DEFAULT.node
    return default.name if default is not None else None
