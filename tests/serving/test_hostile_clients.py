"""Requests that cost the server more than they should: too many rows, a spool that would fill the disk
(issue 21.1). One real `tributary serve` with one worker (so every connection meets the same event loop) and
a small spool cap."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipelines.serving.invocations import CLOSED_SUFFIX, OPEN_SUFFIX
from pipelines.serving.parsing import MAX_ROWS
from tests.serving.conftest import Models, Server, spec_features, start_server, stop_server

SPOOL_MAX_MB = 0.25
LIMITS = {"TRIBUTARY_SERVE_SPOOL_MAX_MB": str(SPOOL_MAX_MB)}


@pytest.fixture(scope="module")
def guarded(serving_models: Models, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("guarded"), serving_models.config(), workers=1, env=LIMITS)
    yield running
    stop_server(running)


def _csv_rows(models: Models, n: int) -> bytes:
    frame = models.rows.select(spec_features(models, models.champion))
    buffer = io.StringIO()
    frame.write_csv(buffer, include_header=False)
    lines = buffer.getvalue().splitlines()
    return ("\n".join(lines[i % len(lines)] for i in range(n)) + "\n").encode()


def _spooled(server: Server) -> tuple[int, int]:
    """(bytes, rows) in the spool folder."""
    size = rows = 0
    for path in server.spool.iterdir():
        if path.name.endswith((OPEN_SUFFIX, CLOSED_SUFFIX)):
            data = path.read_bytes()
            size += len(data)
            rows += data.count(b"\n")
    return size, rows


def test_too_many_rows_get_413_at_once_and_the_loop_keeps_answering(guarded: Server, serving_models: Models) -> None:
    """Issue 21.1: 134,430 empty rows in a 5 MB body were answered 200 after seconds, with the event loop blocked
    and 171 MB written to the invocation log."""
    features = spec_features(serving_models, serving_models.champion)
    empty_rows = ("\n".join([","* (len(features) - 1)] * 134_430) + "\n").encode()
    json_rows = b'{"instances": [' + b",".join([b"[" + b",".join([b"null"] * len(features)) + b"]"] * (MAX_ROWS + 1)) \
        + b"]}"
    stop = threading.Event()
    pings: list[float] = []

    def pinger() -> None:  # the one worker's event loop, seen from outside
        with httpx.Client(base_url=guarded.url, timeout=30) as client:
            while not stop.is_set():
                started = time.monotonic()
                assert client.get("/ping").status_code == 200
                pings.append(time.monotonic() - started)
                time.sleep(0.005)

    thread = threading.Thread(target=pinger)
    thread.start()
    try:
        with httpx.Client(base_url=guarded.url, timeout=60) as client:
            for body, ctype in ((empty_rows, "text/csv"), (json_rows, "application/json")):
                started = time.monotonic()
                response = client.post("/invocations", content=body, headers={"content-type": ctype})
                assert response.status_code == 413, response.text[:300]
                assert f"over the limit of {MAX_ROWS:,} rows per request" in response.json()["error"]
                assert time.monotonic() - started < 2.0
            # The largest request allowed is answered, parsed and predicted off the event loop.
            full = _csv_rows(serving_models, MAX_ROWS)
            for _ in range(5):
                response = client.post("/invocations", content=full, headers={"content-type": "text/csv"})
                assert response.status_code == 200, response.text[:300]
                assert len(response.json()["predictions"]) == MAX_ROWS
    finally:
        stop.set()
        thread.join(timeout=30)
    assert len(pings) > 10
    assert max(pings) < 0.5, f"/ping waited {max(pings):.3f} s behind a large request"


def test_the_invocation_log_stops_at_its_cap_and_counts_what_it_dropped(guarded: Server,
                                                                       serving_models: Models) -> None:
    """Issue 21.1: the spool had no cap; now rows past TRIBUTARY_SERVE_SPOOL_MAX_MB are dropped, counted in
    InvocationLogDroppedRows and logged, and every answered row is either spooled or counted."""
    cap = int(SPOOL_MAX_MB * 1024 * 1024)
    # What earlier requests left: the metric catches up with the writer at its next flush (every 0.5 s).
    before, deadline = _dropped(guarded), time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(1.2)
        if (now := _dropped(guarded)) == before:
            break
        before = now
    _, before_rows = _spooled(guarded)
    sent = 0
    with httpx.Client(base_url=guarded.url, timeout=60) as client:
        for n in (50, 100, 200, 400, 50, 10, 1):
            response = client.post("/invocations", content=_csv_rows(serving_models, n),
                                   headers={"content-type": "text/csv"})
            assert response.status_code == 200, response.text[:300]
            sent += n
    deadline = time.monotonic() + 30
    while True:
        size, rows = _spooled(guarded)
        dropped = _dropped(guarded) - before
        if rows - before_rows + dropped == sent or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert size <= cap, f"the spool holds {size:,} bytes, over its cap of {cap:,}"
    assert dropped > 0 and rows - before_rows + dropped == sent, (rows, before_rows, dropped, sent)
    assert "invocation log full" in guarded.log_path.read_text()


def _dropped(server: Server) -> float:
    """InvocationLogDroppedRows, summed over its samples."""
    text = httpx.get(f"{server.url}/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("InvocationLogDroppedRows_total{"))
