"""The register workload's state machine: a key-value map of registers, replicated by ra.

Commands (`ra.process_command`), each deterministic and answered with its reply:
    ("write", key, value)      -> "ok"
    ("cas", key, old, new)     -> "ok" if the key holds `old` (it then holds `new`),
                                  else ("fail", current)
    anything else              -> ("error", "bad_command"); the state is unchanged
Reads go through `ra.consistent_query(member, functools.partial(read_key, key))`.
A key never written reads as None.
"""

from __future__ import annotations

import functools
from typing import Any

from actors import ra_machine

CLUSTER = "jepsen_kv"


class KvMachine(ra_machine.Machine):
    """state: dict key -> value (replaced, never mutated: queries may hold an old one)."""

    def init(self, config: Any) -> dict[Any, Any]:
        return {}

    def apply(self, meta: Any, command: Any, state: dict[Any, Any]) -> tuple[Any, Any]:
        match command:
            case ("write", key, value):
                return ({**state, key: value}, "ok")
            case ("cas", key, old, new):
                current = state.get(key)
                if current != old:
                    return (state, ("fail", current))
                return ({**state, key: new}, "ok")
        return (state, ("error", "bad_command"))


def read_key(key: Any, state: dict[Any, Any]) -> Any:
    """The value of `key` in the machine's state (None if never written)."""
    return state.get(key)


def reader(key: Any) -> Any:
    """A query function for `key` (travels by reference: a partial of a module function)."""
    return functools.partial(read_key, key)


def whole(state: dict[Any, Any]) -> dict[Any, Any]:
    """The whole state: the final convergence check compares it across members."""
    return state
