"""The consensus service's client API and message protocol, the same in every mode.

Names (atoms are str):
- SERVER_NAME ("erlmcp_consensus"): each node's consensus server, registered locally.
  Reach another node's with (SERVER_NAME, node).
- LEADER_NAME ("erlmcp_consensus_leader"): the POC leader's global name.

Requests a consensus server answers (`gen_server.call`):
- ("execute_tool", tool, args) or ("execute_tool", tool, args, request_id), or
  ("execute_tool", tool, args, request_id, ctx) with a run context (see `tool_runner`)
  -> ("ok", result) | ("error", reason). An unknown tool or bad arguments give
  ("error", {"reason": "unknown_tool", "tool": tool}). Reasons of the service itself:
  "no_leader", "leader_unavailable", "leader_timeout", "timeout" (the tool ran past its
  timeout and was killed), "cancelled" (the caller cancelled the run),
  ("tool_crashed", reason); in Raft mode also "no_quorum",
  "commit_timeout" and "leader_changed" (the outcome is unknown: retry with the request
  id).
- "get_status" -> a dict (see the mode's server).
- ("audit", {"node": n, "since": execution_id, "limit": k}) -> ("ok", [entry, ...]) newest
  first | ("error", reason). Reads go to the leader, as writes do. With "order": "oldest"
  the entries come oldest first and `limit` keeps the oldest (paging forward).

Every function here returns ("error", reason) instead of raising when the call to the
server fails; the reason is the call's exit reason without its ("gen_server", "call", ...)
location: "noproc", "timeout", ("nodedown", node), or the server's exit reason.
"""

from __future__ import annotations

from typing import Any

from actors import Exit, gen_server

__all__ = ["CALL_TIMEOUT", "LEADER_NAME", "SERVER_NAME", "audit", "execute_tool",
           "get_status"]

SERVER_NAME = "erlmcp_consensus"
LEADER_NAME = "erlmcp_consensus_leader"
CALL_TIMEOUT = 10000  # the POC's execute_tool/3: gen_server:call(Pid, ..., 10000)


def execute_tool(server_ref: Any, tool: str, args: dict[str, Any],
                 request_id: Any = None, ctx: dict[str, Any] | None = None,
                 timeout: int | str = CALL_TIMEOUT) -> tuple[str, Any]:
    """Run `tool` once, on the leader, wherever `server_ref` is. A retry with the same
    `request_id` is answered from the leader's record and never runs the tool again.
    `ctx` is a run context for the tool's runner (progress listener, cancel token)."""
    request: tuple[Any, ...] = ("execute_tool", tool, args)
    if ctx is not None:
        request = (*request, request_id, ctx)
    elif request_id is not None:
        request = (*request, request_id)
    return _call(server_ref, request, timeout)


def get_status(server_ref: Any, timeout: int | str = 5000) -> Any:
    """The server's status dict, or ("error", reason) if the call fails."""
    return _call(server_ref, "get_status", timeout)


def audit(server_ref: Any, node: str | None = None, since: int | None = None,
          limit: int | None = None) -> tuple[str, Any]:
    """("ok", entries) from the leader's audit log, newest first: only those executed on
    `node`, only those with execution_id > `since`, at most `limit` (the newest)."""
    return _call(server_ref, ("audit", {"node": node, "since": since, "limit": limit}),
                 CALL_TIMEOUT)


def _call(server_ref: Any, request: Any, timeout: int | str) -> Any:
    try:
        return gen_server.call(server_ref, request, timeout)
    except Exit as exc:
        return ("error", call_failure(exc.reason))


def call_failure(reason: Any) -> Any:
    """A gen_server.call exit reason without its location: ("noproc", where) -> "noproc"."""
    if (type(reason) is tuple and len(reason) == 2 and type(reason[1]) is tuple
            and reason[1][:1] == ("gen_server",)):
        return reason[0]
    return reason
