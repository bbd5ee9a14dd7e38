"""`rpc`: run a function on another node, as OTP's rpc (built the way erpc is).

    rpc.call(node, fun, [args], timeout)            # a function or closure (cloudpickle)
    rpc.call(node, "module", "function", [args], timeout)

A call spawns a process on `node` that runs the function and exits with its result; the
caller monitors it. Results: the value, or ("badrpc", reason) with reason ("EXIT", exit
reason) for a crash, "nodedown" if the node cannot be reached or goes down, "timeout".
A timed-out call kills its remote process. Timeouts are milliseconds or "infinity".
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from . import _context, erlang
from ._terms import TIMEOUT, Error, Exit

__all__ = ["call", "cast", "multicall"]

_RESULT = "$rpc_result"


def _parse(rest: tuple[Any, ...]) -> tuple[Callable[..., Any], list[Any], Any]:
    if rest and type(rest[0]) is str:
        if len(rest) < 2 or type(rest[1]) is not str:
            raise Error("badarg")
        module, function = rest[0], rest[1]
        args = list(rest[2]) if len(rest) > 2 else []
        timeout = rest[3] if len(rest) > 3 else "infinity"
        return (lambda *a: _apply(module, function, a)), args, timeout
    if not rest or not callable(rest[0]):
        raise Error("badarg")
    args = list(rest[1]) if len(rest) > 1 else []
    timeout = rest[2] if len(rest) > 2 else "infinity"
    return rest[0], args, timeout


def _apply(module: str, function: str, args: tuple[Any, ...]) -> Any:
    """module:function(args) on this node; OTP module names find ours (`erlang`, ...)."""
    try:
        mod = importlib.import_module(f"actors.{module}")
    except ImportError:
        mod = importlib.import_module(module)
    return getattr(mod, function)(*args)


def _run(fun: Callable[..., Any], args: list[Any]) -> None:
    raise Exit((_RESULT, fun(*args)))


def call(node: str, *rest: Any) -> Any:
    """call(node, fun, args=[], timeout="infinity") or call(node, m, f, args, timeout)."""
    fun, args, timeout = _parse(rest)
    pid, ref = erlang.spawn_monitor(node, _run, fun, args)
    down = _context.self_process().receive(
        lambda m: type(m) is tuple and len(m) == 5 and m[0] == "DOWN" and m[1] == ref, timeout)
    if down is TIMEOUT:
        erlang.demonitor(ref, ["flush"])
        erlang.exit(pid, "kill")
        return ("badrpc", "timeout")
    reason = down[4]
    if type(reason) is tuple and len(reason) == 2 and reason[0] == _RESULT:
        return reason[1]
    if reason == "noconnection":
        return ("badrpc", "nodedown")
    return ("badrpc", ("EXIT", reason))


def cast(node: str, *rest: Any) -> bool:
    """Run the function on `node` and forget it. Always True."""
    fun, args, _ = _parse(rest)
    erlang.spawn(node, fun, *args)
    return True


def _down_of(ref: erlang.Ref) -> Callable[[Any], bool]:
    """Matches the DOWN message of monitor `ref`."""
    return lambda m: type(m) is tuple and len(m) == 5 and m[0] == "DOWN" and m[1] == ref


def multicall(nodes: list[str], *rest: Any) -> tuple[list[Any], list[str]]:
    """Call on every node in parallel: (results of the nodes that answered, bad nodes)."""
    fun, args, timeout = _parse(rest)
    calls = [(n, *erlang.spawn_monitor(n, _run, fun, args)) for n in nodes]
    me = _context.self_process()
    results: list[Any] = []
    bad: list[str] = []
    for node, pid, ref in calls:
        down = me.receive(_down_of(ref), timeout)
        if down is TIMEOUT:
            erlang.demonitor(ref, ["flush"])
            erlang.exit(pid, "kill")
            bad.append(node)
        elif down[4] == "noconnection":
            bad.append(node)
        elif type(down[4]) is tuple and len(down[4]) == 2 and down[4][0] == _RESULT:
            results.append(down[4][1])
        else:
            results.append(("badrpc", ("EXIT", down[4])))
    return results, bad
