"""`tributary stream land` without --follow lands what had arrived at launch and exits, whatever a producer does."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from pipelines.core import delta
from pipelines.core.lake import Lake

TRIBUTARY = [sys.executable, "-m", "pipelines.cli"]


def _spooled(home: Path) -> int:
    return sum(p.stat().st_size for p in (home / "stream").rglob("*.log")) if (home / "stream").exists() else 0


def test_land_stops_at_the_tip_of_launch_while_a_producer_keeps_writing(tmp_path: Path) -> None:
    home = Path(os.environ["TRIBUTARY_HOME"])
    producer = subprocess.Popen([*TRIBUTARY, "stream", "produce", "--rate", "300", "--limit", "26000", "--seed", "3"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while _spooled(home) < 20_000 and time.monotonic() < deadline:  # some records first
            assert producer.poll() is None, "the producer stopped early"
            time.sleep(0.2)
        landed = subprocess.run([*TRIBUTARY, "stream", "land", "--max-records", "200", "--no-analytics"],
                                capture_output=True, text=True, timeout=600)
        assert landed.returncode == 0, landed.stderr
        assert producer.poll() is None, "land must end while the producer still writes"
        assert "batch 1:" in landed.stdout
    finally:
        producer.kill()
        producer.wait()
    rows = delta.scan(Lake(str(home / "lake")), "standardized/telemetry").collect().height
    assert 0 < rows < 26_000


def test_land_says_so_when_there_is_nothing_to_land(tmp_path: Path) -> None:
    produced = subprocess.run([*TRIBUTARY, "stream", "produce", "--speedup", "0", "--limit", "300"],
                              capture_output=True, text=True, timeout=300)
    assert produced.returncode == 0, produced.stderr
    first = subprocess.run([*TRIBUTARY, "stream", "land", "--no-analytics"], capture_output=True, text=True,
                           timeout=300)
    assert first.returncode == 0 and "batch 1:" in first.stdout, first.stderr
    again = subprocess.run([*TRIBUTARY, "stream", "land", "--no-analytics"], capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "nothing to land: no record arrived after the last landed batch"
