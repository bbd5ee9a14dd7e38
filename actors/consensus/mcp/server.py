"""The MCP server: the cluster's tools and two resources, on the official `mcp` SDK.

Rules of this module:
- tools/list: every tool of the cluster, with the schemas its signature gives (`schema`).
- tools/call: arguments are checked against the tool's input schema here (a mismatch is a
  tool error, nothing runs); then the call goes through the consensus service
  (`Frontend.call_tool`, in a worker thread). A result is text content (its JSON) and
  structured content {"result": ...}; a service error is a tool error (isError) whose text
  says what happened, and whose structured content is {"error": name, "detail": ...}.
- Idempotency: a request's `_meta` may carry KEY_META ("erlmcp/request_id"); it becomes
  the service's request id, so a retry with the same key returns the first result and
  runs nothing (Raft mode: on any leader; POC mode: on the leader that ran it only).
  Without a key each call is a new execution.
- Progress: the tool's `report_progress` calls arrive as MCP progress notifications of the
  call (if the client asked, with a progress token). Cancellation (notifications/cancelled)
  cancels the handler; it then cancels the run, whose runner is killed and restarted by
  its supervisor, as after a timeout.
- Resources: STATUS_URI (JSON: mode, members, leader, each node's role and OS pid) and the
  audit trail, AUDIT_URI, paged oldest first: `erlmcp://audit?after=ID&limit=N`; each page
  is {"entries": [...], "next": the next page's URI or null}.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import jsonschema
import mcp_types as types
from mcp.server.lowlevel import Server

from .frontend import Frontend
from .schema import jsonable

__all__ = ["AUDIT_URI", "KEY_META", "PAGE_LIMIT", "STATUS_URI", "build_server"]

log = logging.getLogger("erlmcp")

KEY_META = "erlmcp/request_id"
STATUS_URI = "erlmcp://status"
AUDIT_URI = "erlmcp://audit"
PAGE_LIMIT, MAX_PAGE = 50, 1000
MAX_KEY = 1024  # characters of an idempotency key
MAX_CALLS = 64  # tool calls waiting on the cluster at once (worker threads)
_PROGRESS_BUFFER = 256

_MESSAGES = {
    "unknown_tool": "unknown_tool: there is no tool {tool!r}, or its arguments do not fit it",
    "timeout": "timeout: the tool ran past its timeout; its runner was killed and restarted",
    "no_leader": "no_leader: the cluster has no leader (retried for {retry_s:.0f} s)",
    "cancelled": "cancelled: the run was cancelled; its runner was killed and restarted",
}


def error_result(reason: Any, front: Frontend, tool: str) -> types.CallToolResult:
    """A service error as an MCP tool error with a clear message."""
    name = reason.get("reason") if isinstance(reason, dict) \
        else reason[0] if type(reason) is tuple and reason else reason
    if name == "tool_crashed":
        crash = reason[1] if type(reason) is tuple and len(reason) > 1 else None
        what = crash[0] if type(crash) is tuple and crash else crash
        text = f"tool_crashed: the tool raised ({what}); its runner was restarted"
    elif name in _MESSAGES:
        text = _MESSAGES[str(name)].format(tool=tool, retry_s=front.retry_s)
    else:
        text = f"{name}: the consensus service answered {jsonable(reason)!r}"
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        structured_content={"error": jsonable(name), "detail": jsonable(reason)},
        is_error=True)


def ok_result(result: Any, key: Any) -> types.CallToolResult:
    data = jsonable(result)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(data))],
        structured_content={"result": data},
        _meta={KEY_META: key} if key is not None else None)  # the field `meta`, by its alias


def _validator(description: dict[str, Any]) -> Any:
    """The tool's input validator, compiled once per description (0.6 ms otherwise)."""
    validator = description.get("_validator")
    if validator is None:
        schema = description["input_schema"]
        validator = jsonschema.validators.validator_for(schema)(schema)
        description["_validator"] = validator
    return validator


def _bad_arguments(description: dict[str, Any] | None, args: Any) -> str | None:
    if description is None:
        return None  # unknown here: the cluster answers unknown_tool
    error = jsonschema.exceptions.best_match(_validator(description).iter_errors(args))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "arguments"
    return f"bad_arguments: {where}: {error.message}"


def _bad_key(key: Any) -> str | None:
    """An idempotency key is a non-empty string or an integer (it is replicated and hashed)."""
    if key is None or (type(key) is str and 0 < len(key) <= MAX_KEY) or type(key) is int:
        return None
    return (f"bad_request_id: _meta[{KEY_META!r}] is a string of 1..{MAX_KEY} characters or "
            f"an integer, not {json.dumps(key)[:80]}")


async def _call(front: Frontend, ctx: Any, name: str, args: dict[str, Any], key: Any,
                limiter: anyio.CapacityLimiter) -> tuple[str, Any]:
    """The call in a worker thread, its run cancelled if the handler is; with progress
    pumped to the client if it asked for progress (a progress token in _meta)."""
    run_token = uuid.uuid4().hex
    if (ctx.meta or {}).get("progress_token") is None:
        return await _in_thread(front, name, args, key, None, run_token, limiter)
    send, receive = anyio.create_memory_object_stream[tuple[Any, Any, Any]](_PROGRESS_BUFFER)
    loop = anyio.lowlevel.current_token()

    def on_progress(progress: float, total: float | None, message: str | None) -> None:
        try:
            anyio.from_thread.run_sync(send.send_nowait, (progress, total, message),
                                       token=loop)
        except Exception:  # the call is over, or the buffer is full: drop it
            pass

    async def pump() -> None:
        async with receive:
            async for progress, total, message in receive:
                await ctx.session.report_progress(float(progress),
                                                  None if total is None else float(total),
                                                  message)

    async with anyio.create_task_group() as tg:
        tg.start_soon(pump)
        with send:
            answer = await _in_thread(front, name, args, key, on_progress, run_token, limiter)
    return answer


async def _in_thread(front: Frontend, name: str, args: dict[str, Any], key: Any,
                     on_progress: Any, run_token: str,
                     limiter: anyio.CapacityLimiter) -> tuple[str, Any]:
    try:
        return await anyio.to_thread.run_sync(
            lambda: front.call_tool(name, args, key, on_progress, run_token),
            abandon_on_cancel=True, limiter=limiter)
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(front.cancel, run_token)
        raise


def build_server(front: Frontend, max_calls: int = MAX_CALLS) -> Server[Any]:
    """The MCP server over `front` (started). At most `max_calls` tool calls wait on the
    cluster at once, each in a worker thread of their own pool, so that calls queued behind
    a long tool never hold up reads, listings or cancellations; more calls wait their turn."""
    limiter = anyio.CapacityLimiter(max_calls)

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        found = await anyio.to_thread.run_sync(front.list_tools)
        return types.ListToolsResult(tools=[
            types.Tool(name=d["name"], description=d["description"],
                       input_schema=d["input_schema"], output_schema=d["output_schema"])
            for d in found])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        args = params.arguments or {}
        key = (params.meta or {}).get(KEY_META)
        if front.tool(params.name) is None:
            await anyio.to_thread.run_sync(front.list_tools)  # a tool added since
        bad = _bad_key(key) or _bad_arguments(front.tool(params.name), args)
        if bad is not None:
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=bad)],
                structured_content={"error": "bad_arguments", "detail": bad}, is_error=True)
        try:
            answer = await _call(front, ctx, params.name, args, key, limiter)
        except Exception as exc:  # a bug of ours or the runtime's: a tool error, not a crash
            log.exception("tools/call %s failed", params.name)
            answer = ("error", ("internal_error", f"{type(exc).__name__}: {exc}"))
        if answer[0] == "ok":
            return ok_result(answer[1], key)
        return error_result(answer[1], front, params.name)

    async def list_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[
            types.Resource(name="status", uri=STATUS_URI, mime_type="application/json",
                           description="mode, members, leader, roles and OS pids"),
            types.Resource(name="audit", uri=AUDIT_URI, mime_type="application/json",
                           description=f"the audit trail, oldest first, {PAGE_LIMIT} a page"),
        ])

    async def list_templates(ctx: Any, params: Any) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=[
            types.ResourceTemplate(name="audit_page", uri_template=AUDIT_URI + "{?after,limit}",
                                   mime_type="application/json",
                                   description="entries with execution_id > after, oldest "
                                               "first, at most limit"),
        ])

    async def read_resource(ctx: Any,
                            params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        uri = str(params.uri)
        data = await anyio.to_thread.run_sync(lambda: read(front, uri))
        return types.ReadResourceResult(contents=[types.TextResourceContents(
            uri=uri, mime_type="application/json", text=json.dumps(data))])

    return Server("erlmcp", version="0.1.0",
                  instructions="Tools run once, on the cluster's leader, with an audit trail. "
                               f"Put an idempotency key in _meta[{KEY_META!r}] to retry safely.",
                  on_list_tools=list_tools, on_call_tool=call_tool,
                  on_list_resources=list_resources,
                  on_list_resource_templates=list_templates, on_read_resource=read_resource)


def read(front: Frontend, uri: str) -> Any:
    """(blocking) A resource's JSON data; ValueError for a URI that names none."""
    parts = urlsplit(uri)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    if base == STATUS_URI:
        return front.status()
    if base != AUDIT_URI:
        raise ValueError(f"no resource {uri!r}: try {STATUS_URI} or {AUDIT_URI}")
    query = parse_qs(parts.query)
    try:
        after = int(query["after"][0]) if "after" in query else None
        limit = int(query["limit"][0]) if "limit" in query else PAGE_LIMIT
    except ValueError:
        raise ValueError(f"{uri!r}: after and limit are integers") from None
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"{uri!r}: limit is 1..{MAX_PAGE}")
    answer = front.audit_page(after, limit)
    if answer[0] != "ok":
        raise ValueError(f"the audit trail cannot be read now: {jsonable(answer[1])!r}")
    entries, more = answer[1]
    page = [jsonable(e) for e in entries]
    nxt = f"{AUDIT_URI}?after={entries[-1]['execution_id']}&limit={limit}" \
        if more and entries else None
    return {"entries": page, "next": nxt}
