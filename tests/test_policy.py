"""Project-wide policy: a transient fault (a refused connection, S3 throttling) is retried, bad data is not;
every op sits in its stage's pool; the warehouse, the model and the endpoint promise a freshness."""

from __future__ import annotations

import socket

import pytest
import sqlalchemy as sa
from botocore.exceptions import ClientError
from dagster import AssetKey, DagsterInstance, Definitions, RetryPolicy, asset

from assets.policy import TRANSIENT_RETRY, apply_policy
from pipelines.core.errors import run_failure_reason
from pipelines.core.transient import is_transient
from pipelines.core.lake import LakeError


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


def _db_down() -> Exception:
    engine = sa.create_engine(f"postgresql+psycopg://u@127.0.0.1:{_refused_port()}/db",
                              connect_args={"connect_timeout": 3})
    try:
        engine.connect()
    except sa.exc.OperationalError as exc:
        return exc
    raise AssertionError("a closed port accepted a connection")


def _throttled(code: str = "SlowDown", status: int = 503) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "Please reduce your request rate."},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


def _wrapped(cause: Exception) -> Exception:
    try:
        raise LakeError("could not write s3://lake/raw/x") from cause
    except LakeError as exc:
        return exc


@pytest.mark.parametrize(("make", "transient"), [
    (_db_down, True),
    (_throttled, True),
    (lambda: _wrapped(_throttled()), True),
    (lambda: OSError("Generic S3 error: Error after 10 retries ... status 503 Service Unavailable"), True),
    (lambda: ConnectionResetError(104, "Connection reset by peer"), True),
    (lambda: _throttled("AccessDenied", 403), False),
    (lambda: _throttled("NoSuchBucket", 404), False),
    (lambda: FileNotFoundError("no such file: raw/flights/_manifest.json"), False),
    (lambda: ValueError("column 'dep_delay' has type String, expected Int32"), False),
    (lambda: sa.exc.OperationalError("SELECT", {}, Exception("no such table: flights")), False),
])
def test_transient_faults_are_told_from_permanent_ones(make, transient: bool) -> None:
    assert is_transient(make()) is transient


def _run(body, tmp_path, group: str = "extract"):
    attempts = []

    @asset(key=["raw", "probe"], group_name=group)
    def probe() -> None:
        attempts.append(1)
        body(len(attempts))

    defs = apply_policy(Definitions(assets=[probe]))
    job = defs.resolve_implicit_global_asset_job_def()
    instance = DagsterInstance.ephemeral()
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    return result, attempts


@pytest.fixture(autouse=True)
def _no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """The policy's real delays (5 s and up) would only slow the test; the decision under test is whether."""
    monkeypatch.setattr(RetryPolicy, "calculate_delay", lambda self, attempt: 0)


def test_a_transient_fault_is_retried_until_it_passes(tmp_path) -> None:
    def body(attempt: int) -> None:
        if attempt < 3:
            raise _wrapped(_throttled())

    result, attempts = _run(body, tmp_path)
    assert result.success and len(attempts) == 3


def test_bad_data_fails_at_once_and_names_the_error(tmp_path) -> None:
    def body(attempt: int) -> None:
        raise ValueError("dep_delay is not a number: 'abc'")

    result, attempts = _run(body, tmp_path)
    assert not result.success and len(attempts) == 1
    assert run_failure_reason(result) == "step raw__probe: ValueError: dep_delay is not a number: 'abc'"


def test_a_fault_that_does_not_pass_fails_after_the_retries(tmp_path) -> None:
    def body(attempt: int) -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    result, attempts = _run(body, tmp_path)
    assert not result.success and len(attempts) == 1 + TRANSIENT_RETRY.max_retries


def test_every_op_has_the_retry_policy_and_its_stage_pool() -> None:
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    for key in graph.executable_asset_keys:
        node = graph.get(key)
        assert node.assets_def.op.retry_policy is not None, key
        assert node.assets_def.op.pool in {node.group_name, "telemetry_landing"}, key  # landing: a pool of its own


def test_the_warehouse_the_model_and_the_endpoint_promise_a_freshness() -> None:
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    for key in (["warehouse", "fact_flights"], ["warehouse", "carrier_monthly_kpis"], ["ml", "delay_model"],
                ["serving", "delay_endpoint"]):
        assert graph.get(AssetKey(key)).freshness_policy is not None, key
