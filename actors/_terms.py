"""Erlang terms that have no Python twin: pids, references, the exit exceptions.

Rules of this module:
- `Pid` and `Ref` are immutable, hashable and picklable. Each carries its node's name; a
  pid also carries its node's creation (incarnation).
- They print like Erlang's: `<0.85.0>` and `#Ref<0.0.0.7>`. The first number is 0 on the
  node the printing thread is bound to, and a stable small number for any other node.
- `Exit` is how an exit reaches Python code; `.reason` is the Erlang reason term.
"""

from __future__ import annotations

import zlib
from typing import Any, final

from ._thread import local_node_name


def _node_number(node: str) -> int:
    if node == local_node_name():
        return 0
    return zlib.crc32(node.encode()) % 65521 + 1


class _NodeTerm:
    """What pids and refs share: (node, serial), immutable, hashable, picklable."""

    __slots__ = ("_hash", "id", "node")
    _hash: int
    id: int
    node: str

    def __init__(self, node: str, id: int) -> None:
        _set_node(self, node)
        _set_id(self, id)
        _set_hash(self, hash((id, node)))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.node, self.id))

    def __lt__(self, other: _NodeTerm) -> bool:
        return (self.node, self.id) < (other.node, other.id)


# Slot setters: fast construction, while __setattr__ keeps instances immutable.
_set_node = _NodeTerm.__dict__["node"].__set__
_set_id = _NodeTerm.__dict__["id"].__set__
_set_hash = _NodeTerm.__dict__["_hash"].__set__


@final
class Pid(_NodeTerm):
    """A process identifier: the node's name, a serial number on that node, and the node's
    `creation` (a number of that node's incarnation, as Erlang's): a pid of a node's earlier
    life never equals a pid of its new one, so it stays dead after a restart."""

    __slots__ = ("creation",)
    creation: int

    def __init__(self, node: str, id: int, creation: int = 0) -> None:
        super().__init__(node, id)
        _set_creation(self, creation)

    def __eq__(self, other: object) -> bool:
        return self is other or (
            type(other) is Pid and self.id == other.id and self.node == other.node
            and self.creation == other.creation
        )

    __hash__ = _NodeTerm.__hash__

    def __reduce__(self) -> tuple[Any, ...]:
        return (Pid, (self.node, self.id, self.creation))

    def __repr__(self) -> str:
        return f"<{_node_number(self.node)}.{self.id}.0>"


_set_creation = Pid.__dict__["creation"].__set__


@final
class Ref(_NodeTerm):
    """A unique reference, as made by `make_ref()`, `monitor` and timers."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return self is other or (
            type(other) is Ref and self.id == other.id and self.node == other.node
        )

    __hash__ = _NodeTerm.__hash__

    def __repr__(self) -> str:
        return f"#Ref<{_node_number(self.node)}.0.0.{self.id}>"


class _Timeout:
    """The value `receive` returns when its timeout passes."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "TIMEOUT"

    def __reduce__(self) -> str:
        return "TIMEOUT"


TIMEOUT = _Timeout()


class Exit(Exception):
    """An exit seen by Python code. `.reason` is the Erlang reason term.

    Raised by `erlang.exit(reason)`; left uncaught in a process, it ends the process
    with exactly `reason`. Raised to callers by `gen_server.call` and friends.
    """

    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason


class Error(Exit):
    """An Erlang `error` (e.g. `badarg` from a BIF). Uncaught, the process exits with
    `(reason, stacktrace)`, as Erlang's `{Reason, Stack}`."""


class ProcessKilled(BaseException):
    """Internal: unwinds the thread of a process that is already dead. Never caught by
    user code that catches `Exception`."""
