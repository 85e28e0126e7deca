"""The package's layering, read from its imports with `ast` (nothing is imported): docs/architecture.md's rules.

- workspace/ (the data model) imports nothing of ours outside itself;
- the import graph has no cycles, except the algorithm registry's self-registration (the registry imports
  the algorithm families, which import the registry);
- listeners, servers and the workspace model never import the session, the daemon or the CLI (data flows one
  way: listener → chunk → session → daemon).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO

PACKAGE = REPO / "livereduce"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every livereduce module `path` imports, at any depth of the file (function-level imports too)."""
    found = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("livereduce")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], base]
                ).strip(".")
            if not base.startswith("livereduce"):
                continue
            for alias in node.names:  # `from livereduce.x import y` may name a module y
                candidate = f"{base}.{alias.name}"
                found.add(candidate if module_path(candidate) else base)
    return found


def module_path(name: str) -> Path | None:
    base = REPO.joinpath(*name.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


GRAPH = {module_name(p): {m for m in imports_of(p) if module_path(m)} for p in PACKAGE.rglob("*.py")}


def test_the_graph_was_read():
    assert len(GRAPH) > 50
    assert "livereduce.session" in GRAPH["livereduce.daemon"]


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m.startswith("livereduce.workspace")))
def test_workspace_imports_nothing_above_itself(module):
    upward = {m for m in GRAPH[module] if not m.startswith("livereduce.workspace")}
    assert not upward, f"{module} imports {sorted(upward)}"


DOWNSTREAM = ("livereduce.session", "livereduce.daemon", "livereduce.cli", "livereduce.check")


@pytest.mark.parametrize(
    "module",
    sorted(
        m
        for m in GRAPH
        if m.startswith(("livereduce.listeners", "livereduce.servers", "livereduce.workspace"))
    ),
)
def test_sources_and_the_model_do_not_import_the_session_or_the_daemon(module):
    assert not GRAPH[module] & set(DOWNSTREAM), f"{module} imports {sorted(GRAPH[module] & set(DOWNSTREAM))}"


def allowed_cycle(cycle: list[str]) -> bool:
    """The algorithm registry's self-registration: the registry imports the families, which import it."""
    return "livereduce.algorithms.registry" in cycle and all(
        m.startswith("livereduce.algorithms") for m in cycle
    )


def cycles() -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH.get(v, ()):
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
            if len(component) > 1 or v in GRAPH.get(v, ()):
                found.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_but_the_registries():
    bad = [c for c in cycles() if not allowed_cycle(c)]
    assert not bad, "import cycles: " + "; ".join(" ↔ ".join(c) for c in bad)
