"""Port of the seed's "POC: In-Memory List" (the leader's `handle_call` that runs a tool and
records an audit entry), and the clause the real POC (erlmcp_consensus_poc) has instead.

What is wrong with, or missing from, the seed's clause (`SeedLeader`, kept as written):
- `erlang:unique_integer([monotonic])` may be negative (without `positive` Erlang starts
  the sequence below zero); the real POC asks for `[monotonic, positive]`. (Ours is always
  positive, a permitted strengthening, but the correct call is shown.)
- The entry has no `args` and no `executor`: an audit trail that cannot say what was run
  with which arguments, nor where. The real POC records both.
- The head does not match `#state{role = leader}`: any server, a follower too, would run
  the tool itself. And `execution_count` is not counted.
- The comment says "Simple list append", but `[AuditEntry | Log]` prepends: the log is
  newest first.
- `execute_tool_local` runs inside the leader: a tool that raises takes the leader (and
  its whole in-memory log) down with it. The service runs tools in a supervised
  ToolRunner instead (`actors.consensus.tool_runner`).

`FixedLeader` is the real POC's clause, with the tool run in a ToolRunner.

    python -m demos.erlang_ports.poc_leader_handle_call
"""

from __future__ import annotations

from typing import Any

from actors import Exit, Node, erlang, gen_server
from actors.consensus import tool_runner
from actors.consensus.tools import Tools, default_tools


def _tools() -> Tools:
    tools = default_tools()
    tools.add("crash", lambda args, request_id: 1 / 0)
    return tools


class SeedLeader(gen_server.GenServer):
    def init(self, tools: Tools) -> Any:
        return ("ok", {"audit_log": [], "tools": tools})

    # handle_call({execute_tool, Tool, Args}, _From, State) ->
    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        match request:
            case ("execute_tool", tool, args):
                #     Result = execute_tool_local(Tool, Args),
                result = state["tools"].run(tool, args)
                #     AuditEntry = #{
                #         execution_id => erlang:unique_integer([monotonic]),
                #         tool => Tool,
                #         result => Result,
                #         timestamp => erlang:system_time(millisecond)
                #     },
                audit_entry = {
                    "execution_id": erlang.unique_integer(["monotonic"]),
                    # correct: erlang.unique_integer(["monotonic", "positive"])
                    "tool": tool,
                    # missing: "args": args, "executor": erlang.node()
                    "result": result,
                    "timestamp": erlang.system_time("millisecond"),
                }
                #     NewState = State#state{
                #         audit_log = [AuditEntry | State#state.audit_log]  % In-memory only
                #     },
                new_state = {**state, "audit_log": [audit_entry, *state["audit_log"]]}
                #     {reply, {ok, Result}, NewState}.
                return ("reply", ("ok", result), new_state)
            case "audit_log":  # (not in the seed: the demonstration reads the log)
                return ("reply", state["audit_log"], state)
        return ("reply", ("error", "unknown_request"), state)


class FixedLeader(gen_server.GenServer):
    """handle_call({execute_tool, Tool, Args}, _From, State = #state{role = leader})."""

    def init(self, tools: Tools) -> Any:
        return ("ok", {"role": "leader", "audit_log": [], "execution_count": 0,
                       "pool": tool_runner.RunnerPool(tools)})

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        match request:
            case ("execute_tool", tool, args) if state["role"] == "leader":
                outcome = state["pool"].run(tool, args)  # in a ToolRunner, not in here
                result = outcome[1] if outcome[0] == "ok" else outcome
                audit_entry = {
                    "execution_id": erlang.unique_integer(["monotonic", "positive"]),
                    "tool": tool,
                    "args": args,
                    "result": result,
                    "timestamp": erlang.system_time("millisecond"),
                    "executor": erlang.node(),
                }
                state["audit_log"] = [audit_entry, *state["audit_log"]]  # prepend: newest first
                state["execution_count"] += 1
                return ("reply", outcome, state)
            case "audit_log":
                return ("reply", state["audit_log"], state)
        return ("reply", ("error", "unknown_request"), state)


def _run(leader: Any, tool: str, args: dict[str, Any]) -> Any:
    try:
        return gen_server.call(leader, ("execute_tool", tool, args))
    except Exit as exc:
        return ("exit", exc.reason[0][0] if type(exc.reason[0]) is tuple else exc.reason[0])


def demo() -> None:
    tools = _tools()
    _, seed = gen_server.start(SeedLeader, tools)
    print("1. the seed's leader clause")
    for tool, args in (("add", {"a": 5, "b": 3}), ("multiply", {"x": 4, "y": 2}),
                       ("nope", {})):
        print(f"   {tool}{args} -> {_run(seed, tool, args)}")
    log = gen_server.call(seed, "audit_log")
    print(f"   its log, newest first (a prepend): {[e['tool'] for e in log]}")
    print(f"   an entry: {log[-1]}  (no args, no executor)")
    assert [e["tool"] for e in log] == ["nope", "multiply", "add"] and "args" not in log[0]
    assert _run(seed, "nope", {})[1] == ("error", {"reason": "unknown_tool", "tool": "nope"})
    print(f"   crash{{}} -> {_run(seed, 'crash', {})}: the leader died, and its log with it")
    assert not erlang.is_process_alive(seed)

    print("2. the real POC's clause, the tool in a supervised ToolRunner")
    tool_runner.start_link(tools)
    _, fixed = gen_server.start(FixedLeader, tools)
    print(f"   add -> {_run(fixed, 'add', {'a': 5, 'b': 3})}")
    crashed = _run(fixed, "crash", {})
    print(f"   crash{{}} -> ('error', ('tool_crashed', {crashed[1][1][0]!r}, ...))")
    print(f"   multiply -> {_run(fixed, 'multiply', {'x': 4, 'y': 2})}: the leader lives on")
    log = gen_server.call(fixed, "audit_log")
    print(f"   an entry: {log[-1]}")
    assert [e["tool"] for e in log] == ["multiply", "crash", "add"]
    assert log[-1]["args"] == {"a": 5, "b": 3} and log[-1]["executor"] == erlang.node()


def main() -> int:
    node = Node("poc_leader@localhost")
    try:
        with node.bound():
            demo()
    finally:
        node.stop()
    print("poc_leader_handle_call: done")
    return 0


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.CRITICAL)  # crash reports would interleave the story
    raise SystemExit(main())
