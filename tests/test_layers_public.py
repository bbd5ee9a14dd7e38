"""`supervision/` stands on the runtime's public API only, as OTP's supervisor.erl uses only
gen_server and erlang: it imports no private module of `actors` (`actors._terms`, ...),
not the runtime itself (`actors.node`, `Node`), and reads no private attribute of another
object (`node._procs`, `Node.reason_of`). What it needs is public in `actors.erlang`:
`Pid`, `Ref`, `ProcessKilled`, `exit_reason` and `is_quiet`.

The check is static (ast), over every import in a module, at its top level or inside a
function alike."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import supervision
from actors import erlang

PKG = Path(supervision.__file__).parent
RUNTIME_NAMES = {"Node", "reason_of"}  # the runtime's object and its private rules


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _bad_module(module: str) -> bool:
    """A module of `actors` that is not public API: a private one, or the runtime."""
    parts = module.split(".")
    return parts[0] == "actors" and (any(_private(p) for p in parts) or parts[:2] == ["actors",
                                                                                       "node"])


def violations(source: str, filename: str = "<snippet>") -> list[str]:
    """What in `source` reaches past the public API, one line each ("" when clean)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{where} imports {a.name}" for a in node.names if _bad_module(a.name)]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level > 1:
                found.append(f"{where} imports from outside its package ({'.' * node.level}"
                             f"{module})")
            elif node.level == 0 and _bad_module(module):
                found.append(f"{where} imports {module}")
            elif node.level == 0 and module.split(".")[0] == "actors":
                found += [f"{where} imports {module}.{a.name}" for a in node.names
                          if _private(a.name) or a.name in RUNTIME_NAMES
                          or _bad_module(f"{module}.{a.name}")]
        elif isinstance(node, ast.Attribute):
            owner = node.value.id if isinstance(node.value, ast.Name) else None
            if node.attr in RUNTIME_NAMES or (_private(node.attr) and owner not in ("self",
                                                                                     "cls")):
                found.append(f"{where} reads .{node.attr}")
        elif isinstance(node, ast.Name) and node.id in RUNTIME_NAMES:
            found.append(f"{where} names {node.id}")
    return found


def test_supervision_uses_only_the_public_api() -> None:
    modules = sorted(PKG.glob("*.py"))
    assert len(modules) >= 7, modules  # the package is where we think it is
    found = [v for path in modules for v in violations(path.read_text(), path.name)]
    assert found == []


@pytest.mark.parametrize("snippet", [
    "from actors._terms import Pid",
    "import actors._context",
    "from actors import _context",
    "from actors.node import is_quiet",
    "import actors.node",
    "from actors import Node",
    "from actors import node",
    "from .. import something",
    "def f(proc):\n    return proc.node._procs",
    "def f(exc):\n    return Node.reason_of(exc)",
    "from actors import erlang\nerlang._node()",
])
def test_the_check_finds_each_kind_of_reach(snippet: str) -> None:
    assert violations(snippet) != []


def test_the_check_lets_the_public_api_through() -> None:
    clean = ("from actors import erlang, gen_server\n"
             "from actors.erlang import Pid, ProcessKilled, Ref, exit_reason, is_quiet\n"
             "from . import _children as kids\n"
             "from ._state import State\n"
             "class S:\n"
             "    def f(self, pid):\n"
             "        return self._by_pid, erlang.node(pid), kids.report\n")
    assert violations(clean) == []


def test_exit_reason_is_what_an_uncaught_exception_makes() -> None:
    assert erlang.exit_reason(erlang.Exit(("shutdown", 1))) == ("shutdown", 1)
    try:
        erlang.error("badarg")
    except erlang.Error as exc:
        reason, stack = erlang.exit_reason(exc)
    assert reason == "badarg" and stack and all(len(frame) == 3 for frame in stack)
    boom = ValueError("boom")
    exc_, stack = erlang.exit_reason(boom)
    assert exc_ is boom and stack == []  # never raised: no frames


@pytest.mark.parametrize(("reason", "quiet"), [
    ("normal", True), ("shutdown", True), (("shutdown", "any term"), True),
    ("killed", False), ("kill", False), (("shutdown",), False), (("shutdown", 1, 2), False),
    ("noconnection", False), (("normal", 1), False),
])
def test_is_quiet_is_otps_set_of_unreported_reasons(reason: object, quiet: bool) -> None:
    assert erlang.is_quiet(reason) is quiet


def test_process_killed_is_not_an_exception() -> None:
    """User code that catches Exception never swallows the unwinding of a killed process."""
    assert issubclass(erlang.ProcessKilled, BaseException)
    assert not issubclass(erlang.ProcessKilled, Exception)
