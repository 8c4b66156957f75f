"""The local Dagster instance that `tributary run` writes and `make ui` opens (.tributary/dagster by default)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines import cli
from pipelines.core.instance import LOCAL_INSTANCE_YAML


@pytest.fixture
def fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "local_dagster"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def test_the_local_instance_watches_its_runs(fresh_home: Path) -> None:
    from dagster import DagsterInstance, DefaultRunLauncher
    from dagster._core.instance.config import dagster_instance_config

    assert cli.ensure_dagster_home() == str(fresh_home)
    config, custom_class = dagster_instance_config(str(fresh_home))  # Dagster's own schema check
    assert custom_class is None and config["run_monitoring"]["enabled"] is True
    with DagsterInstance.get() as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_start_timeout_seconds == 180
        assert instance.run_monitoring_cancel_timeout_seconds == 180
        assert instance.run_monitoring_poll_interval_seconds == 30
        # The default launcher cannot resume a run whose worker died: resuming must stay off, or the daemon
        # would try and fail on every dead run.
        assert isinstance(instance.run_launcher, DefaultRunLauncher)
        assert not instance.run_launcher.supports_resume_run
        assert instance.run_monitoring_max_resume_run_attempts == 0
        # Not 0 would let the daemon mark a long but live `tributary run` failed; it cannot stop that process.
        assert instance.run_monitoring_max_runtime_seconds == 0
        assert not instance.telemetry_enabled


def test_an_earlier_default_is_upgraded_and_an_edited_config_is_kept(fresh_home: Path) -> None:
    fresh_home.mkdir()
    config = fresh_home / "dagster.yaml"
    config.write_text("telemetry:\n  enabled: false\n")  # what `tributary run` wrote before run monitoring
    cli.ensure_dagster_home()
    assert config.read_text() == LOCAL_INSTANCE_YAML

    edited = "telemetry:\n  enabled: false\nrun_monitoring:\n  enabled: false\n"
    config.write_text(edited)
    cli.ensure_dagster_home()
    assert config.read_text() == edited
