"""`tributary model ...` and `tributary search` say what they wait for, and when it is done, on a terminal; piped
(scripts, logs, tests) they print only their results."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

TRIBUTARY = [sys.executable, "-m", "pipelines.cli"]


def on_terminal(*args: str, timeout: float = 600) -> tuple[int, str, str]:
    """Run the command with its stderr on a pseudo-terminal (as in a shell); (exit code, stdout, stderr)."""
    master, slave = os.openpty()
    process = subprocess.Popen([*TRIBUTARY, *args], stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the command exited and closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    stdout = process.stdout.read().decode()
    process.stdout.close()
    code = process.wait(timeout=timeout)
    return code, stdout, b"".join(chunks).decode().replace("\r\n", "\n")


def test_model_list_says_what_it_waits_for_on_a_terminal_only() -> None:
    code, stdout, stderr = on_terminal("model", "list")
    assert code == 0, stderr
    assert stdout.startswith("no version of delay_model is registered")
    lines = [line for line in stderr.splitlines() if line.startswith("model: ")]  # MLflow logs its store's creation
    assert lines[0] == "model: reading the versions in the MLflow registry..."
    assert lines[1].startswith(lines[0].removesuffix("...") + ": done in ") and lines[1].endswith("s")

    piped = subprocess.run([*TRIBUTARY, "model", "list"], capture_output=True, text=True, timeout=600)
    assert piped.returncode == 0 and piped.stdout == stdout and "model: " not in piped.stderr, piped.stderr


@pytest.mark.e2e
def test_search_says_what_it_waits_for_on_a_terminal_only() -> None:
    produced = subprocess.run([*TRIBUTARY, "docs", "produce", "--records", "4", "--reports", "1", "--scans", "0",
                               "--emails", "0"], capture_output=True, text=True, timeout=600)
    assert produced.returncode == 0, produced.stderr
    landed = subprocess.run([*TRIBUTARY, "run", "--select", "group:documents"], capture_output=True, text=True,
                            timeout=1200)
    assert landed.returncode == 0, landed.stderr[-2000:]

    code, stdout, stderr = on_terminal("search", "fluid leak", "--k", "1")
    assert code == 0, stderr
    assert stdout.startswith("1. ")
    steps = [line for line in stderr.splitlines() if line.startswith("search: ")]
    assert [s.split(" ")[1] for s in steps] == ["opening", "opening", "loading", "loading", "embedding", "embedding"]
    assert "all-MiniLM-L6-v2" in steps[2] and " done in " in steps[3]

    piped = subprocess.run([*TRIBUTARY, "search", "fluid leak", "--k", "1"], capture_output=True, text=True,
                           timeout=600)
    assert piped.returncode == 0 and piped.stdout == stdout and "search: " not in piped.stderr


def test_every_reports_the_first_and_last_pieces_and_one_per_interval_between() -> None:
    from pipelines.core.progress import Every

    now = [0.0]
    every = Every(5.0, clock=lambda: now[0])
    due = []
    for n in range(1, 13):  # a piece every 2 s
        due.append(every.due(last=n == 12))
        now[0] += 2.0
    assert [n for n, d in enumerate(due, start=1) if d] == [1, 4, 7, 10, 12]
