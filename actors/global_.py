"""`global_`: names that hold across the cluster, as OTP's `global` (trailing underscore
because `global` is a Python keyword).

Until the distribution layer exists, the cluster is the local node: the table lives on the
node and a name is freed when its process dies. The functions and return shapes are OTP's,
so code written against them keeps working when the registry goes cluster-wide.
"""

from __future__ import annotations

from typing import Any

from . import _context
from ._terms import Error, Exit, Pid

__all__ = ["register_name", "registered_names", "send", "unregister_name", "whereis_name"]


def register_name(name: Any, pid: Pid) -> str:
    """"yes" if `name` now refers to `pid`; "no" if the name is taken or the pid is dead."""
    if type(pid) is not Pid:
        raise Error("badarg")
    return "yes" if _context.current_node().register_global(name, pid) else "no"


def unregister_name(name: Any) -> str:
    _context.current_node().unregister_global(name)
    return "ok"


def whereis_name(name: Any) -> Pid | str:
    """The pid registered under `name`, or "undefined"."""
    proc = _context.current_node().resolve(("global", name))
    return proc.pid if proc is not None and proc.alive else "undefined"


def registered_names() -> list[Any]:
    return _context.current_node().global_names()


def send(name: Any, msg: Any) -> Pid:
    """Send to the process registered as `name`; exit ("badarg", (name, msg)) if none."""
    proc = _context.current_node().resolve(("global", name))
    if proc is None or not proc.alive:
        raise Exit(("badarg", (name, msg)))
    proc.deliver(msg)
    return proc.pid
