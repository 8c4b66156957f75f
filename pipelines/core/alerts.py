"""A failed run, told to people: the message, and its delivery to a webhook (Slack, Teams, or any service that
takes a JSON POST). No Dagster here; `sensors/alerts.py` calls it from a run-failure sensor."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class FailedRun:
    run_id: str
    job: str
    reason: str
    """The first failed step and what it raised, in one line."""
    url: str | None = None
    """Where the run is in the UI, when the webserver's address is known."""
    partition: str | None = None


def message(run: FailedRun) -> dict:
    """The JSON body: `text` for chat webhooks (Slack and Teams both read it), and the fields for any other."""
    where = f" ({run.partition})" if run.partition else ""
    text = f"Tributary run {run.run_id[:8]} of {run.job}{where} failed: {run.reason}"
    if run.url:
        text += f" - {run.url}"
    return {"text": text, "run_id": run.run_id, "job": run.job, "partition": run.partition, "reason": run.reason,
            "url": run.url}


def post(webhook: str, run: FailedRun, *, timeout: float = TIMEOUT_SECONDS) -> int:
    """POST the message; return the HTTP status. A refused or failing webhook raises `httpx.HTTPError`, so the
    sensor's tick shows the failure (a lost alert must not pass silently)."""
    response = httpx.post(webhook, json=message(run), timeout=timeout)
    response.raise_for_status()
    return response.status_code
