"""AuditLog: one node's record of tool executions, as a gen_server.

Rules of this module:
- An entry is a dict {execution_id, tool, args, result, timestamp, executor, request_id}
  (`entry()` builds one). `execution_id` is unique and increasing on the executing node
  (erlang.unique_integer(["monotonic", "positive"])); `timestamp` is system time in ms;
  `executor` is the executing node's name.
- The log is newest first, as the POC's `[AuditEntry | Log]`: every query answers newest
  first. (It is kept oldest first inside, because a Python list appends in O(1).)
- The request-id map lives here, next to the entries it indexes: `append(log, entry,
  reply)` records both in one call and `lookup(log, request_id)` finds the reply given, so
  the log and the map can never disagree (an entry is written exactly when its reply is
  remembered), even if the consensus server restarts while this process lives on.
- In POC mode only the leader's node appends: the log lives in the leader's memory and is
  lost with its node. A follower's log stays empty unless that node once led.
- `since` is an execution_id, exclusive: `since=X` gives the entries after X. (Ids, unlike
  timestamps, never repeat or go back; they are per executing node, as the POC's are.)
  `limit=k` keeps the newest k of what matched. With `order="oldest"` a query answers
  oldest first and `limit=k` keeps the oldest k: a reader pages forward with `since`.
- Calls into the log have no timeout, as OTP's calls to a node's own servers: the log
  answers from memory at once, a log that dies raises at once (the call's monitor), and an
  idle log runs on the caller's thread (no thread is woken for it).
- `json_lines(entries)` exports oldest first, one JSON object per line; terms JSON has no
  word for become strings (pids, refs) and tuples become lists.
"""

from __future__ import annotations

import json
from itertools import islice
from typing import Any

from actors import erlang, gen_server

__all__ = ["NAME", "AuditLog", "append", "entry", "export", "json_lines", "lookup",
           "query", "select", "size", "start_link"]

NAME = "erlmcp_audit_log"


def entry(tool: Any, args: Any, result: Any, request_id: Any = None) -> dict[str, Any]:
    """A new entry for an execution that happens now, on this node."""
    return {
        "execution_id": erlang.unique_integer(["monotonic", "positive"]),
        "tool": tool,
        "args": args,
        "result": result,
        "timestamp": erlang.system_time("millisecond"),
        "executor": erlang.node(),
        "request_id": request_id,
    }


class AuditLog(gen_server.GenServer):
    """State: {"entries": [oldest .. newest], "replies": {request_id: reply}}."""

    def init(self, _args: Any) -> Any:
        return ("ok", {"entries": [], "replies": {}})

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        match request:
            case ("append", dict(new), reply):
                state["entries"].append(new)
                if new.get("request_id") is not None:
                    state["replies"][new["request_id"]] = reply
                return ("reply", "ok", state)
            case ("lookup", request_id):
                found = state["replies"].get(request_id, _MISSING)
                return ("reply", "error" if found is _MISSING else ("ok", found), state)
            case ("query", dict(q)):
                return ("reply", select(state["entries"], q), state)
            case "size":
                return ("reply", len(state["entries"]), state)
        return ("reply", ("error", "unknown_request"), state)


_MISSING = object()


def select(entries: list[dict[str, Any]], q: dict[str, Any]) -> Any:
    """The query `q` ({"node", "since", "limit"}, each optional) over `entries` kept oldest
    first: ("ok", matches newest first) | ("error", ("bad_query", q)). Pure: a replicated
    state machine holding the same entries can answer the same queries with it."""
    node, since, limit = q.get("node"), q.get("since"), q.get("limit")
    order = q.get("order", "newest")
    if not ((since is None or type(since) is int)
            and (limit is None or (type(limit) is int and limit >= 0))
            and order in ("newest", "oldest")):
        return ("error", ("bad_query", q))
    found = (e for e in (entries if order == "oldest" else reversed(entries))
             if (node is None or e["executor"] == node)
             and (since is None or e["execution_id"] > since))
    return ("ok", list(found if limit is None else islice(found, limit)))


# -- the API ----------------------------------------------------------------------------------

def start_link(name: str = NAME) -> Any:
    return gen_server.start_link(("local", name), AuditLog, None)


def append(log: Any, new: dict[str, Any], reply: Any) -> str:
    """Record `new` (and, if it has a request_id, the `reply` given for it). "ok"."""
    return gen_server.call(log, ("append", new, reply), "infinity")


def lookup(log: Any, request_id: Any) -> Any:
    """("ok", reply) if `request_id` was executed already, else "error" (maps:find)."""
    return gen_server.call(log, ("lookup", request_id), "infinity")


def query(log: Any, node: str | None = None, since: int | None = None,
          limit: int | None = None, order: str = "newest") -> Any:
    """("ok", entries) newest first (`order="oldest"`: oldest first), or
    ("error", ("bad_query", q))."""
    return gen_server.call(log, ("query", {"node": node, "since": since, "limit": limit,
                                           "order": order}), "infinity")


def size(log: Any) -> int:
    return gen_server.call(log, "size", "infinity")


def json_lines(entries: list[dict[str, Any]]) -> str:
    """Entries (given newest first, as queries answer) as JSON lines, oldest first."""
    return "".join(json.dumps(e, default=_jsonable, sort_keys=True) + "\n"
                   for e in reversed(entries))


def export(log: Any, node: str | None = None, since: int | None = None,
           limit: int | None = None) -> str:
    """The query's entries as JSON lines, oldest first."""
    result = query(log, node, since, limit)
    if result[0] != "ok":
        raise erlang.Error(result[1])
    return json_lines(result[1])


def _jsonable(term: Any) -> Any:
    if isinstance(term, set | frozenset):
        return sorted(term, key=repr)
    if isinstance(term, bytes):
        return term.decode("utf-8", "backslashreplace")
    return str(term)  # pids and refs print as Erlang's: <0.85.0>
