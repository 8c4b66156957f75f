"""The embedded instance's SQLite storages without a disk flush per statement (resources/sqlite_storage.py)."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus, asset, materialize
from sqlalchemy import text

from pipelines.core.instance import LOCAL_INSTANCE_YAML, _EARLIER_DEFAULTS
from resources import sqlite_storage
from resources.sqlite_storage import FastSqliteRunStorage, fast_engine


def _wal_database(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x INTEGER)")
    return f"sqlite:///{path}"


def test_a_write_neither_flushes_nor_checkpoints_on_close(tmp_path: Path) -> None:
    engine = fast_engine(_wal_database(tmp_path / "a.db"))
    for i in range(3):
        with engine.connect() as conn, conn.begin():
            conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": i})
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
    # The default's last close would have checkpointed the WAL into the database and removed it.
    assert (tmp_path / "a.db-wal").stat().st_size > 0
    with sqlite3.connect(tmp_path / "a.db") as conn:  # another reader sees every commit
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (3,)


def test_keepers_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_storage, "MAX_KEEPERS", 3)
    for i in range(6):
        with fast_engine(_wal_database(tmp_path / f"{i}.db")).connect() as conn:
            conn.execute(text("SELECT 1"))
    kept = [p for p in sqlite_storage._keepers if p.startswith(str(tmp_path))]
    assert kept == [str(tmp_path / f"{i}.db") for i in (3, 4, 5)]


def _write_in_child(url: str) -> None:
    with fast_engine(url).connect() as conn, conn.begin():
        conn.execute(text("INSERT INTO t VALUES (42)"))


def test_a_forked_child_writes_with_connections_of_its_own(tmp_path: Path) -> None:
    url = _wal_database(tmp_path / "f.db")
    with fast_engine(url).connect() as conn:
        conn.execute(text("SELECT 1"))
    assert str(tmp_path / "f.db") in sqlite_storage._keepers
    child = multiprocessing.get_context("fork").Process(target=_write_in_child, args=(url,))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 0
    with fast_engine(url).connect() as conn:  # the parent's keeper still works after the child
        assert conn.execute(text("SELECT x FROM t")).scalars().all() == [42]


def test_a_forked_child_does_not_share_the_parents_pooled_connection(tmp_path: Path) -> None:
    engine = fast_engine(_wal_database(tmp_path / "p.db"))
    with engine.connect() as conn:
        parent_connection = id(conn.connection.dbapi_connection)
    with engine.connect() as conn:  # the pool hands the same connection back
        assert id(conn.connection.dbapi_connection) == parent_connection

    def write_with_the_parents_engine() -> None:
        with engine.connect() as conn, conn.begin():
            assert id(conn.connection.dbapi_connection) != parent_connection
            conn.execute(text("INSERT INTO t VALUES (7)"))

    child = multiprocessing.get_context("fork").Process(target=write_with_the_parents_engine)
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 0
    with engine.connect() as conn:  # the parent's pooled connection still works and sees the child's write
        assert id(conn.connection.dbapi_connection) == parent_connection
        assert conn.execute(text("SELECT x FROM t")).scalars().all() == [7]


@asset
def one() -> int:
    return 1


def test_the_local_instance_keeps_runs_in_the_same_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dagster.yaml").write_text(LOCAL_INSTANCE_YAML)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, FastSqliteRunStorage)
        run_id = materialize([one], instance=instance).run_id
    # The default storage (what an instance without this config opens) reads the same history.
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.SUCCESS


def test_the_previous_local_config_is_upgraded() -> None:
    previous = LOCAL_INSTANCE_YAML.replace(LOCAL_INSTANCE_YAML[
        LOCAL_INSTANCE_YAML.index("# The same SQLite files"):LOCAL_INSTANCE_YAML.index("# Freshness policies")], "")
    assert previous in _EARLIER_DEFAULTS and LOCAL_INSTANCE_YAML not in _EARLIER_DEFAULTS
