"""The tool registry: named tool functions and the POC's built-in tools.

Rules of this module:
- A registry is a `Tools` instance, never a module-level table: each consensus service
  gets its own (several nodes share one Python process in tests). `default_tools()`
  returns a fresh registry holding the built-ins.
- A tool is `fun(args: dict, request_id) -> result`. `request_id` is the caller's
  idempotency key (or None); a tool with outside side effects can pass it on.
- `Tools.run(name, args, request_id)` is the POC's `execute_tool_local/2`: it returns the
  tool's result, or `("error", {"reason": "unknown_tool", "tool": name})` when there is no
  such tool or the arguments do not fit (the POC's catch-all clause). A tool signals
  arguments that do not fit by raising `BadArgs`. Any other exception propagates: in a
  ToolRunner it crashes the runner (see `tool_runner`).
- Each tool has a timeout in ms ("infinity" allowed), DEFAULT_TIMEOUT unless the decorator
  says otherwise; the ToolRunner kills a run that takes longer.
- A tool's signature describes it: the annotation of `args` (a TypedDict, a pydantic model
  or a dataclass) is its input schema, its return annotation its output, its docstring its
  description (see `actors.consensus.mcp.schema`). A plain `dict` means any object.
- A tool running in a ToolRunner may call `report_progress(done, total, message)`; it goes
  to whoever asked for the run with a run context (the MCP front end), else nowhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict, TypeGuard, overload

from actors import erlang

__all__ = ["DEFAULT_TIMEOUT", "RUN_CONTEXT", "BadArgs", "Tool", "ToolFun", "Tools",
           "default_tools", "is_unknown_tool", "report_progress", "service_answer",
           "unknown_tool"]

DEFAULT_TIMEOUT = 5000
RUN_CONTEXT = "$erlmcp_run"  # the process dictionary key of a ToolRunner's run context
# fun(args, request_id) -> result. `args` is whatever the tool's annotation declares (a
# dict, a TypedDict, a pydantic model or a dataclass), so the registry cannot say more.
ToolFun = Callable[[Any, Any], Any]


class BadArgs(Exception):
    """Raised by a tool whose arguments do not fit; the caller gets unknown_tool."""


def unknown_tool(name: Any) -> tuple[str, dict[str, Any]]:
    """The POC's answer for an unknown tool or arguments that match no clause."""
    return ("error", {"reason": "unknown_tool", "tool": name})


def is_unknown_tool(term: Any) -> bool:
    """True for `unknown_tool(name)`'s answer."""
    return (type(term) is tuple and len(term) == 2 and term[0] == "error"
            and isinstance(term[1], dict) and term[1].get("reason") == "unknown_tool")


def valid_request_id(request_id: Any) -> bool:
    """A request id is None, a str, an int or bytes, or a tuple of those: a plain term that
    hashes the same on every node (it keys the replies every member keeps)."""
    if request_id is None or type(request_id) in (str, int, bytes):
        return True
    return type(request_id) is tuple and all(valid_request_id(x) for x in request_id)


def bad_request_id(request_id: Any) -> tuple[str, Any]:
    """The answer to an execute_tool whose request id is not `valid_request_id`."""
    return ("error", {"reason": "bad_request_id", "request_id": repr(request_id)[:200]})


def service_answer(outcome: tuple[str, Any]) -> tuple[str, Any]:
    """What the service answers for a runner's outcome: the protocol's ("error", {...}) for
    an unknown tool or bad arguments (the POC wrapped it: {ok, {error, ...}}), else as is."""
    if outcome[0] == "ok" and is_unknown_tool(outcome[1]):
        return outcome[1]
    return outcome


def report_progress(progress: float, total: float | None = None,
                    message: str | None = None) -> bool:
    """(in a tool) Report progress to the run's listener. True if someone listens."""
    ctx = erlang.get(RUN_CONTEXT)
    if not isinstance(ctx, dict) or type(ctx.get("listener")) is not erlang.Pid:
        return False
    erlang.send(ctx["listener"], ("erlmcp_progress", ctx.get("token"), progress, total, message))
    return True


@dataclass(frozen=True)
class Tool:
    name: str
    fun: ToolFun
    timeout: int | str = DEFAULT_TIMEOUT


def _check_timeout(timeout: Any) -> None:
    if timeout != "infinity" and (type(timeout) is not int or timeout < 0):
        raise ValueError(f"a tool timeout is ms >= 0 or 'infinity', not {timeout!r}")


class Tools:
    """A registry of tools. Add with the decorator or `add`:

        tools = Tools()

        @tools.tool                       # named after the function
        def echo(args, request_id): ...

        @tools.tool("slow", timeout=200)  # named, with its own timeout (ms)
        def slow(args, request_id): ...
    """

    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}

    def add(self, name: str, fun: ToolFun, timeout: int | str = DEFAULT_TIMEOUT) -> Tool:
        """Register `fun` as `name` (replacing a tool of that name). Returns the Tool."""
        if type(name) is not str or not callable(fun):
            raise TypeError("add(name: str, fun: callable, timeout=...)")
        _check_timeout(timeout)
        tool = Tool(name, fun, timeout)
        self._tools[name] = tool
        return tool

    @overload
    def tool(self, name_or_fun: ToolFun, *, timeout: int | str = ...) -> ToolFun: ...

    @overload
    def tool(self, name_or_fun: str | None = None, *,
             timeout: int | str = ...) -> Callable[[ToolFun], ToolFun]: ...

    def tool(self, name_or_fun: str | ToolFun | None = None, *,
             timeout: int | str = DEFAULT_TIMEOUT) -> Any:
        """Decorator: `@tools.tool`, `@tools.tool("name")`, `@tools.tool(timeout=ms)`.
        Returns the function unchanged."""
        if callable(name_or_fun):
            self.add(name_or_fun.__name__, name_or_fun, timeout)
            return name_or_fun

        def register(fun: ToolFun) -> ToolFun:
            self.add(name_or_fun if name_or_fun is not None else fun.__name__, fun, timeout)
            return fun

        return register

    def get(self, name: Any) -> Tool | None:
        return self._tools.get(name) if type(name) is str else None

    def names(self) -> list[str]:
        return sorted(self._tools)

    def timeout_of(self, name: Any) -> int | str:
        """The tool's timeout; DEFAULT_TIMEOUT for an unknown tool (it answers at once)."""
        tool = self.get(name)
        return tool.timeout if tool is not None else DEFAULT_TIMEOUT

    def run(self, name: Any, args: Any, request_id: Any = None) -> Any:
        """Run the tool here, in the caller: its result, or the unknown_tool error."""
        tool = self.get(name)
        if tool is None or not isinstance(args, dict):
            return unknown_tool(name)
        try:
            return tool.fun(args, request_id)
        except BadArgs:
            return unknown_tool(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)


# -- the POC's built-in tools (erlmcp_consensus_poc:execute_tool_local/2) ----------------------

def _number(x: object) -> TypeGuard[int | float]:
    """Erlang's number(): int or float. bool is not one (Erlang's true is an atom)."""
    return type(x) in (int, float)


def _numbers(args: Mapping[str, object], k1: str, k2: str) -> tuple[float, float]:
    """The two numeric arguments `k1`, `k2`, or BadArgs (a map pattern that fails)."""
    x, y = args.get(k1), args.get(k2)  # a missing key is None, which is no number
    if _number(x) and _number(y):
        return x, y
    raise BadArgs()


class AB(TypedDict):
    """Two numbers, a and b."""

    a: float
    b: float


class XY(TypedDict):
    x: float
    y: float


class S1S2(TypedDict):
    s1: str
    s2: str


def _add(args: AB, _request_id: Any) -> float:
    """a + b."""
    a, b = _numbers(args, "a", "b")  # add: #{a := A, b := B} -> A + B
    return a + b


def _multiply(args: XY, _request_id: Any) -> float:
    """x * y."""
    x, y = _numbers(args, "x", "y")  # multiply: #{x := X, y := Y} -> X * Y
    return x * y


def _divide(args: AB, _request_id: Any) -> float:
    """a / b (b not 0)."""
    a, b = _numbers(args, "a", "b")  # divide: #{a := A, b := B} when B =/= 0 -> A / B
    if b == 0:  # 0.0 too: Erlang's A / 0.0 is badarith as well, so no clause fits
        raise BadArgs()
    return a / b


def _subtract(args: AB, _request_id: Any) -> float:
    """a - b."""
    a, b = _numbers(args, "a", "b")  # subtract: #{a := A, b := B} -> A - B
    return a - b


def _concat(args: S1S2, _request_id: Any) -> str:
    """s1 and s2, joined by a space."""
    match args:  # concat: #{s1 := S1, s2 := S2} -> <<S1/binary, " ", S2/binary>>
        case {"s1": str(s1), "s2": str(s2)}:
            return s1 + " " + s2
    raise BadArgs()


def default_tools() -> Tools:
    """A fresh registry with the POC's five tools: add, multiply, divide, subtract, concat."""
    tools = Tools()
    for name, fun in (("add", _add), ("multiply", _multiply), ("divide", _divide),
                      ("subtract", _subtract), ("concat", _concat)):
        tools.add(name, fun)
    return tools
