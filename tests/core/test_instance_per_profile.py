"""Each profile has its own Dagster instance (the local UI never shows S3 runs); an explicit DAGSTER_HOME wins."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pipelines import cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("DAGSTER_HOME")
    monkeypatch.setenv("TRIBUTARY_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.mark.parametrize("profile, folder", [("local", "dagster"), ("localstack", "dagster-localstack"),
                                             ("aws", "dagster-aws")])
def test_each_profile_has_its_own_instance_folder(no_dagster_home: Path, monkeypatch: pytest.MonkeyPatch,
                                                  profile: str, folder: str) -> None:
    monkeypatch.setenv("TRIBUTARY_PROFILE", profile)
    path = cli.ensure_dagster_home()
    assert path == str((no_dagster_home / folder).resolve())
    assert Path(path, "dagster.yaml").is_file() and os.environ["DAGSTER_HOME"] == path


def test_an_explicit_dagster_home_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUTARY_PROFILE", "localstack")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "mine"))
    assert cli.ensure_dagster_home() == str(tmp_path / "mine")


def _make_ui(tmp_path: Path, env: dict[str, str]) -> str:
    """`make ui` with a stand-in `dagster` that prints the DAGSTER_HOME it was started with."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec {ROOT / ".venv/bin/python"} "$@"\n')
    (bin_dir / "dagster").write_text('#!/bin/sh\necho "dagster $1 DAGSTER_HOME=$DAGSTER_HOME"\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    clean = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "MAKEFLAGS", "MFLAGS")}
    # -o: never rebuild the venv stamp from here.
    done = subprocess.run(["make", "-s", "-o", ".venv/.installed", "ui", f"BIN={bin_dir}"], cwd=ROOT,
                          env={**clean, **env}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_ui_opens_the_profiles_instance(tmp_path: Path) -> None:
    home = tmp_path / "home"
    out = _make_ui(tmp_path, {"TRIBUTARY_HOME": str(home), "TRIBUTARY_PROFILE": "localstack"})
    assert f"dagster dev DAGSTER_HOME={(home / 'dagster-localstack').resolve()}" in out
    mine = tmp_path / "explicit"
    out = _make_ui(tmp_path / "again", {"TRIBUTARY_HOME": str(home), "DAGSTER_HOME": str(mine)})
    assert f"dagster dev DAGSTER_HOME={mine}" in out
