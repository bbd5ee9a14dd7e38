"""supervisor: OTP's supervisor behaviour.

A callback module (a `Supervisor` subclass, an instance, or a Python module) has
`init(args)` returning ("ok", (sup_flags, [child_spec, ...])) or "ignore". sup_flags is a
dict with `strategy` (one_for_one, one_for_all, rest_for_one, simple_one_for_one),
`auto_shutdown` (never, any_significant, all_significant),
`intensity` (default 1) and `period` (seconds, default 5), or the tuple form.

The supervisor is a gen_server that traps exits. Children start in order and stop in reverse
order. More than `intensity` restarts within `period` seconds make it stop every child and
exit with "shutdown", which its own supervisor sees (escalation). Reports go to the stdlib
logger "supervision.supervisor".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from actors import erlang, gen_server
from actors._terms import Pid

from . import _children as kids
from .childspec import Child, Flags, SpecError, parse_child, parse_children, parse_flags

__all__ = [
    "Supervisor", "check_childspecs", "count_children", "delete_child", "get_childspec",
    "restart_child", "start_child", "start_link", "terminate_child", "which_children",
]


class Supervisor:
    """Base class for supervisor callback modules: override `init`."""

    def init(self, args: Any) -> Any:
        raise NotImplementedError("a supervisor must define init(args)")


@dataclass
class _State:
    name: Any
    module: Any
    flags: Flags
    children: list[Child]
    dynamic: dict[Pid, list[Any]] = field(default_factory=dict)
    restarts: list[float] = field(default_factory=list)

    @property
    def simple(self) -> bool:
        return self.flags.strategy == "simple_one_for_one"

    def find(self, key: Any) -> Child | None:
        for child in self.children:
            if child.id == key or (type(key) is Pid and child.pid == key):
                return child
        return None


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
    """"ok" | ("error", "not_found") | ("error", "simple_one_for_one")."""
    return gen_server.call(sup, ("terminate_child", id_or_pid), "infinity")


def restart_child(sup: Any, child_id: Any) -> Any:
    """("ok", pid) | ("error", "running" | "restarting" | "not_found" | reason)."""
    return gen_server.call(sup, ("restart_child", child_id), "infinity")


def delete_child(sup: Any, child_id: Any) -> Any:
    """"ok" | ("error", "running" | "restarting" | "not_found")."""
    return gen_server.call(sup, ("delete_child", child_id), "infinity")


def which_children(sup: Any) -> list[tuple[Any, Any, str, Any]]:
    """[(id, pid | "restarting" | "undefined", type, modules)], in start order."""
    return gen_server.call(sup, "which_children", "infinity")


def count_children(sup: Any) -> list[tuple[str, int]]:
    """[("specs", n), ("active", n), ("supervisors", n), ("workers", n)]."""
    return gen_server.call(sup, "count_children", "infinity")


def get_childspec(sup: Any, id_or_pid: Any) -> Any:
    """("ok", spec_dict) | ("error", "not_found")."""
    return gen_server.call(sup, ("get_childspec", id_or_pid), "infinity")


def check_childspecs(specs: Any) -> Any:
    """"ok" | ("error", reason), without starting anything."""
    try:
        parse_children(specs)
    except SpecError as err:
        return ("error", err.reason)
    return "ok"


class _SupervisorServer(gen_server.GenServer):
    """The gen_server callbacks that run any supervisor callback module."""

    def init(self, args: Any) -> Any:
        name, module, init_args = args
        erlang.process_flag("trap_exit", True)
        callbacks = module() if isinstance(module, type) else module
        result = callbacks.init(init_args)
        if result == "ignore":
            return "ignore"
        if not (type(result) is tuple and len(result) == 2 and result[0] == "ok"
                and type(result[1]) is tuple and len(result[1]) == 2):
            return ("stop", ("bad_return", (module, "init", result)))
        flags_term, specs = result[1]
        try:
            flags = parse_flags(flags_term)
        except SpecError as err:
            return ("stop", ("supervisor_data", err.reason))
        try:
            children = parse_children(specs)
        except SpecError as err:
            return ("stop", ("start_spec", err.reason))
        if flags.strategy == "simple_one_for_one" and len(children) != 1:
            return ("stop", ("bad_start_spec", specs))
        state = _State(name or erlang.self(), module, flags, children)
        if state.simple:
            return ("ok", state)
        return self._start_all(state)

    def _start_all(self, state: _State) -> Any:
        started: list[Child] = []
        for child in state.children:
            result = kids.start_child(child)
            if result[0] != "ok":
                kids.report(state.name, "start_error", result[1], child)
                for done in reversed(started):
                    kids.stop_child(done, state.name)
                return ("stop", ("shutdown", ("failed_to_start_child", child.id, result[1])))
            child.pid = result[1]
            if child.pid == "undefined" and child.restart == "temporary":
                continue  # OTP keeps no spec for a temporary child that ignored its start
            started.append(child)
            if child.pid != "undefined":
                kids.progress(state.name, child)
        state.children = started
        return ("ok", state)

    # -- calls ------------------------------------------------------------------------------

    def handle_call(self, request: Any, from_: Any, state: _State) -> Any:
        match request:
            case ("start_child", arg):
                return ("reply", self._start_new(state, arg), state)
            case ("terminate_child", key):
                return ("reply", self._terminate_child(state, key), state)
            case ("restart_child", key):
                return ("reply", self._restart_stopped(state, key), state)
            case ("delete_child", key):
                return ("reply", self._delete_child(state, key), state)
            case "which_children":
                return ("reply", self._which(state), state)
            case "count_children":
                return ("reply", self._count(state), state)
            case ("get_childspec", key):
                return ("reply", self._childspec(state, key), state)
        return ("reply", ("error", ("bad_call", request)), state)

    def _start_new(self, state: _State, arg: Any) -> Any:
        if state.simple:
            template = state.children[0]
            result = kids.start_child(template, list(arg))
            if result[0] == "ok" and type(result[1]) is Pid:
                state.dynamic[result[1]] = list(arg)
            return result
        try:
            child = parse_child(arg)
        except SpecError as err:
            return ("error", err.reason)
        existing = state.find(child.id)
        if existing is not None:
            if type(existing.pid) is Pid:
                return ("error", ("already_started", existing.pid))
            return ("error", "already_present")
        result = kids.start_child(child)
        if result[0] == "ok" and not (result[1] == "undefined" and child.restart == "temporary"):
            child.pid = result[1]
            state.children.append(child)
        elif result[0] == "error":
            kids.report(state.name, "start_error", result[1], child)
            if not (type(result[1]) is tuple and result[1][:1] == ("already_started",)):
                return ("error", (result[1], child.as_map()))  # OTP's {error, {What, Child}}
        return result

    def _terminate_child(self, state: _State, key: Any) -> Any:
        if state.simple:
            if type(key) is not Pid:
                return ("error", "simple_one_for_one")
            if state.dynamic.pop(key, None) is None:
                return ("error", "not_found")
            kids.shutdown(key, state.children[0].shutdown)
            return "ok"
        child = state.find(key)
        if child is None:
            return ("error", "not_found")
        kids.stop_child(child, state.name)
        if child.restart == "temporary":
            state.children.remove(child)
        return "ok"

    def _restart_stopped(self, state: _State, key: Any) -> Any:
        child = self._stopped_child(state, key)
        if not isinstance(child, Child):
            return child
        result = kids.start_child(child)
        if result[0] == "ok":
            child.pid = result[1]
        return result

    def _delete_child(self, state: _State, key: Any) -> Any:
        child = self._stopped_child(state, key)
        if not isinstance(child, Child):
            return child
        state.children.remove(child)
        return "ok"

    @staticmethod
    def _stopped_child(state: _State, key: Any) -> Child | tuple[str, str]:
        """The stopped static child `key`, or the error restart/delete_child return."""
        if state.simple:
            return ("error", "simple_one_for_one")
        child = state.find(key)
        if child is None:
            return ("error", "not_found")
        if type(child.pid) is Pid:
            return ("error", "running")
        if child.pid == "restarting":
            return ("error", "restarting")
        return child

    def _which(self, state: _State) -> list[tuple[Any, Any, str, Any]]:
        if state.simple:
            t = state.children[0]
            return [("undefined", pid, t.type, t.modules) for pid in state.dynamic]
        return [(c.id, c.pid, c.type, c.modules) for c in state.children]

    def _count(self, state: _State) -> list[tuple[str, int]]:
        if state.simple:
            t = state.children[0]
            n = len(state.dynamic)
            return [("specs", 1), ("active", n),
                    ("supervisors", n if t.type == "supervisor" else 0),
                    ("workers", n if t.type == "worker" else 0)]
        active = sum(1 for c in state.children if type(c.pid) is Pid)
        sups = sum(1 for c in state.children if c.type == "supervisor")
        return [("specs", len(state.children)), ("active", active),
                ("supervisors", sups), ("workers", len(state.children) - sups)]

    def _childspec(self, state: _State, key: Any) -> Any:
        if state.simple:
            if type(key) is Pid and key in state.dynamic:
                return ("ok", state.children[0].as_map())
            return ("error", "not_found")
        child = state.find(key)
        return ("ok", child.as_map()) if child is not None else ("error", "not_found")

    # -- exits and restarts -------------------------------------------------------------------

    def handle_cast(self, msg: Any, state: _State) -> Any:
        match msg:
            case ("try_again_restart", key):
                child = state.find(key)
                if child is not None and child.pid == "restarting":
                    return self._restart(state, child)
        return ("noreply", state)

    def handle_info(self, msg: Any, state: _State) -> Any:
        match msg:
            case ("EXIT", pid, reason) if type(pid) is Pid:
                return self._child_exited(state, pid, reason)
        kids.log.error("Supervisor %r received unexpected message: %r", state.name, msg)
        return ("noreply", state)

    def _child_exited(self, state: _State, pid: Pid, reason: Any) -> Any:
        if state.simple:
            return self._dynamic_exited(state, pid, reason)
        child = state.find(pid)
        if child is None:
            return ("noreply", state)  # not ours (e.g. a child that failed to start)
        if kids.exit_reason_reported(child, reason):
            kids.report(state.name, "child_terminated", reason, child)
        child.pid = "undefined"
        if kids.should_restart(child, reason):
            return self._restart(state, child)
        if child.restart == "temporary":
            state.children.remove(child)
        return self._auto_shutdown(state, child)

    @staticmethod
    def _auto_shutdown(state: _State, child: Child) -> Any:
        """A significant child ended for good: maybe the supervisor ends too (OTP 24+)."""
        mode = state.flags.auto_shutdown
        if mode == "never" or not child.significant:
            return ("noreply", state)
        if mode == "all_significant":
            if state.simple:
                if state.dynamic:
                    return ("noreply", state)
            elif any(c.significant and type(c.pid) is Pid for c in state.children):
                return ("noreply", state)
        return ("stop", "shutdown", state)

    def _dynamic_exited(self, state: _State, pid: Pid, reason: Any) -> Any:
        args = state.dynamic.pop(pid, None)
        if args is None:
            return ("noreply", state)
        template = state.children[0]
        if kids.exit_reason_reported(template, reason):
            kids.report(state.name, "child_terminated", reason, template)
        if not kids.should_restart(template, reason):
            return self._auto_shutdown(state, template)
        if not self._add_restart(state):
            return self._give_up(state, template)
        result = kids.start_child(template, args)
        if result[0] == "ok" and type(result[1]) is Pid:
            state.dynamic[result[1]] = args
        elif result[0] != "ok":
            kids.report(state.name, "start_error", result[1], template)
        return ("noreply", state)

    def _add_restart(self, state: _State) -> bool:
        """Record a restart; False when there were more than `intensity` in `period`."""
        now = time.monotonic()
        state.restarts = [t for t in state.restarts if now - t <= state.flags.period]
        state.restarts.append(now)
        return len(state.restarts) <= state.flags.intensity

    def _give_up(self, state: _State, child: Child) -> Any:
        kids.report(state.name, "shutdown", "reached_max_restart_intensity", child)
        if child in state.children and child.restart == "temporary":
            state.children.remove(child)
        return ("stop", "shutdown", state)

    def _restart(self, state: _State, child: Child) -> Any:
        if not self._add_restart(state):
            return self._give_up(state, child)
        strategy = state.flags.strategy
        index = state.children.index(child)
        if strategy == "one_for_one":
            group = [child]
        elif strategy == "one_for_all":
            group = list(state.children)
        else:  # rest_for_one
            group = state.children[index:]
        for other in reversed(group):
            if other is not child:
                kids.stop_child(other, state.name)
        temporary = [c for c in group if c is not child and c.restart == "temporary"]
        for other in temporary:  # OTP drops stopped temporary children instead of restarting
            state.children.remove(other)
            group.remove(other)
        for member in group:
            if member.pid == "undefined" or member.pid == "restarting":
                result = kids.start_child(member)
                if result[0] != "ok":
                    kids.report(state.name, "start_error", result[1], member)
                    member.pid = "restarting"
                    gen_server.cast(erlang.self(), ("try_again_restart", member.id))
                    break
                member.pid = result[1]
                kids.progress(state.name, member)
        return ("noreply", state)

    def terminate(self, reason: Any, state: Any) -> Any:
        if not isinstance(state, _State):
            return "ok"
        if state.simple:
            template = state.children[0]
            for pid in list(state.dynamic):
                kids.shutdown(pid, template.shutdown)
            state.dynamic.clear()
            return "ok"
        for child in reversed(state.children):
            kids.stop_child(child, state.name)
        return "ok"
