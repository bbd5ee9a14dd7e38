"""Port of the seed's state machine `apply/3` ("Production: Replicated Log", and step 3 of
"Migration Path"): the seed's version, which is wrong, and a deterministic one.

What is wrong with the seed's `apply/3` (`SeedConsensusMachine`, kept as written):

1. It runs the tool inside `apply`. Every member applies every committed command, so a
   3-member cluster runs the tool 3 times per call, and a member that restarts replays its
   log through `apply` and runs every tool again.
2. It calls `erlang:unique_integer([monotonic])` and `erlang:system_time(millisecond)`.
   Each replica gets its own id and its own clock reading, so "the same" audit entry
   differs from member to member: the replicas diverge, which a replicated state machine
   must never do (`actors/ra_machine.py` states the rule).
3. It returns `{State, Effects}` with `Effects = [{reply, {ok, Result}}]`. In ra 2.x
   `apply/3` returns `{State, Reply}` or `{State, Reply, Effects}`, so ra takes the
   2-tuple's second element for the reply and the caller of `ra:process_command` gets
   the list `[{reply, {ok, Result}}]`. Nor is `{reply, Reply}` a machine effect: the
   reply is the return's second element. (`{State, Effects}` was ra 0.x's apply return,
   and 0.x had no reply effect either. ra's own machines use a 3-element
   `{reply, From, Reply}`, with `From` from `Meta`, to answer a caller later; that is a
   different thing, and `actors.ra` does not have it.)

The fix (`ErlmcpConsensusMachine`): the tool runs once, before the command, on the
leader's node (`tool_command`), and the command carries its result:
`{execute_tool, Tool, Args, Result}`. `apply` only records it, with
`execution_id = maps:get(index, Meta)` (the entry's log index, the same on every member)
and `timestamp = maps:get(system_time, Meta)` (the leader's clock when it appended the
entry, replicated with it), and returns `{State, Result}`.

`main()` shows both: first two machine instances applying the same command with the same
meta (the seed's diverge, the fixed ones do not), then each machine in a real 3-member
cluster (the seed's runs the tool on every member and again on a restart; the fixed one
runs it once, and every member holds the same audit log).

    python -m demos.erlang_ports.ra_machine_apply
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from actors import erlang, ra, ra_machine, rpc
from actors.consensus.tools import default_tools

from .ra_cluster_setup import (
    SYSTEM,
    current_leader,
    init_cluster,
    local_nodes,
    local_state,
    wait_caught_up,
    wait_for,
)

__all__ = ["ErlmcpConsensusMachine", "SeedConsensusMachine", "compare_replicas",
           "execute_tool_local", "executions", "main", "reset_executions", "tool_command"]

MODULE = "demos.erlang_ports.ra_machine_apply"  # how other nodes name this module in rpc

# How many times execute_tool_local ran on each node: the demo's window on side effects.
# The in-process nodes share this module, so it is keyed by node.
_executions: Counter[str] = Counter()
_executions_lock = threading.Lock()


def execute_tool_local(tool: Any, args: Any) -> Any:
    """The POC's `execute_tool_local/2` (the built-in tools of actors.consensus.tools):
    the tool's result, or {error, #{reason => unknown_tool, tool => Tool}}."""
    with _executions_lock:
        _executions[erlang.node()] += 1
    return default_tools().run(tool, args)


def executions() -> dict[str, int]:
    with _executions_lock:
        return dict(_executions)


def reset_executions() -> None:
    with _executions_lock:
        _executions.clear()


# ------------------------------------------------------------------ the seed's machine


class SeedConsensusMachine(ra_machine.Machine):
    """BROKEN, kept as the seed wrote it: runs the tool in apply, reads the node's clock
    and unique integers, and returns {State, Effects}. Do not use."""

    # init(_Config) ->
    #     #{audit_log => [], execution_count => 0}.
    def init(self, config: Any) -> Any:
        return {"audit_log": [], "execution_count": 0}

    # apply(_Meta, {execute_tool, Tool, Args}, State) ->
    def apply(self, meta: ra_machine.Meta, command: Any, state: Any) -> tuple[Any, ...]:
        match command:
            case ("execute_tool", tool, args):
                # Result = execute_tool_local(Tool, Args),
                # WRONG: every member runs the tool, and again on every replay.
                result = execute_tool_local(tool, args)
                # AuditEntry = #{
                audit_entry = {
                    # execution_id => erlang:unique_integer([monotonic]),
                    # WRONG: a different id on each member.
                    "execution_id": erlang.unique_integer(["monotonic"]),
                    # tool => Tool,
                    "tool": tool,
                    # result => Result,
                    "result": result,
                    # timestamp => erlang:system_time(millisecond)
                    # WRONG: each member's own clock, when it applies.
                    "timestamp": erlang.system_time("millisecond"),
                }
                # },
                # %% Log automatically persisted and replicated
                # Effects = [{reply, {ok, Result}}],
                # WRONG: {reply, Reply} is no ra machine effect.
                effects = [("reply", ("ok", result))]
                # {State#{audit_log => [AuditEntry | maps:get(audit_log, State)]}, Effects}.
                # WRONG: {State, X} is {State, Reply}: the caller gets Effects as the reply.
                return ({**state, "audit_log": [audit_entry, *state["audit_log"]]}, effects)
        # (no other clause: any other command is a function_clause crash; ra reports it to
        # the caller and leaves the state unchanged)
        raise ValueError(f"function_clause: apply/3 has no clause for {command!r}")

    # -export([init/1, apply/3, state_enter/2]).
    # The seed exports state_enter/2 without defining it (a compile error in Erlang);
    # Machine's default (no effects) stands in for it.


# ------------------------------------------------------------------ the fix


class ErlmcpConsensusMachine(ra_machine.Machine):
    """Deterministic: reads only Meta, the command and the state.

    Command {execute_tool, Tool, Args, Result}, Result computed before the command, once,
    on the leader (`tool_command`). Reply: Result.
    """

    # init(_Config) ->
    #     #{audit_log => [], execution_count => 0}.
    def init(self, config: Any) -> Any:
        return {"audit_log": [], "execution_count": 0}

    # apply(#{index := Index, system_time := Ts}, {execute_tool, Tool, Args, Result}, State) ->
    def apply(self, meta: ra_machine.Meta, command: Any, state: Any) -> tuple[Any, ...]:
        match command:
            case ("execute_tool", tool, args, result):
                # AuditEntry = #{execution_id => Index, tool => Tool, args => Args,
                #                result => Result, timestamp => Ts},
                audit_entry = {
                    "execution_id": meta["index"],  # the log index: the same everywhere
                    "tool": tool,
                    "args": args,
                    "result": result,
                    "timestamp": meta["system_time"],  # the leader's clock, replicated
                }
                # #{audit_log := Log, execution_count := N} = State,
                # {State#{audit_log => [AuditEntry | Log], execution_count => N + 1}, Result}.
                new_state = {
                    "audit_log": [audit_entry, *state["audit_log"]],
                    "execution_count": state["execution_count"] + 1,
                }
                return (new_state, result)
        # apply(_Meta, Other, State) -> {State, {error, {unknown_command, Other}}}.
        return (state, ("error", ("unknown_command", command)))

    def overview(self, state: Any) -> Any:
        return {"audit_log_size": len(state["audit_log"])}


def _no_query(_state: Any) -> None:
    return None


def tool_command(cluster_id: tuple[str, str], tool: Any, args: Any,
                 timeout: int = 5000) -> Any:
    """Run the tool once, on the leader's node, and build the command that records it:
    ("ok", ("execute_tool", tool, args, result)), or ra's ("error", r) | ("timeout", sid).

    `ra.leader_query` finds the leader the way `ra.process_command` does (any member
    redirects to it, retrying across an election until `timeout`). If leadership moves
    between the run and the commit, the command still commits once, at the new leader:
    the tool ran once either way.
    """
    found = ra.leader_query(cluster_id, _no_query, timeout)
    if found[0] != "ok":
        return found
    leader_node = found[2][1]
    result = rpc.call(leader_node, MODULE, "execute_tool_local", [tool, args], timeout)
    if type(result) is tuple and len(result) == 2 and result[0] == "badrpc":
        return ("error", result[1])
    return ("ok", ("execute_tool", tool, args, result))


# ------------------------------------------------------------------ the demonstration


@dataclass
class ReplicaComparison:
    """Two replicas (machine instances) applying one command with one meta."""

    machine: str
    states: tuple[Any, Any]
    replies: tuple[Any, Any]
    identical: bool


def compare_replicas(machine_cls: type[ra_machine.Machine], command: Any,
                     meta: ra_machine.Meta) -> ReplicaComparison:
    """Apply `command` with `meta` on two fresh instances, the second a little later (as a
    follower applies an entry after the leader). Deterministic machines give equal states."""
    replies, states = [], []
    for replica in (machine_cls(), machine_cls()):
        result = ra_machine.normalise_result(replica.apply(meta, command, replica.init(None)))
        states.append(result[0])
        replies.append(result[1])
        # the other replica applies it in a later millisecond (a bounded wait for the clock)
        applied_by = erlang.system_time("millisecond")
        wait_for("the clock to move on", lambda t=applied_by: erlang.system_time(
            "millisecond") > t, 1000, 1)
    return ReplicaComparison(machine_cls.__name__, (states[0], states[1]),
                             (replies[0], replies[1]), states[0] == states[1])


@dataclass
class ClusterRun:
    """One machine in a 3-member cluster: one command, then a follower restarted."""

    machine: str
    reply: Any  # what ra.process_command returned
    runs_after_command: dict[str, int]  # tool executions per node
    runs_after_restart: dict[str, int]
    audit_logs: list[Any]  # each member's audit_log, after the restart
    identical: bool


@dataclass
class ApplyResult:
    seed_replicas: ReplicaComparison
    fixed_replicas: ReplicaComparison
    seed_cluster: ClusterRun
    fixed_cluster: ClusterRun


def _cluster_run(nodes: list[str], machine: type[ra_machine.Machine], name: str,
                 tool: str, args: dict[str, Any]) -> ClusterRun:
    started = init_cluster(nodes, machine, cluster_name=name, name=name)
    if started[0] != "ok":
        raise RuntimeError(f"{name}: {started!r}")
    ids = [(name, node) for node in nodes]
    leader = wait_for("a leader", lambda: current_leader(ids))
    reset_executions()
    if machine is SeedConsensusMachine:
        # the seed's execute_tool: Command = {execute_tool, Tool, Args}
        reply = ra.process_command(leader, ("execute_tool", tool, args))
    else:
        prepared = tool_command(leader, tool, args)
        reply = ra.process_command(leader, prepared[1]) if prepared[0] == "ok" else prepared
    wait_caught_up(ids)
    after_command = executions()
    print(f"  ra:process_command -> {reply}")
    print(f"  tool runs per node after the command:  {_short(after_command)}")

    follower = next(sid for sid in ids if sid != leader)
    ra.stop_server(SYSTEM, follower)
    ra.restart_server(SYSTEM, follower)  # it rebuilds its state by replaying its log
    wait_caught_up(ids)
    after_restart = executions()
    print(f"  ... after restarting {follower[1].split('@')[0]} (log replay): "
          f"{_short(after_restart)}")

    logs = [local_state(sid)["audit_log"] for sid in ids]
    identical = all(log == logs[0] for log in logs)
    for sid, log in zip(ids, logs, strict=True):
        print(f"  {sid[1].split('@')[0]:<16} audit_log = {log}")
    print(f"  replicas identical: {identical}")
    return ClusterRun(machine.__name__, reply, after_command, after_restart, logs, identical)


def _short(runs: dict[str, int]) -> dict[str, int]:
    return {node.split("@")[0]: n for node, n in sorted(runs.items())}


def main() -> ApplyResult:
    tool, args = "add", {"a": 2, "b": 3}
    meta: ra_machine.Meta = {"index": 7, "term": 2, "system_time": 1_700_000_000_000}

    print("1. Two replicas apply the same entry (same meta, same command):")
    reset_executions()
    seed = compare_replicas(SeedConsensusMachine, ("execute_tool", tool, args), meta)
    seed_runs = sum(executions().values())
    print(f"  SeedConsensusMachine: identical={seed.identical}; the tool ran {seed_runs}x")
    for state in seed.states:
        print(f"    {state['audit_log'][0]}")
    print(f"    reply (the 2-tuple's second element): {seed.replies[0]!r}")
    fixed = compare_replicas(ErlmcpConsensusMachine, ("execute_tool", tool, args, 5), meta)
    print(f"  ErlmcpConsensusMachine: identical={fixed.identical}")
    for state in fixed.states:
        print(f"    {state['audit_log'][0]}")
    print(f"    reply: {fixed.replies[0]!r}")

    with local_nodes("apply") as cluster:
        print("2. SeedConsensusMachine in a 3-member cluster (BROKEN):")
        seed_cluster = _cluster_run(cluster.names, SeedConsensusMachine, "seed_machine",
                                    tool, args)
        print("3. ErlmcpConsensusMachine in a 3-member cluster (fixed):")
        fixed_cluster = _cluster_run(cluster.names, ErlmcpConsensusMachine,
                                     "erlmcp_consensus", tool, args)

    if seed.identical or not fixed.identical or not fixed_cluster.identical:
        raise RuntimeError("the demonstration did not show what it should")
    return ApplyResult(seed, fixed, seed_cluster, fixed_cluster)


if __name__ == "__main__":
    # Run the importable module's main, not a second copy of it named __main__: the
    # members find execute_tool_local and the machine classes by this module's name.
    import importlib

    importlib.import_module(MODULE).main()
