"""The environment: every TRIBUTARY_* variable is registered once, read only under resources/, and documented."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from resources import profiles

ROOT = Path(__file__).resolve().parents[1]
APPLICATION = ("assets", "sensors", "pipelines", "resources")
"""The application's source; tests/ and benchmarks/ are the harness (their own variables are registered too)."""
NAME = re.compile(r"TRIBUTARY_[A-Z0-9_]*[A-Z0-9]")
READ = re.compile(r"(?:environ\.get|environ\[|getenv|EnvVar(?:\.int)?)\(?\s*[\"'](TRIBUTARY_[A-Z0-9_]+)")
"""A variable read straight from the environment: os.environ.get / os.environ[...] / os.getenv / EnvVar."""


def _sources(*folders: str) -> list[Path]:
    return [p for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))]


def _string_names(path: Path) -> set[str]:
    """Every TRIBUTARY_* name in a string literal of the module (docstrings and messages included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.update(NAME.findall(node.value))
    return names


def test_every_variable_the_code_names_is_registered() -> None:
    named = {name for path in _sources(*APPLICATION, "tests", "benchmarks") for name in _string_names(path)}
    for script in ("deploy/serving/serve", "deploy/docker-compose.yaml", "deploy/entrypoint.sh", "Makefile"):
        if (ROOT / script).exists():
            named |= set(NAME.findall((ROOT / script).read_text()))
    prefixes = {n for n in named if any(r.startswith(n + "_") for r in profiles.REGISTRY)}  # "TRIBUTARY_EDGE_*"
    assert named - prefixes - set(profiles.REGISTRY) == set()


def _looked_up(path: Path) -> set[str]:
    """Names passed alone to a call or a subscript (`os.environ.get(NAME)`, `env(NAME)`, `environ[NAME]`, a
    helper of the module's own): the ways a variable is read, whatever the reader is called."""
    found = set(READ.findall(path.read_text()))
    for node in ast.walk(ast.parse(path.read_text())):
        args = node.args if isinstance(node, ast.Call) else [node.slice] if isinstance(node, ast.Subscript) else []
        found.update(a.value for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str)
                     and NAME.fullmatch(a.value))
    return found


def test_no_variable_is_read_outside_resources() -> None:
    outside = {f"{path.relative_to(ROOT)}: {name}" for path in _sources("assets", "sensors", "pipelines")
               for name in _looked_up(path)}
    assert outside == set()
    inside = {name for path in _sources("resources") for name in READ.findall(path.read_text())}
    assert inside <= {"TRIBUTARY_PROFILE"} | set(profiles.REGISTRY)


def test_no_pure_module_imports_resources() -> None:
    """pipelines/ is pure code; only its command-line entry points and the code location build resources."""
    composition = {"cli.py", "definitions.py"}
    importing = [str(p.relative_to(ROOT)) for p in _sources("pipelines") if p.name not in composition
                 and re.search(r"^\s*(from|import) resources\b", p.read_text(), re.MULTILINE)]
    assert importing == []


def test_profiles_is_a_leaf() -> None:
    tree = ast.parse((ROOT / "resources" / "profiles.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not {m for m in imported if m.split(".")[0] in APPLICATION}


def test_the_readme_table_is_the_registry() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- variables:begin -->\n", 1)[1].split("\n<!-- variables:end -->", 1)[0]
    assert block == profiles.markdown_table()
    listed = re.findall(r"^\| `(TRIBUTARY_[A-Z0-9_]+)` \|", block, re.MULTILINE)
    assert sorted(listed) == sorted(profiles.REGISTRY) and len(listed) == len(set(listed))


def test_an_unregistered_variable_is_refused() -> None:
    unregistered = "TRIBUTARY_" + "NOT_A_SETTING"  # split, or the scan above would find it
    with pytest.raises(KeyError, match=f"{unregistered} is not in resources.profiles.VARIABLES"):
        profiles.setting(unregistered)


def test_a_bad_number_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUTARY_MAX_CONCURRENT", "0")
    with pytest.raises(ValueError, match="TRIBUTARY_MAX_CONCURRENT must be positive"):
        profiles.max_concurrent()
    monkeypatch.delenv("TRIBUTARY_MAX_CONCURRENT")
    assert profiles.max_concurrent() == 2
