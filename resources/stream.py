"""The telemetry stream as a Dagster resource: one interface, a spool folder on `local`, Kinesis on `localstack`
and `aws`.

`TRIBUTARY_STREAM_KIND=mqtt` selects MQTT on any profile: producers publish to the broker, the bridge
(`tributary stream bridge`) appends to the spool, and the landing reads the spool.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Literal

from dagster import ConfigurableResource
from pydantic import Field

from pipelines.stream.landing import LATENESS, MAX_RECORDS
from pipelines.stream.transports import KinesisStream, MqttSink, Sink, Source, Spool
from resources.aws import AwsConnection, aws_connection
from resources.profiles import check_profile, env, home, setting

StreamKind = Literal["spool", "kinesis", "mqtt"]
KINDS: tuple[str, ...] = ("spool", "kinesis", "mqtt")


class StreamResource(ConfigurableResource):
    """Where telemetry flows: the interface; the subclass is the transport (spool, Kinesis, MQTT). Every kind
    keeps a spool (the local stream, and the MQTT bridge's durable landing) and can publish to the broker."""

    spool_dir: str = Field(default=".tributary/stream/spool",
                           description="The spool folder (the local stream, and the MQTT bridge's durable landing).")
    spool_shards: int = 2
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_topic: str = Field(default="tributary/telemetry", description="Topic prefix; one sub-topic per station.")
    max_records: int = Field(default=MAX_RECORDS, description="Records per shard in one landing batch.")
    lateness_minutes: int = Field(default=int(LATENESS.total_seconds() // 60),
                                  description="Allowed lateness in event time behind each station's newest event.")

    @property
    def kind(self) -> str:
        """spool | kinesis | mqtt: what producers send to by default."""
        raise NotImplementedError(f"{type(self).__name__} is an interface: use a spool, Kinesis or MQTT stream")

    @property
    def lateness(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.lateness_minutes)

    def get_spool(self, *, fsync: bool = True) -> Spool:
        return Spool(self.spool_dir, shards=self.spool_shards, fsync=fsync)

    def get_sink(self, kind: str | None = None) -> Sink:
        """Where producers send: this stream's transport, or the spool or the MQTT broker (`kind` overrides)."""
        kind = kind or self.kind
        if kind not in KINDS:
            raise ValueError(f"unknown stream kind {kind!r}: use one of {', '.join(KINDS)}")
        if kind == "mqtt":
            return MqttSink(self.mqtt_host, self.mqtt_port, topic_prefix=self.mqtt_topic)
        if kind == "kinesis":
            raise ValueError(f"this profile's stream is {self.kind}, not Kinesis: set TRIBUTARY_STREAM_KIND=kinesis")
        return self.get_spool()

    def get_source(self) -> Source:
        """Where the landing reads: the spool (which the MQTT bridge fills for `mqtt`)."""
        return self.get_spool()


class SpoolStreamResource(StreamResource):
    """The local stream: a spool folder (`local`)."""

    @property
    def kind(self) -> str:
        return "spool"


class MqttStreamResource(StreamResource):
    """Producers publish to the broker; the bridge (`tributary stream bridge`) appends to the spool."""

    @property
    def kind(self) -> str:
        return "mqtt"


class KinesisStreamResource(StreamResource, AwsConnection):
    """A Kinesis stream (`localstack`, `aws`)."""

    kinesis_stream: str = "tributary-telemetry"
    kinesis_shards: int = Field(default=2, description="Shards of a stream this resource creates.")
    create_stream: bool = Field(default=False, description="Create a missing Kinesis stream (test endpoints only).")

    @property
    def kind(self) -> str:
        return "kinesis"

    def get_kinesis(self) -> KinesisStream:
        return KinesisStream(self.kinesis_stream, **self.connection(), create=self.create_stream,
                             shard_count=self.kinesis_shards)

    def get_sink(self, kind: str | None = None) -> Sink:
        return self.get_kinesis() if (kind or self.kind) == "kinesis" else super().get_sink(kind)

    def get_source(self) -> Source:
        return self.get_kinesis()


def stream_resource(profile: str) -> StreamResource:
    """The stream of a profile: local spool under TRIBUTARY_HOME; Kinesis at AWS_ENDPOINT_URL; Kinesis on AWS;
    TRIBUTARY_STREAM_KIND picks another transport."""
    kind = setting("TRIBUTARY_STREAM_KIND") or {"local": "spool", "localstack": "kinesis",
                                                 "aws": "kinesis"}[check_profile(profile)]
    if kind not in KINDS:
        raise ValueError(f"unknown stream kind {kind!r} (TRIBUTARY_STREAM_KIND): use one of {', '.join(KINDS)}")
    common = dict(
        spool_dir=env("TRIBUTARY_STREAM_SPOOL", os.path.join(home(), "stream", "spool")),
        mqtt_host=env("TRIBUTARY_MQTT_HOST", "127.0.0.1"),
        mqtt_port=env("TRIBUTARY_MQTT_PORT", 1883, kind=int),
        mqtt_topic=env("TRIBUTARY_MQTT_TOPIC", "tributary/telemetry"),
        max_records=env("TRIBUTARY_STREAM_MAX_RECORDS", MAX_RECORDS, kind=int),
    )
    if kind == "spool":
        return SpoolStreamResource(**common)
    if kind == "mqtt":
        return MqttStreamResource(**common)
    return KinesisStreamResource(
        **common, **aws_connection(profile),
        kinesis_stream=env("TRIBUTARY_KINESIS_STREAM", "tributary-telemetry"),
        kinesis_shards=env("TRIBUTARY_KINESIS_SHARDS", 2, kind=int),
        create_stream=profile == "localstack",
    )
