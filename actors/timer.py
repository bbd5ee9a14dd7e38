"""The `timer` module: sleep, send_after, send_interval, apply_after, cancel, tc.

`timer.sleep(ms)` is a receive that matches nothing, as in Erlang: the calling process (or
shell) stays responsive to kills while it sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from . import _context, erlang
from ._terms import Pid, Ref

__all__ = ["apply_after", "cancel", "send_after", "send_interval", "sleep", "tc"]


def sleep(ms: int | str) -> str:
    """Suspend the caller for `ms` milliseconds."""
    _context.self_process().receive(lambda _m: False, ms)
    return "ok"


def send_after(ms: int, dest: Pid | str, msg: Any) -> tuple[str, Ref]:
    """("ok", tref): send `msg` to `dest` after `ms`."""
    return ("ok", erlang.send_after(ms, dest, msg))


def apply_after(ms: int, fun: Callable[..., Any], args: list[Any]) -> tuple[str, Pid]:
    """("ok", pid): after `ms`, run fun(*args) in a new process."""

    def later() -> None:
        sleep(ms)
        fun(*args)

    return ("ok", erlang.spawn(later))


def send_interval(ms: int, dest: Pid | str, msg: Any) -> tuple[str, Pid]:
    """("ok", tref): send `msg` to `dest` every `ms` until cancelled or `dest` dies.

    The timer is a process linked to the caller, as OTP's interval timers are tied to it."""
    target = erlang.whereis(dest) if type(dest) is str else dest

    def tick() -> None:
        ref = erlang.monitor("process", target)
        while erlang.receive(lambda m: type(m) is tuple and m[:2] == ("DOWN", ref),
                             ms) is erlang.TIMEOUT:
            erlang.send(dest, msg)

    return ("ok", erlang.spawn_link(tick))


def cancel(tref: Ref | Pid) -> Any:
    """Cancel a timer from send_after, send_interval or apply_after: ("ok", "cancel")."""
    if type(tref) is Ref:
        erlang.cancel_timer(tref)
    elif type(tref) is Pid:
        erlang.unlink(tref)
        erlang.exit(tref, "kill")
    else:
        return ("error", "badarg")
    return ("ok", "cancel")


def tc(fun: Callable[..., Any], *args: Any) -> tuple[int, Any]:
    """(microseconds, result) of fun(*args)."""
    start = time.perf_counter_ns()
    result = fun(*args)
    return ((time.perf_counter_ns() - start) // 1000, result)
