"""supervisor: OTP's supervisor behaviour.

A callback module (a `Supervisor` subclass, an instance, or a Python module) has
`init(args)` returning ("ok", (sup_flags, [child_spec, ...])) or "ignore". sup_flags is a
dict with `strategy` (one_for_one, one_for_all, rest_for_one, simple_one_for_one),
`auto_shutdown` (never, any_significant, all_significant),
`intensity` (default 1) and `period` (seconds, default 5), or the tuple form.

The supervisor is a gen_server that traps exits. Children start in order and stop in
reverse order; which_children lists them newest first, as OTP's. A restart that fails
leaves the child "restarting" and is retried (each retry counts as a restart). More than
`intensity` restarts within `period` seconds make it stop every child and exit with
"shutdown", which its own supervisor sees (escalation). Reports go to the stdlib logger
"supervision.supervisor".
"""

from __future__ import annotations

from typing import Any

from actors import gen_server
from actors.otp_types import SupInitResult

from ._server import SupervisorServer as _SupervisorServer
from .childspec import AUTO_SHUTDOWN, SpecError, parse_children

__all__ = [
    "Supervisor", "check_childspecs", "count_children", "delete_child", "get_callback_module",
    "get_childspec", "restart_child", "start_child", "start_link", "terminate_child",
    "which_child", "which_children",
]


class Supervisor:
    """Base class for supervisor callback modules: override `init`."""

    def init(self, args: Any) -> SupInitResult:
        raise NotImplementedError("a supervisor must define init(args)")


def start_link(*args: Any) -> Any:
    """start_link([name,] module, args) -> ("ok", pid) | "ignore" | ("error", reason)."""
    if len(args) == 3:
        name, module, init_args = args
        return gen_server.start_link(name, _SupervisorServer, (name, module, init_args))
    if len(args) == 2:
        module, init_args = args
        return gen_server.start_link(_SupervisorServer, (None, module, init_args))
    raise TypeError("start_link([name,] module, args)")


def start_child(sup: Any, spec_or_args: Any) -> Any:
    """A spec (or, for simple_one_for_one, extra args): ("ok", pid) | ("error", reason)."""
    return gen_server.call(sup, ("start_child", spec_or_args), "infinity")


def terminate_child(sup: Any, id_or_pid: Any) -> Any:
    """"ok" | ("error", "not_found") | ("error", "simple_one_for_one").

    A static child is named by its id (a pid is just an id that no child has); a
    simple_one_for_one child by its pid, and a pid that is no longer alive is "ok"."""
    return gen_server.call(sup, ("terminate_child", id_or_pid), "infinity")


def restart_child(sup: Any, child_id: Any) -> Any:
    """("ok", pid) | ("error", "running" | "restarting" | "not_found" | reason)."""
    return gen_server.call(sup, ("restart_child", child_id), "infinity")


def delete_child(sup: Any, child_id: Any) -> Any:
    """"ok" | ("error", "running" | "restarting" | "not_found")."""
    return gen_server.call(sup, ("delete_child", child_id), "infinity")


def which_children(sup: Any) -> list[tuple[Any, Any, str, Any]]:
    """[(id, pid | "restarting" | "undefined", type, modules)]: static children newest
    first, simple_one_for_one children (id "undefined") in start order."""
    return gen_server.call(sup, "which_children", "infinity")


def which_child(sup: Any, child_id: Any) -> Any:
    """("ok", (id, pid | "restarting" | "undefined", type, modules)) | ("error", "not_found")
    | ("error", "simple_one_for_one") (a simple_one_for_one child is named by its pid)."""
    return gen_server.call(sup, ("which_child", child_id), "infinity")


def get_callback_module(sup: Any) -> Any:
    """The callback module (or class, or instance) the supervisor was started with."""
    return gen_server.call(sup, "get_callback_module", "infinity")


def count_children(sup: Any) -> list[tuple[str, int]]:
    """[("specs", n), ("active", n), ("supervisors", n), ("workers", n)]."""
    return gen_server.call(sup, "count_children", "infinity")


def get_childspec(sup: Any, id_or_pid: Any) -> Any:
    """("ok", spec_dict) | ("error", "not_found")."""
    return gen_server.call(sup, ("get_childspec", id_or_pid), "infinity")


def check_childspecs(specs: Any, auto_shutdown: str | None = None) -> Any:
    """"ok" | ("error", reason), without starting anything. With `auto_shutdown` (the
    supervisor's flag), a significant child is also checked against it."""
    if auto_shutdown is not None and auto_shutdown not in AUTO_SHUTDOWN:
        return ("error", ("badarg", auto_shutdown))
    try:
        parse_children(specs, auto_shutdown)
    except SpecError as err:
        return ("error", err.reason)
    return "ok"


