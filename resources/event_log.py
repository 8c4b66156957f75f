"""The embedded instance's event log, writing a range run's materializations in one transaction.

Dagster records one materialization event per partition of a range run. The SQLite event log writes each with
two new connections and two commits (~10 ms an event), so a century of daily raw partitions (73,000 events)
spent most of its run on bookkeeping (dagster-io/dagster#18789). With DAGSTER_EVENT_BATCH_SIZE set (the code
location sets it, `pipelines/definitions.py`), the instance hands the storage a step's events together through
`store_event_batch`; dagster-postgres writes them with one statement, the SQLite storage one at a time. This
subclass gives SQLite the dagster-postgres path: one insert into the run's shard, one transaction on the index
shard with the events' tags, and the asset's row updated from the last event.

Written by hand: Dagster ships no batched SQLite writer. It leans on the storage's own helpers
(`prepare_insert_event_batch`, `_store_asset_event_tags`, `_store_asset_event`), the same ones dagster-postgres
calls; the tests in tests/core/test_event_log.py read the events back through the public instance API.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine

from dagster import Field, StringSource
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._serdes import ConfigurableClassData

from resources.sqlite_storage import fast_engine

MAX_ENGINES = 16
"""Shards with an engine (and its one idle connection) kept open, least recently used closed first."""
_BATCHED = ({DagsterEventType.ASSET_MATERIALIZATION}, {DagsterEventType.ASSET_OBSERVATION})
_IN_ORDER = {DagsterEventType.ASSET_MATERIALIZATION_PLANNED, DagsterEventType.ASSET_FAILED_TO_MATERIALIZE,
             DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED}
"""Stored event by event as the parent does, but in two transactions a batch instead of two an event: a range
run's planned partitions (one event each, 730 for a year of days) and its planned checks are reported as one batch
at its creation."""


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` with `store_event_batch` for a step's materializations (or observations), and one
    SQLAlchemy engine per shard instead of one per statement."""

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        """As the parent's, but the shard's engine is made once: the parent builds and disposes an engine for
        every connection, ~5 ms each, and a run opens hundreds (two or three per event). `fast_engine` also spares
        each commit its disk flush (resources/sqlite_storage.py)."""
        with self._db_lock:
            engine = self._engines.get(shard)
            if engine is None:
                engine = fast_engine(self.conn_string_for_shard(shard))
                if shard not in self._initialized_dbs:
                    self._initdb(engine)
                    self._initialized_dbs.add(shard)
                self._engines[shard] = engine
                while len(self._engines) > MAX_ENGINES:  # a daemon writes to thousands of run shards over time
                    self._engines.popitem(last=False)[1].dispose()
            self._engines.move_to_end(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def dispose(self) -> None:
        super().dispose()
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()

    @property
    def _engines(self) -> OrderedDict[str, Engine]:
        if not hasattr(self, "_engine_cache"):
            self._engine_cache: OrderedDict[str, Engine] = OrderedDict()
        return self._engine_cache

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,
                          config_value: Mapping[str, Any]) -> BatchedSqliteEventLogStorage:
        """`base_dir` defaults to where the default storage keeps its shards, under DAGSTER_HOME: an instance
        switched to this class keeps its history."""
        base_dir = config_value.get("base_dir") or os.path.join(os.environ["DAGSTER_HOME"], "history", "runs")
        return cls(base_dir=base_dir, inst_data=inst_data)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        types = {e.get_dagster_event().event_type for e in events if e.is_dagster_event}
        run_ids = {e.run_id for e in events}
        if len(events) < 2 or len(run_ids) != 1 or not all(e.is_dagster_event for e in events):
            return super().store_event_batch(events)
        if types <= _IN_ORDER:
            return self._store_in_order(events, next(iter(run_ids)))
        if types not in _BATCHED:
            return super().store_event_batch(events)
        statement = self.prepare_insert_event_batch(events)
        with self.run_connection(next(iter(run_ids))) as conn:
            conn.execute(statement)
        with self.index_transaction() as conn:
            # One statement assigns increasing ids in the order of its rows; RETURNING's own order is not promised.
            ids = sorted(row[0] for row in conn.execute(statement.returning(SqlEventLogStorageTable.c.id)).fetchall())
            self._store_asset_event_tags(conn, list(events), ids)
            self._store_asset_event(conn, events[-1], ids[-1])

    def _store_in_order(self, events: Sequence[EventLogEntry], run_id: str) -> None:
        """What the parent's `store_event` does for each asset event (the run's shard, then the index shard with
        the event's tags and the asset's row; for a planned check, its execution row), in the batch's order, within
        one transaction a shard."""
        statements = [self.prepare_insert_event(event) for event in events]
        with self.run_connection(run_id) as conn:
            for statement in statements:
                conn.execute(statement)
        checks: list[tuple[EventLogEntry, int]] = []
        with self.index_transaction() as conn:
            for event, statement in zip(events, statements, strict=True):
                event_id = conn.execute(statement).inserted_primary_key[0]
                if event.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
                    checks.append((event, event_id))  # its execution row is written by the parent's own method
                    continue
                self._store_asset_event_tags(conn, [event], [event_id])
                self._store_asset_event(conn, event, event_id)
        for event, event_id in checks:
            self.store_asset_check_event(event, event_id)
