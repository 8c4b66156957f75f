"""The documents group from the command line: produce, land with `tributary run --select`, search."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def tributary(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True, timeout=900)


def test_a_group_outside_the_main_job_runs_as_its_own_run_and_search_finds_it() -> None:
    assert tributary("docs", "produce", "--records", "6", "--reports", "2", "--scans", "1", "--emails", "1").returncode == 0
    before = tributary("search", "fluid leak")
    assert before.returncode == 1
    assert "`tributary run --select 'group:documents'`" in before.stderr  # the hint names the exact command
    ran = tributary("run", "--select", "group:documents")
    assert ran.returncode == 0, ran.stderr[-2000:]
    # raw/documents, the three standardized tables and warehouse/document_index (the group's join to dim_plane)
    assert "5 asset(s) outside the main job, as one run" in ran.stdout and "succeeded" in ran.stdout
    found = tributary("search", "fluid leak")
    assert found.returncode == 0 and found.stdout.startswith("1. "), found.stderr
    mixed = tributary("run", "--select", "group:documents or group:extract")
    assert mixed.returncode == 1 and "mixes the main job's assets with others" in mixed.stderr
