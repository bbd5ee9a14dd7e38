"""Scenarios the MCP tests run through a session, over either transport."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession

from .helpers import KEY, audit_all, read_json, runs
from .mcp_tools import HANG_TIMEOUT_MS

BUILTINS = {"add", "multiply", "divide", "subtract", "concat"}


def text(result: Any) -> str:
    return result.content[0].text


async def tools_list(session: ClientSession) -> None:
    tools = {t.name: t for t in (await session.list_tools()).tools}
    assert BUILTINS | {"explode", "hang", "slow", "count"} == set(tools)
    add = tools["add"]
    assert add.input_schema["properties"] == {"a": {"type": "number"}, "b": {"type": "number"}}
    assert sorted(add.input_schema["required"]) == ["a", "b"]
    assert add.output_schema == {"type": "object", "properties": {"result": {"type": "number"}},
                                 "required": ["result"]}
    assert tools["concat"].input_schema["properties"]["s1"] == {"type": "string"}
    assert tools["slow"].input_schema["properties"]["steps"] == {"type": "integer"}
    assert tools["explode"].input_schema == {"type": "object"}  # args: dict -> any object
    assert add.description == "a + b."


async def every_tool(session: ClientSession) -> None:
    expected = {"add": ({"a": 5, "b": 3}, 8), "multiply": ({"x": 4, "y": 2.5}, 10.0),
                "divide": ({"a": 9, "b": 2}, 4.5), "subtract": ({"a": 5, "b": 8}, -3),
                "concat": ({"s1": "hello", "s2": "world"}, "hello world"),
                "count": ({"tag": "plain"}, "plain"), "slow": ({"steps": 1, "step_ms": 1}, 1)}
    for name, (args, want) in expected.items():
        result = await session.call_tool(name, args)
        assert not result.is_error, text(result)
        assert result.structured_content == {"result": want}
        assert text(result) == (f'"{want}"' if isinstance(want, str) else str(want))


async def bad_calls(session: ClientSession) -> None:
    missing = await session.call_tool("add", {"a": 5})
    assert missing.is_error and text(missing).startswith("bad_arguments: ")
    assert "'b' is a required property" in text(missing)
    wrong_type = await session.call_tool("concat", {"s1": "x", "s2": 3})
    assert wrong_type.is_error and "s2" in text(wrong_type)
    zero = await session.call_tool("divide", {"a": 1, "b": 0})  # fits the schema, not the tool
    assert zero.is_error and text(zero).startswith("unknown_tool: ")
    assert zero.structured_content == {"error": "unknown_tool",
                                       "detail": {"reason": "unknown_tool", "tool": "divide"}}
    bad_key = await session.call_tool("add", {"a": 1, "b": 1}, meta={KEY: {"not": "a key"}})
    assert bad_key.is_error and text(bad_key).startswith("bad_request_id: ")
    nosuch = await session.call_tool("nosuch", {})
    assert nosuch.is_error and text(nosuch).startswith("unknown_tool: ")


async def misbehaving_tools(session: ClientSession) -> None:
    crashed = await session.call_tool("explode", {"why": "test"})
    assert crashed.is_error
    assert "tool_crashed" in text(crashed) and "RuntimeError: tool exploded" in text(crashed)
    t0 = time.monotonic()
    hung = await session.call_tool("hang", {})
    waited = time.monotonic() - t0
    assert hung.is_error and text(hung).startswith("timeout: ")
    assert HANG_TIMEOUT_MS / 1000 <= waited < HANG_TIMEOUT_MS / 1000 + 5
    after = await session.call_tool("add", {"a": 1, "b": 1})  # the runner was restarted
    assert after.structured_content == {"result": 2}


async def idempotency(session: ClientSession, tmp: Path) -> None:
    first = await session.call_tool("count", {"tag": "once"}, meta={KEY: "key-once"})
    again = await session.call_tool("count", {"tag": "once"}, meta={KEY: "key-once"})
    assert first.structured_content == again.structured_content == {"result": "once"}
    assert again.meta == {KEY: "key-once"}
    assert len(runs(tmp, "once")) == 1  # the retry ran nothing
    for _ in range(2):  # without a key, each call is a new execution
        await session.call_tool("count", {"tag": "twice"})
    assert len(runs(tmp, "twice")) == 2


async def progress(session: ClientSession) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    result = await session.call_tool("slow", {"steps": 4, "step_ms": 30},
                                     progress_callback=on_progress)
    assert result.structured_content == {"result": 4}
    assert seen == [(float(i), 4.0, f"step {i}") for i in range(1, 5)]


async def cancellation(session: ClientSession) -> None:
    seen: list[float] = []
    started = anyio.Event()

    async def on_progress(progress: float, _total: float | None, _message: str | None) -> None:
        seen.append(progress)
        started.set()

    t0 = time.monotonic()
    with anyio.move_on_after(20) as scope:  # 300 steps of 50 ms: 15 s if never cancelled
        async with anyio.create_task_group() as tg:
            async def call() -> None:
                await session.call_tool("slow", {"steps": 300, "step_ms": 50},
                                        progress_callback=on_progress)
            tg.start_soon(call)
            await started.wait()
            tg.cancel_scope.cancel()  # the client gives up: notifications/cancelled
    assert not scope.cancelled_caught
    # the runner was killed: the next call runs at once (it would wait 15 s otherwise)
    after = await session.call_tool("add", {"a": 2, "b": 2})
    assert after.structured_content == {"result": 4}
    assert time.monotonic() - t0 < 10
    entries = await audit_all(session)
    slow = [e for e in entries if e["tool"] == "slow" and e["args"]["steps"] == 300]
    assert len(slow) == 1 and slow[0]["result"] == ["error", "cancelled"]
    count = len(seen)
    await anyio.sleep(0.3)
    assert len(seen) == count  # no progress after the cancellation


async def resources(session: ClientSession) -> None:
    status = await read_json(session, "erlmcp://status")
    assert status["mode"] == "raft" and len(status["members"]) == 3
    assert status["leader"] in status["members"]
    roles = sorted(n["role"] for n in status["nodes"].values())
    assert roles == ["follower", "follower", "leader"]
    assert all(isinstance(n["os_pid"], int) for n in status["nodes"].values())
    entries = await audit_all(session, limit=3)
    ids = [e["execution_id"] for e in entries]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) and len(ids) > 10
    assert {"execution_id", "timestamp", "executor", "tool", "args", "result",
            "request_id"} <= set(entries[0])
    assert entries[0]["tool"] == "add" and entries[0]["result"] == 8  # the first call
    assert all(e["executor"] in status["members"] for e in entries)
    page = await read_json(session, f"erlmcp://audit?after={ids[1]}&limit=2")
    assert [e["execution_id"] for e in page["entries"]] == ids[2:4]
    assert page["next"] == f"erlmcp://audit?after={ids[3]}&limit=2"
    templates = (await session.list_resource_templates()).resource_templates
    assert templates[0].uri_template.startswith("erlmcp://audit")
