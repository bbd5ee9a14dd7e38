"""What a supervisor does when a child exits: restart it (and its group), retry a restart
that failed, give up past the restart intensity, or shut itself down (auto_shutdown).

Rules of this module (OTP's supervisor.erl, restart/2 and friends):
- Every restart, and every retry of a failed one, counts against the intensity. Past it the
  supervisor exits with "shutdown".
- A restart whose start fails leaves the child "restarting" (a static child's pid, or a
  simple_one_for_one child's key `Restarting(old_pid)`), and the supervisor casts itself
  ("try_again_restart", key) so that calls (terminate_child, a shutdown) get in between.
- one_for_all and rest_for_one stop the group newest first, drop its temporary members, and
  start the rest in start order; the first start that fails marks that child "restarting"
  and the rest of the group stays stopped until the retry.
- Each function returns the gen_server result: ("noreply", state) or ("stop", "shutdown", s).
"""

from __future__ import annotations

from typing import Any

from actors import erlang, gen_server
from actors.erlang import Pid
from actors.otp_types import CastResult

from . import _children as kids
from ._state import State
from ._store import Restarting
from .childspec import Child


def child_exited(state: State, pid: Pid, reason: Any) -> CastResult[State]:
    """An ("EXIT", pid, reason) from a child (or from a stranger, which is ignored)."""
    if state.template is not None:
        return _dynamic_exited(state, pid, reason)
    child = state.children.of_pid(pid)
    if child is None:
        return ("noreply", state)  # not ours (e.g. a process that failed to start)
    if kids.exit_reason_reported(child, reason):
        kids.report(state.name, "child_terminated", reason, child)
    state.children.set_pid(child, "undefined")
    if kids.should_restart(child, reason):
        return restart(state, child)
    if child.restart == "temporary":
        state.children.remove(child)
    return _auto_shutdown(state, child)


def try_again(state: State, key: Any) -> CastResult[State]:
    """A ("try_again_restart", key) cast: retry if the child is still restarting."""
    if state.template is not None:
        if type(key) is Restarting and key in state.dynamic:
            _, args = state.dynamic.pop(key)
            return _restart_dynamic(state, key.pid, args)
        return ("noreply", state)
    child = state.children.get(key)
    if child is not None and child.pid == "restarting":
        return restart(state, child)
    return ("noreply", state)


def _auto_shutdown(state: State, child: Child) -> CastResult[State]:
    """A significant child ended for good: maybe the supervisor ends too (OTP 24+)."""
    mode = state.flags.auto_shutdown
    if mode == "never" or not child.significant:
        return ("noreply", state)
    if mode == "all_significant" and any(
            c.significant and type(c.pid) is Pid for c in state.children.start_order()):
        return ("noreply", state)
    return ("stop", "shutdown", state)


def _give_up(state: State, child: Child) -> CastResult[State]:
    kids.report(state.name, "shutdown", "reached_max_restart_intensity", child)
    if state.template is None:
        if child.restart == "temporary":
            state.children.remove(child)
        elif state.children.get(child.id) is child:
            state.children.set_pid(child, "undefined")
    return ("stop", "shutdown", state)


def restart(state: State, child: Child) -> CastResult[State]:
    """Restart a static child whose pid is "undefined" or "restarting", with its group."""
    if not state.add_restart():
        return _give_up(state, child)
    strategy = state.flags.strategy
    if strategy == "one_for_one":
        group = [child]
    elif strategy == "one_for_all":
        group = state.children.start_order()
    else:  # rest_for_one
        group = state.children.from_child(child)
    for other in reversed(group):
        if other is not child and type(other.pid) is Pid:
            kids.stop_child(other, state.name)
            state.children.set_pid(other, "undefined")
    for other in group:  # OTP drops stopped temporary children instead of restarting them
        if other is not child and other.restart == "temporary":
            state.children.remove(other)
    for member in group:
        if member.restart == "temporary" and member is not child:
            continue
        result = kids.start_child(member)
        if result[0] != "ok":
            kids.report(state.name, "start_error", result[1], member)
            state.children.set_pid(member, "restarting")
            gen_server.cast(erlang.self(), ("try_again_restart", member.id))
            break
        state.children.set_pid(member, result[1])
        kids.progress(state.name, member)
    return ("noreply", state)


def _dynamic_exited(state: State, pid: Pid, reason: Any) -> CastResult[State]:
    found, args = state.dynamic.pop(pid)
    if not found:
        return ("noreply", state)
    template = state.template
    assert template is not None
    if kids.exit_reason_reported(template, reason):
        kids.report(state.name, "child_terminated", reason, template)
    if not kids.should_restart(template, reason):
        return ("noreply", state)
    return _restart_dynamic(state, pid, args)


def _restart_dynamic(state: State, old_pid: Pid, args: list[Any] | None) -> CastResult[State]:
    """Start a simple_one_for_one child again with its saved args; on failure keep it as
    Restarting(old_pid) and cast a retry."""
    template = state.template
    assert template is not None
    if not state.add_restart():
        return _give_up(state, template)
    result = kids.start_child(template, args or [])
    if result[0] == "ok" and type(result[1]) is Pid:
        state.dynamic.store(result[1], args)
    elif result[0] != "ok":
        kids.report(state.name, "start_error", result[1], template)
        key = Restarting(old_pid)
        state.dynamic.store(key, args)
        gen_server.cast(erlang.self(), ("try_again_restart", key))
    return ("noreply", state)
