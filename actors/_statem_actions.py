"""gen_statem's callback results and transition actions, parsed without I/O.

Rules of this module:
- `parse_result` turns what a state callback returned into a `Result`; `parse_actions`
  turns its action list into `Actions`. Neither sends, starts a timer or reads a process:
  the loop (`_statem_loop`) interprets what they return, one branch per field.
- Anything malformed raises `BadReturn` / `BadAction` carrying the OTP error term, e.g.
  ("bad_return_from_state_function", result) or ("bad_action_from_state_function", a).
  A state enter call has its own names ("bad_state_enter_...") and may not postpone,
  insert events or change the state.
- Shapes follow OTP's gen_statem: a timeout is (type, time, content[, opts]) where type is
  "timeout", "state_timeout" or ("timeout", name); time is ms, "infinity" or "update";
  (type, "cancel") cancels; a bare int or "infinity" is an event timeout.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ._timers import check_delay

KEEP = object()  # "the state (or the data) stays as it is"


class BadReturn(Exception):
    """A malformed callback result; `term` is the OTP error term."""

    def __init__(self, term: Any) -> None:
        super().__init__(term)
        self.term = term


BadAction = BadReturn


@dataclass
class Result:
    """A parsed callback result. `kind` is "next" (state, data, actions; KEEP for either),
    "repeat" (as next, and the state enter call runs again) or "stop" (reason, data,
    replies)."""

    kind: str
    state: Any = KEEP
    data: Any = KEEP
    actions: Any = field(default_factory=list)
    reason: Any = None
    replies: Any = field(default_factory=list)


@dataclass
class Timeout:
    """One timeout action: `time` is ms from now, "infinity" (cancel) or "update"."""

    type: Any
    time: Any
    content: Any


@dataclass
class Actions:
    replies: list[tuple[Any, Any]] = field(default_factory=list)
    postpone: bool = False
    next_events: list[tuple[Any, Any]] = field(default_factory=list)
    timeouts: list[Timeout] = field(default_factory=list)


def is_from(term: Any) -> bool:
    return type(term) is tuple and len(term) == 2


def listify(actions: Any) -> list[Any]:
    return list(actions) if type(actions) is list else [actions]


def _tuple(r: Any, n: int, head: str) -> bool:
    return type(r) is tuple and len(r) == n and r[0] == head


def parse_result(r: Any, enter: bool) -> Result:
    """A state callback's (or state enter call's) return value."""
    if r in ("keep_state_and_data", "repeat_state_and_data", "stop"):
        return (Result("stop", reason="normal") if r == "stop"
                else Result("repeat" if r.startswith("repeat") else "next"))
    if type(r) is tuple and r:
        n, head = len(r), r[0]
        if head == "next_state" and n in (3, 4):
            return Result("next", r[1], r[2], r[3] if n == 4 else [])
        if head in ("keep_state", "repeat_state") and n in (2, 3):
            return Result("next" if head == "keep_state" else "repeat", KEEP, r[1],
                          r[2] if n == 3 else [])
        if head in ("keep_state_and_data", "repeat_state_and_data") and n == 2:
            return Result("next" if head.startswith("keep") else "repeat", actions=r[1])
        if head == "stop" and n in (2, 3):
            return Result("stop", data=r[2] if n == 3 else KEEP, reason=r[1])
        if head == "stop_and_reply" and n in (3, 4):
            return Result("stop", data=r[3] if n == 4 else KEEP, reason=r[1],
                          replies=r[2])
    raise BadReturn(("bad_state_enter_return_from_state_function" if enter
                     else "bad_return_from_state_function", r))


def parse_init(r: Any) -> Result:
    """init's ("ok", state, data[, actions]); other shapes are the caller's to handle."""
    if type(r) is tuple and len(r) in (3, 4) and r[0] == "ok":
        return Result("next", r[1], r[2], r[3] if len(r) == 4 else [])
    raise BadReturn(("bad_return_from_init", r))


def _timeout_type(t: Any) -> bool:
    return t in ("timeout", "state_timeout") or (type(t) is tuple and len(t) == 2
                                                 and t[0] == "timeout")


def event_type(t: Any) -> bool:
    """A valid event type for next_event."""
    return (t in ("cast", "info", "internal") or _timeout_type(t)
            or (type(t) is tuple and len(t) == 2 and t[0] == "call" and is_from(t[1])))


def _relative(t: Any) -> bool:
    return t == "infinity" or check_delay(t)


def _abs_opt(opts: Any) -> bool | None:
    """The {abs, Bool} option of a timeout's option list; None if the list is bad."""
    absolute = False
    for opt in listify(opts):
        if not (type(opt) is tuple and len(opt) == 2 and opt[0] == "abs"
                and type(opt[1]) is bool):
            return None
        absolute = opt[1]
    return absolute


def _timeout(a: Any) -> Timeout | None:
    """A timeout action, or None if `a` is not a well-formed one."""
    if type(a) is int or a == "infinity":
        return Timeout("timeout", a, a) if _relative(a) else None
    if type(a) is not tuple or not a or not _timeout_type(a[0]):
        return None
    if len(a) == 2 and a[1] == "cancel":
        return Timeout(a[0], "infinity", None)
    if len(a) == 3 and (a[1] == "update" or _relative(a[1])):
        return Timeout(a[0], a[1], a[2])
    if len(a) == 4:
        absolute = _abs_opt(a[3])
        if absolute is False and _relative(a[1]):
            return Timeout(a[0], a[1], a[2])
        if absolute and type(a[1]) is int:
            left = a[1] - time.monotonic_ns() // 1_000_000
            return Timeout(a[0], max(0, left), a[2]) if check_delay(max(0, left)) else None
    return None


def parse_actions(actions: Any, enter: bool) -> tuple[Actions, Any]:
    """(Actions, bad): `bad` is the OTP error term of the first bad action, or None; the
    actions before it are in Actions (OTP sends their replies before it fails)."""
    out = Actions()
    kind = "bad_state_enter_action_from_state_function" if enter else \
        "bad_action_from_state_function"
    for a in listify(actions):
        if _tuple(a, 3, "reply") and is_from(a[1]):
            out.replies.append((a[1], a[2]))
        elif a in ("hibernate", ("hibernate", True), ("hibernate", False)):
            pass  # accepted: a Python process has no heap to shrink
        elif a in ("postpone", ("postpone", True)) and not enter:
            out.postpone = True
        elif a == ("postpone", False):
            out.postpone = False
        elif _tuple(a, 3, "next_event") and not enter and event_type(a[1]):
            out.next_events.append((a[1], a[2]))
        elif (t := _timeout(a)) is not None:
            out.timeouts.append(t)
        else:
            return out, (kind, a)
    return out, None
