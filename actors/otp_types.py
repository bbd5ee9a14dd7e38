"""The shapes OTP callbacks return, as type aliases: gen_server's, gen_statem's and the
supervisor's.

Rules of this module:
- Types only: nothing here runs. The behaviours check what a callback returns at run time
  (anything else ends the process with ("bad_return_value", value)); these aliases let a
  reader, and mypy, see the same contract in a signature.
- Each alias is generic in the callback's state (`S`) and, for gen_statem, its data
  (`D`): `CallResult[Counter]` says the new state is a `Counter`. Used bare
  (`CallResult`), the state is `Any`.
- Atoms are `Literal` strings and Erlang tuples are tuples, as everywhere in `actors`.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias, TypeVar

__all__ = [
    "After",
    "CallResult",
    "CallbackMode",
    "CastResult",
    "ChildSpec",
    "CodeChangeResult",
    "ContinueResult",
    "EventResult",
    "InfoResult",
    "InitResult",
    "StatemInitResult",
    "SupFlags",
    "SupInitResult",
    "Timeout",
]

S = TypeVar("S")  # a callback's state
D = TypeVar("D")  # a gen_statem's data

#: Milliseconds, or "infinity".
Timeout: TypeAlias = int | Literal["infinity"]

#: What may follow the state in a gen_server result: a time-out after which "timeout"
#: arrives as info, "hibernate", or ("continue", c), which runs handle_continue(c, s) next.
After: TypeAlias = Timeout | Literal["hibernate"] | tuple[Literal["continue"], Any]

# ------------------------------------------------------------------ gen_server

#: init(args): ("ok", s) | ("ok", s, after) | ("stop", reason) | ("error", reason) | "ignore"
InitResult: TypeAlias = (
    tuple[Literal["ok"], S]
    | tuple[Literal["ok"], S, After]
    | tuple[Literal["stop"], Any]
    | tuple[Literal["error"], Any]
    | Literal["ignore"]
)

#: handle_call(request, from_, s): ("reply", r, s[, after]) | ("noreply", s[, after])
#: | ("stop", reason, r, s) | ("stop", reason, s). With "noreply" the server answers
#: later, with `gen_server.reply(from_, r)`.
CallResult: TypeAlias = (
    tuple[Literal["reply"], Any, S]
    | tuple[Literal["reply"], Any, S, After]
    | tuple[Literal["noreply"], S]
    | tuple[Literal["noreply"], S, After]
    | tuple[Literal["stop"], Any, Any, S]
    | tuple[Literal["stop"], Any, S]
)

#: handle_cast(msg, s): ("noreply", s[, after]) | ("stop", reason, s)
CastResult: TypeAlias = (
    tuple[Literal["noreply"], S]
    | tuple[Literal["noreply"], S, After]
    | tuple[Literal["stop"], Any, S]
)

#: handle_info(msg, s): as handle_cast's.
InfoResult: TypeAlias = CastResult[S]

#: handle_continue(c, s): as handle_cast's.
ContinueResult: TypeAlias = CastResult[S]

#: code_change(old_vsn, s, extra): ("ok", s) | ("error", reason)
CodeChangeResult: TypeAlias = tuple[Literal["ok"], S] | tuple[Literal["error"], Any]

# ------------------------------------------------------------------ gen_statem

#: callback_mode(): "state_functions" | "handle_event_function", alone or in a list with
#: "state_enter".
CallbackMode: TypeAlias = (
    Literal["state_functions", "handle_event_function"]
    | list[Literal["state_functions", "handle_event_function", "state_enter"]]
)

#: init(args): ("ok", state, data[, actions]) | ("stop", reason) | ("error", reason)
#: | "ignore". Actions are a list, or one action (see `actors.gen_statem`).
StatemInitResult: TypeAlias = (
    tuple[Literal["ok"], S, D]
    | tuple[Literal["ok"], S, D, Any]
    | tuple[Literal["stop"], Any]
    | tuple[Literal["error"], Any]
    | Literal["ignore"]
)

#: What a state callback (state_functions) or handle_event returns:
#: ("next_state", s, d[, actions]) | ("keep_state", d[, actions]) | "keep_state_and_data"
#: | ("keep_state_and_data", actions) | ("repeat_state", d[, actions])
#: | "repeat_state_and_data" | ("repeat_state_and_data", actions) | "stop"
#: | ("stop", reason[, d]) | ("stop_and_reply", reason, replies[, d]).
EventResult: TypeAlias = (
    tuple[Literal["next_state"], S, D]
    | tuple[Literal["next_state"], S, D, Any]
    | tuple[Literal["keep_state", "repeat_state"], D]
    | tuple[Literal["keep_state", "repeat_state"], D, Any]
    | Literal["keep_state_and_data", "repeat_state_and_data", "stop"]
    | tuple[Literal["keep_state_and_data", "repeat_state_and_data"], Any]
    | tuple[Literal["stop"], Any]
    | tuple[Literal["stop"], Any, D]
    | tuple[Literal["stop_and_reply"], Any, Any]
    | tuple[Literal["stop_and_reply"], Any, Any, D]
)

# ------------------------------------------------------------------ supervisor

#: A supervisor's flags: a dict (strategy, intensity, period, auto_shutdown), or the old
#: tuple (strategy, intensity, period).
SupFlags: TypeAlias = dict[str, Any] | tuple[str, int, int]

#: A child spec: a dict (id, start, restart, shutdown, type, modules, significant), or
#: the old tuple (id, start, restart, shutdown, type, modules).
ChildSpec: TypeAlias = dict[str, Any] | tuple[Any, Any, str, Any, str, Any]

#: A supervisor's init(args): ("ok", (flags, [child_spec, ...])) | "ignore"
SupInitResult: TypeAlias = (
    tuple[Literal["ok"], tuple[SupFlags, list[ChildSpec]]]
    | Literal["ignore"]
)
