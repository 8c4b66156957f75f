"""A real `tributary serve` on loopback: the contract, routing, shadow, metrics and bad input."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest

from pipelines.core.lake import Lake
from pipelines.core import delta
from pipelines.serving.config import Variant
from pipelines.serving.invocations import TABLE, land
from tests.serving.conftest import ROOT, Models, Server, metric_values, records, spec_features, wait_generation

PIN = "X-Amzn-SageMaker-Target-Variant"
VARIANT = "x-amzn-invoked-production-variant"


def _post(client: httpx.Client, body, *, csv: bool = False, headers: dict | None = None) -> httpx.Response:
    if csv:
        return client.post("/invocations", content=body, headers={"content-type": "text/csv", **(headers or {})})
    return client.post("/invocations", json=body, headers=headers or {})


def _csv(frame: pl.DataFrame) -> str:
    buffer = io.StringIO()
    frame.write_csv(buffer, include_header=False)
    return buffer.getvalue()


def test_ping_and_every_body_shape_give_the_models_own_predictions(server: Server, serving_models: Models,
                                                                   direct_predict) -> None:
    assert httpx.get(f"{server.url}/ping").status_code == 200
    frame = serving_models.rows.head(25)
    with httpx.Client(base_url=server.url) as client:
        for variant, version in (("champion", serving_models.champion), ("challenger", serving_models.challenger)):
            features = spec_features(serving_models, version)
            x = frame.select(features)
            expected = direct_predict(version, frame)
            values = x.rows()
            bodies = {
                "csv": (_csv(x), True),
                "dataframe_split": ({"dataframe_split": {"columns": features, "data": [list(r) for r in values]}}, False),
                "dataframe_records": ({"dataframe_records": records(x, features)}, False),
                "instances_records": ({"instances": records(x, features)}, False),
                "instances_lists": ({"instances": [list(r) for r in values]}, False),
                "inputs_columns": ({"inputs": x.to_dict(as_series=False)}, False),
                "inputs_records": ({"inputs": records(x, features)}, False),
            }
            for shape, (body, is_csv) in bodies.items():
                response = _post(client, body, csv=is_csv, headers={PIN: variant})
                assert response.status_code == 200, (shape, response.text)
                assert response.headers[VARIANT] == variant
                got = np.array(response.json()["predictions"])
                np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7, err_msg=f"{variant} {shape}")


def test_bad_input_gets_a_clear_answer_and_the_server_keeps_serving(server: Server, serving_models: Models) -> None:
    features = spec_features(serving_models, serving_models.champion)
    good = records(serving_models.rows.head(1), features)[0]
    with httpx.Client(base_url=server.url) as client:
        cases = [
            (client.post("/invocations", content=b"x", headers={"content-type": "text/plain"}), 415, "content type"),
            (client.post("/invocations", content=b"{not json", headers={"content-type": "application/json"}), 400,
             "malformed JSON"),
            (_post(client, "1,2,3\n", csv=True), 400, f"expected {len(features)} columns"),
            (_post(client, {"dataframe_records": [{"bogus": 1}]}), 400, "besides bogus, which it ignores"),
            (_post(client, {"dataframe_records": [{k: v for k, v in good.items() if k != "distance"}]}), 400,
             "missing distance"),
            (_post(client, {"dataframe_records": [{**good, "distance": "far"}]}), 400, "'distance' (row 1) expects a number"),
            (_post(client, {"instances": [good], "inputs": [good]}), 400, "exactly one of"),
            (_post(client, {"dataframe_records": [good]}, headers={PIN: "nope"}), 400, "unknown target variant 'nope'"),
            (client.post("/invocations", content=b"1," * (3 * 1024 * 1024), headers={"content-type": "text/csv"}),
             413, "over the limit"),
        ]
        for response, status, words in cases:
            assert response.status_code == status, response.text
            assert words in response.json()["error"], response.json()["error"]
            assert VARIANT in response.headers
        assert client.get("/ping").status_code == 200
        assert _post(client, {"dataframe_records": [good]}).status_code == 200


def _csv_line(values: list) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(["" if v is None else v for v in values])
    return buffer.getvalue()


def test_deep_nesting_and_unusual_numbers_get_400_and_a_byte_order_mark_is_ignored(server: Server,
                                                                                   serving_models: Models) -> None:
    """Issue 21.3 and 21 "Also": a JSON value nested 1,000 deep was answered 500 (RecursionError in the error
    message's repr); a CSV BOM silently changed the first carrier; CSV took 1_000 and JSON took true as numbers."""
    features = spec_features(serving_models, serving_models.champion)
    x = serving_models.rows.head(3).select(features)
    text = _csv(x)
    pin = {PIN: "champion"}
    distance = features.index("distance")
    with httpx.Client(base_url=server.url) as client:
        plain = _post(client, text, csv=True, headers=pin)
        assert plain.status_code == 200, plain.text
        for body in ("\ufeff" + text, "\ufeff" + ",".join(features) + "\n" + text):
            response = _post(client, body.encode(), csv=True, headers=pin)
            assert response.status_code == 200, response.text
            assert response.json() == plain.json()

        deep = '{"instances":[[' + "[" * 1000 + "]" * 1000 + ",null" * (len(features) - 1) + "]]}"
        deeper = '{"instances":[[' + "[" * 5000 + "]" * 5000 + ",null" * (len(features) - 1) + "]]}"
        row = list(x.row(0))
        underscored = _csv_line(row[:distance] + ["1_000"] + row[distance + 1:])
        boolean = {**records(x.head(1), features)[0], "distance": True}
        cases = [
            (client.post("/invocations", content=deep, headers={"content-type": "application/json"}), "a list of 1"),
            (client.post("/invocations", content=deeper, headers={"content-type": "application/json"}),
             "depth limit exceeded"),
            (_post(client, underscored, csv=True), "column 'distance' (row 1) expects a number, got '1_000'"),
            (_post(client, {"dataframe_records": [boolean]}), "column 'distance' (row 1) expects a number, got true"),
        ]
        for response, words in cases:
            assert response.status_code == 400, response.text
            assert words in response.json()["error"], response.json()["error"]
        assert client.get("/ping").status_code == 200


def test_a_failing_model_answers_424(server: Server, serving_models: Models, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(serving_models.dirs[serving_models.champion], broken)
    spec = json.loads((broken / "spec.json").read_text())
    spec["features"] = spec["features"][:-1]  # one feature short of what the booster was trained on
    (broken / "spec.json").write_text(json.dumps(spec))
    config = serving_models.config(extra=(Variant("broken", "0", 0.0, str(broken)),))
    server.publish(config)
    try:
        features = spec["features"]
        with httpx.Client(base_url=server.url) as client:
            response = _post(client, {"dataframe_records": records(serving_models.rows.head(1), features)},
                             headers={PIN: "broken"})
            assert response.status_code == 424, response.text
            assert "failed" in response.json()["error"] and response.headers[VARIANT] == "broken"
            assert client.get("/ping").status_code == 200
    finally:
        server.publish(serving_models.config())


async def _fire(url: str, bodies: list[tuple[bytes, str, dict]], concurrency: int = 16) -> list[tuple[int, dict, bytes]]:
    """Send every body (content, content type, headers), `concurrency` at a time; (status, headers, body) each."""
    out: list = [None] * len(bodies)
    queue = list(enumerate(bodies))

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            i, (content, ctype, headers) = queue.pop()
            response = await client.post("/invocations", content=content,
                                         headers={"content-type": ctype, **headers})
            out[i] = (response.status_code, dict(response.headers), response.content)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return out


def _one_row_bodies(models: Models, n: int, *, headers=lambda i: {}) -> list[tuple[bytes, str, dict]]:
    lines = _csv(models.rows.select(spec_features(models, models.champion))).splitlines()
    return [(lines[i % len(lines)].encode(), "text/csv", headers(i)) for i in range(n)]


def test_weighted_split_within_binomial_tolerance(server: Server, serving_models: Models) -> None:
    server.publish(serving_models.config(0.7, 0.3))
    try:
        n = 3000
        answers = asyncio.run(_fire(server.url, _one_row_bodies(serving_models, n)))
        assert all(status == 200 for status, _, _ in answers)
        share = sum(h[VARIANT] == "challenger" for _, h, _ in answers) / n
        tolerance = 4 * math.sqrt(0.3 * 0.7 / n)
        assert abs(share - 0.3) < tolerance, f"challenger share {share:.3f}, expected 0.3 +- {tolerance:.3f}"
    finally:
        server.publish(serving_models.config())


def test_pinning(server: Server, serving_models: Models) -> None:
    for variant in ("champion", "challenger"):
        answers = asyncio.run(_fire(server.url, _one_row_bodies(serving_models, 100, headers=lambda i, variant=variant: {PIN: variant})))
        assert {h[VARIANT] for _, h, _ in answers} == {variant}


def test_sticky_ids_keep_their_variant_across_a_reweight(server: Server, serving_models: Models) -> None:
    server.publish(serving_models.config(0.5, 0.5))
    ids = [f"caller-{uuid.uuid4().hex[:8]}-{i}" for i in range(300)]
    sticky = lambda i: {"X-Amzn-SageMaker-Inference-Id": ids[i % len(ids)], "Connection": "close"}  # noqa: E731
    try:
        first = asyncio.run(_fire(server.url, _one_row_bodies(serving_models, len(ids), headers=sticky), 8))
        assigned = {ids[i]: h[VARIANT] for i, (_, h, _) in enumerate(first)}
        assert set(assigned.values()) == {"champion", "challenger"}
        again = asyncio.run(_fire(server.url, _one_row_bodies(serving_models, len(ids), headers=sticky), 8))
        assert {ids[i]: h[VARIANT] for i, (_, h, _) in enumerate(again)} == assigned

        env = {"TRIBUTARY_SERVING_CONFIG": str(server.config_path), "TRIBUTARY_HOME": str(server.state.parent)}
        done = subprocess.run([sys.executable, "-m", "pipelines.serving.cli", "weights", "champion=0.1",
                               "challenger=0.9"], cwd=ROOT, env={**os.environ, **env},
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "champion=0.1, challenger=0.9" in done.stdout
        generation = json.loads(server.config_path.read_text())["generation"]
        wait_generation(server.url, generation)
        after = asyncio.run(_fire(server.url, _one_row_bodies(serving_models, len(ids), headers=sticky), 8))
        assert {h["x-tributary-config-generation"] for _, h, _ in after} == {generation}
        assert {ids[i]: h[VARIANT] for i, (_, h, _) in enumerate(after)} == assigned
        # New ids follow the new weights.
        fresh = asyncio.run(_fire(server.url, _one_row_bodies(
            serving_models, 400, headers=lambda i: {"X-Amzn-SageMaker-Inference-Id": f"new-{uuid.uuid4().hex}"})))
        assert sum(h[VARIANT] == "challenger" for _, h, _ in fresh) / 400 > 0.75
    finally:
        server.publish(serving_models.config())


def test_unknown_weights_by_hand_are_refused_in_one_line(server: Server) -> None:
    env = {"TRIBUTARY_SERVING_CONFIG": str(server.config_path)}
    done = subprocess.run([sys.executable, "-m", "pipelines.serving.cli", "weights", "nope=1"], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("error: endpoint tributary-delay has no variant nope")
    assert "Traceback" not in done.stderr


def test_metrics_count_exactly_the_requests_sent(server: Server, serving_models: Models) -> None:
    before = httpx.get(f"{server.url}/metrics").text
    bodies = _one_row_bodies(serving_models, 500)
    bodies += [(b"not,a,row", "text/csv", {}) for _ in range(37)]
    answers = asyncio.run(_fire(server.url, bodies))
    after = httpx.get(f"{server.url}/metrics").text
    sent: dict[str, int] = {}
    bad: dict[str, int] = {}
    for status, headers, _ in answers:
        sent[headers[VARIANT]] = sent.get(headers[VARIANT], 0) + 1
        if status == 400:
            bad[headers[VARIANT]] = bad.get(headers[VARIANT], 0) + 1
    for name, counts in (("Invocations_total", sent), ("Invocation4XXErrors_total", bad)):
        b, a = metric_values(before, name), metric_values(after, name)
        assert {v: a.get(v, 0) - b.get(v, 0) for v in sent} == {v: float(counts.get(v, 0)) for v in sent}, name
    ok = {v: sent[v] - bad.get(v, 0) for v in sent}
    b, a = metric_values(before, "ModelLatency_count"), metric_values(after, "ModelLatency_count")
    assert {v: a.get(v, 0) - b.get(v, 0) for v in sent} == {v: float(n) for v, n in ok.items()}
    assert "ModelLatency_bucket" in after and "OverheadLatency_bucket" in after


def test_refusals_before_a_variant_is_chosen_count_under_none(server: Server, serving_models: Models) -> None:
    """Issue 23.4: a body refused whatever the variant (content type, syntax, size, rows) was counted as a 4xx of
    the variant the router happened to pick; it is the endpoint's, under VariantName none."""
    features = spec_features(serving_models, serving_models.champion)
    json_type = {"content-type": "application/json"}
    before = httpx.get(f"{server.url}/metrics").text
    with httpx.Client(base_url=server.url) as client:
        early = [
            client.post("/invocations", content=b"x", headers={"content-type": "text/plain"}),
            client.post("/invocations", content=b"{not json", headers=json_type),
            client.post("/invocations", content=b'{"instances": 3}', headers=json_type),
            client.post("/invocations", content=b"\xff\xfe", headers={"content-type": "text/csv"}),
            client.post("/invocations", content=b"1," * (3 * 1024 * 1024), headers={"content-type": "text/csv"}),
            _post(client, {"instances": [[None] * len(features)] * 2001}),
            _post(client, {"instances": [[None] * len(features)]}, headers={PIN: "nope"}),
        ]
        late = [_post(client, "1,2,3\n", csv=True) for _ in range(5)]
    after = httpx.get(f"{server.url}/metrics").text
    assert [r.status_code for r in early] == [415, 400, 400, 400, 413, 413, 400], [r.text for r in early]
    assert {r.headers[VARIANT] for r in early} == {"none"}
    assert {r.status_code for r in late} == {400} and "none" not in {r.headers[VARIANT] for r in late}
    per_variant: dict[str, int] = {}
    for r in late:
        per_variant[r.headers[VARIANT]] = per_variant.get(r.headers[VARIANT], 0) + 1
    expected = {"none": len(early), "champion": per_variant.get("champion", 0),
                "challenger": per_variant.get("challenger", 0)}
    for name in ("Invocation4XXErrors_total", "Invocations_total"):
        b, a = metric_values(before, name), metric_values(after, name)
        assert {v: a.get(v, 0) - b.get(v, 0) for v in expected} == {v: float(n) for v, n in expected.items()}, name


def test_shadow_answers_are_logged_never_returned(server: Server, serving_models: Models, direct_predict,
                                                  tmp_path: Path) -> None:
    server.publish(serving_models.config(shadow=1.0))
    try:
        frame = serving_models.rows.head(40)
        features = spec_features(serving_models, serving_models.champion)
        flights = frame["flight_id"].to_list()
        bodies = [(line.encode(), "text/csv", {"X-Amzn-SageMaker-Custom-Attributes": f"flight_id={flights[i]}"})
                  for i, line in enumerate(_csv(frame.select(features)).splitlines())]
        answers = asyncio.run(_fire(server.url, bodies, 4))
        expected = direct_predict(serving_models.champion, frame)
        assert {h[VARIANT] for _, h, _ in answers} == {"champion"}
        got = np.array([json.loads(body)["predictions"][0] for _, _, body in answers])
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        shadow_expected = dict(zip(flights, direct_predict(serving_models.challenger, frame), strict=True))
        lake = Lake(str(tmp_path / "lake"))
        deadline = time.monotonic() + 20
        logged = pl.DataFrame()
        while time.monotonic() < deadline:
            land(lake, server.spool, stale_seconds=3600)
            if delta.version(lake, TABLE) is not None:
                logged = delta.scan(lake, TABLE).filter(pl.col("flight_id").is_in(flights)).collect()
                if logged.filter(pl.col("shadow")).height == len(flights):
                    break
            time.sleep(0.3)
        shadow = logged.filter(pl.col("shadow"))
        assert shadow.height == len(flights), logged
        assert set(shadow["variant"]) == {"challenger-shadow"}
        assert set(shadow["model_version"]) == {serving_models.challenger}
        for flight_id, prediction in shadow.select("flight_id", "prediction").iter_rows():
            assert prediction == pytest.approx(shadow_expected[flight_id], rel=1e-6)
        assert logged.filter(~pl.col("shadow")).height == len(flights)
    finally:
        server.publish(serving_models.config())


def test_a_broken_publish_keeps_the_running_config(server: Server, serving_models: Models, tmp_path: Path) -> None:
    good = server.publish(serving_models.config())
    broken = serving_models.config(extra=(Variant("ghost", "9", 0.5, str(tmp_path / "missing")),))
    server.publish(broken, wait=False)
    deadline = time.monotonic() + 10
    errors: set[str] = set()
    while time.monotonic() < deadline and not errors:
        status = httpx.get(f"{server.url}/status", headers={"Connection": "close"}).json()
        assert status["config"]["generation"] == good.generation
        if status["error"]:
            errors.add(status["error"])
        time.sleep(0.05)
    assert any("does not exist" in e for e in errors)
    features = spec_features(serving_models, serving_models.champion)
    response = httpx.post(f"{server.url}/invocations", json={"instances": records(serving_models.rows.head(1), features)})
    assert response.status_code == 200 and response.headers["x-tributary-config-generation"] == good.generation
    server.publish(serving_models.config())
