"""Tool descriptions for MCP, derived from the tools' signatures, and terms made JSON.

Rules of this module:
- A tool is `fun(args, request_id)`. Its input schema is the JSON schema of the annotation
  of `args` (a TypedDict, a pydantic model or a dataclass, through pydantic's
  TypeAdapter); a plain `dict`, `Any` or no annotation is "any object". Its output schema
  wraps the return annotation as {"result": ...} (MCP's structured output is an object);
  `Any` or no annotation gives no output schema. Its description is its docstring.
- `describe(tools)` is pure. `describe_node()` runs on a cluster node (by rpc): it finds
  the node's registry in a ToolRunner's state, so a front end learns the cluster's tools
  (user tools included) without importing them.
- `jsonable(term)` turns any term into JSON data: tuples become lists, pids, refs and
  other objects their printed form, dict keys strings.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Any

from pydantic import TypeAdapter

from actors import Exit, Pid
from actors import sys as otp_sys
from supervision import supervisor

from ..tool_runner import SUP_NAME
from ..tools import Tool, Tools

__all__ = ["ANY_OBJECT", "describe", "describe_node", "describe_tool", "jsonable"]

ANY_OBJECT: dict[str, Any] = {"type": "object"}


def _hints(fun: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fun)
    except Exception:  # an annotation that does not resolve here: describe it as unknown
        return {}


def _args_annotation(fun: Any) -> Any:
    try:
        params = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):
        return None
    return _hints(fun).get(params[0].name) if params else None


def _is_plain(annotation: Any) -> bool:
    return annotation in (None, Any, dict, inspect.Parameter.empty) \
        or typing.get_origin(annotation) is dict


def _schema_of(annotation: Any) -> dict[str, Any] | None:
    if typing.is_typeddict(annotation):
        return _typeddict_schema(annotation)
    try:
        schema = TypeAdapter(annotation).json_schema()
    except Exception:
        return None
    return schema if isinstance(schema, dict) else None


def _typeddict_schema(annotation: Any) -> dict[str, Any] | None:
    """A typing.TypedDict's schema, field by field (pydantic takes only typing_extensions'
    TypedDict before Python 3.12)."""
    try:
        fields = typing.get_type_hints(annotation)
    except Exception:
        return None
    properties = {}
    for name, field_type in fields.items():
        field_schema = _schema_of(field_type)
        if field_schema is None:
            return None
        properties[name] = field_schema
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "required": sorted(annotation.__required_keys__)}
    if annotation.__doc__ and not annotation.__doc__.startswith(annotation.__name__ + "("):
        schema["description"] = inspect.cleandoc(annotation.__doc__)
    return schema


def input_schema(fun: Any) -> dict[str, Any]:
    """The JSON schema of the tool's `args` ("any object" if it says nothing more)."""
    annotation = _args_annotation(fun)
    if _is_plain(annotation):
        return dict(ANY_OBJECT)
    schema = _schema_of(annotation)
    if schema is None or schema.get("type") != "object":
        return dict(ANY_OBJECT)
    return schema


def output_schema(fun: Any) -> dict[str, Any] | None:
    """{"result": <return annotation's schema>} as an object schema, or None."""
    annotation = _hints(fun).get("return")
    if annotation in (None, Any, type(None)):
        return None
    schema = _schema_of(annotation)
    if schema is None:
        return None
    defs = schema.pop("$defs", None)
    wrapped = {"type": "object", "properties": {"result": schema}, "required": ["result"]}
    if defs:
        wrapped["$defs"] = defs
    return wrapped


def describe_tool(tool: Tool) -> dict[str, Any]:
    """{name, description, input_schema, output_schema, timeout} of one tool."""
    return {
        "name": tool.name,
        "description": inspect.getdoc(tool.fun) or f"the {tool.name} tool",
        "input_schema": input_schema(tool.fun),
        "output_schema": output_schema(tool.fun),
        "timeout": tool.timeout,
    }


def describe(tools: Tools) -> list[dict[str, Any]]:
    """Every tool of the registry, by name."""
    return [describe_tool(t) for t in (tools.get(n) for n in tools.names()) if t is not None]


def describe_node(runner_sup: Any = SUP_NAME) -> Any:
    """(on a service node) ("ok", descriptions) of the tools this node's runners run, or
    ("error", "no_runner") while none is up."""
    try:
        children = supervisor.which_children(runner_sup)
    except Exit:
        return ("error", "no_runner")
    for _id, pid, _type, _mods in children:
        if type(pid) is not Pid:
            continue
        try:
            tools = otp_sys.get_state(pid, 2000)
        except Exit:
            continue
        if isinstance(tools, Tools):
            return ("ok", describe(tools))
    return ("error", "no_runner")


def jsonable(term: Any) -> Any:
    """`term` as JSON data (see the module doc)."""
    if term is None or isinstance(term, bool | int | float | str):
        return term
    if isinstance(term, dict):
        return {k if isinstance(k, str) else str(jsonable(k)): jsonable(v)
                for k, v in term.items()}
    if isinstance(term, list | tuple):
        return [jsonable(x) for x in term]
    if isinstance(term, set | frozenset):
        return sorted((jsonable(x) for x in term), key=repr)
    if isinstance(term, bytes):
        return term.decode("utf-8", "backslashreplace")
    if dataclasses.is_dataclass(term) and not isinstance(term, type):
        return jsonable(dataclasses.asdict(term))
    return str(term)
