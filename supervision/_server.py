"""The gen_server that runs any supervisor callback module.

Rules of this module:
- The supervisor traps exits. init checks the flags, then the specs (simple_one_for_one
  wants exactly one), then starts the static children in order; the first that fails stops
  the ones already started, newest first, and the supervisor with
  ("shutdown", ("failed_to_start_child", id, reason)).
- Calls answer as OTP's supervisor does; exits and retries are handled by `_restart`.
- terminate stops static children newest first, and simple_one_for_one children all at once.
- code_change calls the callback module's init again with the saved args and takes the new
  flags and specs (static children are updated or added, never started or removed).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from actors import erlang, gen_server
from actors.erlang import Pid
from actors.otp_types import CallResult, CastResult, InfoResult, InitResult

from . import _children as kids
from . import _restart
from ._state import State
from ._store import StaticChildren
from .childspec import Child, SpecError, parse_child, parse_children, parse_flags


class SupervisorServer(gen_server.GenServer):
    """The gen_server callbacks of a supervisor process."""

    def init(self, args: Any) -> InitResult[State]:
        name, module, init_args = args
        erlang.process_flag("trap_exit", True)
        callbacks = module() if isinstance(module, type) else module
        result = callbacks.init(init_args)
        if result == "ignore":
            return "ignore"
        parsed = _parse_init(module, result)
        if parsed[0] == "stop":
            return parsed
        _, flags, children = parsed
        state = State(name or erlang.self(), module, init_args, flags, callbacks)
        if flags.strategy == "simple_one_for_one":
            state.template = children[0]
            return ("ok", state)
        return self._start_all(state, children)

    @staticmethod
    def _start_all(state: State, children: list[Child]) -> InitResult[State]:
        started = state.children
        for child in children:
            result = kids.start_child(child)
            if result[0] != "ok":
                kids.report(state.name, "start_error", result[1], child)
                for done in started.newest_first():
                    kids.stop_child(done, state.name)
                return ("stop", ("shutdown", ("failed_to_start_child", child.id, result[1])))
            child.pid = result[1]
            if child.pid == "undefined" and child.restart == "temporary":
                continue  # OTP keeps no spec for a temporary child that ignored its start
            started.add(child)
            if child.pid != "undefined":
                kids.progress(state.name, child)
        return ("ok", state)

    # -- calls ------------------------------------------------------------------------------

    def handle_call(self, request: Any, from_: Any, state: State) -> CallResult[State]:
        match request:
            case ("start_child", arg):
                reply = self._start_dynamic(state, arg) if state.template is not None \
                    else self._start_static(state, arg)
            case ("terminate_child", key):
                reply = self._terminate_child(state, key)
            case ("restart_child", key):
                reply = self._restart_stopped(state, key)
            case ("delete_child", key):
                reply = self._delete_child(state, key)
            case "which_children":
                reply = state.which_children()
            case ("which_child", key):
                reply = state.which_child(key)
            case "count_children":
                reply = state.count_children()
            case ("get_childspec", key):
                reply = state.childspec(key)
            case "get_callback_module":
                reply = state.module
            case _:
                reply = ("error", ("bad_call", request))
        return ("reply", reply, state)

    @staticmethod
    def _start_dynamic(state: State, arg: Any) -> Any:
        template = state.template
        assert template is not None
        if not isinstance(arg, list | tuple):
            return ("error", ("badarg", arg))  # extra start args are a list
        args = list(arg)
        result = kids.start_child(template, args)
        if result[0] == "ok" and type(result[1]) is Pid:
            state.dynamic.store(result[1], None if template.restart == "temporary" else args)
        return result

    @staticmethod
    def _start_static(state: State, arg: Any) -> Any:
        try:
            child = parse_child(arg, state.flags.auto_shutdown)
        except SpecError as err:
            return ("error", err.reason)
        existing = state.children.get(child.id)
        if existing is not None:
            if type(existing.pid) is Pid:
                return ("error", ("already_started", existing.pid))
            return ("error", "already_present")
        result = kids.start_child(child)
        if result[0] == "ok":
            child.pid = result[1]
            if not (result[1] == "undefined" and child.restart == "temporary"):
                state.children.add(child)
                if type(child.pid) is Pid:
                    kids.progress(state.name, child)
            return result
        kids.report(state.name, "start_error", result[1], child)
        if type(result[1]) is tuple and result[1][:1] == ("already_started",):
            return result
        return ("error", (result[1], child.as_map()))  # OTP's {error, {What, Child}}

    @staticmethod
    def _terminate_child(state: State, key: Any) -> Any:
        if state.template is not None:
            if type(key) is not Pid:
                return ("error", "simple_one_for_one")
            found = state.dynamic_key(key)
            if found is None:  # OTP: a pid that is no longer alive is taken as stopped
                # (OTP's supervisor crashes on a remote one)
                local = erlang.node(key) == erlang.node()
                return "ok" if local and not erlang.is_process_alive(key) \
                    else ("error", "not_found")
            state.dynamic.pop(found)
            if found is key:
                kids.shutdown(key, state.template.shutdown)
            return "ok"
        child = state.children.get(key)
        if child is None:
            return ("error", "not_found")
        kids.stop_child(child, state.name)
        if child.restart == "temporary":
            state.children.remove(child)
        else:
            state.children.set_pid(child, "undefined")
        return "ok"

    @staticmethod
    def _restart_stopped(state: State, key: Any) -> Any:
        child = _stopped_child(state, key)
        if not isinstance(child, Child):
            return child
        result = kids.start_child(child)
        if result[0] == "ok":
            state.children.set_pid(child, result[1])
            if type(child.pid) is Pid:
                kids.progress(state.name, child)
        return result

    @staticmethod
    def _delete_child(state: State, key: Any) -> Any:
        child = _stopped_child(state, key)
        if not isinstance(child, Child):
            return child
        state.children.remove(child)
        return "ok"

    # -- exits, retries, end ------------------------------------------------------------------

    def handle_cast(self, msg: Any, state: State) -> CastResult[State]:
        match msg:
            case ("try_again_restart", key):
                return _restart.try_again(state, key)
        return ("noreply", state)

    def handle_info(self, msg: Any, state: State) -> InfoResult[State]:
        match msg:
            case ("EXIT", pid, reason) if type(pid) is Pid:
                return _restart.child_exited(state, pid, reason)
        kids.log.error("Supervisor %r received unexpected message: %r", state.name, msg)
        return ("noreply", state)

    def terminate(self, reason: Any, state: Any) -> Any:
        if not isinstance(state, State):
            return "ok"
        if state.template is not None:
            kids.shutdown_many(state.dynamic.running(), state.template, state.name)
            state.dynamic.clear()
            return "ok"
        for child in state.children.newest_first():
            kids.stop_child(child, state.name)
            child.pid = "undefined"
        return "ok"

    def code_change(self, old_vsn: Any, state: State, extra: Any) -> Any:
        """OTP's supervisor code_change: init again, take the new flags and specs. Returns
        ("ok", state), or ("error", reason), or init's unexpected return as it is (sys wraps
        a result that is not ("ok", s) as ("error", result), as OTP's sys does)."""
        result = state.callbacks.init(state.args)
        if result == "ignore":
            return ("ok", state)
        if not (type(result) is tuple and len(result) == 2 and result[0] == "ok"
                and type(result[1]) is tuple and len(result[1]) == 2):
            return result
        flags_term, specs = result[1]
        try:
            flags = parse_flags(flags_term)
        except SpecError as err:
            if type(err.reason) is tuple and err.reason[0] == "invalid_type":
                return ("error", ("bad_flags", flags_term))
            return ("error", err.reason)
        if (flags.strategy == "simple_one_for_one") != (state.template is not None):
            return ("error", ("invalid_strategy", flags.strategy))
        try:
            children = parse_children(specs, flags.auto_shutdown)
        except SpecError as err:
            return ("error", err.reason)
        if state.template is not None:
            if len(children) != 1:
                return ("error", ("bad_start_spec", specs))
            template = children[0]
        else:
            store = _update_static(state.children, children)
        new_state = dataclasses.replace(state, flags=flags)
        if state.template is not None:
            new_state.template = template
        else:
            new_state.children = store
        return ("ok", new_state)


def _parse_init(module: Any, result: Any) -> Any:
    """("ok", flags, children) or the ("stop", reason) init returns, in OTP's check order:
    the return's shape, the flags, simple_one_for_one's one spec, then the specs."""
    if not (type(result) is tuple and len(result) == 2 and result[0] == "ok"
            and type(result[1]) is tuple and len(result[1]) == 2):
        return ("stop", ("bad_return", (module, "init", result)))
    flags_term, specs = result[1]
    try:
        flags = parse_flags(flags_term)
    except SpecError as err:
        return ("stop", ("supervisor_data", err.reason))
    if flags.strategy == "simple_one_for_one" and not (isinstance(specs, list)
                                                      and len(specs) == 1):
        return ("stop", ("bad_start_spec", specs))
    try:
        children = parse_children(specs, flags.auto_shutdown)
    except SpecError as err:
        return ("stop", ("start_spec", err.reason))
    return ("ok", flags, children)


def _update_static(old: StaticChildren, new: list[Child]) -> StaticChildren:
    """code_change, as OTP's: the new specs in their order (a known id keeps its pid), then
    the old children the new specs do not name, in their start order. Nothing is started."""
    updated = StaticChildren()
    for spec in new:
        known = old.get(spec.id)
        if known is not None:
            spec.pid = known.pid
        updated.add(spec)
    for child in old.start_order():
        if updated.get(child.id) is None:
            updated.add(child)
    return updated


def _stopped_child(state: State, key: Any) -> Child | tuple[str, str]:
    """The stopped static child `key`, or the error restart/delete_child return."""
    if state.template is not None:
        return ("error", "simple_one_for_one")
    child = state.children.get(key)
    if child is None:
        return ("error", "not_found")
    if type(child.pid) is Pid:
        return ("error", "running")
    if child.pid == "restarting":
        return ("error", "restarting")
    return child
