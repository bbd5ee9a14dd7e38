"""Child specs and supervisor flags: normalising and checking them, as OTP's supervisor does.

Rules of this module:
- A spec is a dict (`id`, `start`, `restart`, `shutdown`, `type`, `modules`, `significant`)
  or OTP's old tuple form (id, start, restart, shutdown, type, modules).
- `start` is (module_or_class, "function", [args]) or (callable, [args]).
- Defaults are OTP's: restart "permanent", type "worker", shutdown 5000 for a worker and
  "infinity" for a supervisor, modules [the start module].
- Errors are OTP's terms, e.g. ("invalid_restart_type", x), "missing_id", ("invalid_mfa", s),
  ("invalid_module", m), ("bad_combination", [(key, value), ...]).
- An id must be hashable (children are kept in dicts); a list id is refused as
  ("invalid_child_id", id), where OTP accepts any term.
- A significant child is refused with ("bad_combination", ...) when it is permanent, or when
  the supervisor's auto_shutdown is "never" (`auto_shutdown=None` skips that check, as
  OTP's check_childspecs/1 does).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

RESTART_TYPES = ("permanent", "transient", "temporary")
CHILD_TYPES = ("worker", "supervisor")
AUTO_SHUTDOWN = ("never", "any_significant", "all_significant")
STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one", "simple_one_for_one")


class SpecError(Exception):
    """A spec or flag is invalid; `.reason` is the OTP error term."""

    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class Child:
    """One child as the supervisor keeps it. `pid` is a Pid, "undefined" or "restarting"."""

    id: Any
    start: tuple[Callable[..., Any], list[Any]]
    start_term: Any
    restart: str = "permanent"
    shutdown: Any = 5000
    type: str = "worker"
    modules: Any = field(default_factory=list)
    significant: bool = False
    pid: Any = "undefined"

    def as_map(self) -> dict[str, Any]:
        """The spec as get_childspec returns it."""
        return {"id": self.id, "start": self.start_term, "restart": self.restart,
                "shutdown": self.shutdown, "type": self.type, "modules": self.modules,
                "significant": self.significant}


@dataclass
class Flags:
    strategy: str = "one_for_one"
    intensity: int = 1
    period: int = 5
    auto_shutdown: str = "never"


def parse_flags(flags: Any) -> Flags:
    """A flags dict, or (strategy, intensity, period), to `Flags`."""
    if type(flags) is tuple and len(flags) == 3:
        flags = {"strategy": flags[0], "intensity": flags[1], "period": flags[2]}
    if not isinstance(flags, dict):
        raise SpecError(("invalid_type", flags))
    parsed = Flags(**{k: v for k, v in flags.items() if k in Flags.__dataclass_fields__})
    if parsed.strategy not in STRATEGIES:
        raise SpecError(("invalid_strategy", parsed.strategy))
    if type(parsed.intensity) is not int or parsed.intensity < 0:
        raise SpecError(("invalid_intensity", parsed.intensity))
    if type(parsed.period) is not int or parsed.period <= 0:  # whole seconds, as OTP's
        raise SpecError(("invalid_period", parsed.period))
    if parsed.auto_shutdown not in AUTO_SHUTDOWN:
        raise SpecError(("invalid_auto_shutdown", parsed.auto_shutdown))
    if parsed.strategy == "simple_one_for_one" and parsed.auto_shutdown != "never":
        raise SpecError(("bad_combination", [("strategy", "simple_one_for_one"),
                                             ("auto_shutdown", parsed.auto_shutdown)]))
    return parsed


def _start_fn(start: Any) -> tuple[Callable[..., Any], list[Any]]:
    if type(start) is tuple and len(start) == 3 and type(start[1]) is str \
            and isinstance(start[2], list):
        fn = getattr(start[0], start[1], None)
        if callable(fn):
            return fn, list(start[2])
    if type(start) is tuple and len(start) == 2 and callable(start[0]) \
            and isinstance(start[1], list):
        return start[0], list(start[1])
    raise SpecError(("invalid_mfa", start))


def _as_dict(spec: Any) -> dict[str, Any]:
    if isinstance(spec, dict):
        if "id" not in spec:
            raise SpecError("missing_id")
        if "start" not in spec:
            raise SpecError("missing_start")
        return spec
    if type(spec) is tuple and len(spec) == 6:
        keys = ("id", "start", "restart", "shutdown", "type", "modules")
        return dict(zip(keys, spec, strict=True))
    raise SpecError(("invalid_child_spec", spec))


def _valid_module(module: Any) -> bool:
    """An Erlang module is an atom; ours is a name, a class, a Python module or a callable."""
    return isinstance(module, str | type | types.ModuleType) or callable(module)


def _check_modules(modules: Any) -> None:
    if modules == "dynamic":
        return
    if not isinstance(modules, list):
        raise SpecError(("invalid_modules", modules))
    for module in modules:
        if not _valid_module(module):
            raise SpecError(("invalid_module", module))


def _check_significant(significant: Any, restart: str, auto_shutdown: str | None) -> None:
    if significant is True and auto_shutdown == "never":
        raise SpecError(("bad_combination", [("auto_shutdown", "never"), ("significant", True)]))
    if significant is True and restart == "permanent":
        raise SpecError(("bad_combination", [("restart", "permanent"), ("significant", True)]))
    if type(significant) is not bool:
        raise SpecError(("invalid_significant", significant))


def parse_child(spec: Any, auto_shutdown: str | None = None) -> Child:
    """Check one spec and fill in OTP's defaults. `auto_shutdown` is the supervisor's flag
    (None: not checked against it)."""
    d = _as_dict(spec)
    try:
        hash(d["id"])
    except TypeError:
        raise SpecError(("invalid_child_id", d["id"])) from None
    start = _start_fn(d["start"])
    restart = d.get("restart", "permanent")
    if restart not in RESTART_TYPES:
        raise SpecError(("invalid_restart_type", restart))
    child_type = d.get("type", "worker")
    if child_type not in CHILD_TYPES:
        raise SpecError(("invalid_child_type", child_type))
    shutdown = d.get("shutdown", "infinity" if child_type == "supervisor" else 5000)
    if not (shutdown in ("brutal_kill", "infinity")
            or (type(shutdown) is int and shutdown >= 0)):
        raise SpecError(("invalid_shutdown", shutdown))
    significant = d.get("significant", False)
    _check_significant(significant, restart, auto_shutdown)
    modules = d.get("modules", [d["start"][0]])
    _check_modules(modules)
    return Child(id=d["id"], start=start, start_term=d["start"], restart=restart,
                 shutdown=shutdown, type=child_type, modules=modules,
                 significant=significant)


def parse_children(specs: Any, auto_shutdown: str | None = None) -> list[Child]:
    """Check a list of specs; ids must be unique."""
    if not isinstance(specs, list):
        raise SpecError(("badarg", specs))  # OTP's check_childspecs of a non-list
    children = [parse_child(spec, auto_shutdown) for spec in specs]
    seen: set[Any] = set()
    for child in children:
        if child.id in seen:
            raise SpecError(("duplicate_child_name", child.id))
        seen.add(child.id)
    return children
