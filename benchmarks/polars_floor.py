"""The floor of `benchmarks/warehouse.py`: extract -> standardize -> warehouse as a plain polars script.

The same work the graph's assets do, with Dagster taken away and nothing else: the same extraction (one query
per month, `pipelines.extract.extraction.extract_range`, each day its own raw Parquet file and manifest), the
same pure transforms (`pipelines.standardize.transforms`, `pipelines.warehouse.star`), the same months, the same
Delta writes (`pipelines.core.delta`: a month's range overwrite, MERGE for the dimensions), in the same stage
order as the graph runs its steps. What it leaves
out is what the graph adds around the work: the Dagster instance (run, step and materialization events),
asset metadata and previews, the Great Expectations suites of the asset checks, and the KPI charts.

    python benchmarks/polars_floor.py HOME DSN FIRST LAST [--at-once]   (prints one JSON line: rows, stages, peak RSS)
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

from pipelines.core import delta  # noqa: E402
from pipelines.standardize import transforms as standardize  # noqa: E402
from pipelines.warehouse import star as warehouse  # noqa: E402
from pipelines.extract.extraction import extract, extract_range  # noqa: E402
from pipelines.core.lake import Lake  # noqa: E402
from pipelines.extract.raw import PARTITION_DATE, scan_days, scan_snapshot  # noqa: E402
from pipelines.extract.source import PARTITIONED_TABLES, SNAPSHOT_TABLES  # noqa: E402
from pipelines.extract.sourcedb import create_engine  # noqa: E402
from rss import memory_mib  # noqa: E402 - benchmarks/ (the script's own folder)

def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def _chunks(days: list[dt.date]) -> list[list[dt.date]]:
    """As `assets.partitions.months`: the days by calendar month."""
    grouped: dict[tuple[int, int], list[dt.date]] = {}
    for day in days:
        grouped.setdefault((day.year, day.month), []).append(day)
    return list(grouped.values())


def _quarantine_with_day(quarantine: pl.DataFrame, raw: pl.DataFrame) -> pl.DataFrame:
    """As the standardize assets: each quarantined row tagged with the raw partition it came from."""
    ids = raw.select(pl.col("id").alias("_id"), pl.col(PARTITION_DATE).alias("partition_date"))
    return (
        quarantine.with_columns(pl.col("raw").str.json_path_match("$.id").cast(pl.Int64).alias("_id"))
        .join(ids, on="_id", how="left")
        .drop("_id")
    )


def _codes(lake: Lake, *columns: str) -> list[str]:
    flights = delta.scan(lake, "standardized/flights")
    return (
        pl.concat([flights.select(pl.col(c).alias("code")) for c in columns])
        .drop_nulls().unique().collect(engine="streaming")["code"].to_list()
    )


def _by_month(lake: Lake, pieces: list[list[dt.date]], source: str, target: str,
              build: Callable[[pl.LazyFrame], pl.LazyFrame]) -> int:
    """As the graph's warehouse steps: each month of `source` built into `target` and written by range overwrites
    on `flight_date`, a year a commit (`delta.write_months`, as the graph's `write_months`); the rows written."""

    def month(chunk: list[dt.date]) -> dict[str, pl.DataFrame]:
        rows = delta.scan(lake, source).filter(pl.col("flight_date").is_between(chunk[0], chunk[-1]))
        return {target: build(rows).collect()}

    return sum(built[target].height for _, built, _ in delta.write_months(lake, pieces, {target: "flight_date"}, month))


def run(home: Path, dsn: str, first: dt.date, last: dt.date, *, at_once: bool = False) -> dict:
    """The floor by month; `at_once`: the whole range as one piece (one query a table, one transform and one
    Delta write a table), the data's own cost with no per-month work at all."""
    lake = Lake(root=str(home / "lake"))
    lake.check()
    engine = create_engine(dsn)
    run_id = uuid.uuid4().hex
    days = _days(first, last)
    pieces = [days] if at_once else _chunks(days)
    stages: dict[str, float] = {}
    mark = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        stages[name] = round(now - mark, 2)
        mark = now

    # extract: every day of the partitioned tables, then the reference snapshots (raw Parquet + manifests)
    rows = {}
    with engine.connect() as conn:
        for table in PARTITIONED_TABLES:
            rows[table] = sum(e.rows for month in pieces
                              for e in extract_range(conn, lake, table, first=month[0], last=month[-1], run_id=run_id))
        for table in SNAPSHOT_TABLES:
            extract(conn, lake, table, date=None, run_id=run_id)
    stage("extract")

    # standardize: reference tables whole, weather then flights by month chunk
    for table, fn in (("airports", standardize.standardize_airports), ("planes", standardize.standardize_planes),
                      ("airlines", standardize.standardize_airlines)):
        result = fn(scan_snapshot(lake, table).collect(), run_id=run_id)
        delta.overwrite(lake, f"standardized/{table}", result.good)
        delta.overwrite(lake, f"quarantine/{table}", result.quarantine)

    def weather_month(chunk: list[dt.date]) -> dict[str, pl.DataFrame]:
        raw = scan_days(lake, "weather", chunk).collect()
        result = standardize.standardize_weather(raw.drop(PARTITION_DATE), run_id=run_id)
        return {"standardized/weather": result.good, "quarantine/weather": _quarantine_with_day(result.quarantine, raw)}

    # as the graph's `write_months`: a year a commit, the quarantine in the same groups
    for _ in delta.write_months(lake, pieces, {"standardized/weather": "obs_date",
                                               "quarantine/weather": "partition_date"}, weather_month):
        pass
    refs = {name: delta.scan(lake, f"standardized/{name}").collect() for name in ("airports", "planes", "airlines")}

    def flights_month(chunk: list[dt.date]) -> dict[str, pl.DataFrame]:
        raw = scan_days(lake, "flights", chunk).collect()
        weather = (
            delta.scan(lake, "standardized/weather")
            .filter(pl.col("obs_date").is_between(chunk[0] - dt.timedelta(days=1), chunk[-1] + dt.timedelta(days=1)))
            .collect()
        )
        result = standardize.standardize_flights(raw.drop(PARTITION_DATE), weather=weather, run_id=run_id, **refs)
        return {"standardized/flights": result.good, "quarantine/flights": _quarantine_with_day(result.quarantine, raw)}

    good = sum(built["standardized/flights"].height for _, built, _ in delta.write_months(
        lake, pieces, {"standardized/flights": "flight_date", "quarantine/flights": "partition_date"}, flights_month))
    stage("standardize")

    # warehouse: dimensions (MERGE), the fact and route KPIs by month chunk, carrier KPIs recomputed whole
    delta.merge(lake, "warehouse/dim_airport",
                warehouse.dim_airport(refs["airports"], include_codes=_codes(lake, "origin", "dest")), keys=["faa"])
    delta.merge(lake, "warehouse/dim_plane",
                warehouse.dim_plane(refs["planes"], include_tailnums=_codes(lake, "tailnum")), keys=["tailnum"])
    delta.merge(lake, "warehouse/dim_carrier", warehouse.dim_carrier(refs["airlines"]), keys=["carrier"])
    delta.overwrite(lake, "warehouse/dim_date", warehouse.dim_date(first, last))
    fact_rows = _by_month(lake, pieces, "standardized/flights", "warehouse/fact_flights", warehouse.fact_flights)
    _by_month(lake, pieces, "warehouse/fact_flights", "warehouse/route_daily_kpis", warehouse.route_daily_kpis)
    kpis = warehouse.carrier_monthly_kpis(delta.scan(lake, "warehouse/fact_flights")).collect(engine="streaming")
    delta.overwrite(lake, "warehouse/carrier_monthly_kpis", kpis.sort("carrier", "year", "month"))
    stage("warehouse")
    return {"rows": rows["flights"], "weather_rows": rows["weather"], "good": good, "fact_rows": fact_rows,
            "stages": stages}


def main(argv: list[str]) -> None:
    at_once = "--at-once" in argv
    home, dsn, first, last = [a for a in argv if a != "--at-once"]
    out = run(Path(home), dsn, dt.date.fromisoformat(first), dt.date.fromisoformat(last), at_once=at_once)
    out["peak_rss_mib"] = memory_mib()
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
