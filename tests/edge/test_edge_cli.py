"""`tributary edge` commands: one clear error line, and the status of a rollout at a glance."""

from __future__ import annotations

import datetime as dt

import polars as pl
from click.testing import CliRunner

from pipelines.edge import status as device_status
from pipelines.edge.cli import edge
from pipelines.core.lake import Lake


def test_keygen_refuses_to_overwrite_with_one_line(tmp_path):
    runner = CliRunner()
    assert runner.invoke(edge, ["keygen", "--key-dir", str(tmp_path / "k")]).exit_code == 0
    result = runner.invoke(edge, ["keygen", "--key-dir", str(tmp_path / "k")])
    assert result.exit_code == 1
    assert result.output.startswith("error: keys already exist") and len(result.output.strip().splitlines()) == 1


def test_status_shows_counts_versions_and_progress(tmp_path, monkeypatch):
    monkeypatch.setenv("TRIBUTARY_LAKE_ROOT", str(tmp_path / "lake"))
    lake = Lake(str(tmp_path / "lake"))
    now = dt.datetime.now(dt.UTC)
    rows = [{"device_id": f"d{i}", "job_id": "release-2", "status": s, "version": v, "step": "", "reason": "",
             "rollout_status": "IN_PROGRESS", "updated_at": now}
            for i, (s, v) in enumerate([("SUCCEEDED", "2"), ("SUCCEEDED", "2"), ("IN_PROGRESS", "1"), ("QUEUED", "")])]
    device_status.write(lake, pl.DataFrame(rows, schema=device_status.SCHEMA))
    device_status.write(lake, pl.DataFrame(rows[:1], schema=device_status.SCHEMA))  # MERGE: no duplicate
    assert device_status.read(lake).height == 4
    result = CliRunner().invoke(edge, ["status"])
    assert result.exit_code == 0, result.output
    assert "2/4 (50%)" in result.output
    assert "SUCCEEDED 2" in result.output and "v2 2" in result.output and "v1 1" in result.output


def test_wrong_paths_are_one_error_line_not_a_usage_error(tmp_path):
    """click.Path(exists=True) said "Error: Invalid value ..." and exit 2; the CLI says "error:" and exit 1."""
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    state = str(tmp_path / "state")
    for args, words in [
        (["serve-repo", "--root", str(tmp_path / "nowhere")], "--root"),
        (["serve-repo", "--root", str(a_file)], "not a directory"),
        (["agent", "--device-id", "d1", "--state-dir", state, "--root-json", str(tmp_path / "none.json")],
         "--root-json"),
        (["agent", "--device-id", "d1", "--state-dir", state, "--root-json", str(tmp_path)], "not a file"),
        (["agent", "--device-id", "d1", "--state-dir", str(a_file)], "--state-dir"),
        (["rollout", "--config", str(tmp_path / "none.json")], "--config"),
        (["rollout", "--config", str(tmp_path)], "not a file"),
        (["keygen", "--key-dir", str(a_file)], "--key-dir"),
    ]:
        result = CliRunner().invoke(edge, args)
        assert result.exit_code == 1, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert result.stderr.startswith("error: ") and len(lines) == 1, (args, result.stderr)
        assert words in result.stderr, (args, result.stderr)
