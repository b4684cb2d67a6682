"""The package's import graph: no cycles, and every import points down the layers the README's layout names.

The graph is read from the source with :mod:`ast` (nothing is imported): every ``import`` and
``from ... import`` of a ``sparse_demo`` module, at module level or inside a function (an import
inside a function still ties the two modules together), except those under ``if TYPE_CHECKING:``.
Importing ``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b``, so those count as imported too.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sparse_demo"

#: Bottom to top. A module may import modules of its own unit or of units on a lower layer; two units
#: on the same layer never import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("progress", "formatting", "space", "model_settings", "__init__"),
    ("limits",),
    ("config", "textio"),
    ("korean", "corpus", "modeling"),
    ("data", "encoder", "index"),
    ("analysis", "models", "heatmap"),
    ("compare", "search"),
    ("corpus_report", "evaluation"),
    ("train",),
    ("offline",),
    ("cli",),
    ("ui",),
    ("__main__",),
)


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def _absolute(module: str | None, level: int, current: str, is_pkg: bool) -> str:
    if not level:
        return module or ""
    base = current.split(".")[: len(current.split(".")) - (0 if is_pkg else 1)]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _under_type_checking(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def import_graph() -> dict[str, set[str]]:
    """``{module: modules of the package it imports}`` (see the module docstring)."""
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, (path, is_pkg) in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node.module, node.level, name, is_pkg)
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            if _under_type_checking(node, parents):
                continue
            for target in targets:
                parts = target.split(".")
                for i in range(2, len(parts) + 1):  # the packages on the way run too
                    prefix = ".".join(parts[:i])
                    if prefix in modules and prefix != name and not name.startswith(prefix + "."):
                        graph[name].add(prefix)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_the_graph_reader_sees_imports_inside_functions_and_packages_on_the_way():
    graph = import_graph()
    assert "sparse_demo.index.opensearch" in graph["sparse_demo.search.build"]  # a lazy import inside a function
    assert "sparse_demo.data" in graph["sparse_demo.train.evaluation"]  # the package's __init__ runs too
    assert "sparse_demo.data.pairs" in graph["sparse_demo.train.evaluation"]
    assert "sparse_demo.cli.common" in graph["sparse_demo.cli"]  # relative imports resolve
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_package_has_no_import_cycle():
    assert _cycles(import_graph()) == []


def test_every_unit_has_a_layer():
    units = {_unit(m) for m in _modules()}
    placed = {u for layer in LAYERS for u in layer}
    assert units <= placed, f"put {sorted(units - placed)} on a layer (and in the README's layout)"


def test_imports_point_down_the_layers():
    rank = {u: i for i, layer in enumerate(LAYERS) for u in layer}
    upward = []
    for module, targets in import_graph().items():
        for target in targets:
            a, b = _unit(module), _unit(target)
            if a != b and rank[b] >= rank[a]:
                upward.append(f"{module} -> {target}")
    assert upward == []


@pytest.mark.parametrize("unit", ["search", "index", "encoder", "data", "corpus"])
def test_search_and_below_never_reach_the_demo_build_or_training(unit):
    graph = import_graph()
    seen, todo = set(), [m for m in graph if _unit(m) == unit]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph.get(m, ()))
    assert not {_unit(m) for m in seen} & {"offline", "train", "evaluation", "ui", "cli"}
