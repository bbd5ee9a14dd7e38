"""The Raft core's modules import one another as a one-way chain: no cycle, not even
under `TYPE_CHECKING` or inside a function, and the core's modules import no shell."""

from __future__ import annotations

import ast
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import actors.raft

PKG = Path(actors.raft.__file__).parent


def _imports(path: Path) -> set[str]:
    """Sibling modules of `actors.raft` imported anywhere in `path`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found.update(a.name for a in node.names)
            elif node.level == 0 and (node.module or "").startswith("actors.raft."):
                found.add((node.module or "").split(".")[2])
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("actors.raft."):
                    found.add(a.name.split(".")[2])
    return found


def _graph() -> dict[str, set[str]]:
    modules = {p.stem for p in PKG.glob("*.py") if p.stem != "__init__"}
    return {m: _imports(PKG / f"{m}.py") & modules for m in sorted(modules)}


def test_the_package_graph_has_no_cycle() -> None:
    graph = _graph()
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as e:  # pragma: no cover - the failure message is the point
        raise AssertionError(f"import cycle in actors.raft: {e.args[1]}") from None
    assert order.index("state") < order.index("roles") < order.index("replication")
    assert order.index("replication") < order.index("core") < order.index("driver")


def test_replication_reaches_nothing_above_it() -> None:
    graph = _graph()
    for low in ("roles", "replication", "election"):
        assert not graph[low] & {"membership", "read_index", "transfer", "snapshot", "core"}, low


def test_the_core_imports_no_shell_and_no_io() -> None:
    for path in PKG.glob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 \
                else []
            for name in names:
                root = name.split(".")[0]
                assert root not in ("socket", "zmq", "os", "threading", "time", "actors"), \
                    f"{path.name} imports {name}"


def test_each_module_imports_on_its_own() -> None:
    """Importing any one module first, in a fresh interpreter, works."""
    for module in _graph():
        result = subprocess.run([sys.executable, "-c", f"import actors.raft.{module}"],
                                timeout=60, capture_output=True, text=True)
        assert result.returncode == 0, (module, result.stderr)
