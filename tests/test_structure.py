"""The architecture the docs describe, checked on the source: layers, no import circles, short functions.

docs/architecture.md draws CLI -> API -> core. These tests read every module's syntax tree (nothing is
imported), so they hold for code paths no other test runs.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "swincli"
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()}


def _target(name: str) -> str | None:
    """The module an import statement names: the longest known prefix (``from a.b import c`` may name a.b.c)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(tree: ast.AST) -> list[tuple[str, int]]:
    """(module, line) for every swincli import anywhere in the file, lazy ones inside functions included."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(f"{node.module}.{a.name}", node.lineno) for a in node.names]
    return [(t, line) for name, line in found if name.startswith("swincli") and (t := _target(name))]


def _graph() -> dict[str, set[str]]:
    return {m: {t for t, _ in _imports(TREES[m]) if t != m} for m in MODULES}


def test_cli_reaches_the_core_only_through_the_api():
    allowed = ("swincli.api", "swincli.cli")
    wrong = [f"{MODULES[m].relative_to(PACKAGE.parent)}:{line} imports {t}"
             for m in MODULES if m.startswith("swincli.cli") for t, line in _imports(TREES[m])
             if t != "swincli" and not t.startswith(allowed)]  # fmt: skip
    assert not wrong, "\n".join(wrong)


def test_the_core_never_imports_the_cli():
    wrong = [f"{m} imports {t}" for m in MODULES if not m.startswith(("swincli.cli", "swincli.__main__"))
             for t, _ in _imports(TREES[m]) if t.startswith("swincli.cli")]  # fmt: skip
    assert not wrong, "\n".join(wrong)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), or a module importing itself."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_cycle():
    cycles = _cycles(_graph())
    assert not cycles, "import circles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_function_is_longer_than_80_lines(module):
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
            for node in ast.walk(TREES[module]) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]  # fmt: skip
    assert not long, f"{module}: " + ", ".join(long)


def test_every_package_says_what_it_holds():
    missing = [m for m, path in MODULES.items() if path.name == "__init__.py" and not ast.get_docstring(TREES[m])]
    assert not missing, missing
