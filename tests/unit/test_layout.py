"""The core's import graph: no module imports another that (indirectly) imports it back,
and only the facade's composers and the integrations on top import the facade.

Every import counts: module level, under TYPE_CHECKING and inside functions, relative
ones resolved against their package; importing the package root counts as importing
the facade, which it re-exports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import durably

PACKAGE = "durably"
ROOT = Path(durably.__file__).parent
FACADE = f"{PACKAGE}.app"
#: May import the facade: the package root re-exports it, the integrations build on it.
FACADE_USERS = {
    PACKAGE,
    FACADE,
    f"{PACKAGE}.browser.bridge",
    f"{PACKAGE}.cli",
    f"{PACKAGE}.serve",
    f"{PACKAGE}.worker_process",
    f"{PACKAGE}.__main__",
}


def module_name(path: Path) -> str:
    parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `name` imports anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            # `from package import submodule` imports the submodule itself.
            targets = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            # `import durably.store.sqlite` names its deepest module of ours.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that ends where it starts, or None."""
    done: set[str] = set()
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in stack:
            return [*stack[stack.index(node) :], node]
        if node in done:
            return None
        stack.append(node)
        for target in sorted(graph[node]):
            cycle = visit(target)
            if cycle:
                return cycle
        stack.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        cycle = visit(node)
        if cycle:
            return cycle
    return None


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = import_graph()
    assert FACADE in graph[PACKAGE]  # relative, module level
    assert f"{PACKAGE}.jobs" in graph[f"{PACKAGE}.execution"]  # under TYPE_CHECKING
    assert f"{PACKAGE}.serve" in graph[f"{PACKAGE}.cli"]  # absolute, inside a function
    assert PACKAGE in graph[f"{PACKAGE}.browser.bridge"]  # `from .. import`


def test_find_cycle_reports_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_only_the_composers_and_integrations_import_the_facade() -> None:
    offenders = {
        name: sorted(targets & {FACADE, PACKAGE})
        for name, targets in import_graph().items()
        if name not in FACADE_USERS and targets & {FACADE, PACKAGE}
    }
    assert offenders == {}
