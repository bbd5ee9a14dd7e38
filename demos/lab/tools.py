"""The demo's tool registry: the POC's five tools and two that misbehave.

Peers build it themselves (`demo_tools()` runs on each node when the service starts), so
the functions here are imported there by reference, never shipped as closures.
"""

from __future__ import annotations

import time
from typing import Any

from actors.consensus.tools import Tools, default_tools

__all__ = ["HANG_TIMEOUT_MS", "demo_tools"]

HANG_TIMEOUT_MS = 300  # the hanging tool's timeout: its runner is killed after this long
_HANG_LIMIT_S = 10.0  # a hung thread that was never interrupted still ends, eventually


def demo_tools() -> Tools:
    """add, multiply, divide, subtract, concat; `explode` raises; `hang` never returns."""
    tools = default_tools()

    @tools.tool("explode")
    def explode(args: dict[str, Any], _request_id: Any) -> Any:
        raise RuntimeError(f"tool exploded on {args!r}")

    @tools.tool("hang", timeout=HANG_TIMEOUT_MS)
    def hang(_args: dict[str, Any], _request_id: Any) -> Any:
        deadline = time.monotonic() + _HANG_LIMIT_S  # stuck in plain Python code
        while time.monotonic() < deadline:
            time.sleep(0.005)
        return "woke up"

    return tools
