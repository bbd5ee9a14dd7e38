"""The tools the MCP tests serve: erlmcp's five, one that raises, one that hangs, one that
reports progress, and one that records each run on disk (so a test can count runs).

Nodes import this module by name (`erlmcp serve --tools tests.mcp.mcp_tools:tools`)."""

from __future__ import annotations

import os
import time
from typing import Any, TypedDict

from actors import timer
from actors.consensus.tools import Tools, default_tools, report_progress

HANG_TIMEOUT_MS = 1500
RUNS_ENV = "ERLMCP_TEST_RUNS"  # a directory: `count` writes one file per run into it


class Steps(TypedDict):
    steps: int
    step_ms: int


class Tag(TypedDict):
    tag: str


def tools() -> Tools:
    registry = default_tools()

    @registry.tool("explode")
    def explode(args: dict[str, Any], _request_id: Any) -> Any:
        """Raises, always."""
        raise RuntimeError(f"tool exploded on {args!r}")

    @registry.tool("hang", timeout=HANG_TIMEOUT_MS)
    def hang(_args: dict[str, Any], _request_id: Any) -> str:
        """Never returns in time (killed after its timeout)."""
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            timer.sleep(10)
        return "woke up"

    @registry.tool("slow", timeout=60000)
    def slow(args: Steps, _request_id: Any) -> int:
        """`steps` steps of `step_ms` each, reporting progress after each."""
        for i in range(args["steps"]):
            timer.sleep(args["step_ms"])
            report_progress(i + 1, args["steps"], f"step {i + 1}")
        return args["steps"]

    @registry.tool("count")
    def count(args: Tag, request_id: Any) -> str:
        """Records this run as a file in $ERLMCP_TEST_RUNS, named tag-<unique>."""
        where = os.environ.get(RUNS_ENV)
        if where:
            name = f"{args['tag']}-{os.getpid()}-{time.monotonic_ns()}"
            with open(os.path.join(where, name), "w") as f:
                f.write(str(request_id))
        return args["tag"]

    return registry
