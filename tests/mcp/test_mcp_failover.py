"""SIGKILL of the leader's node in the middle of a stream of keyed MCP tool calls.

Raft mode, over Streamable HTTP: every call that returned succeeded exactly once in the
audit trail, and a retry with the same key after the failover runs nothing new.
POC mode, over stdio, under the same kill: what it loses. The audit trail lived in the
dead leader's memory and is gone, and a retry with an old key runs the tool again."""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession

from . import scenarios
from .helpers import (
    KEY,
    audit_all,
    http_server,
    http_session,
    read_json,
    runs,
    stdio_session,
    wait_gone,
)

STREAMS, PER_STREAM, KILL_AFTER = 2, 15, 10  # two concurrent streams; kill after 10 answers


async def _leader(session: ClientSession) -> tuple[str, int, dict[str, Any]]:
    """(leader, its OS pid, status) once the status names one leader (within 10 s)."""
    with anyio.fail_after(10):
        while (status := await read_json(session, "erlmcp://status"))["leader"] is None:
            await anyio.sleep(0.05)
    leader = status["leader"]
    return leader, status["nodes"][leader]["os_pid"], status


async def _stream_with_kill(session: ClientSession, leader_pid: int,
                            prefix: str) -> dict[str, Any]:
    """STREAMS concurrent streams of keyed `count` calls; the leader's node is SIGKILLed
    once KILL_AFTER have answered. key -> the call's result (every call, answered or not)."""
    answers: dict[str, Any] = {}
    enough = anyio.Event()

    async def stream(s: int) -> None:
        for i in range(PER_STREAM):
            key = f"{prefix}-{s}-{i}"
            result = await session.call_tool("count", {"tag": key}, meta={KEY: key})
            answers[key] = result
            if len(answers) >= KILL_AFTER:
                enough.set()

    async def killer() -> None:
        await enough.wait()
        os.kill(leader_pid, signal.SIGKILL)

    with anyio.fail_after(90):
        async with anyio.create_task_group() as tg:
            tg.start_soon(killer)
            for s in range(STREAMS):
                tg.start_soon(stream, s)
    return answers


def test_raft_leader_kill_over_http(tmp_path: Path) -> None:
    node_pids: list[int] = []
    with http_server(tmp_path, "raft") as (url, popen):

        async def body() -> None:
            async with http_session(url) as session:
                # the stdio test's scenarios, over Streamable HTTP (SSE progress included)
                await scenarios.tools_list(session)
                await scenarios.every_tool(session)
                await scenarios.bad_calls(session)
                await scenarios.misbehaving_tools(session)
                await scenarios.progress(session)
                await scenarios.cancellation(session)
                old_leader, leader_pid, status = await _leader(session)
                node_pids.extend(n["os_pid"] for n in status["nodes"].values())
                answers = await _stream_with_kill(session, leader_pid, "r")
                # every call returned, successfully: the front end retried with its key
                failed = {k: r.content[0].text for k, r in answers.items() if r.is_error}
                assert not failed, failed
                assert all(r.structured_content == {"result": k} for k, r in answers.items())
                new_leader, _, after = await _leader(session)
                assert new_leader != old_leader and not after["nodes"][old_leader]["up"]
                # exactly once in the audit trail, each under its key
                entries = await audit_all(session)
                keyed = Counter(e["request_id"] for e in entries if e["tool"] == "count")
                assert {k: keyed[k] for k in answers} == {k: 1 for k in answers}
                assert all(e["result"] == e["request_id"] for e in entries
                           if e["tool"] == "count" and e["request_id"] is not None)
                # execution: once each, except at most one call in flight at the kill (ran on
                # the old leader, not committed, run again on the new one: README, Raft mode)
                per_tag = Counter(r.rsplit("-", 2)[0] for r in runs(tmp_path)
                                  if r.startswith("r-"))
                assert set(per_tag) == set(answers)
                assert sum(1 for n in per_tag.values() if n > 1) <= 1, per_tag
                assert max(per_tag.values()) <= 2
                # a retry with the same key after the failover runs nothing new
                before_runs = len(runs(tmp_path))
                for key in ("r-0-0", "r-1-3", "r-0-14"):
                    again = await session.call_tool("count", {"tag": key}, meta={KEY: key})
                    assert again.structured_content == {"result": key}
                assert len(runs(tmp_path)) == before_runs
                assert len(await audit_all(session)) == len(entries)
            # a reconnect: a new session's retry of an old key runs nothing either
            async with http_session(url) as session:
                again = await session.call_tool("count", {"tag": "r-1-0"}, meta={KEY: "r-1-0"})
                assert again.structured_content == {"result": "r-1-0"}
                assert len(runs(tmp_path)) == before_runs

        anyio.run(body)
        popen.send_signal(signal.SIGTERM)
        assert popen.wait(30) == 0
    assert wait_gone(node_pids, 20) == []  # SIGTERM: serve stopped the nodes it started


def test_poc_leader_kill_loses_the_trail(tmp_path: Path) -> None:
    async def body() -> None:
        async with stdio_session(tmp_path, "poc") as session:
            old_leader, leader_pid, _ = await _leader(session)
            for i in range(5):
                result = await session.call_tool("count", {"tag": f"p-{i}"}, meta={KEY: f"p-{i}"})
                assert result.structured_content == {"result": f"p-{i}"}
            assert len(await audit_all(session)) == 5
            answers = await _stream_with_kill(session, leader_pid, "q")
            assert all(not r.is_error for r in answers.values()), answers
            new_leader, _, _ = await _leader(session)
            assert new_leader != old_leader
            entries = await audit_all(session)
            keys = {e["request_id"] for e in entries}
            # lost: the old leader's trail, with every call it acknowledged
            assert not keys & {f"p-{i}" for i in range(5)}
            acknowledged_by_old = [k for k in answers if k not in keys]
            assert len(acknowledged_by_old) >= KILL_AFTER  # answered ok, then forgotten
            assert len(entries) == len(answers) - len(acknowledged_by_old)
            # lost: exactly-once. A retry of an old key runs the tool a second time
            again = await session.call_tool("count", {"tag": "p-3"}, meta={KEY: "p-3"})
            assert again.structured_content == {"result": "p-3"}
            assert len(runs(tmp_path, "p-3")) == 2
            assert len(await audit_all(session)) == len(entries) + 1

    anyio.run(body)


def test_raft_without_quorum_answers_no_leader(tmp_path: Path) -> None:
    """Two of three nodes SIGKILLed: a call is a tool error no_leader once the front end has
    retried for --retry-s, and the server goes on serving."""

    async def body() -> None:
        async with stdio_session(tmp_path, "raft", "--retry-s", "1.5") as session:
            leader, leader_pid, status = await _leader(session)
            follower = next(n for n in status["members"] if n != leader)
            os.kill(leader_pid, signal.SIGKILL)
            os.kill(status["nodes"][follower]["os_pid"], signal.SIGKILL)
            for key in (None, "lonely"):
                t0 = anyio.current_time()
                with anyio.fail_after(30):
                    result = await session.call_tool("add", {"a": 1, "b": 2},
                                                     meta={KEY: key} if key else None)
                assert result.is_error, result
                text = result.content[0].text  # type: ignore[union-attr]
                assert text.startswith("no_leader: "), text
                assert 1.0 <= anyio.current_time() - t0 < 20
            after = await read_json(session, "erlmcp://status")
            assert [n for n, v in after["nodes"].items() if v["up"]] == \
                [n for n in status["members"] if n not in (leader, follower)]

    anyio.run(body)
