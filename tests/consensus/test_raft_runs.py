"""Raft mode on one node: how tools run. The server starts each run on an idle runner and
never waits for one: runs beyond the pool's size queue in arrival order, a hanging tool
times out (its runner killed and restarted) while other requests are served, and a
crash or a cancel ends only its own run."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from actors import Node, Pid, erlang
from actors import sys as sys_
from actors.consensus import app, client, tool_runner
from actors.consensus.client import SERVER_NAME
from actors.consensus.tools import Tools, default_tools
from supervision import supervisor
from tests.helpers import recv, wait_until

from .test_poc_units import _crash, _hang

WAIT_S = 10  # a bound on any one wait below; nothing here should take a second


def _start(tmp_path: Path, tools: Tools, **options: Any) -> None:
    assert app.start("raft", tools, data_dir=str(tmp_path), **options)[0] == "ok"
    wait_until(lambda: client.get_status(SERVER_NAME).get("role") == "leader", WAIT_S)


def _runners() -> dict[str, Any]:
    return {cid: pid for cid, pid, _, _ in supervisor.which_children(tool_runner.SUP_NAME)}


def _ask(tag: Any, tool: str, args: dict[str, Any], *extra: Any) -> None:
    """execute_tool from a new process; the answer comes back as ("done", tag, answer)."""
    me = erlang.self()
    erlang.spawn(lambda: erlang.send(me, ("done", tag, client.execute_tool(
        SERVER_NAME, tool, args, *extra))))


def _queued() -> int:
    """Jobs waiting in the server for an idle runner (sys:get_state, as OTP's)."""
    return len(sys_.get_state(SERVER_NAME).queued)


def _answer(tag: Any) -> Any:
    msg = recv(lambda m: type(m) is tuple and m[:2] == ("done", tag), WAIT_S * 1000)
    return msg[2]


@pytest.fixture
def gates() -> dict[str, threading.Event]:
    """Events a gated tool waits on (bounded), one per name."""
    return {}


def _gated_tools(gates: dict[str, threading.Event], started: list[str]) -> Tools:
    tools = default_tools()
    tools.add("hang", _hang, timeout=200)
    tools.add("crash", _crash)

    def gated(args: dict[str, Any], request_id: Any) -> Any:
        gate = gates.setdefault(args["name"], threading.Event())  # before it says it started
        started.append(args["name"])
        if not gate.wait(WAIT_S):
            return "gate never opened"
        return args["name"]

    tools.add("gated", gated, timeout=WAIT_S * 2000)
    return tools


def test_a_running_tool_does_not_hold_up_the_server(node: Node, tmp_path: Path,
                                                    gates: dict[str, threading.Event]) -> None:
    started: list[str] = []
    _start(tmp_path, _gated_tools(gates, started))
    _ask("slow", "gated", {"name": "slow"})
    wait_until(lambda: started == ["slow"], WAIT_S)
    assert client.get_status(SERVER_NAME, 2000)["role"] == "leader"  # answered meanwhile
    assert client.execute_tool(SERVER_NAME, "add", {"a": 1, "b": 2}, timeout=2000) == ("ok", 3)
    gates["slow"].set()
    assert _answer("slow") == ("ok", "slow")
    assert app.stop() == "ok"


def test_runs_beyond_the_pool_wait_their_turn_in_arrival_order(
        node: Node, tmp_path: Path, gates: dict[str, threading.Event]) -> None:
    started: list[str] = []
    _start(tmp_path, _gated_tools(gates, started), pool_size=1)
    gates.update((name, threading.Event()) for name in ("a", "b", "c"))
    _ask("a", "gated", {"name": "a"})
    wait_until(lambda: started == ["a"], WAIT_S)
    for queued, name in enumerate(("b", "c"), 1):  # sent one after the other
        _ask(name, "gated", {"name": name})
        wait_until(lambda queued=queued: _queued() == queued, WAIT_S)
    assert client.get_status(SERVER_NAME, 2000)["role"] == "leader"  # answered meanwhile
    assert started == ["a"]  # one runner: one run at a time
    for name in ("a", "b", "c"):
        gates[name].set()
        assert _answer(name) == ("ok", name)
    assert started == ["a", "b", "c"]
    assert app.stop() == "ok"


def test_runs_go_at_once_up_to_the_pool_size(node: Node, tmp_path: Path) -> None:
    meeting = threading.Barrier(3, timeout=WAIT_S)  # passes only if all three run at once
    tools = default_tools()
    tools.add("meet", lambda args, request_id: meeting.wait() >= 0, timeout=WAIT_S * 2000)
    _start(tmp_path, tools, pool_size=3)
    for i in range(3):
        _ask(i, "meet", {})
    assert [_answer(i) for i in range(3)] == [("ok", True)] * 3
    assert app.stop() == "ok"


def test_a_hanging_tool_times_out_while_the_others_go_on(node: Node, tmp_path: Path,
                                                         gates: dict[str, threading.Event]
                                                         ) -> None:
    started: list[str] = []
    _start(tmp_path, _gated_tools(gates, started), pool_size=2)
    before = _runners()
    _ask("hang", "hang", {})
    assert client.execute_tool(SERVER_NAME, "add", {"a": 2, "b": 2}, timeout=2000) == ("ok", 4)
    assert _answer("hang") == ("error", "timeout")  # the tool's 200 ms
    wait_until(lambda: all(type(p) is Pid for p in _runners().values())
               and set(_runners().values()) != set(before.values()), WAIT_S)
    assert sum(p not in before.values() for p in _runners().values()) == 1  # its runner only
    for i in range(4):  # every runner is usable again (the killed one was freed)
        assert client.execute_tool(SERVER_NAME, "add", {"a": i, "b": 0}) == ("ok", i)
    ok, entries = client.audit(SERVER_NAME)
    assert ok == "ok" and ("error", "timeout") in [e["result"] for e in entries]
    assert app.stop() == "ok"


def test_a_crash_ends_its_own_run_only_and_is_audited_once(node: Node, tmp_path: Path) -> None:
    _start(tmp_path, _gated_tools({}, []))
    crashed = client.execute_tool(SERVER_NAME, "crash", {}, "c-1")
    assert crashed[0] == "error" and crashed[1][0] == "tool_crashed"
    assert crashed[1][1][0] == "ZeroDivisionError: division by zero"
    assert client.execute_tool(SERVER_NAME, "add", {"a": 1, "b": 2}) == ("ok", 3)
    assert client.execute_tool(SERVER_NAME, "crash", {}, "c-1") == crashed  # never run twice
    ok, entries = client.audit(SERVER_NAME)
    assert ok == "ok" and [e["result"] for e in entries if e["request_id"] == "c-1"] == [crashed]
    assert app.stop() == "ok"


def test_a_retry_while_the_first_runs_joins_it(node: Node, tmp_path: Path,
                                              gates: dict[str, threading.Event]) -> None:
    started: list[str] = []
    _start(tmp_path, _gated_tools(gates, started))
    _ask("first", "gated", {"name": "once"}, "rid-1")
    wait_until(lambda: started == ["once"], WAIT_S)
    _ask("retry", "gated", {"name": "once"}, "rid-1")
    wait_until(lambda: len(sys_.get_state(SERVER_NAME).jobs["rid-1"].froms) == 2, WAIT_S)
    gates["once"].set()
    assert _answer("first") == _answer("retry") == ("ok", "once")
    assert started == ["once"]  # ran once
    assert app.stop() == "ok"


def test_a_cancelled_run_answers_cancelled(node: Node, tmp_path: Path,
                                          gates: dict[str, threading.Event]) -> None:
    started: list[str] = []
    _start(tmp_path, _gated_tools(gates, started))
    _ask("cancelled", "gated", {"name": "c"}, None, {"token": "tok-1"})
    wait_until(lambda: started == ["c"], WAIT_S)
    assert tool_runner.cancel_run("tok-1") is True
    assert _answer("cancelled") == ("error", "cancelled")
    assert client.execute_tool(SERVER_NAME, "add", {"a": 5, "b": 5}) == ("ok", 10)
    gates["c"].set()  # frees the abandoned thread of the cancelled runner
    assert app.stop() == "ok"
