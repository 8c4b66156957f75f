"""The `tributary` console script ends without the interpreter's teardown, and loses nothing by it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = """
import sys
import pipelines.cli as cli

class Teardown:
    def __del__(self):
        sys.__stderr__.write("torn down\\n")

kept = Teardown()  # a module global: collected only by the interpreter's teardown
sys.argv = ["tributary", *sys.argv[1:]]
cli.console()
"""


def _tributary(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


def test_the_console_script_skips_teardown_and_keeps_its_exit_code() -> None:
    done = _tributary("nosuch")
    assert done.returncode == 2
    assert done.stderr.startswith("error: No such command 'nosuch'.")
    assert "torn down" not in done.stderr


def test_full_exit_keeps_the_teardown() -> None:
    done = _tributary("nosuch", TRIBUTARY_FULL_EXIT="1")
    assert done.returncode == 2 and "torn down" in done.stderr


def test_a_piped_output_is_flushed_whole() -> None:
    done = _tributary("--help")
    assert done.returncode == 0
    full = _tributary("--help", TRIBUTARY_FULL_EXIT="1")
    assert done.stdout == full.stdout and done.stdout.rstrip().endswith(full.stdout.rstrip().splitlines()[-1])
    assert len(done.stdout.splitlines()) > 10


def test_the_function_main_is_not_armed(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.core import fast_exit

    from pipelines.cli import main

    monkeypatch.setattr(fast_exit, "_code", [])
    main(["--help"], standalone_mode=False)
    assert fast_exit._code == []
