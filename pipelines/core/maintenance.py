"""Keep the lake's Delta tables cheap to read: compact small files, then vacuum what no version needs. No Dagster.

Day-by-day writes leave one small file per day and table (365 a year for `fact_flights`); a reader pays per
file. Compaction rewrites them into files of `target_size` in a commit that changes no data, so a reader at
any version still reads the same rows; vacuum then deletes the files that no version inside the retention
window references. Both are delta-rs' own operations (`optimize.compact`, `vacuum`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pipelines.core import delta
from pipelines.core.lake import Lake
from pipelines.core.query import catalog

TARGET_FILE_BYTES = 128 * 1024 * 1024
"""What compaction aims for: large enough that a year of `fact_flights` is one file, small enough to stream."""
RETENTION_HOURS = 7 * 24
"""Files a version of the last week still references are kept: time travel and readers in flight stay safe."""


@dataclass(frozen=True)
class Maintained:
    table: str
    files_before: int
    files_after: int
    files_vacuumed: int
    version_before: int
    version_after: int
    seconds: float

    def summary(self) -> str:
        return (f"{self.table}: {self.files_before} -> {self.files_after} files, {self.files_vacuumed} vacuumed "
                f"(v{self.version_before} -> v{self.version_after}, {self.seconds:.1f}s)")


def maintain(lake: Lake, rel: str, *, target_size: int = TARGET_FILE_BYTES,
             retention_hours: int = RETENTION_HOURS) -> Maintained:
    """Compact one table and vacuum it; a table with nothing to compact gets no new commit."""
    started = time.monotonic()
    table = delta.open_table(lake, rel)
    if table is None:
        raise LookupError(f"{rel} is not a Delta table in {lake.uri()}")
    before, version_before = len(table.file_uris()), table.version()
    table.optimize.compact(target_size=target_size)
    table.update_incremental()
    # The dry run lists every tombstone past the retention, deleted before or not; a vacuum commits even when it
    # deletes nothing, so it runs only when one of those files is still there.
    vacuumed = [f for f in table.vacuum(retention_hours=retention_hours, dry_run=True, enforce_retention_duration=False)
                if lake.exists(f"{rel}/{f}")]
    if vacuumed:
        table.vacuum(retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False)
    return Maintained(rel, before, len(table.file_uris()), len(vacuumed), version_before, table.version(),
                      time.monotonic() - started)


def maintain_lake(lake: Lake, *, tables: Iterable[str] | None = None, target_size: int = TARGET_FILE_BYTES,
                  retention_hours: int = RETENTION_HOURS,
                  log: Callable[[str], None] = lambda _: None) -> list[Maintained]:
    """Every Delta table of the lake (or the given lake paths), one after the other."""
    done = []
    for rel in tables if tables is not None else sorted(catalog(lake).values()):
        result = maintain(lake, rel, target_size=target_size, retention_hours=retention_hours)
        log(result.summary())
        done.append(result)
    return done
