"""The parts of the consensus service on their own, on one in-process node: the tool
registry, the AuditLog and the ToolRunner pool."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from actors import Node, erlang
from actors.consensus import audit_log, tool_runner
from actors.consensus.tools import DEFAULT_TIMEOUT, BadArgs, Tools, default_tools, unknown_tool
from supervision import supervisor
from tests.helpers import exit_from, recv

# -- tools --------------------------------------------------------------------------------------


def test_the_builtin_tools_give_the_pocs_results() -> None:
    tools = default_tools()
    assert tools.names() == ["add", "concat", "divide", "multiply", "subtract"]
    assert tools.run("add", {"a": 5, "b": 3}) == 8
    assert tools.run("multiply", {"x": 4, "y": 2}) == 8
    assert tools.run("divide", {"a": 10, "b": 2}) == 5.0
    assert tools.run("subtract", {"a": 20, "b": 5}) == 15
    assert tools.run("concat", {"s1": "hello", "s2": "world"}) == "hello world"
    assert tools.run("add", {"a": 1.5, "b": 1, "extra": "ignored"}) == 2.5  # a map pattern


@pytest.mark.parametrize(("tool", "args"), [
    ("nope", {"a": 1, "b": 2}),                          # no such tool
    ("add", {"a": 1}),                                   # a missing key
    ("multiply", {"a": 1, "b": 2}),                      # the other tool's keys
    ("divide", {"a": 1, "b": 0}),                        # B =/= 0
    ("divide", {"a": 1, "b": 0.0}),
    ("add", {"a": "1", "b": 2}),                         # wrong types
    ("add", {"a": True, "b": 2}),                        # true is an atom in Erlang
    ("concat", {"s1": "a", "s2": 2}),
    ("add", [1, 2]),                                     # not a map at all
    (42, {}),                                            # a tool name that is no string
])
def test_unknown_tools_and_bad_arguments_answer_unknown_tool(tool: Any, args: Any) -> None:
    assert default_tools().run(tool, args) == (
        "error", {"reason": "unknown_tool", "tool": tool})


def test_the_decorator_forms_and_per_tool_timeouts() -> None:
    tools = Tools()
    seen: list[Any] = []

    @tools.tool
    def echo(args: dict[str, Any], request_id: Any) -> Any:
        seen.append(request_id)
        return args

    @tools.tool("slow", timeout=200)
    def _slow(args: dict[str, Any], request_id: Any) -> Any:
        return "slow"

    @tools.tool(timeout="infinity")
    def picky(args: dict[str, Any], request_id: Any) -> Any:
        raise BadArgs()

    assert echo({"x": 1}, None) == {"x": 1}  # the decorator gives the function back
    assert tools.names() == ["echo", "picky", "slow"] and "slow" in tools and len(tools) == 3
    assert tools.run("echo", {"k": "v"}, "req-7") == {"k": "v"} and seen[-1] == "req-7"
    assert tools.run("slow", {}) == "slow"
    assert tools.run("picky", {}) == unknown_tool("picky")
    assert [tools.timeout_of(n) for n in ("echo", "slow", "picky", "missing")] == [
        DEFAULT_TIMEOUT, 200, "infinity", DEFAULT_TIMEOUT]
    with pytest.raises(ValueError):
        tools.add("bad", echo, timeout=-1)


def test_each_registry_is_its_own() -> None:
    first, second = default_tools(), default_tools()
    first.add("extra", lambda args, rid: 1)
    assert "extra" in first and "extra" not in second and len(second) == 5


# -- the audit log ------------------------------------------------------------------------------


def _entry(execution_id: int, executor: str, request_id: Any = None) -> dict[str, Any]:
    return {"execution_id": execution_id, "tool": "add", "args": {"a": execution_id, "b": 0},
            "result": execution_id, "timestamp": 1000 + execution_id, "executor": executor,
            "request_id": request_id}


def test_audit_log_queries_newest_first_by_node_since_and_limit(node: Node) -> None:
    _, log = audit_log.start_link("test_audit")
    entries = [_entry(i, "n1" if i % 2 else "n2", f"r{i}") for i in range(1, 7)]
    for e in entries:
        assert audit_log.append(log, e, ("ok", e["result"])) == "ok"
    newest_first = entries[::-1]
    assert audit_log.size(log) == 6
    assert audit_log.query(log) == ("ok", newest_first)
    assert audit_log.query(log, node="n1") == ("ok", [entries[4], entries[2], entries[0]])
    assert audit_log.query(log, since=4) == ("ok", [entries[5], entries[4]])
    assert audit_log.query(log, limit=2) == ("ok", newest_first[:2])
    assert audit_log.query(log, node="n2", since=2, limit=1) == ("ok", [entries[5]])
    assert audit_log.query(log, node="elsewhere") == ("ok", [])
    assert audit_log.query(log, since="4")[0] == "error"
    assert audit_log.query(log, limit=-1)[0] == "error"


def test_select_is_the_same_query_as_a_pure_function() -> None:
    entries = [_entry(i, "n1") for i in range(1, 4)]  # oldest first, as kept
    assert audit_log.select(entries, {}) == ("ok", entries[::-1])
    assert audit_log.select(entries, {"since": 1, "limit": 1, "other": "ignored"}) == (
        "ok", [entries[2]])
    assert audit_log.select(entries, {"limit": "2"}) == ("error", ("bad_query", {"limit": "2"}))


def test_audit_log_remembers_the_reply_of_each_request_id(node: Node) -> None:
    _, log = audit_log.start_link("test_audit")
    assert audit_log.lookup(log, "r1") == "error"
    audit_log.append(log, _entry(1, "n1", "r1"), ("ok", 1))
    audit_log.append(log, _entry(2, "n1"), ("ok", 2))  # no request id: nothing to remember
    assert audit_log.lookup(log, "r1") == ("ok", ("ok", 1))
    assert audit_log.lookup(log, None) == "error"


def test_audit_log_exports_json_lines_oldest_first(node: Node) -> None:
    _, log = audit_log.start_link("test_audit")
    me = erlang.self()
    audit_log.append(log, audit_log.entry("add", {"a": 1, "b": 2}, 3, "r1"), ("ok", 3))
    audit_log.append(log, audit_log.entry("who", {"pid": me}, ("error", "x")), ("ok", 0))
    text = audit_log.export(log)
    lines = [json.loads(line) for line in text.splitlines()]
    assert text.endswith("\n") and len(lines) == 2
    assert lines[0]["tool"] == "add" and lines[0]["result"] == 3
    assert lines[0]["execution_id"] < lines[1]["execution_id"]
    assert lines[0]["executor"] == node.name and lines[0]["request_id"] == "r1"
    assert lines[1]["args"] == {"pid": str(me)} and lines[1]["result"] == ["error", "x"]
    assert abs(lines[0]["timestamp"] - time.time() * 1000) < 60_000
    assert audit_log.export(log, limit=1) == text.splitlines(keepends=True)[1]


# -- the tool runners ---------------------------------------------------------------------------


def _crash(args: dict[str, Any], request_id: Any) -> Any:
    return 1 / 0


def _exit(args: dict[str, Any], request_id: Any) -> Any:
    erlang.exit("boom")


def _hang(args: dict[str, Any], request_id: Any) -> Any:
    """Stuck in plain Python code (not in a runtime call) until the runner is killed."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.005)
    return "woke up"


def _runner_tools() -> Tools:
    tools = default_tools()
    tools.add("crash", _crash)
    tools.add("exit", _exit)
    tools.add("hang", _hang, timeout=200)
    return tools


def _runner_pid() -> Any:
    [(_, pid, _, _)] = supervisor.which_children(tool_runner.SUP_NAME)
    return pid


def test_a_crashing_tool_crashes_its_runner_which_is_restarted(node: Node) -> None:
    tools = _runner_tools()
    tool_runner.start_link(tools)
    pool = tool_runner.RunnerPool(tools)
    assert pool.run("add", {"a": 1, "b": 2}) == ("ok", 3)
    first = _runner_pid()
    crashed = pool.run("crash", {})
    assert crashed[0] == "error" and crashed[1][0] == "tool_crashed"
    message, stack = crashed[1][1]
    assert message == "ZeroDivisionError: division by zero"
    assert any(frame[1] == "_crash" for frame in stack)
    assert pool.run("exit", {}) == ("error", ("tool_crashed", "boom"))
    assert pool.run("add", {"a": 2, "b": 2}) == ("ok", 4)  # a restarted runner
    assert _runner_pid() != first
    assert pool.run("nope", {}) == ("ok", unknown_tool("nope"))  # a result, not a crash


def test_a_hanging_tool_times_out_and_its_runner_is_killed(node: Node) -> None:
    tools = _runner_tools()
    tool_runner.start_link(tools)
    pool = tool_runner.RunnerPool(tools)
    stuck = _runner_pid()
    ref = erlang.monitor("process", stuck)
    t0 = time.monotonic()
    assert pool.run("hang", {}) == ("error", "timeout")
    assert time.monotonic() - t0 < 1.5  # 200 ms, the tool's own timeout
    assert recv(lambda m: m[:2] == ("DOWN", ref))[4] == "killed"
    assert pool.run("add", {"a": 1, "b": 1}) == ("ok", 2)
    assert _runner_pid() != stuck


def test_a_pool_spreads_calls_over_its_runners(node: Node) -> None:
    tools = _runner_tools()
    tool_runner.start_link(tools, 3)
    pool = tool_runner.RunnerPool(tools)
    assert [pool.run("add", {"a": i, "b": 0}) for i in range(6)] == [("ok", i) for i in range(6)]
    assert len(supervisor.which_children(tool_runner.SUP_NAME)) == 3
    assert len(set(pool._runners)) == 3


def test_restarts_past_the_intensity_stop_the_runner_supervisor(node: Node) -> None:
    erlang.process_flag("trap_exit", True)
    tools = _runner_tools()
    _, sup = tool_runner.start_link(tools, 1, 1, 5)  # at most 1 restart in 5 s
    pool = tool_runner.RunnerPool(tools)
    assert pool.run("crash", {})[1][0] == "tool_crashed"  # restart 1
    assert pool.run("crash", {})[1][0] == "tool_crashed"  # restart 2: too many
    assert recv(exit_from(sup))[2] == "shutdown"  # the parent sees it (escalation)
