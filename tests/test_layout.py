"""The project's layout holds: no import cycles, pure stage code free of Dagster, the generators off the runtime.

Read from the source with `ast` (nothing is imported), counting imports at the top and inside functions alike.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipelines", "assets", "sensors", "resources")

# The entry points: they wire the pure code to Dagster and the resources.
ENTRY_POINTS = {"pipelines.definitions", "pipelines.cli"}
# What the pure code under pipelines/ must not import.
ORCHESTRATION = ("dagster", "dagster_aws", "dagster_postgres", "resources", "assets", "sensors")
SYNTHETIC = "pipelines.synthetic"
# Modules outside pipelines/synthetic that may import the generators, and why.
SYNTHETIC_ALLOWED = {
    # The detector's offline scorer: replays a generated stream with known faults (`tributary stream evaluate`).
    "pipelines.stream.evaluate": "scores the detector against a generated replay whose faults are known",
}


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _imported(name: str, path: Path) -> set[str]:
    """Every dotted name the module imports, anywhere in it; `from a import b` gives both `a` and `a.b`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


MODULES = _modules()
IMPORTS = {name: _imported(name, path) for name, path in MODULES.items()}


def _is_entry_point(name: str) -> bool:
    return name in ENTRY_POINTS or (name.startswith("pipelines.") and name.endswith(".cli"))


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or through others (each group once, sorted)."""
    reach = {node: _reachable(graph, node) for node in graph}
    groups = {tuple(sorted({node} | {other for other in reach[node] if node in reach[other]}))
              for node in graph if node in reach[node]}
    return sorted(list(group) for group in groups)


def test_the_modules_are_found() -> None:
    assert {"pipelines.definitions", "pipelines.cli", "assets.partitions", "pipelines.synthetic"} <= set(MODULES)


def test_no_import_cycles() -> None:
    graph = {name: {i for i in imported if i in MODULES and i != name} for name, imported in IMPORTS.items()}
    cycles = _cycles(graph)
    described = [" -> ".join(c) + ": " + "; ".join(f"{m} imports {sorted(graph[m] & set(c))}" for m in c)
                 for c in cycles]
    assert not cycles, described


def test_a_cycle_is_found() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_pipelines_holds_no_dagster_and_no_resources() -> None:
    offenders = {
        name: sorted(i for i in imported if i.split(".")[0] in ORCHESTRATION)
        for name, imported in IMPORTS.items()
        if name.startswith("pipelines") and not _is_entry_point(name)
    }
    assert not {n: i for n, i in offenders.items() if i}


def test_the_runtime_does_not_import_the_generators() -> None:
    offenders = {
        name: sorted(i for i in imported if i == SYNTHETIC or i.startswith(SYNTHETIC + "."))
        for name, imported in IMPORTS.items()
        if not (name == SYNTHETIC or name.startswith(SYNTHETIC + ".")) and not _is_entry_point(name)
        and name not in SYNTHETIC_ALLOWED
    }
    assert not {n: i for n, i in offenders.items() if i}


@pytest.mark.parametrize("name", sorted(SYNTHETIC_ALLOWED))
def test_the_allowed_generator_users_exist(name: str) -> None:
    assert name in MODULES
