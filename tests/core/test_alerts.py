"""The run-failure sensor posts a failed run to a real webhook on loopback, and logs when none is set."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from dagster import (DagsterEventType, DagsterInstance, Definitions, asset, build_run_status_sensor_context,
                     materialize)

from sensors.alerts import WEBHOOK, run_failure_alert


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    """A small HTTP server on loopback that keeps every JSON body posted to it."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server name
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/tributary", received
    server.shutdown()
    server.server_close()


@asset(key=["raw", "broken"])
def broken() -> None:
    raise ValueError("column dep_delay is not a number")


def _failure_context(instance: DagsterInstance):
    result = materialize([broken], instance=instance, raise_on_error=False)
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    [record] = instance.all_logs(result.run_id, of_type=DagsterEventType.RUN_FAILURE)
    return build_run_status_sensor_context(sensor_name="run_failure_alert", dagster_instance=instance,
                                           dagster_run=run, dagster_event=record.get_dagster_event(),
                                           ).for_run_failure(), result.run_id


def test_a_failed_run_is_posted_to_the_webhook(webhook, monkeypatch: pytest.MonkeyPatch) -> None:
    url, received = webhook
    monkeypatch.setenv(WEBHOOK, url)
    with DagsterInstance.ephemeral() as instance:
        context, run_id = _failure_context(instance)
        run_failure_alert(context)
    [body] = received
    assert body["run_id"] == run_id and body["job"] == "__ephemeral_asset_job__"
    assert body["reason"] == "step raw__broken: ValueError: column dep_delay is not a number"
    assert body["text"].startswith(f"Tributary run {run_id[:8]} of __ephemeral_asset_job__ failed: step raw__broken")


def test_without_a_webhook_the_sensor_says_no_one_was_told(webhook, capfd: pytest.CaptureFixture) -> None:
    _, received = webhook
    with DagsterInstance.ephemeral() as instance:
        context, run_id = _failure_context(instance)
        capfd.readouterr()
        run_failure_alert(context)
    assert received == []
    logged = capfd.readouterr().err  # the sensor's log: Dagster's handler writes to stderr
    assert "WARNING" in logged and f"run {run_id} of __ephemeral_asset_job__ failed" in logged
    assert f"{WEBHOOK} is not set, so no one was told" in logged


def test_a_webhook_that_refuses_fails_the_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    from tests.ui.conftest import _free_port

    monkeypatch.setenv(WEBHOOK, f"http://127.0.0.1:{_free_port()}/nothing-listens")
    with DagsterInstance.ephemeral() as instance:
        context, _ = _failure_context(instance)
        with pytest.raises(httpx.ConnectError):
            run_failure_alert(context)


def test_the_sensor_is_in_the_definitions() -> None:
    from pipelines.definitions import defs

    assert isinstance(defs, Definitions) and defs.resolve_sensor_def("run_failure_alert")
