"""deploy/ray end to end: a week of the main job fanned out as Ray jobs on a local head equals the one-process run.

Needs the `scale` extra (ray, dagster-ray); skipped without it. The demo stops the head's whole session itself;
the test also checks that nothing of it is left running.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("dagster_ray", reason="the `scale` extra (pip install '.[scale]') is not installed")

ROOT = Path(__file__).resolve().parents[2]


def ray_processes_under(prefix: str) -> list[int]:
    """Processes whose command line names one of the demo's temp folders (its head, raylet, workers)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if prefix.encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


@pytest.mark.e2e
def test_a_week_through_ray_equals_one_process(seeded_sqlite: str) -> None:
    env = {**os.environ, "TRIBUTARY_SOURCE_DSN": seeded_sqlite}
    done = subprocess.run([sys.executable, str(ROOT / "deploy/ray/demo.py"), "--from", "2013-01-01", "--to",
                           "2013-01-07", "--days-per-run", "4", "--max-runs", "2", "--timeout", "600"],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=1500, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    jobs = re.findall(r"= ray job (dagster-run-[0-9a-f-]{36})", done.stdout)
    assert len(jobs) == 3, done.stdout  # two runs of days (4 + 3) and one of the month
    assert "the warehouse through Ray equals the one-process run's" in done.stdout
    assert "ray head stopped" in done.stdout
    workdir = re.search(r"^working in (\S+)$", done.stdout, re.MULTILINE)
    assert workdir and ray_processes_under(workdir.group(1)) == [], "the head left processes behind"
    assert not Path(workdir.group(1)).exists()
