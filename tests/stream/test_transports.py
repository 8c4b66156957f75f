"""The three transports: the spool, Kinesis on a moto server on loopback, and MQTT through the real Mosquitto."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import pytest

from pipelines.stream.bridge import MqttBridge, topic_key
from pipelines.stream.transports import (
    RECORD_SCHEMA,
    MqttSink,
    Spool,
    TransportError,
    shard_index,
    shard_name,
)
from tests.stream.conftest import send

ROOT = Path(__file__).resolve().parents[2]


def _all(source, shards=None) -> pl.DataFrame:
    return pl.concat([source.read(s, after=None) for s in (shards or source.shards())])


# -- spool ---------------------------------------------------------------------------------------------------


def test_spool_numbers_records_per_shard_and_reads_any_range(spool: Spool) -> None:
    spool.put([(k, f"r{i}".encode()) for i, k in enumerate(["EWR", "JFK", "LGA"] * 10)])
    assert spool.shards() == [shard_name(0), shard_name(1)]
    ewr = shard_name(shard_index("EWR", 2))
    rows = spool.read(ewr, after=None)
    assert rows.schema == RECORD_SCHEMA
    assert rows["sequence"].to_list() == [str(i) for i in range(rows.height)]
    assert spool.read(ewr, after="3", upto="5")["sequence"].to_list() == ["4", "5"]
    assert spool.read(ewr, after="3", limit=1)["sequence"].to_list() == ["4"]
    assert spool.latest(ewr, after=None, limit=4) == "3"
    assert spool.latest(ewr, after=str(rows.height - 1), limit=4) is None
    assert spool.read(ewr, after=str(rows.height - 1)).is_empty()


def test_spool_shards_keys_as_kinesis_does() -> None:
    # moto (and Kinesis) put EWR and LGA on the first of two shards, JFK on the second.
    assert [shard_index(k, 2) for k in ("EWR", "JFK", "LGA")] == [0, 1, 0]


def test_spool_keeps_any_payload_byte_for_byte(spool: Spool) -> None:
    odd = [b"tab\there", b"line\nbreak", b"\xff\xfe not utf-8", b"!bang", b"", b'{"ok": 1}']
    spool.put([("EWR", p) for p in odd])
    assert spool.read(shard_name(shard_index("EWR", 2)), after=None)["payload"].to_list() == odd


def test_spool_rolls_segments_and_a_torn_line_is_trimmed(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s", shards=1, segment_bytes=200, fsync=True)
    spool.put([("EWR", b"x" * 50) for _ in range(3)])
    spool.put([("EWR", b"y" * 50) for _ in range(3)])
    segments = sorted((tmp_path / "s" / shard_name(0)).glob("*.log"))
    assert len(segments) == 2 and segments[1].name == f"{3:020d}.log"
    with open(segments[-1], "ab") as f:  # a writer died mid-line
        f.write(b"6\t123\tEWR\thalf a rec")
    assert spool.read(shard_name(0), after=None).height == 6  # readers ignore the torn line
    spool.put([("EWR", b"z")])
    rows = spool.read(shard_name(0), after="5")
    assert rows["sequence"].to_list() == ["6"] and rows["payload"].to_list() == [b"z"]


def test_spool_writers_in_two_processes_never_reuse_a_sequence(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    code = ("import sys; from pipelines.stream.transports import Spool; s = Spool(sys.argv[1], shards=1)\n"
            "for i in range(40): s.put([('EWR', b'p%d' % i)] * 5)")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(folder)], cwd=ROOT) for _ in range(2)]
    assert all(p.wait(60) == 0 for p in procs)
    rows = Spool(folder, shards=1).read(shard_name(0), after=None)
    assert rows.height == 400 and rows["sequence"].cast(pl.Int64).to_list() == list(range(400))


def test_a_bad_partition_key_is_refused(spool: Spool) -> None:
    with pytest.raises(ValueError, match="bad partition key"):
        spool.put([("EW\tR", b"x")])


# -- Kinesis (moto server) --------------------------------------------------------------------------------------


def test_kinesis_gives_shards_and_sequence_numbers(kinesis, replay) -> None:
    stream = kinesis()
    sent = send(stream, replay, chunk=700)
    assert stream.shards() == [shard_name(0), shard_name(1)]
    records = _all(stream)
    assert records.height == sent and records.schema == RECORD_SCHEMA
    by_shard = {s: records.filter(pl.col("shard") == s) for s in stream.shards()}
    assert set(by_shard[shard_name(0)]["partition_key"].unique()) == {"EWR", "LGA"}
    for rows in by_shard.values():
        seq = rows["sequence"].cast(pl.Decimal(38, 0))
        assert seq.is_sorted() and seq.n_unique() == rows.height
    first = by_shard[shard_name(1)]
    after, upto = first["sequence"][9], first["sequence"][19]
    window = stream.read(shard_name(1), after=after, upto=upto)
    assert window["sequence"].to_list() == first["sequence"][10:20].to_list()
    assert stream.latest(shard_name(1), after=after, limit=5) == first["sequence"][14]
    assert stream.latest(shard_name(1), after=first["sequence"][-1], limit=5) is None


def test_kinesis_reads_more_than_one_get_records_page(kinesis, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = kinesis(shards=1)
    monkeypatch.setattr(type(stream), "MAX_GET", 100)
    stream.put([("EWR", b"%d" % i) for i in range(450)])
    assert stream.read(shard_name(0), after=None, limit=1000).height == 450


def test_a_missing_or_unreachable_kinesis_stream_is_one_clear_line(s3_endpoint: str) -> None:
    from pipelines.stream.transports import KinesisStream

    with pytest.raises(TransportError, match="Kinesis stream 'absent' at .* does not exist"):
        KinesisStream("absent", endpoint_url=s3_endpoint, access_key_id="t", secret_access_key="t").shards()


# -- MQTT (Mosquitto) -------------------------------------------------------------------------------------------


def test_mqtt_to_spool_through_the_bridge(mqtt_broker, mqtt_names, replay, tmp_path: Path) -> None:
    host, port = mqtt_broker
    prefix, client_id = mqtt_names
    spool = Spool(tmp_path / "spool")
    MqttBridge(spool, host=host, port=port, topic=f"{prefix}/#", client_id=client_id).run(idle_exit=0.1)  # session
    bridge = MqttBridge(spool, host=host, port=port, topic=f"{prefix}/#", client_id=client_id)
    stop = threading.Event()
    thread = threading.Thread(target=bridge.run, kwargs={"stop": stop})
    thread.start()
    try:
        sink = MqttSink(host, port, topic_prefix=prefix)
        sent = send(sink, replay)
        sink.close()
        deadline = time.monotonic() + 20
        while bridge.forwarded < sent and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
    records = _all(spool)
    assert records.height == sent
    assert set(records["partition_key"].unique()) == {"EWR", "JFK", "LGA"}  # the station from the topic


def test_the_bridge_session_keeps_messages_sent_while_it_is_down(mqtt_broker, mqtt_names, tmp_path: Path) -> None:
    host, port = mqtt_broker
    prefix, client_id = mqtt_names
    spool = Spool(tmp_path / "spool")
    MqttBridge(spool, host=host, port=port, topic=f"{prefix}/#", client_id=client_id).run(idle_exit=0.3)
    sink = MqttSink(host, port, topic_prefix=prefix)
    sink.put([("JFK", b"while-down-%d" % i) for i in range(30)])  # nobody connected: the broker keeps them
    sink.close()
    forwarded = MqttBridge(spool, host=host, port=port, topic=f"{prefix}/#", client_id=client_id).run(idle_exit=1.0)
    assert forwarded == 30 and _all(spool).height == 30


def test_a_bridge_killed_mid_stream_loses_nothing(mqtt_broker, mqtt_names, tmp_path: Path) -> None:
    """SIGKILL the bridge while messages flow: what it had not acknowledged comes again; nothing is lost."""
    host, port = mqtt_broker
    prefix, client_id = mqtt_names
    folder = tmp_path / "spool"
    code = ("import sys\nfrom pipelines.stream.bridge import MqttBridge\n"
            "from pipelines.stream.transports import Spool\n"
            "b = MqttBridge(Spool(sys.argv[1]), host=sys.argv[2], port=int(sys.argv[3]), topic=sys.argv[4] + '/#',"
            " client_id=sys.argv[5], flush_interval=0.005, max_pending=10)\n"
            "b.run(on_flush=lambda n: print('flushed', n, flush=True))")
    # The persistent session exists before anything is published: the broker keeps every message for it
    # (up to Mosquitto's max_queued_messages, 1,000 by default: the test sends fewer).
    MqttBridge(Spool(folder), host=host, port=port, topic=f"{prefix}/#", client_id=client_id).run(idle_exit=0.2)
    payloads = [("EWR", b"m-%04d" % i) for i in range(900)]
    bridge = subprocess.Popen([sys.executable, "-c", code, str(folder), host, str(port), prefix, client_id],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    sink = MqttSink(host, port, topic_prefix=prefix)
    publisher = threading.Thread(target=sink.put, args=(payloads,))
    publisher.start()
    try:
        assert bridge.stdout.readline().startswith("flushed")
        bridge.kill()  # SIGKILL, while messages flow
        bridge.wait(10)
    finally:
        if bridge.poll() is None:
            bridge.kill()
            bridge.wait(10)
        publisher.join(30)
        sink.close()
    assert bridge.returncode == -9
    assert 0 < _all(Spool(folder)).height < len(payloads)  # killed part-way
    MqttBridge(Spool(folder), host=host, port=port, topic=f"{prefix}/#", client_id=client_id).run(idle_exit=1.5)
    received = _all(Spool(folder))["payload"].to_list()
    assert set(received) == {p for _, p in payloads}  # at least once: every message, maybe some twice
    assert len(received) >= len(payloads)


def test_topic_key_is_the_station() -> None:
    assert topic_key("tributary/telemetry/EWR") == "EWR"
    assert topic_key("EWR") == "EWR"


def test_an_unreachable_broker_is_one_clear_line() -> None:
    with pytest.raises(TransportError, match="cannot reach the MQTT broker at 127.0.0.1:1: Connection refused"):
        MqttSink("127.0.0.1", 1).put([("EWR", b"x")])



def test_spool_finds_the_last_sequence_behind_a_long_record(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s", shards=1, fsync=False)
    spool.put([("EWR", b"a"), ("EWR", b"x" * 300_000)])
    assert spool.latest(shard_name(0), after=None, limit=10) == "1"
    spool.put([("EWR", b"b")])
    assert spool.read(shard_name(0), after="1")["payload"].to_list() == [b"b"]
