"""The MCP front end's parts that need no cluster: schemas from signatures, terms as JSON,
which errors are retried, error messages, resource URIs, the command line, and the order
of a call's progress and its answer."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, TypedDict

import pydantic
import pytest

from actors import Pid, Ref, erlang
from actors.consensus.mcp import cli, schema, server
from actors.consensus.mcp.frontend import Frontend, transient
from actors.consensus.tools import Tools, default_tools


class Point(TypedDict):
    """A point."""

    x: int
    label: str


@dataclasses.dataclass
class Box:
    width: float
    tags: list[str]


class Model(pydantic.BaseModel):
    name: str
    size: int = 3


def test_schemas_from_signatures() -> None:
    tools = Tools()

    @tools.tool
    def typed(args: Point, _rid: Any) -> list[int]:
        """Typed."""
        return [args["x"]]

    @tools.tool
    def boxed(args: Box, _rid: Any) -> Box:
        return args

    @tools.tool
    def modelled(args: Model, _rid: Any) -> Any:
        return args

    @tools.tool
    def plain(args: dict[str, Any], _rid: Any) -> None:
        return None

    @tools.tool
    def unresolvable(args: NoSuchType, _rid: Any):  # type: ignore[name-defined]  # noqa: F821
        return None

    found = {d["name"]: d for d in schema.describe(tools)}
    assert found["typed"]["input_schema"] == {
        "type": "object", "properties": {"x": {"type": "integer"}, "label": {"type": "string"}},
        "required": ["label", "x"], "description": "A point."}
    assert found["typed"]["output_schema"] == {
        "type": "object", "required": ["result"],
        "properties": {"result": {"type": "array", "items": {"type": "integer"}}}}
    assert found["typed"]["description"] == "Typed."
    assert found["boxed"]["input_schema"]["properties"]["tags"] == {
        "type": "array", "items": {"type": "string"}, "title": "Tags"}
    assert found["boxed"]["output_schema"]["properties"]["result"]["required"] == \
        ["width", "tags"]
    assert found["modelled"]["input_schema"]["required"] == ["name"]
    assert found["modelled"]["output_schema"] is None  # -> Any says nothing
    assert found["plain"]["input_schema"] == {"type": "object"}
    assert found["plain"]["output_schema"] is None
    assert found["unresolvable"]["input_schema"] == {"type": "object"}
    assert found["plain"]["description"] == "the plain tool"


def test_builtin_tools_are_typed() -> None:
    found = {d["name"]: d for d in schema.describe(default_tools())}
    assert set(found) == {"add", "multiply", "divide", "subtract", "concat"}
    assert found["multiply"]["input_schema"]["required"] == ["x", "y"]
    assert found["concat"]["output_schema"]["properties"]["result"] == {"type": "string"}
    assert all(d["timeout"] == 5000 for d in found.values())


def test_jsonable() -> None:
    pid, ref = Pid("n@h", 5), Ref("n@h", 7)
    term = {"t": (1, (2, "x")), 3: {pid}, "r": ref, "b": b"\xffok", "box": Box(1.0, ["a"])}
    assert schema.jsonable(term) == {"t": [1, [2, "x"]], "3": [str(pid)], "r": str(ref),
                                     "b": "\\xffok", "box": {"width": 1.0, "tags": ["a"]}}


@pytest.mark.parametrize(("answer", "keyed", "retried"), [
    (("error", "no_leader"), False, True),
    (("error", "noproc"), False, True),
    (("error", "leader_changed"), False, False),
    (("error", "leader_changed"), True, True),
    (("error", ("nodedown", "n@h")), True, True),
    (("error", ("nodedown", "n@h")), False, False),
    (("error", "timeout"), True, False),
    (("error", ("tool_crashed", ("E: x", []))), True, False),
    (("error", {"reason": "unknown_tool", "tool": "x"}), True, False),
    (("ok", 3), True, False),
])
def test_which_errors_are_retried(answer: Any, keyed: bool, retried: bool) -> None:
    assert transient(answer, keyed) is retried


def test_error_results_say_what_happened() -> None:
    front = Frontend(["n@h"], "raft")
    crashed = server.error_result(("tool_crashed", ("RuntimeError: boom", [])), front, "t")
    assert crashed.is_error and "RuntimeError: boom" in crashed.content[0].text
    assert crashed.structured_content["error"] == "tool_crashed"
    unknown = server.error_result({"reason": "unknown_tool", "tool": "t"}, front, "t")
    assert unknown.content[0].text.startswith("unknown_tool: there is no tool 't'")
    no_leader = server.error_result("no_leader", front, "t")
    assert "retried for 10 s" in no_leader.content[0].text
    other = server.error_result(("weird", 1), front, "t")
    assert other.content[0].text.startswith("weird: ")
    ok = server.ok_result((1, "a"), "k")
    assert ok.structured_content == {"result": [1, "a"]} and ok.meta == {server.KEY_META: "k"}


def test_bad_arguments_name_the_field() -> None:
    described = schema.describe(default_tools())[0]  # add
    assert server._bad_arguments(described, {"a": 1, "b": 2}) is None
    assert server._bad_arguments(described, {"a": 1}) == \
        "bad_arguments: arguments: 'b' is a required property"
    assert server._bad_arguments(described, {"a": 1, "b": "2"}) == \
        "bad_arguments: b: '2' is not of type 'number'"
    assert server._bad_arguments(None, {"anything": 1}) is None


@pytest.mark.parametrize("uri", ["erlmcp://nothing", "erlmcp://audit?after=x",
                                 "erlmcp://audit?limit=0", "erlmcp://audit?limit=100000"])
def test_bad_resource_uris(uri: str) -> None:
    with pytest.raises(ValueError):
        server.read(Frontend(["n@h"], "raft"), uri)


def test_http_address() -> None:
    assert cli.parse_address("127.0.0.1:8765") == ("127.0.0.1", 8765)
    assert cli.parse_address("[::1]:80") == ("[::1]", 80)
    for bad in ("8765", "host:", "host:0", "host:99999", ":80"):
        with pytest.raises(argparse.ArgumentTypeError):
            cli.parse_address(bad)


def test_command_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["serve", "--join", "n@127.0.0.1"])
    assert "--join needs --cookie-file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["serve", "--mode", "paxos"])
    assert cli.main(["serve", "--tools", "no_such_module_here:tools"]) == 1
    assert "no_such_module_here" in capsys.readouterr().err


def test_audit_select_pages_oldest_first() -> None:
    from actors.consensus.audit_log import select

    entries = [{"execution_id": i, "executor": "n1" if i % 2 else "n2"} for i in range(1, 8)]
    ids = lambda answer: [e["execution_id"] for e in answer[1]]  # noqa: E731
    assert ids(select(entries, {"order": "oldest", "limit": 3})) == [1, 2, 3]
    assert ids(select(entries, {"order": "oldest", "since": 3, "limit": 3})) == [4, 5, 6]
    assert ids(select(entries, {"order": "oldest", "since": 6})) == [7]
    assert ids(select(entries, {"since": 3, "limit": 2})) == [7, 6]  # newest first, as before
    assert ids(select(entries, {"order": "oldest", "node": "n2"})) == [2, 4, 6]
    assert select(entries, {"order": "sideways"})[0] == "error"


def test_idempotency_keys_are_strings_or_integers() -> None:
    assert server._bad_key(None) is None
    assert server._bad_key("req-7") is None and server._bad_key(7) is None
    for bad in ("", "x" * 2000, {"a": 1}, [1], True, 1.5):
        assert server._bad_key(bad).startswith("bad_request_id: ")  # type: ignore[union-attr]


def test_interrupts_inside_exception_groups() -> None:
    import asyncio

    assert cli._interrupted(KeyboardInterrupt())
    assert cli._interrupted(BaseExceptionGroup("tg", [KeyboardInterrupt()]))
    nested = BaseExceptionGroup("a", [asyncio.CancelledError(),
                                      BaseExceptionGroup("b", [KeyboardInterrupt()])])
    assert cli._interrupted(nested)
    assert not cli._interrupted(BaseExceptionGroup("tg", [KeyboardInterrupt(), ValueError()]))
    assert not cli._interrupted(ExceptionGroup("tg", [ValueError()]))
    assert not cli._interrupted(RuntimeError())


def test_a_call_returns_after_the_progress_that_came_before_its_answer(node: Any) -> None:
    """The tool's reports reach the relay process before the call's answer reaches the
    caller (one connection, in order), but the relay's thread may run later than the
    caller's: the call waits until the relay has handed on what it had. Here the relay is
    slow with the last report, and the answer is in before it."""
    import threading

    front = Frontend([node.name], "raft")
    front._relay = erlang.spawn(front._relay_loop)
    seen: list[float] = []
    slow = threading.Event()

    def on_progress(progress: float, _total: float | None, _message: str | None) -> None:
        if progress == 4:
            slow.wait(0.3)  # a relay thread the machine runs late
        seen.append(progress)

    def cluster(name: str, args: dict[str, Any], key: Any, token: str) -> Any:
        for i in range(1, 5):  # what the tool reported, before the answer
            erlang.send(front._relay, ("erlmcp_progress", token, i, 4, f"step {i}"))
        return ("ok", 4)

    front._call_with_retries = cluster  # type: ignore[method-assign]
    try:
        assert front.call_tool("slow", {}, None, on_progress) == ("ok", 4)
        assert seen == [1, 2, 3, 4]
    finally:
        front.stop()
