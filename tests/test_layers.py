"""The package graph of `transport`, `actors` and `supervision` runs one way: no import
cycle except OTP's own gen_server <-> global, and no arrow that runs back up.

How imports are counted (read from the source with `ast`, nothing is imported):
- Every `import` and `from ... import` is an arrow, at module level or inside a function:
  a function-level import that only hides a cycle is still a cycle.
- Imports under `if TYPE_CHECKING:` are not arrows: they never run, and annotations may
  name a type from any layer.
- An arrow goes to the module named, not to the packages around it (`from .node import
  Node` is an arrow to `actors.node`; `actors/__init__` is not implied).
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("transport", "actors", "supervision")

#: The layers, lowest first: the transport; the runtime (`actors`: processes, nodes,
#: distribution, gen_server...); supervision, built on the runtime's API; and the
#: applications, built on both (as ra and OTP applications use supervisors).
LAYERS = ("transport", "runtime", "supervision", "applications")
APPLICATIONS = ("actors.ra", "actors.consensus")

#: OTP's gen_server and global call each other (gen:call resolves {global, Name}; global's
#: server is a gen_server). Here each is a module and its private half.
ALLOWED_CYCLE = frozenset({"actors.gen_server", "actors._server_loop", "actors.global_",
                           "actors._global_server"})

#: The runtime below the node: none of these reaches the node, the convenience context or
#: the API above them.
RUNTIME = ("actors._thread", "actors._terms", "actors._process", "actors._scheduler",
           "actors._inline", "actors._interrupt", "actors._timers", "actors._remote",
           "actors._dist", "actors._dist_handshake", "actors._dist_pickle",
           "actors._dist_records")
ABOVE_RUNTIME = ("actors.node", "actors._context", "actors.erlang", "actors.gen_server",
                 "actors.net_kernel", "actors.global_")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _type_only(tree: ast.AST) -> set[int]:
    """ids of the nodes inside `if TYPE_CHECKING:` blocks."""
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hidden.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return hidden


def _targets(module: str, is_package: bool, node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    assert isinstance(node, ast.ImportFrom)
    if node.level == 0:
        base = node.module or ""
    else:
        parts = module.split(".")
        if not is_package:
            parts.pop()
        parts = parts[:len(parts) - node.level + 1]
        base = ".".join(parts + ([node.module] if node.module else []))
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def _imports(module: str) -> set[str]:
    """The modules of our packages that `module` imports (see the rules above)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    hidden = _type_only(tree)
    found = set()
    for node in ast.walk(tree):
        if id(node) in hidden or not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        for target in _targets(module, path.name == "__init__.py", node):
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != module:
                found.add(target)
    return found


GRAPH = {module: _imports(module) for module in sorted(MODULES)}


def _reaches(start: str, graph: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_the_graph_sees_the_imports() -> None:
    """The reader itself: known arrows are there, type-only ones are not."""
    assert "actors._terms" in GRAPH["actors._process"]
    assert "actors.node" in GRAPH["actors._context"]
    assert "actors._process" not in GRAPH["actors._thread"]  # under TYPE_CHECKING
    assert "actors.global_" in GRAPH["actors._server_loop"]  # inside a function


def test_no_cycle_but_gen_server_and_global() -> None:
    graph = {m: {t for t in targets if not (m in ALLOWED_CYCLE and t in ALLOWED_CYCLE)}
             for m, targets in GRAPH.items()}
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as e:  # pragma: no cover - the failure message is the point
        raise AssertionError(f"import cycle: {e.args[1]}") from None
    # the allowed one is still only between gen_server and global, in both directions
    assert "actors.gen_server" in _reaches("actors.global_", GRAPH)
    assert "actors.global_" in _reaches("actors.gen_server", GRAPH)


def _layer(module: str) -> int:
    if module.startswith(APPLICATIONS):
        return LAYERS.index("applications")
    package = module.split(".")[0]
    return LAYERS.index("runtime" if package == "actors" else package)


def test_layers_import_only_downwards() -> None:
    for module, targets in GRAPH.items():
        for target in targets:
            assert _layer(target) <= _layer(module), f"{module} -> {target}"


def test_the_runtime_does_not_reach_up() -> None:
    for module in RUNTIME:
        up = _reaches(module, GRAPH) & set(ABOVE_RUNTIME)
        assert not up, f"{module} reaches {sorted(up)}"
    assert not GRAPH["actors._thread"], GRAPH["actors._thread"]
    assert GRAPH["actors._terms"] <= {"actors._thread"}


def test_the_node_is_composed_not_mixed() -> None:
    """The node's parts are plain classes: no part inherits from another or is typed
    `self: Node`."""
    for part in ("_table", "_names", "_links", "_exits", "_remote_end"):
        path = ROOT / "actors" / "node" / f"{part}.py"
        source = path.read_text()
        assert "self: Node" not in source, path
    source = (ROOT / "actors" / "_dist_handshake.py").read_text()
    assert "self: Distribution" not in source


def test_a_node_keeps_its_attributes_few() -> None:
    """The parts' hot methods are bound onto the node; past 30 instance attributes CPython
    stops sharing the instance dict's keys and every method call on a node slows down."""
    from actors.node import Node

    node = Node("layers@nohost")
    try:
        assert len(vars(node)) <= 30, sorted(vars(node))
    finally:
        node.stop()
