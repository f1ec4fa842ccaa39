"""The package's import graph: layers above the sinks never import a concrete backend, and no
module imports itself back through others.

Every ``import`` in ``src/backbeat`` is read with ``ast`` (module-level and inside functions,
the lazy ones included; only ``if TYPE_CHECKING:`` blocks are left out, as they never run).
The engine, the API and the terminal view may use the contracts (``sinks/base.py``,
``sinks/queries.py``, ``transport/base.py``...) and the registries, never a backend such as
``sinks/duckdb/`` or ``transport/kafka/``, nor the composition root above them.

Next: ``../shared/ARCHITECTURE.md`` (the layers), ``backbeat.wiring`` (where backends are
chosen).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import backbeat

PACKAGE = Path(backbeat.__file__).parent
CONTRACTS = {
    "backbeat.sinks",
    "backbeat.sinks.base",
    "backbeat.sinks.queries",
    "backbeat.sinks.shelf",
    "backbeat.sinks.registry",
    "backbeat.transport",
    "backbeat.transport.base",
    "backbeat.transport.registry",
    "backbeat.transport.prefetch",
}
BACKENDS = ("backbeat.sinks.", "backbeat.transport.")
ABOVE = ("backbeat.wiring", "backbeat.commands")
GUARDED = ("backbeat.engine", "backbeat.serve", "backbeat.ui", "backbeat.recommend")


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    """Python modules, and compiled ones by their stubs (``_jsonfast.pyi``): leaves."""
    stubs = {_name(p): p for p in PACKAGE.rglob("*.pyi")}
    return stubs | {_name(p): p for p in PACKAGE.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """The backbeat modules ``path`` imports when it runs (TYPE_CHECKING blocks left out),
    the targets of its registry entries (``"backbeat.x.y:Name"`` strings) included."""
    if path.suffix == ".pyi":
        return set()
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            target = re.fullmatch(r"(backbeat(?:\.\w+)+):\w+", node.value)
            if target:
                found.add(target.group(1))
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                found.add(sub if sub in known else module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return {m for m in found if m in known and m != name}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: _imports(path, name, known) for name, path in known.items()}


def _backend(module: str) -> bool:
    return module.startswith(BACKENDS) and module not in CONTRACTS


def test_engine_serve_ui_and_recommend_import_no_backend_and_nothing_above(
    graph: dict[str, set[str]],
) -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        if module.startswith(GUARDED)
        for target in targets
        if _backend(target) or target.startswith(ABOVE)
    )
    assert not wrong, "\n".join(wrong)


def test_the_graph_sees_backends_and_lazy_imports(graph: dict[str, set[str]]) -> None:
    """The checks above would pass on an empty graph: make sure this one is real."""
    assert "backbeat.sinks.duckdb.store" in graph["backbeat.sinks.registry"]  # a plugin target
    assert "backbeat.sinks.sql.reader" in graph["backbeat.sinks.duckdb.store"]
    assert "backbeat.sinks.registry" in graph["backbeat.wiring.pipeline"]
    assert "backbeat.serve.web_process" in graph["backbeat.wiring.pipeline"]  # a lazy import
    assert _backend("backbeat.sinks.duckdb.store")
    assert _backend("backbeat.transport.kafka.source")
    assert not _backend("backbeat.sinks.queries")


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            connect(node)
    assert not cycles, f"import cycles: {cycles}"
