"""SQLite engines for the embedded Dagster instance that do not pay a disk flush for every event.

Dagster's SQLite storages open a new connection for every statement (NullPool) and the databases are in WAL
mode. Two SQLite rules then make each write cost ~16 ms on this machine (measured: a fresh connection's insert,
commit and close): a commit with `synchronous=FULL` (the default) flushes the WAL to disk, and the last
connection to close a WAL database checkpoints it, flushing again and truncating the WAL. A run writes
several statements per event, so a scheduled day's ~100 events spent 3 s in the storage.

Here every connection runs with `synchronous=NORMAL` (SQLite's advice for WAL: the database stays consistent
after a crash; a power cut may lose the last few commits, which a local instance can afford), and one idle
reader per database stays open (a "keeper") so a closing connection is never the last: the WAL is then
checkpointed by SQLite's automatic checkpoint (every 1,000 pages), not at every close. Measured the same way,
a write then costs 0.2 ms. Keepers are bounded (`MAX_KEEPERS` databases a process, least recently used
closed first), so a long-lived daemon that writes to thousands of run shards holds a few file handles only.

Written by hand: Dagster has no option for either setting. Production instances use PostgreSQL
(`deploy/dagster.yaml`), where none of this applies.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool

from dagster import Field, StringSource
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData

MAX_KEEPERS = 16

_keepers: OrderedDict[str, sqlite3.Connection] = OrderedDict()
_lock = threading.Lock()
_inherited: list[sqlite3.Connection] = []


_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def _forget_after_fork() -> None:
    """A forked child must not use (nor close) its parent's SQLite connections: it keeps them unused and
    opens its own, the keepers' and the engines' pools alike (SQLAlchemy's advice: `dispose(close=False)`)."""
    global _lock
    _lock = threading.Lock()
    _inherited.extend(_keepers.values())
    _keepers.clear()
    for engine in list(_engines):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_after_fork)


def _relaxed_sync(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def _keep_open(path: str) -> None:
    """Hold one idle reader on the database. It reads at every new connection (microseconds): a reader holds
    the WAL index open only once it has read the database in WAL mode, which a new database enters later."""
    with _lock:
        keeper = _keepers.get(path)
        try:
            if keeper is None:
                keeper = sqlite3.connect(path, check_same_thread=False, timeout=1)
                _keepers[path] = keeper
            keeper.execute("SELECT count(*) FROM sqlite_master").fetchall()
        except sqlite3.Error:
            return  # only an optimization: the storage works without it
        _keepers.move_to_end(path)
        while len(_keepers) > MAX_KEEPERS:
            _keepers.popitem(last=False)[1].close()


def fast_engine(conn_string: str) -> Engine:
    """An engine with the two settings above that keeps one idle connection: Dagster's storages open a new one
    for every use (NullPool), ~0.1 ms more each, and a year's run opens thousands. A pooled connection serves one
    thread at a time; a forked child gets none of its parent's (`_forget_after_fork`); `dispose` closes it."""
    engine = create_engine(conn_string, poolclass=QueuePool, pool_size=1, max_overflow=16,
                           connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False})
    _engines.add(engine)
    event.listen(engine, "connect", _relaxed_sync)
    database = make_url(conn_string).database
    if database and database != ":memory:":
        event.listen(engine, "connect", lambda *_: _keep_open(database))
    return engine


class FastSqliteRunStorage(SqliteRunStorage):
    """Dagster's SQLite run storage (the same `runs.db`) on `fast_engine`, made once: a run's status events,
    tags and the daemon's queries each opened and closed the database, and every close after a write flushed
    the disk twice."""

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,
                          config_value: Mapping[str, Any]) -> FastSqliteRunStorage:
        """`base_dir` defaults to where the default storage keeps `runs.db`, so an instance keeps its history."""
        base_dir = config_value.get("base_dir") or os.path.join(os.environ["DAGSTER_HOME"], "history")
        return cls.from_local(base_dir=base_dir, inst_data=inst_data)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        if not hasattr(self, "_fast_engine"):
            self._fast_engine = fast_engine(self._conn_string)
        with self._fast_engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        super().dispose()
        if hasattr(self, "_fast_engine"):
            self._fast_engine.dispose()
