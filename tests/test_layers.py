"""The three layers import downwards only: classifiers/ <- router/ <- deployments/.

The rule, checked on every ``import`` statement (module level or inside a function, since a
lazy import is still a dependency):

- ``classifiers/`` (pure ML) imports neither ``router`` nor ``deployments``, nor ``ray``, nor
  an HTTP stack (``fastapi``, ``starlette``, ``httpx``, ``uvicorn``);
- ``router/`` (the core) imports neither ``deployments`` nor ``ray``. The CLI may *name*
  a command that lives in ``deployments/`` as a string in ``router.cli.COMMANDS`` (resolved
  with ``importlib`` when the command runs); a string is not an import, and no other string
  naming ``deployments`` is allowed in ``router/``;
- no cycle of imports between modules of ``router/`` or ``classifiers/``: every import
  counts, also one inside a function (a lazy import that goes both ways is still a cycle,
  only hidden from the interpreter); only imports under ``if TYPE_CHECKING:`` do not, since
  they exist for annotations alone;
- every import of a thinkgate module names a module that exists (mypy, with
  ``ignore_missing_imports``, would not notice a stale one after a move).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

INTERNAL = ("router", "classifiers", "deployments", "tests")
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "classifiers": ("router", "deployments", "ray", "fastapi", "starlette", "httpx", "uvicorn"),
    "router": ("deployments", "ray"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the import statements inside ``if TYPE_CHECKING:`` blocks."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def _imports(path: Path, *, typing_only: bool = True) -> list[tuple[int, str]]:
    """(line, imported module) for every import statement in the file; ``typing_only``
    False leaves out the ones under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path).rsplit(".", 1)[0]
    skipped = set() if typing_only else _type_checking_nodes(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
    return found


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _top(module: str) -> str:
    return module.split(".", 1)[0]


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(layer: str) -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in _files(layer)
        for line, module in _imports(path)
        if _top(module) in FORBIDDEN[layer]
    ]
    assert bad == []


def test_router_names_deployments_only_in_the_cli_command_table() -> None:
    named: list[str] = []
    for path in _files("router"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value.startswith("deployments.")
            ):
                named.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value}")
    from router.cli import COMMANDS

    table = {module for module, _ in COMMANDS.values() if module.startswith("deployments.")}
    assert all(entry.startswith("router/cli.py:") for entry in named), named
    assert {entry.split(" ", 1)[1] for entry in named} == table


def _module_level_graph(package: str) -> dict[str, set[str]]:
    modules = {_module_name(path): path for path in _files(package.replace(".", "/"))}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        # every import, including the ones inside functions: a lazy import that goes both
        # ways is still a cycle, only hidden from the interpreter.
        imported = _imports(path, typing_only=False)
        graph[name] = {m for _, m in imported if m in modules and m != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


@pytest.mark.parametrize("package", ["router", "classifiers"])
def test_no_import_cycle_between_modules(package: str) -> None:
    graph = _module_level_graph(package)
    # a package's __init__ re-exports its modules: those edges point downwards by design
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    assert _cycle(graph) is None


def _stale_imports(path: Path, known: set[str]) -> list[str]:
    """Imports of a thinkgate module that does not exist (``from m import x``: m must)."""
    stale = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        else:
            continue
        stale.extend(
            f"{path.relative_to(ROOT)}:{node.lineno} {name}"
            for name in names
            if _top(name) in INTERNAL and name not in known
        )
    return stale


def test_every_internal_import_names_an_existing_module() -> None:
    paths = [p for package in INTERNAL for p in _files(package)]
    known = {_module_name(p) for p in paths}
    assert [entry for path in paths for entry in _stale_imports(path, known)] == []


def test_the_rules_see_a_violation() -> None:
    """The checker itself can fail: a synthetic cycle and an upward import are found."""
    assert _cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    assert _top("ray.serve") in FORBIDDEN["router"]
