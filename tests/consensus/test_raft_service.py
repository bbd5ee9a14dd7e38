"""Raft mode on one node: concurrent requests, retries of a request id while its entry is
committing, and the commit's own errors. (The cluster behaviour is in test_raft_cluster.)"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from actors import Node, erlang
from actors.consensus import app, client
from actors.consensus.client import SERVER_NAME
from actors.consensus.tools import default_tools
from tests.helpers import recv, wait_until


def _start(tmp_path: Path, tools: Any) -> None:
    assert app.start("raft", tools, data_dir=str(tmp_path))[0] == "ok"
    wait_until(lambda: client.get_status(SERVER_NAME).get("role") == "leader", 10)


def test_concurrent_retries_of_one_request_id_run_the_tool_once(node: Node,
                                                                tmp_path: Path) -> None:
    runs: list[Any] = []
    tools = default_tools()

    @tools.tool("counted")
    def counted(args: dict[str, Any], request_id: Any) -> Any:
        runs.append(request_id)
        return len(runs)

    _start(tmp_path, tools)
    me = erlang.self()
    for i in range(6):  # the same id six times at once, and two other ids among them
        rid = "same" if i % 3 else f"other-{i}"
        erlang.spawn(lambda rid=rid: erlang.send(
            me, ("done", rid, client.execute_tool(SERVER_NAME, "counted", {}, rid))))
    answers = [recv(lambda m: type(m) is tuple and m[0] == "done", 10000) for _ in range(6)]
    same = {a[2] for a in answers if a[1] == "same"}
    assert len(same) == 1 and next(iter(same))[0] == "ok"  # one answer for all four
    assert sorted(runs, key=str) == ["other-0", "other-3", "same"]  # each id ran once
    assert client.get_status(SERVER_NAME)["audit_log_size"] == 3
    ok, entries = client.audit(SERVER_NAME)
    assert ok == "ok" and sorted(e["request_id"] for e in entries) == [
        "other-0", "other-3", "same"]
    assert app.stop() == "ok"


def test_many_clients_at_once_each_get_their_own_result(node: Node, tmp_path: Path) -> None:
    _start(tmp_path, default_tools())
    results: dict[int, Any] = {}

    def worker(i: int) -> None:
        with node.bound():
            results[i] = client.execute_tool(SERVER_NAME, "add", {"a": i, "b": 1000})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {i: ("ok", i + 1000) for i in range(40)}
    ok, entries = client.audit(SERVER_NAME)
    ids = [e["execution_id"] for e in reversed(entries)]
    assert ok == "ok" and len(ids) == 40 and ids == sorted(set(ids))  # 40 distinct indexes
    assert client.get_status(SERVER_NAME)["execution_count"] == 40
    assert app.stop() == "ok"


def test_ra_options_reach_the_member(node: Node, tmp_path: Path) -> None:
    from actors import ra
    from actors.consensus.raft_mode import MEMBER_NAME

    result = app.start("raft", default_tools(), data_dir=str(tmp_path),
                       ra_options={"snapshot_interval": 5})
    assert result[0] == "ok"
    wait_until(lambda: client.get_status(SERVER_NAME).get("role") == "leader", 10)
    for i in range(8):
        assert client.execute_tool(SERVER_NAME, "add", {"a": i, "b": 0}) == ("ok", i)
    overview = ra.member_overview((MEMBER_NAME, node.name))
    assert overview["snapshot_index"] >= 5  # a snapshot every 5 applied entries
    assert app.stop() == "ok"


def test_a_bad_request_id_is_refused_and_loses_nothing(node: Node, tmp_path: Path) -> None:
    """A request id that does not hash the same everywhere (a list, a dict) is refused with
    a clear error, before it reaches the log: committed, it would crash every member's
    apply, on every replay."""
    _start(tmp_path, default_tools())
    assert client.execute_tool(SERVER_NAME, "add", {"a": 1, "b": 2}, "first")[0] == "ok"
    for bad in (["a", "list"], {"a": "dict"}, ("tuple", ["with", "list"])):
        answer = client.execute_tool(SERVER_NAME, "add", {"a": 1, "b": 2}, bad)
        assert answer[0] == "error" and answer[1]["reason"] == "bad_request_id", answer
    assert client.execute_tool(SERVER_NAME, "add", {"a": 2, "b": 2}, ("ok", 7))[0] == "ok"
    ok, entries = client.audit(SERVER_NAME)
    assert ok == "ok" and [e["request_id"] for e in entries] == [("ok", 7), "first"]
    assert app.stop() == "ok"


def test_each_uncommitted_tool_times_out_from_its_own_request(
        node: Node, tmp_path: Path, monkeypatch: Any) -> None:
    """The server keeps one commit-timeout timer for all pending entries: an entry that does
    not commit in COMMIT_TIMEOUT gets "commit_timeout", each counted from its own request
    (a later one is not answered early with the first), and a late commit is not answered
    twice. Here the member is held inside its apply, so nothing commits meanwhile."""
    from actors import gen_server, timer
    from actors.consensus import raft_mode
    from actors.raft import Apply

    monkeypatch.setattr(raft_mode, "COMMIT_TIMEOUT", 300)
    _start(tmp_path, default_tools())
    member = (raft_mode.MEMBER_NAME, node.name)
    held, release = threading.Event(), threading.Event()

    def hold_apply(_core: Any, effect: Any) -> None:
        if isinstance(effect, Apply) and not release.is_set():
            held.set()
            release.wait(10)

    assert gen_server.call(member, ("$ra_trace", hold_apply)) == "ok"
    me = erlang.self()

    def ask(tag: str, a: int) -> None:
        t0 = time.monotonic()
        answer = client.execute_tool(SERVER_NAME, "add", {"a": a, "b": 0})
        erlang.send(me, ("done", tag, answer, time.monotonic() - t0))

    try:
        erlang.spawn(ask, "first", 1)
        assert held.wait(10), "the member never applied the first entry"
        timer.sleep(100)  # the second request's deadline is 100 ms after the first's
        erlang.spawn(ask, "second", 2)
        answers = {m[1]: m[2:] for m in (recv(lambda m: type(m) is tuple and m[0] == "done",
                                              5000) for _ in range(2))}
    finally:
        release.set()
    assert answers["first"][0] == ("error", "commit_timeout")
    assert answers["second"][0] == ("error", "commit_timeout")
    assert 0.295 <= answers["second"][1] < 3.0, answers  # its own 300 ms, not the first's
    assert gen_server.call(member, ("$ra_trace", None)) == "ok"
    # the outcome was unknown: both entries commit once the member goes on, unanswered
    wait_until(lambda: client.get_status(SERVER_NAME)["audit_log_size"] == 2, 10)
    assert client.execute_tool(SERVER_NAME, "add", {"a": 3, "b": 0}) == ("ok", 3)
    assert client.get_status(SERVER_NAME)["execution_count"] == 1  # only the answered one
    assert app.stop() == "ok"
