"""The `sys` module: inspect and control a gen_server (or supervisor) from outside.

Each function sends a system message that the server's loop answers between callbacks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import _gen
from ._server_loop import _SystemError
from ._terms import Exit

__all__ = ["change_code", "get_state", "get_status", "replace_state", "resume", "suspend",
           "terminate"]


def _system_call(name: Any, request: Any, timeout: int | str, fn: str) -> Any:
    answer = _gen.call(name, "$system", request, timeout, ("sys", fn, [name, timeout]))
    if isinstance(answer, _SystemError):
        raise Exit(answer.reason)
    return answer


def get_state(name: Any, timeout: int | str = 5000) -> Any:
    """The server's current state."""
    return _system_call(name, "get_state", timeout, "get_state")


def replace_state(name: Any, fun: Callable[[Any], Any], timeout: int | str = 5000) -> Any:
    """Replace the state with fun(state); returns the new state."""
    return _system_call(name, ("replace_state", fun), timeout, "replace_state")


def get_status(name: Any, timeout: int | str = 5000) -> Any:
    """("status", pid, ("module", "gen_server"), [pdict, mode, parent, debug, misc])."""
    return _system_call(name, "get_status", timeout, "get_status")


def suspend(name: Any, timeout: int | str = 5000) -> str:
    """Until `resume`, the server handles only system messages; others wait in order."""
    return _system_call(name, "suspend", timeout, "suspend")


def resume(name: Any, timeout: int | str = 5000) -> str:
    return _system_call(name, "resume", timeout, "resume")


def change_code(name: Any, module: Any, old_vsn: Any, extra: Any,
                timeout: int | str = 5000) -> Any:
    """Call the server's code_change(old_vsn, state, extra); "ok" on success."""
    del module
    return _system_call(name, ("change_code", old_vsn, extra), timeout, "change_code")


def terminate(name: Any, reason: Any, timeout: int | str = "infinity") -> str:
    """Stop the server with `reason`. Exits carry ("sys", "terminate", [...]) as OTP's."""
    try:
        return _gen.stop(name, reason, timeout)
    except Exit as exc:
        if exc.reason in ("noproc", "timeout"):
            raise Exit((exc.reason, ("sys", "terminate", [name, reason, timeout])))
        raise
