"""The whole POC service on one in-process node: its supervision tree, crashing and
hanging tools, restart intensity, request ids, and the follower's error answers (provoked
deterministically with a stand-in leader and sys.replace_state)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from actors import Node, Pid, erlang, gen_server, global_, sys
from actors.consensus import app, audit_log, client, tool_runner
from actors.consensus.client import LEADER_NAME, SERVER_NAME
from actors.consensus.tools import Tools, default_tools, unknown_tool
from supervision import supervisor
from tests.helpers import down_of, recv, wait_until

from .test_poc_units import _crash, _hang


def _tools(counter: list[Any] | None = None) -> Tools:
    tools = default_tools()
    tools.add("crash", _crash)
    tools.add("hang", _hang, timeout=200)
    if counter is not None:
        tools.add("count", lambda args, request_id: counter.append(request_id) or len(counter))
    return tools


def _start(**options: Any) -> Pid:
    result = app.start("poc", options.pop("tools", None) or _tools(), **options)
    assert result[0] == "ok", result
    return result[1]


def _wait_role(role: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def check() -> bool:
        found.append(client.get_status(SERVER_NAME))
        return found[-1].get("role") == role and found[-1]["leader_pid"] != "undefined"

    wait_until(check)
    return found[-1]


def _children(sup: Any) -> dict[Any, Any]:
    return {child_id: pid for child_id, pid, _, _ in supervisor.which_children(sup)}


def _run(tool: str, args: dict[str, Any], request_id: Any = None) -> Any:
    return client.execute_tool(SERVER_NAME, tool, args, request_id)


def test_the_tree_is_runners_log_server_rest_for_one(node: Node) -> None:
    sup = _start()
    assert erlang.whereis("erlmcp_sup") == sup
    kids = supervisor.which_children(sup)[::-1]  # newest first, as OTP's: reverse it
    assert [(i, t) for i, _, t, _ in kids] == [
        ("tool_runner_sup", "supervisor"), ("audit_log", "worker"), ("consensus", "worker")]
    assert [p for _, p, _, _ in kids] == [erlang.whereis(n) for n in (
        tool_runner.SUP_NAME, audit_log.NAME, SERVER_NAME)]
    status = _wait_role("leader")
    assert status == {"node_id": node.name, "node": node.name, "mode": "poc",
                      "role": "leader", "leader_pid": erlang.whereis(SERVER_NAME),
                      "execution_count": 0, "audit_log_size": 0}
    assert global_.whereis_name(LEADER_NAME) == erlang.whereis(SERVER_NAME)


def test_raft_mode_on_one_node_starts_and_stops_its_tree(node: Node, tmp_path: Any) -> None:
    ok, sup = app.start("raft", data_dir=str(tmp_path))
    assert ok == "ok"
    kids = supervisor.which_children(sup)  # newest first, as OTP's
    assert [i for i, _, _, _ in kids] == ["consensus", "audit_log", "tool_runner_sup",
                                          "ra_system"]
    wait_until(lambda: client.get_status(SERVER_NAME).get("role") == "leader", 10)
    status = client.get_status(SERVER_NAME)  # a cluster of one elects itself
    assert status["mode"] == "raft"
    assert client.execute_tool(SERVER_NAME, "add", {"a": 1, "b": 2}) == ("ok", 3)
    assert app.stop() == "ok"
    assert [erlang.whereis(n) for n in ("erlmcp_sup", "ra_default_sup")] == ["undefined"] * 2


def test_start_and_stop(node: Node) -> None:
    assert app.start("paxos") == ("error", ("bad_mode", "paxos"))
    sup = _start(node_id="node1")
    assert app.start("poc")[0] == "error"  # already_started
    assert _wait_role("leader")["node_id"] == "node1"
    ref = erlang.monitor("process", sup)
    assert app.stop() == "ok"
    assert recv(down_of(ref))[4] == "shutdown"
    assert [erlang.whereis(n) for n in ("erlmcp_app", "erlmcp_sup", SERVER_NAME)] == [
        "undefined"] * 3
    assert global_.whereis_name(LEADER_NAME) == "undefined"  # terminate unregistered it
    assert app.stop() == ("error", "not_started")


def test_unknown_tools_and_bad_arguments_are_answered_and_audited(node: Node) -> None:
    _start()
    _wait_role("leader")
    for tool, args in (("nope", {}), ("divide", {"a": 1, "b": 0}), ("add", {"a": "x"})):
        assert _run(tool, args) == unknown_tool(tool)  # the protocol's error, audited
    ok, entries = client.audit(SERVER_NAME)
    assert ok == "ok"
    assert [e["result"] for e in entries] == [unknown_tool(t) for t in ("add", "divide", "nope")]
    assert client.get_status(SERVER_NAME)["execution_count"] == 3
    assert client.get_status(SERVER_NAME)["audit_log_size"] == 3
    assert client.audit(SERVER_NAME, since="x")[0] == "error"


def test_a_crashing_tool_restarts_its_runner_and_the_service_keeps_serving(node: Node) -> None:
    _start()
    leader = _wait_role("leader")["leader_pid"]
    runner = _children(tool_runner.SUP_NAME)["runner_1"]
    crashed = _run("crash", {}, "c-1")
    assert crashed[0] == "error" and crashed[1][0] == "tool_crashed"
    assert crashed[1][1][0] == "ZeroDivisionError: division by zero"
    assert _run("add", {"a": 1, "b": 2}) == ("ok", 3)
    assert _children(tool_runner.SUP_NAME)["runner_1"] not in (runner, "undefined")
    assert erlang.whereis(SERVER_NAME) == leader  # the server itself never restarted
    ok, entries = client.audit(SERVER_NAME)
    assert ok == "ok" and entries[1]["result"] == crashed  # a crash is audited, with its error
    assert _run("crash", {}, "c-1") == crashed  # and its id is spent: never run twice


def test_a_hanging_tool_times_out_and_the_service_keeps_serving(node: Node) -> None:
    _start()
    _wait_role("leader")
    runner = _children(tool_runner.SUP_NAME)["runner_1"]
    t0 = time.monotonic()
    assert _run("hang", {}) == ("error", "timeout")
    assert time.monotonic() - t0 < 2.0  # the tool's 200 ms, well inside the call's 10 s
    assert _run("multiply", {"x": 6, "y": 7}) == ("ok", 42)
    assert _children(tool_runner.SUP_NAME)["runner_1"] != runner
    assert not erlang.is_process_alive(runner)


def test_runner_restarts_past_the_intensity_escalate_to_the_top_supervisor(node: Node) -> None:
    sup = _start(runner_intensity=1)
    _wait_role("leader")
    assert _run("add", {"a": 1, "b": 1}) == ("ok", 2)
    before = _children(sup)
    ref = erlang.monitor("process", before["tool_runner_sup"])
    assert _run("crash", {})[1][0] == "tool_crashed"  # restart 1 of 1
    assert _run("crash", {})[1][0] == "tool_crashed"  # restart 2: the runner sup gives up
    assert recv(down_of(ref))[4] == "shutdown"
    # rest_for_one: the runner supervisor and everything after it start again
    wait_until(lambda: all(type(p) is Pid and p != before[k]
                           for k, p in _children(sup).items()))
    assert erlang.is_process_alive(sup)
    status = _wait_role("leader")  # the new server elected itself again
    assert status["execution_count"] == 0 and status["audit_log_size"] == 0  # a new log
    assert _run("add", {"a": 2, "b": 2}) == ("ok", 4)


def test_the_application_stops_when_its_top_supervisor_gives_up(node: Node) -> None:
    sup = _start()
    ref = erlang.monitor("process", erlang.whereis("erlmcp_app"))
    for _ in range(10):  # TOP_INTENSITY is 3 restarts in 5 s: the 4th kill is one too many
        server = _wait_role("leader")["leader_pid"]
        erlang.exit(server, "kill")
        wait_until(lambda s=server: not erlang.is_process_alive(sup)
                   or erlang.whereis(SERVER_NAME) not in (s, "undefined"))
        if not erlang.is_process_alive(sup):
            break
    assert recv(down_of(ref))[4] == "shutdown"  # the application master went with it
    assert erlang.whereis("erlmcp_sup") == "undefined"


def test_a_retried_request_id_never_runs_the_tool_twice(node: Node) -> None:
    runs: list[Any] = []
    _start(tools=_tools(runs))
    _wait_role("leader")
    assert _run("count", {}, "once") == ("ok", 1)
    assert _run("count", {}, "once") == ("ok", 1)
    assert runs == ["once"]  # the tool saw its idempotency key, once
    assert _run("count", {}) == ("ok", 2) and _run("count", {}) == ("ok", 3)  # no id: no dedup
    ok, entries = client.audit(SERVER_NAME)
    assert ok == "ok" and [e["request_id"] for e in entries] == [None, None, "once"]


# -- a follower, with a stand-in leader ---------------------------------------------------------


@pytest.fixture
def follower(node: Node) -> Pid:
    """The service's server following a stand-in leader that never answers a call."""
    stand_in = erlang.spawn(lambda: erlang.receive(lambda m: m == "stop", 30_000))
    assert global_.register_name(LEADER_NAME, stand_in) == "yes"
    _start(forward_timeout=200)
    status = _wait_role("follower")
    assert status["leader_pid"] == stand_in
    return stand_in


def test_a_follower_whose_leader_does_not_answer_says_leader_timeout(follower: Pid) -> None:
    t0 = time.monotonic()
    assert _run("add", {"a": 1, "b": 1}) == ("error", "leader_timeout")
    assert time.monotonic() - t0 < 2.0
    assert client.audit(SERVER_NAME) == ("error", "leader_timeout")  # reads go there too
    assert client.get_status(SERVER_NAME)["leader_pid"] == follower  # still following


def test_a_follower_with_no_leader_says_no_leader(follower: Pid) -> None:
    sys.replace_state(SERVER_NAME, lambda s: dataclasses.replace(
        s, leader_pid=None, leader_monitor=None))
    assert _run("add", {"a": 1, "b": 1}) == ("error", "no_leader")
    assert client.audit(SERVER_NAME) == ("error", "no_leader")


def test_a_follower_between_its_leaders_death_and_the_election_says_no_leader(
        follower: Pid) -> None:
    sys.suspend(SERVER_NAME)
    erlang.exit(follower, "kill")  # its DOWN now waits in the server's mailbox
    req = gen_server.send_request(SERVER_NAME, ("execute_tool", "add", {"a": 1, "b": 1}))
    sys.resume(SERVER_NAME)
    assert gen_server.receive_response(req, 5000) == ("reply", ("error", "no_leader"))
    assert _wait_role("leader")["leader_pid"] == erlang.whereis(SERVER_NAME)  # elected


def test_a_follower_whose_leader_is_gone_says_leader_unavailable_and_reelects(
        follower: Pid) -> None:
    dead = erlang.spawn(lambda: None)
    wait_until(lambda: not erlang.is_process_alive(dead))
    sys.replace_state(SERVER_NAME, lambda s: dataclasses.replace(
        s, leader_pid=dead, leader_monitor=None))
    assert _run("add", {"a": 1, "b": 1}) == ("error", "leader_unavailable")
    # the election it started finds the stand-in still holding the name, and follows it
    wait_until(lambda: client.get_status(SERVER_NAME)["leader_pid"] == follower)


def test_a_stale_attempt_leadership_does_not_demote_the_leader(node: Node) -> None:
    """The POC's second attempt_leadership (after a noproc forward and then the DOWN) gets
    "no" from register_name, finds its own pid and follows itself; here it is ignored."""
    _start()
    me = _wait_role("leader")["leader_pid"]
    erlang.send(me, "attempt_leadership")
    erlang.send(me, "attempt_leadership")
    status = client.get_status(SERVER_NAME)
    assert status["role"] == "leader" and status["leader_pid"] == me
    assert _run("add", {"a": 1, "b": 1}) == ("ok", 2)
