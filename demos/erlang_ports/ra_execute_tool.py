"""Port of the seed's `execute_tool/3` through `ra:process_command` ("Production:
Replicated Log") and of its "Production: Automatic Routing" variant.

`ra.process_command(server_id, command, timeout)` answers in one of ra's three shapes,
which `execute_tool` maps as the seed does:

    {ok, Reply, Leader}   the command is committed (on a quorum) and applied -> {ok, Reply}
    {error, Reason}       e.g. {error, noproc}: the member asked is not running
    {timeout, ServerId}   no answer in time -> {error, timeout}

One line differs from the seed, on purpose: the seed's command `{execute_tool, Tool, Args}`
makes every member run the tool inside `apply/3` (see `ra_machine_apply`). Here the tool
runs once, on the leader's node, before the command, and the command carries the result:
`{execute_tool, Tool, Args, Result}` (`ra_machine_apply.tool_command`), for the
deterministic `ErlmcpConsensusMachine`, whose reply is the result itself; so
`{ok, Result, _Leader} -> {ok, Result}` gives the caller the POC's `{ok, Result}`.

A timeout does not mean the command was not applied: it may still commit later (or it may
not). The seed's `{timeout, _} -> {error, timeout}` drops that distinction; the demo shows
it.

Routing: the caller may name any member. A follower answers the request with the leader's
id and `ra.process_command` asks the leader (ra does the same for `ra:process_command/2`),
so "Automatic Routing" is `ra:process_command(AnyMember, Command)` as it stands.

    python -m demos.erlang_ports.ra_execute_tool
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actors import ra

from .ra_cluster_setup import (
    SERVER_NAME,
    SYSTEM,
    current_leader,
    init_cluster,
    local_nodes,
    local_state,
    wait_caught_up,
    wait_for,
)
from .ra_machine_apply import ErlmcpConsensusMachine, executions, reset_executions, tool_command

__all__ = ["ExecuteToolResult", "execute_tool", "execute_tool_routed", "main"]

ServerId = tuple[str, str]
DEFAULT_TIMEOUT = 5000  # ra:process_command/2's default


# %% Production - Replicated, durable log
# execute_tool(ClusterId, Tool, Args) ->
def execute_tool(cluster_id: ServerId, tool: Any, args: Any,
                 timeout: int = DEFAULT_TIMEOUT) -> tuple[str, Any]:
    """("ok", result) | ("error", reason) | ("error", "timeout")."""
    # %% Write to ra log (automatically replicated)
    # Command = {execute_tool, Tool, Args},
    # Here: the tool runs once, on the leader, and the command carries its result.
    prepared = tool_command(cluster_id, tool, args, timeout)
    # case ra:process_command(ClusterId, Command) of
    answer = (ra.process_command(cluster_id, prepared[1], timeout) if prepared[0] == "ok"
              else prepared)  # no leader reached to run the tool: ra's own answer
    match answer:
        # {ok, Result, _Leader} ->
        case ("ok", result, _leader):
            # %% Command replicated to quorum and applied
            # {ok, Result};
            return ("ok", result)
        # {error, Reason} ->
        case ("error", reason):
            # {error, Reason};
            return ("error", reason)
        # {timeout, _} ->
        case ("timeout", _):
            # {error, timeout}
            return ("error", "timeout")
    # end.
    raise ValueError(f"ra.process_command answered {answer!r}")  # no other shape exists


# %% Production - ra handles routing automatically
# execute_tool(ClusterId, Tool, Args) ->
def execute_tool_routed(cluster_id: ServerId, tool: Any, args: Any,
                        timeout: int = DEFAULT_TIMEOUT) -> Any:
    """ra's answer as it is: ("ok", result, leader) | ("error", r) | ("timeout", sid)."""
    # %% ra automatically routes to leader
    # %% Client doesn't need to know who the leader is
    # ra:process_command(ClusterId, {execute_tool, Tool, Args}).
    prepared = tool_command(cluster_id, tool, args, timeout)  # as above: run once, carry it
    if prepared[0] != "ok":
        return prepared
    return ra.process_command(cluster_id, prepared[1], timeout)


# ------------------------------------------------------------------ the demonstration


@dataclass
class ExecuteToolResult:
    leader: ServerId
    routed: dict[ServerId, Any]  # execute_tool_routed through each member
    via_each: dict[ServerId, Any]  # execute_tool through each member
    tool_runs: int  # executions of the tools, all nodes together
    error: Any  # execute_tool through a stopped member
    timeout: Any  # execute_tool with no quorum
    timed_out_committed: bool  # whether the timed-out command was applied in the end
    audit_logs_identical: bool
    audit_log_size: int


def main() -> ExecuteToolResult:
    with local_nodes("exec") as cluster:
        started = init_cluster(cluster.names, ErlmcpConsensusMachine)
        if started[0] != "ok":
            raise RuntimeError(f"cluster: {started!r}")
        ids = [(SERVER_NAME, node) for node in cluster.names]
        leader = wait_for("a leader", lambda: current_leader(ids))
        print(f"leader: {leader[1]}")
        reset_executions()

        print("{ok, Result, _Leader} -> {ok, Result}, through each member:")
        via_each = {}
        for i, sid in enumerate(ids):
            via_each[sid] = execute_tool(sid, "multiply", {"x": 6, "y": i + 1})
            role = "leader" if sid == leader else "follower"
            print(f"  execute_tool({sid[1].split('@')[0]} [{role}], multiply, "
                  f"x=6 y={i + 1}) -> {via_each[sid]}")

        print("Automatic routing: ra:process_command(AnyMember, Command) as it stands:")
        routed = {}
        for sid in ids:
            routed[sid] = execute_tool_routed(sid, "concat", {"s1": "via", "s2": sid[1]})
            print(f"  through {sid[1].split('@')[0]}: -> {routed[sid]}")
        tool_runs = sum(executions().values())
        print(f"tools run: {tool_runs} (one per call, on the leader's node)")

        followers = [sid for sid in ids if sid != leader]
        ra.stop_server(SYSTEM, followers[0])
        error = execute_tool(followers[0], "add", {"a": 1, "b": 1})
        print(f"{{error, Reason}}: through a stopped member -> {error}")

        ra.stop_server(SYSTEM, followers[1])  # the leader is alone: no quorum
        before = len(local_state(leader)["audit_log"])
        runs_before = sum(executions().values())
        timeout = execute_tool(leader, "add", {"a": 40, "b": 2}, 500)
        ran = sum(executions().values()) - runs_before
        print(f"{{timeout, _}}: with no quorum, 500 ms -> {timeout} (the tool ran {ran}x)")

        for sid in followers:
            ra.restart_server(SYSTEM, sid)
        wait_for("a leader again", lambda: current_leader(ids))
        wait_caught_up(ids)
        logs = [local_state(sid)["audit_log"] for sid in ids]
        timed_out_committed = len(logs[0]) > before
        print(f"after the followers came back: the timed-out command was "
              f"{'applied after all' if timed_out_committed else 'dropped'} "
              f"(a timeout leaves the outcome unknown)")
        identical = all(log == logs[0] for log in logs)
        print(f"audit logs identical on all members: {identical}; entries: {len(logs[0])}")
        return ExecuteToolResult(leader, routed, via_each, tool_runs, error, timeout,
                                 timed_out_committed, identical, len(logs[0]))


if __name__ == "__main__":
    # Run the importable module's main, not a second copy of it named __main__.
    import importlib

    importlib.import_module("demos.erlang_ports.ra_execute_tool").main()
