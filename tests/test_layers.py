"""The project's modules import one way: no cycle, function-level imports included, and the
engine never reaches the terminal layer."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "game")
MAX_ENGINE_LINES = 700

def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """Every project module that ``path`` imports anywhere in its body (top level, inside
    functions, under TYPE_CHECKING), resolved to the module that holds the name."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def add(target: str) -> None:
        while target and target not in known:  # `from engine.x import y`: y may be a module
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                add(full if full in known else base)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: imports_of(path, name, known) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles (function-level imports count):\n" + "\n".join(
        " <-> ".join(c) for c in found)


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_engine_never_imports_the_terminal_layer() -> None:
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith("engine"):
            assert not {t for t in targets if t.startswith("game")}, name


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or through others."""
    seen: set[str] = set()
    stack = [start]
    while stack:
        for target in graph.get(stack.pop(), ()):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def test_the_puzzle_format_and_validate_sit_below_the_judge() -> None:
    """Types low, checks above them, the judge above, authoring on top: nothing in
    ``engine.puzzle`` or ``engine.validate`` reaches the judge or authoring, and the puzzle
    format imports no part of the model runner itself."""
    graph = import_graph()
    above = ("engine.judge", "engine.authoring")
    for name in graph:
        if name == "engine.validate" or name.startswith("engine.puzzle"):
            reached = {t for t in reachable(graph, name) if t.startswith(above)}
            assert not reached, f"{name} reaches {sorted(reached)}"
        if name.startswith("engine.puzzle"):
            runner = {t for t in graph[name]
                      if t.startswith(("engine.hooks", "engine.interventions", "engine.validate"))}
            assert not runner, f"{name} imports {sorted(runner)}"


def test_no_engine_module_is_over_the_size_limit() -> None:
    big = {name: n for name, path in project_modules().items() if name.startswith("engine")
           and (n := len(path.read_text().splitlines())) > MAX_ENGINE_LINES}
    assert not big, f"engine modules over {MAX_ENGINE_LINES} lines: {big}"
