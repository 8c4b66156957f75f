"""Extract helpers on the real seeded source: bound queries, bounded chunks, publish-by-manifest."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from pipelines.extract import extraction as ex
from pipelines.core.lake import Lake
from pipelines.extract.source import TABLES
from pipelines.extract.sourcedb import create_engine


@pytest.fixture
def engine(seeded_sqlite: str) -> sa.Engine:
    return create_engine(seeded_sqlite)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(str(tmp_path / "lake"))


def test_partition_query_binds_values_never_formats_them() -> None:
    sql = str(ex.partition_query(TABLES["flights"]).compile(compile_kwargs={}))
    assert ":year" in sql and ":month" in sql and ":day" in sql
    assert "2013" not in sql
    assert ex.query_parameters(TABLES["flights"], dt.date(2013, 3, 1)) == {"year": 2013, "month": 3, "day": 1}
    assert ex.query_parameters(TABLES["airports"], None) == {}
    with pytest.raises(ValueError, match="date is required"):
        ex.query_parameters(TABLES["weather"], None)


@pytest.mark.parametrize(
    "value",
    [
        "2013-01-01 10:00:00.000000",  # SQLite text
        dt.datetime(2013, 1, 1, 10, 0),  # naive, as SQLite through SQLAlchemy
        dt.datetime(2013, 1, 1, 5, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))),  # aware, another zone
    ],
)
def test_conform_gives_declared_types_whatever_the_driver_returned(value: object) -> None:
    table = TABLES["airlines"]
    batch = pl.DataFrame({"carrier": ["UA"], "name": ["United"], "updated_at": [value]})
    out = ex.conform(batch, table)
    assert out.schema == pl.Schema(table.columns)
    assert out["updated_at"][0] == dt.datetime(2013, 1, 1, 10, 0, tzinfo=dt.UTC)


def test_extract_writes_the_days_rows_and_publishes_a_manifest(engine: sa.Engine, lake: Lake) -> None:
    day = dt.date(2013, 3, 1)
    result = ex.extract(engine, lake, "flights", date=day, run_id="run-a", chunk_rows=100)
    with engine.connect() as conn:
        expected = conn.execute(
            sa.text("SELECT count(*) FROM flights WHERE year = 2013 AND month = 3 AND day = 1")
        ).scalar_one()
    assert result.rows == expected == 958
    assert result.path == "raw/flightsdb/flights/date=2013-03-01/run-a.parquet"
    assert ex.current_file(lake, "flights", "2013-03-01") == result.path
    parquet = pq.ParquetFile(lake.path(result.path))
    assert parquet.schema_arrow == ex.arrow_schema(TABLES["flights"])
    assert parquet.metadata.num_row_groups >= expected // 100  # streamed chunk by chunk
    frame = pl.read_parquet(lake.path(result.path))
    assert frame.select(pl.col("year", "month", "day").unique()).rows() == [(2013, 3, 1)]
    assert frame["id"].is_unique().all()
    assert result.preview.height == 5


def test_a_new_extraction_never_rewrites_the_old_file(engine: sa.Engine, lake: Lake) -> None:
    first = ex.extract(engine, lake, "weather", date=dt.date(2013, 7, 4), run_id="run-a")
    before = Path(lake.path(first.path)).read_bytes()
    second = ex.extract(engine, lake, "weather", date=dt.date(2013, 7, 4), run_id="run-b")
    assert Path(lake.path(first.path)).read_bytes() == before
    assert ex.current_file(lake, "weather", "2013-07-04") == second.path
    assert second.rows == first.rows == 72


@pytest.mark.parametrize("batches_before", [1, 3])  # one batch is held to write whole; more stream to the file
def test_a_failed_extraction_leaves_nothing_a_reader_would_take(
    engine: sa.Engine, lake: Lake, monkeypatch: pytest.MonkeyPatch, batches_before: int
) -> None:
    good = ex.extract(engine, lake, "flights", date=dt.date(2013, 3, 2), run_id="run-a")
    real = ex.read_batches

    def dies_half_way(*args, **kwargs):
        batches = real(*args, **kwargs)
        for _ in range(batches_before):
            yield next(batches)
        raise ConnectionError("source went away")

    monkeypatch.setattr(ex, "read_batches", dies_half_way)
    with pytest.raises(ConnectionError):
        ex.extract(engine, lake, "flights", date=dt.date(2013, 3, 2), run_id="run-b", chunk_rows=100)
    folder = Path(lake.path(ex.raw_dir("flights", "2013-03-02")))
    assert sorted(p.name for p in folder.iterdir()) == ["_manifest.json", "run-a.parquet"]
    assert ex.current_file(lake, "flights", "2013-03-02") == good.path


def test_a_day_in_one_batch_and_in_many_makes_the_same_file(engine: sa.Engine, lake: Lake) -> None:
    day = dt.date(2013, 3, 2)
    whole = ex.extract(engine, lake, "flights", date=day, run_id="whole")
    streamed = ex.extract(engine, lake, "flights", date=day, run_id="streamed", chunk_rows=100)
    assert whole.rows == streamed.rows > 300
    one, many = pl.read_parquet(lake.uri(whole.path)), pl.read_parquet(lake.uri(streamed.path))
    assert one.equals(many) and one.schema == pl.Schema(TABLES["flights"].columns)
    assert pq.ParquetFile(lake.path(whole.path)).metadata.num_row_groups == 1


def test_snapshot_tables_publish_a_table_level_pointer(engine: sa.Engine, lake: Lake) -> None:
    result = ex.extract(engine, lake, "airports", date=None, run_id="run-a")
    assert result.rows == 1458
    assert ex.current_file(lake, "airports") == result.path
    assert lake.read_json(ex.snapshot_pointer("airports"))["rows"] == 1458


def test_changed_since_finds_the_days_whose_rows_changed(seeded_sqlite: str, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    shutil.copy(seeded_sqlite.removeprefix("sqlite:///"), copy)
    engine = create_engine(str(copy))
    everything = ex.changed_since(engine, "flights", None)
    assert len(everything) == 365
    mark = max(everything.values())
    assert ex.changed_since(engine, "flights", mark) == {}
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE flights SET arr_delay = 99, updated_at = :now WHERE id = 136250"),
            {"now": "2030-01-01 00:00:00.000000"},
        )
    changed = ex.changed_since(engine, "flights", mark)
    assert list(changed) == ["2013-03-01"]
    assert changed["2013-03-01"].startswith("2030-01-01T00:00:00")
    assert set(ex.changed_since(engine, "airlines", None)) == {""}


@pytest.mark.parametrize("source", ["sqlite", "postgresql"])
def test_a_range_in_one_query_publishes_what_day_by_day_extraction_does(
    source: str, seeded_sqlite: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if source == "sqlite":
        engine = create_engine(seeded_sqlite)
    else:
        from pipelines.synthetic.seed import seed

        engine = create_engine(request.getfixturevalue("pg_dsn"))
        seed(engine, tables=["flights"])
    first, last = dt.date(2013, 2, 27), dt.date(2013, 3, 2)  # crosses a month end
    by_day, by_range = Lake(str(tmp_path / "day")), Lake(str(tmp_path / "range"))
    reads = _count_arrow_reads(monkeypatch)
    with engine.connect() as conn:  # a fresh connection: the range is read as Arrow by connectorx
        ranged = list(ex.extract_range(conn, by_range, "flights", first=first, last=last, run_id="r", chunk_rows=700))
    assert reads == [700]
    with engine.connect() as conn:
        daily = [ex.extract(conn, by_day, "flights", date=first + dt.timedelta(days=i), run_id="r", chunk_rows=700)
                 for i in range((last - first).days + 1)]
    assert [e.date for e in ranged] == [e.date for e in daily]
    assert [e.rows for e in ranged] == [e.rows for e in daily] and all(e.rows > 700 for e in ranged)
    for a, b in zip(daily, ranged, strict=True):
        assert a.source_updated_at == b.source_updated_at
        assert pl.read_parquet(by_day.uri(a.path)).equals(pl.read_parquet(by_range.uri(b.path)))
        assert ex.current_file(by_range, "flights", b.date) == b.path


def _count_arrow_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The batch sizes of connectorx's reads (the real reads still happen)."""
    reads: list[int] = []
    real = ex.connectorx.read_sql

    def counted(*args, **kwargs):
        reads.append(kwargs["batch_size"])
        return real(*args, **kwargs)

    monkeypatch.setattr(ex.connectorx, "read_sql", counted)
    return reads


def test_a_range_connectorx_cannot_read_is_read_through_sqlalchemy(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    day = dt.date(2013, 3, 1)
    with engine.connect() as conn:
        expected = list(ex.extract_range(conn, Lake(str(tmp_path / "a")), "flights", first=day, last=day, run_id="r"))
    monkeypatch.setattr(ex, "arrow_url", lambda url: f"sqlite://{tmp_path}/no/such/folder/source.db")
    with engine.connect() as conn, caplog.at_level("INFO", logger=ex.__name__):
        fallback = list(ex.extract_range(conn, Lake(str(tmp_path / "b")), "flights", first=day, last=day, run_id="r"))
    assert "connectorx could not read" in caplog.text
    assert [e.rows for e in fallback] == [e.rows for e in expected] and expected[0].rows > 0
    assert pl.read_parquet(Lake(str(tmp_path / "a")).uri(expected[0].path)).equals(
        pl.read_parquet(Lake(str(tmp_path / "b")).uri(fallback[0].path)))


def test_arrow_urls_name_the_same_database() -> None:
    assert ex.arrow_url(sa.engine.make_url("sqlite:///rel/source.db")) == f"sqlite://{Path('rel/source.db').resolve()}"
    assert (ex.arrow_url(sa.engine.make_url("postgresql+psycopg://u:p%40ss@db:5433/flights?sslmode=require"))
            == "postgresql://u:p%40ss@db:5433/flights?sslmode=require")
    assert ex.arrow_url(sa.engine.make_url("sqlite://")) is None
    assert ex.arrow_url(sa.engine.make_url("mysql://u@h/db")) is None


def test_a_range_publishes_days_without_rows_empty(engine: sa.Engine, lake: Lake) -> None:
    with engine.connect() as conn:
        days = list(ex.extract_range(conn, lake, "flights", first=dt.date(2013, 12, 31), last=dt.date(2013, 12, 31),
                                     run_id="r"))
    assert [d.date for d in days] == ["2013-12-31"] and days[0].rows > 0
    with engine.connect() as conn:  # nothing in the source after the data: each day still gets its (empty) file
        conn.execute(sa.text("DELETE FROM flights WHERE year = 2013 AND month = 12 AND day = 30"))
        days = list(ex.extract_range(conn, lake, "flights", first=dt.date(2013, 12, 30), last=dt.date(2013, 12, 31),
                                     run_id="r2"))
        conn.rollback()
    assert [(d.date, d.rows > 0) for d in days] == [("2013-12-30", False), ("2013-12-31", True)]


def test_rows_out_of_day_order_stop_a_range_instead_of_being_lost(engine: sa.Engine, lake: Lake,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    first, last = dt.date(2013, 12, 30), dt.date(2013, 12, 31)
    with engine.connect() as conn:
        in_order = list(ex._range_batches(conn, TABLES["flights"], first, last, 100_000))
        shuffled = [batch.sort("day", descending=True) for batch in in_order]  # the 31st before the 30th
        monkeypatch.setattr(ex, "_range_batches", lambda *_args: iter(shuffled))
        with pytest.raises(RuntimeError, match="rows of 2013-12-30 out of day order"):
            list(ex.extract_range(conn, lake, "flights", first=first, last=last, run_id="r"))
        monkeypatch.setattr(ex, "_range_batches", lambda *_args: iter(in_order))
        days = list(ex.extract_range(conn, lake, "flights", first=first, last=last, run_id="r"))
    assert sum(d.rows for d in days) == sum(b.height for b in in_order) > 0
