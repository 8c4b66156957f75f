"""Under load on a busy machine: repeated re-weights and new champions with zero failed requests, 10% malformed
traffic, and the log landed into Delta exactly once."""

from __future__ import annotations

import asyncio
import io
import json
import random
import threading
import time
from pathlib import Path

import httpx
import polars as pl
import pytest

from pipelines.core import delta
from pipelines.core.lake import Lake
from pipelines.serving.config import publish
from pipelines.serving.invocations import TABLE, land, ready_segments
from tests.serving.conftest import Models, cpu_hog, spec_features, start_server, stop_server, wait_generation

VARIANT = "x-amzn-invoked-production-variant"
VERSION = "x-tributary-model-version"


def _requests(models: Models, n: int, bad_share: float, seed: int = 7) -> list[tuple[bytes, str, int | None]]:
    """(body, content type, index of the holdout row or None for a malformed one)."""
    features = spec_features(models, models.champion)
    buffer = io.StringIO()
    models.rows.select(features).write_csv(buffer, include_header=False)
    lines = buffer.getvalue().splitlines()
    rng = random.Random(seed)
    broken = [(b"1,2,three\n", "text/csv"), (b'{"instances": [[1, 2]]}', "application/json"),
              (b"{oops", "application/json"), (b"x", "application/xml"),
              (b'{"dataframe_records": [{"carrier": "AA"}]}', "application/json")]
    out = []
    for _ in range(n):
        if rng.random() < bad_share:
            body, ctype = rng.choice(broken)
            out.append((body, ctype, None))
        else:
            k = rng.randrange(len(lines))
            out.append((lines[k].encode(), "text/csv", k))
    return out


async def _load(url: str, requests: list, concurrency: int, results: list, stop: threading.Event) -> None:
    """Send the requests round and round, `concurrency` at a time, until `stop` is set; (index, answer) each."""
    sent = iter(range(10**9))

    async def worker(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            i = next(sent)
            body, ctype, _ = requests[i % len(requests)]
            try:
                response = await client.post("/invocations", content=body, headers={"content-type": ctype})
                results.append((i, (response.status_code, response.headers.get(VERSION), response.headers.get(VARIANT),
                                    response.content)))
            except httpx.HTTPError as exc:
                results.append((i, (0, None, None, repr(exc).encode())))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))


def _wait(condition, what: str, seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {seconds:g}s")
        time.sleep(0.02)


def test_repeated_swaps_on_a_busy_machine_fail_nothing(serving_models: Models, direct_predict, tmp_path: Path,
                                                       request: pytest.FixtureRequest) -> None:
    """Issue 14: a server started on a machine whose cores are busy, then re-weighted and given new champions six
    times under load, answers every valid request 200 (no 503 from a worker still loading, no reset connection)."""
    m = serving_models
    expected = {v: direct_predict(v, m.rows) for v in (m.champion, m.challenger)}
    requests = _requests(m, 4000, 0.10)
    results: list = []
    stop = threading.Event()
    changes = [m.config(0.5, 0.5), m.config(0.9, 0.1, champion_version=m.challenger),
               m.config(0.3, 0.7, champion_version=m.challenger), m.config(0.9, 0.1), m.config(shadow=0.5),
               m.config(0.7, 0.3)]
    with cpu_hog():
        # Started under the hog, with traffic from the moment the port listens: a worker still loading its models
        # must not take connections (they wait in the listen backlog until a worker can answer them).
        server = start_server(tmp_path / "serve", m.config(), ready=False)
        request.addfinalizer(lambda: stop_server(server))
        runner = threading.Thread(target=lambda: asyncio.run(_load(server.url, requests, 12, results, stop)))
        runner.start()
        try:
            for step, config in enumerate(changes, start=1):
                _wait(lambda step=step: len(results) >= step * 300, f"{step * 300} answers before publish {step}")
                published = publish(server.config_path, config)
                wait_generation(server.url, published.generation, deadline_seconds=90)
            _wait(lambda: len(results) >= (len(changes) + 1) * 300, "300 answers after the last publish")
        finally:
            stop.set()
            runner.join(timeout=60)
        assert not runner.is_alive()
        log_text = server.log_path.read_text()

    failures = [(i, r[:2], r[3][:200]) for i, r in results
                if requests[i % len(requests)][2] is not None and r[0] != 200]
    assert not failures, (len(failures), failures[:5], log_text[-3000:])
    assert "died" not in log_text, log_text[-3000:]  # uvicorn's supervisor killed a worker it thought hung
    malformed = [r for i, r in results if requests[i % len(requests)][2] is None]
    assert malformed and {r[0] for r in malformed} <= {400, 415}
    seen_versions: dict[str, set[str]] = {}
    for i, (_status, version, variant, content) in results:
        k = requests[i % len(requests)][2]
        if k is None:
            continue
        got = json.loads(content)["predictions"][0]
        assert abs(got - expected[version][k]) <= 1e-6 * max(1.0, abs(expected[version][k])), (variant, version)
        seen_versions.setdefault(variant, set()).add(version)
    # The champion variant served the first champion, then (after the new champion) the former challenger.
    assert seen_versions["champion"] == {m.champion, m.challenger}
    assert httpx.get(f"{server.url}/ping").status_code == 200

    # Every answered request is logged once: land (twice: the second finds nothing new) and count.
    answered = sum(r[0] == 200 for _, r in results)
    stop_server(server)  # closes the open segments
    lake = Lake(str(tmp_path / "lake"))
    first = land(lake, server.spool, stale_seconds=3600)
    assert not ready_segments(server.spool)
    assert land(lake, server.spool).rows == 0
    log = delta.scan(lake, TABLE).collect()
    production = log.filter(~pl.col("shadow"))
    assert production.height == answered  # this module's own server: only this test's traffic
    assert production["request_id"].n_unique() == production.height
    assert first.rows == log.height
    # A segment landed a second time (a crash between MERGE and delete) changes nothing.
    again = tmp_path / "again"
    again.mkdir()
    (again / "replay.ndjson").write_bytes(b"\n".join(
        json.dumps({**row, "invoked_at": row["invoked_at"].isoformat(), "flight_date": None}).encode()
        for row in production.head(50).drop("flight_date").iter_rows(named=True)))
    land(lake, again)
    assert delta.scan(lake, TABLE).select(pl.len()).collect().item() == log.height
