"""Benchmark: the full extract through the Dagster graph versus a plain polars script, same reads and writes.

For each source (SQLite, PostgreSQL) and scale (1, 10 by default) it seeds the source, then runs, each in a
fresh process so that peak RSS is its own:
  graph    `tributary run --select raw/flights,raw/weather` over every day of the data (one run)
  plain    a loop over the same days with polars alone: the same query per day, the same Parquet writes
  startup  the graph for a single day (the fixed cost of loading Dagster and the definitions)
  graph-pg the graph again with the production instance storage (PostgreSQL, as deploy/dagster.yaml)
and prints wall time, rows/s and peak RSS. Targets: graph <= 1.5 x plain + startup (startup < 10 s); peak RSS
flat across scales.

    python benchmarks/extract.py [--scales 1 10] [--sources sqlite postgres] [--pg postgresql://...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from rss import memory_mib  # benchmarks/ (the script's own folder)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TABLES = ("flights", "weather")


def _run(cmd: list[str], env: dict) -> tuple[float, float, str]:
    """Run a command; return wall seconds, peak RSS in MiB of that process tree's largest member, stdout."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
    # Children are waited one at a time, so RUSAGE_CHILDREN's max is the largest child so far; each
    # measurement therefore reads the child's own report instead (printed by the plain script / graph runner).
    peak = json.loads(out.strip().splitlines()[-1])["peak_rss_mib"] if out.strip() else float("nan")
    return wall, peak, out


def plain(dsn: str, out_dir: str, first: str, last: str) -> None:
    """The floor: the same per-day queries and Parquet writes, with polars alone and no orchestration."""
    import polars as pl

    engine = sa.create_engine(dsn)
    day, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    rows = 0
    with engine.connect() as conn:
        conn = conn.execution_options(stream_results=True, max_row_buffer=50_000)
        while day <= end:
            for table in TABLES:
                query = sa.text(f"SELECT * FROM {table} WHERE year = :y AND month = :m AND day = :d ORDER BY id")
                frame = pl.read_database(query, conn, execute_options={"parameters": {"y": day.year, "m": day.month, "d": day.day}},
                                         infer_schema_length=None)
                target = Path(out_dir, table, f"date={day}")
                target.mkdir(parents=True, exist_ok=True)
                frame.write_parquet(target / "plain.parquet", compression="zstd")
                rows += frame.height
            day += dt.timedelta(days=1)
    print(json.dumps({"rows": rows, "peak_rss_mib": memory_mib()}))


def graph(first: str, last: str) -> None:
    """The graph: `tributary run` in this process, so the peak RSS printed is the run's own."""
    from pipelines.cli import main

    try:
        main(["run", "--select", "key:raw/flights or key:raw/weather", "--from", first, "--to", last],
             standalone_mode=False)
    finally:
        print(json.dumps({"peak_rss_mib": memory_mib()}))


def _source_rows(dsn: str) -> int:
    with sa.create_engine(dsn).connect() as conn:
        return sum(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES)


def _admin(pg: str) -> sa.Engine:
    from sqlalchemy.engine import make_url

    return sa.create_engine(make_url(pg).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")


def _drop_database(pg: str, name: str) -> None:
    with _admin(pg).connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _postgres_instance(home: Path, pg: str) -> tuple[str, str]:
    """A DAGSTER_HOME whose instance keeps runs and events in a fresh PostgreSQL database."""
    from sqlalchemy.engine import make_url

    url = make_url(pg)
    name = f"tributary_bench_{uuid.uuid4().hex[:8]}"
    with _admin(pg).connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\n"
        "storage:\n  postgres:\n    postgres_db:\n"
        f"      hostname: {url.host}\n      port: {url.port or 5432}\n      username: {url.username}\n"
        f"      password: '{url.password or ''}'\n      db_name: {name}\n      scheme: postgresql+psycopg2\n"
    )
    return str(home), name


def bench(source: str, scale: int, pg: str, work: Path) -> list[dict]:
    from pipelines.synthetic.seed import seed
    from pipelines.extract.sourcedb import create_engine, normalize_url

    if source == "sqlite":
        dsn = normalize_url(str(work / f"source-{scale}.db"))
    else:
        schema = f"bench_s{scale}"
        with sa.create_engine(normalize_url(pg)).begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        dsn = normalize_url(pg) + f"?options=-csearch_path%3D{schema}"
    started = time.perf_counter()
    seed(create_engine(dsn, create_dir=True), scale=scale, tables=["flights", "weather"], progress=lambda _: None)
    print(f"  seeded {source} scale {scale} in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    first, last = "2013-01-01", f"{2013 + scale - 1}-12-31"
    rows = _source_rows(dsn)
    home = work / f"home-{source}-{scale}-{uuid.uuid4().hex[:6]}"
    env = {
        "TRIBUTARY_PROFILE": "local",
        "TRIBUTARY_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "TRIBUTARY_SOURCE_DSN": dsn,
        "TRIBUTARY_PARTITIONS_END": f"{2013 + scale}-01-01",
    }
    me = [sys.executable, str(Path(__file__).resolve())]
    startup, _, _ = _run([*me, "--graph", first, first], env)
    graph_wall, graph_rss, _ = _run([*me, "--graph", first, last], env)
    plain_wall, plain_rss, _ = _run([*me, "--plain", dsn, str(home / "plain"), first, last], env)
    pg_home, pg_db = _postgres_instance(home / "dagster-pg", pg)
    pg_env = {**env, "DAGSTER_HOME": pg_home}
    try:
        pg_startup, _, _ = _run([*me, "--graph", first, first], pg_env)
        pg_wall, pg_rss, _ = _run([*me, "--graph", first, last], pg_env)
    finally:
        _drop_database(pg, pg_db)
    return [
        {"source": source, "scale": scale, "rows": rows, "variant": "graph", "seconds": graph_wall,
         "rows_per_s": rows / graph_wall, "peak_rss_mib": graph_rss, "startup_s": startup,
         "ratio": (graph_wall - startup) / plain_wall},
        {"source": source, "scale": scale, "rows": rows, "variant": "graph-pg", "seconds": pg_wall,
         "rows_per_s": rows / pg_wall, "peak_rss_mib": pg_rss, "startup_s": pg_startup,
         "ratio": (pg_wall - pg_startup) / plain_wall},
        {"source": source, "scale": scale, "rows": rows, "variant": "plain", "seconds": plain_wall,
         "rows_per_s": rows / plain_wall, "peak_rss_mib": plain_rss, "startup_s": None, "ratio": 1.0},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--sources", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"])
    parser.add_argument("--pg", default=os.environ.get("TRIBUTARY_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--plain", nargs=4, metavar=("DSN", "OUT", "FIRST", "LAST"), help=argparse.SUPPRESS)
    parser.add_argument("--graph", nargs=2, metavar=("FIRST", "LAST"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        return plain(*args.plain)
    if args.graph:
        return graph(*args.graph)
    results = []
    with tempfile.TemporaryDirectory(prefix="tributary-bench-") as tmp:
        for source in args.sources:
            for scale in args.scales:
                results += bench(source, scale, args.pg, Path(tmp))
    print(f"{'source':8} {'scale':>5} {'variant':8} {'rows':>11} {'wall s':>8} {'rows/s':>10} {'peak MiB':>9} {'startup s':>9} {'graph/plain':>11}")
    for r in results:
        startup = f"{r['startup_s']:.1f}" if r["startup_s"] is not None else ""
        ratio = f"{r['ratio']:.2f}x" if r["variant"] != "plain" else ""
        print(f"{r['source']:8} {r['scale']:>5} {r['variant']:8} {r['rows']:>11,} {r['seconds']:>8.1f} "
              f"{r['rows_per_s']:>10,.0f} {r['peak_rss_mib']:>9.0f} {startup:>9} {ratio:>11}")
    print("graph/plain = (graph wall - startup) / plain wall; target <= 1.5x, startup < 10 s, peak RSS flat with scale")


if __name__ == "__main__":
    main()
