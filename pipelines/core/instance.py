"""The local Dagster instance's home: the folder and its dagster.yaml, written when missing.

One instance per profile: `<home>/dagster` for `local`, `<home>/dagster-<profile>` for the others, so the local
UI never shows S3 materializations, nor flags local assets stale because of a run against S3. An explicit
DAGSTER_HOME (tests, a production image, `DAGSTER_HOME=... make ui`) always wins.

Pure file work (no Dagster import); `tributary run`, `tributary model retrain`, `make ui` and the commands that
record what they did pass the project's home and the profile.
"""

from __future__ import annotations

import os
from pathlib import Path

LOCAL_INSTANCE_YAML = """\
# The local Dagster instance of `tributary run` and `make ui`. Written by `tributary run` when missing (or when
# it still holds the bare default of earlier versions); your edits are kept.
telemetry:
  enabled: false
# The daemon of `make ui` watches runs: a run stuck starting, or not stopping after a cancel, for 3 minutes is
# marked failed, so it can be re-executed. A run launched from the UI whose worker dies is marked failed by
# the code server; the default run launcher cannot resume it (max_resume_run_attempts: 0). A `tributary run`
# killed outright is marked failed by the next `tributary run` (its process is gone). No max_runtime_seconds:
# the daemon cannot stop a `tributary run` process, it would only mark a live run failed.
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  max_resume_run_attempts: 0
  poll_interval_seconds: 30
# A range run records one materialization per partition: this event log (the default SQLite one, same files)
# writes a step's events in one transaction, as dagster-postgres does, instead of two commits each.
event_log_storage:
  module: resources.event_log
  class: BatchedSqliteEventLogStorage
  config: {}
# The same SQLite files with no disk flush per statement (resources/sqlite_storage.py says why and what it costs).
run_storage:
  module: resources.sqlite_storage
  class: FastSqliteRunStorage
  config: {}
# Freshness policies (assets/policy.py: the warehouse, the model, the endpoint) are evaluated only when on.
freshness:
  enabled: true
"""
_EARLIER_DEFAULTS = ("telemetry:\n  enabled: false\n", LOCAL_INSTANCE_YAML.split("# A range run records")[0],
                     LOCAL_INSTANCE_YAML.split("# The same SQLite files")[0],
                     LOCAL_INSTANCE_YAML.split("# The same SQLite files")[0]
                     + LOCAL_INSTANCE_YAML.split("  config: {}\n", 2)[2])
"""What earlier versions wrote, replaced by the current file; a file edited by hand is kept."""


def instance_folder(home: str | Path, profile: str) -> str:
    """DAGSTER_HOME when set; else the profile's own folder under the home (the one place this is decided)."""
    explicit = os.environ.get("DAGSTER_HOME", "").strip()
    if explicit:
        return explicit
    return str(Path(home, "dagster" if profile == "local" else f"dagster-{profile}").resolve())


def local_instance_home(home: str | Path, profile: str) -> str:
    """The profile's instance folder (see `instance_folder`), created with its dagster.yaml, and exported to the
    process as DAGSTER_HOME."""
    path = instance_folder(home, profile)
    Path(path).mkdir(parents=True, exist_ok=True)
    config = Path(path, "dagster.yaml")
    if not config.exists() or config.read_text() in _EARLIER_DEFAULTS:
        config.write_text(LOCAL_INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = path
    return path
