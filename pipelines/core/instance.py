"""The local Dagster instance's home: the folder and its dagster.yaml, written when missing.

Pure file work (no Dagster import); `tributary run` and `tributary model retrain` pass the project's home.
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
"""
_EARLIER_DEFAULT = "telemetry:\n  enabled: false\n"


def local_instance_home(home: str | Path) -> str:
    """DAGSTER_HOME (set, or `<home>/dagster`), created with its dagster.yaml, and exported to the process."""
    path = os.environ.get("DAGSTER_HOME") or str(Path(home, "dagster").resolve())
    Path(path).mkdir(parents=True, exist_ok=True)
    config = Path(path, "dagster.yaml")
    if not config.exists() or config.read_text() == _EARLIER_DEFAULT:
        config.write_text(LOCAL_INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = path
    return path
