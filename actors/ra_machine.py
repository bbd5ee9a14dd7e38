"""`ra_machine`: the behaviour of a replicated state machine, as ra's.

Rules of this module:
* `apply(meta, command, state)` must be **deterministic**: every member applies
  the same commands in the same order and must reach the same state. It may
  read only `meta`, the command and the state: never the clock, a random
  number, `unique_integer`, the process dictionary or another process. The
  seed document's `apply/3` calls `erlang:system_time()` and
  `erlang:unique_integer()`, so each replica would write a different
  timestamp and execution id into "the same" audit entry and the replicas
  would diverge; use `meta["system_time"]` (the leader's clock when it
  appended the entry, replicated with it) and `meta["index"]` instead.
* `apply` returns `(state, reply)` or `(state, reply, effects)`. The reply
  goes to the caller of `ra.process_command` (or the pipeline's owner).
* Effects are run **by the leader only**; followers drop them. They are:
  ``("send_msg", to, msg)``, ``("mod_call", fun, args)``,
  ``("monitor", "process", pid)``, ``("demonitor", "process", pid)``,
  ``("timer", name, ms)`` (``"infinity"`` cancels) and
  ``("release_cursor", index, state)`` (a snapshot may be taken at `index`).
* ra feeds `apply` commands of its own: ``("down", pid, reason)`` for a
  monitored process, ``("nodeup", node)`` / ``("nodedown", node)`` for the
  nodes of monitored processes, and ``("timeout", name)`` for a timer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Meta = dict[str, Any]  # {"index": int, "term": int, "system_time": int (ms)}
EFFECT_KINDS = frozenset(
    {"send_msg", "mod_call", "monitor", "demonitor", "timer", "release_cursor"}
)


class Machine:
    """Base class: override `init` and `apply`; the rest are optional callbacks."""

    def init(self, config: Any) -> Any:
        """The initial state, from the `config` in `("module", Machine, config)`."""
        return config

    def apply(self, meta: Meta, command: Any, state: Any) -> tuple[Any, ...]:
        """Deterministic: `(state, reply)` or `(state, reply, effects)`."""
        raise NotImplementedError

    def state_enter(self, role: str, state: Any) -> list[Any]:
        """Effects to run when this member enters `role` (leader runs them)."""
        return []

    def tick(self, time_ms: int, state: Any) -> list[Any]:
        """Effects to run periodically (leader runs them)."""
        return []

    def overview(self, state: Any) -> Any:
        """A summary of the state for `ra.member_overview`."""
        return {}

    def version(self) -> int:
        return 0


class SimpleMachine(Machine):
    """`("simple", fun, initial_state)`: state = fun(command, state); the reply is the state."""

    def __init__(self, fun: Callable[[Any, Any], Any]) -> None:
        self.fun = fun

    def init(self, config: Any) -> Any:
        return config

    def apply(self, meta: Meta, command: Any, state: Any) -> tuple[Any, ...]:
        new_state = self.fun(command, state)
        return (new_state, new_state)


def resolve(spec: Any) -> tuple[Machine, Any]:
    """`("module", MachineClass, config)` or `("simple", fun, initial)` -> (machine, state0).

    Raises ValueError with the offending spec otherwise.
    """
    match spec:
        case ("module", cls, config) if isinstance(cls, type) and issubclass(cls, Machine):
            machine = cls()
            return machine, machine.init(config)
        case ("simple", fun, initial) if callable(fun):
            return SimpleMachine(fun), initial
    raise ValueError(
        f"bad machine {spec!r}: want ('module', MachineClass, config) or "
        "('simple', fun, initial_state)"
    )


def normalise_result(result: Any) -> tuple[Any, Any, list[Any]]:
    """Check an `apply` return: (state, reply[, effects]) -> (state, reply, effects)."""
    if type(result) is tuple and len(result) == 2:
        return result[0], result[1], []
    if type(result) is tuple and len(result) == 3 and isinstance(result[2], list):
        return result[0], result[1], result[2]
    raise ValueError(f"bad apply return {result!r}: want (state, reply) or (state, reply, effects)")
