"""What `tributary run` and `tributary seed` do with bad input and with each other: the real command in its own
process, against real files, a real Dagster instance and real Delta tables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TRIBUTARY = Path(sys.executable).with_name("tributary")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The test's own homes (as tests/conftest.py sets them) passed on to a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIBUTARY_", "DAGSTER_", "RUST_"))}
    env.update(TRIBUTARY_HOME=str(tmp_path / "home"), DAGSTER_HOME=os.environ["DAGSTER_HOME"])
    env.update(extra)
    return env


def _tributary(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TRIBUTARY), *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def garbage_file(tmp_path: Path) -> Path:
    path = tmp_path / "g.db"
    path.write_bytes(os.urandom(5000))
    return path


@pytest.mark.parametrize("command", ["run", "seed"])
def test_a_file_that_is_not_a_database_is_one_line(command: str, garbage_file: Path, tmp_path: Path) -> None:
    if command == "run":
        args = ["run", "--from", "2013-03-01", "--to", "2013-03-01"]
        env = _env(tmp_path, TRIBUTARY_SOURCE_DSN=str(garbage_file))
    else:
        args, env = ["seed", "--dsn", str(garbage_file)], _env(tmp_path)
    result = _tributary(*args, env=env)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: source file {garbage_file} is not a SQLite database")
    assert "tributary seed" in line
    assert garbage_file.stat().st_size == 5000  # seed left the stray file as it was
