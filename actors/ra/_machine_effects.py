"""The machine's effects, as the leader runs them (one branch per effect).

Rules of this module:
* Only the leader's server process calls `run`; followers drop machine effects.
* An effect that fails (a `mod_call` that raises, a send to a bad address) is
  logged and skipped: it must not take the leader down, since every new leader
  would replay the same effect and fail the same way.
* An unknown effect is logged with its shape; nothing else happens.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .. import erlang

if TYPE_CHECKING:
    from ._member import Member

log = logging.getLogger("actors.ra")

TIMER_TAG = "$ra_timer"


def run(member: Member, effect: Any) -> None:
    try:
        _run(member, effect)
    except Exception as exc:  # see the module rules
        log.warning("%s: machine effect %r failed: %r", member.id, effect, exc)


def _run(member: Member, effect: Any) -> None:
    match effect:
        case ("send_msg", to, msg, *_options):
            erlang.send(to, msg)
        case ("mod_call", fun, args) if callable(fun):
            fun(*args)
        case ("mod_call", module, function, args):
            from ..rpc import _apply

            _apply(module, function, tuple(args))
        case ("monitor", "process", pid) if pid not in member.monitors:
            member.monitors[pid] = erlang.monitor("process", pid)
        case ("monitor", "process", _pid):
            pass
        case ("demonitor", "process", pid):
            ref = member.monitors.pop(pid, None)
            if ref is not None:
                erlang.demonitor(ref, ["flush"])
        case ("timer", name, "infinity"):
            _cancel_timer(member, name)
        case ("timer", name, ms) if type(ms) is int and ms >= 0:
            _cancel_timer(member, name)
            member.timers[name] = erlang.send_after(ms, erlang.self(), (TIMER_TAG, name))
        case _:
            log.warning("%s: unknown machine effect %r ignored", member.id, effect)


def _cancel_timer(member: Member, name: Any) -> None:
    ref = member.timers.pop(name, None)
    if ref is not None:
        erlang.cancel_timer(ref)
