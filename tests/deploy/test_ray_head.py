"""deploy/ray/demo.py: a head that exits while it starts is started again, and each exit says why.

The real head is tests/deploy/test_ray.py; here a stand-in `ray` that exits at once makes the exit happen on
demand, which a live head does only under load."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.ray_scripts import load


def _demo():
    return load("demo")


def test_a_head_that_exits_is_started_again_and_its_session_logs_say_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    demo = _demo()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # A stand-in for `ray start`: writes a session log as Ray does, prints its last line, exits 1.
    (bin_dir / "ray").write_text(
        "#!/bin/sh\n"
        'temp=$(echo "$@" | sed "s/.*--temp-dir \\([^ ]*\\).*/\\1/")\n'
        'mkdir -p "$temp/session_1/logs"\n'
        'echo "INFO all good" > "$temp/session_1/logs/raylet.out"\n'
        'echo "ERROR dashboard module MetricsHead timed out" > "$temp/session_1/logs/dashboard.log"\n'
        'echo "Loaded 9 subprocess modules"\n'
        "exit 1\n")
    (bin_dir / "ray").chmod(0o755)
    monkeypatch.setattr(demo, "BIN", bin_dir)
    with pytest.raises(demo.HeadExited, match=r"exited \(1\): Loaded 9 subprocess modules; dashboard.log: ERROR "
                                              r"dashboard module MetricsHead timed out$"):
        demo.start_head(tmp_path / "work", {}, timeout=60, attempts=3)
    printed = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in printed] == ["attempt 1 of 3", "attempt 2 of 3", "attempt 3 of 3"]
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["ray-1", "ray-2", "ray-3"]  # new each time
