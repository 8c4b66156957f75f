"""The invocation log: the server spools NDJSON segments; a landing MERGEs closed segments into Delta.

No Dagster. Each worker appends to its own open segment (`<start>-<pid>-<id>.ndjson.open`) from an
in-memory buffer that a thread writes out every half second, so a request never waits on the disk; a segment is closed
(renamed to `.ndjson`) after `segment_seconds` or at shutdown. The landing reads closed segments (and open
ones left by a worker that died: untouched for `stale_seconds`), MERGEs them on (request_id, row, shadow)
and only then deletes them: a crash between the two lands the same rows again, which the MERGE absorbs,
so each invocation is in the table exactly once.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from pipelines.core import delta

TABLE = "serving/invocations"
KEYS = ("request_id", "row", "shadow")
OPEN_SUFFIX = ".ndjson.open"
CLOSED_SUFFIX = ".ndjson"

SCHEMA: dict[str, pl.DataType] = {
    "request_id": pl.String(),
    "row": pl.Int32(),
    "shadow": pl.Boolean(),
    "endpoint": pl.String(),
    "variant": pl.String(),
    "model_version": pl.String(),
    "features": pl.String(),
    "prediction": pl.Float64(),
    "model_latency_us": pl.Int64(),
    "overhead_latency_us": pl.Int64(),
    "invoked_at": pl.Datetime("us", "UTC"),
    "flight_id": pl.String(),
    "flight_date": pl.Date(),
    "custom_attributes": pl.String(),
}


def flight_key(custom_attributes: str | None) -> tuple[str | None, str | None]:
    """(flight_id, flight_date) from `X-Amzn-SageMaker-Custom-Attributes: flight_id=<warehouse key>,flight_date=...`
    (the warehouse key is e.g. `2013-11-01/9E/3302/EWR/1130`)."""
    if not custom_attributes:
        return None, None
    flight_id = flight_date = None
    for part in custom_attributes.split(","):
        name, _, value = part.partition("=")
        name, value = name.strip().lower(), value.strip()
        if name == "flight_id" and value:
            flight_id = value
        elif name == "flight_date" and len(value) == 10:
            flight_date = value
    return flight_id, flight_date


class SpoolWriter:
    """Buffered NDJSON segments for one process; `append` only touches memory.

    Bounded, so the log can never fill the disk when the landing falls behind or stops: `max_bytes` caps the
    whole spool folder (every worker's segments, measured every `RESCAN_SECONDS` plus what this writer added
    since), writing stops while fewer than `min_free_bytes` would stay free on the disk, and the in-memory buffer
    holds at most `max_buffer_bytes` (a disk that stalls). When full, new rows are dropped, whole flushes at a
    time (the rows already spooled are kept for the landing, which frees the space); `dropped` counts them.
    """

    RESCAN_SECONDS = 1.0

    def __init__(self, folder: str | Path, *, segment_seconds: float = 30.0, max_segment_bytes: int = 32 << 20,
                 max_bytes: int | None = None, min_free_bytes: int = 64 << 20,
                 max_buffer_bytes: int = 64 << 20) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.segment_seconds = segment_seconds
        self.max_segment_bytes = max_segment_bytes
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        self.max_buffer_bytes = max_buffer_bytes if max_bytes is None else min(max_buffer_bytes, max_bytes)
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._lock = threading.Lock()  # the flushing thread and a shutdown's close() share the segment
        self._path: Path | None = None
        self._opened = 0.0
        self._bytes = 0
        self._room: tuple[float, int, int] | None = None  # (when measured, spool bytes, free disk bytes)
        self._dropped_buffer = 0  # counted on the event loop
        self._dropped_disk = 0  # counted under the lock

    @property
    def dropped(self) -> int:
        """Rows dropped since the writer was made (buffer or spool full)."""
        return self._dropped_buffer + self._dropped_disk

    def append(self, record: dict[str, Any]) -> None:
        self.extend([orjson.dumps(record)])

    def extend(self, lines: list[bytes]) -> None:
        """Buffer records already encoded (one JSON document each); dropped if the buffer is full."""
        size = sum(map(len, lines)) + len(lines)
        if self._buffered + size > self.max_buffer_bytes:
            self._dropped_buffer += len(lines)
            return
        self._buffer.extend(lines)
        self._buffered += size

    def take(self) -> list[bytes]:
        """The buffered records, leaving the buffer empty (called on the event loop, where `append` runs)."""
        lines, self._buffer, self._buffered = self._buffer, [], 0
        return lines

    def write(self, lines: list[bytes]) -> int:
        """Append records to the open segment (opening one if needed); close it when old or big. Returns lines.

        The server calls this in a worker thread, so a slow disk never holds up a request."""
        with self._lock:
            return self._write(lines)

    def _write(self, lines: list[bytes]) -> int:
        data = b"\n".join(lines) + b"\n" if lines else b""
        if lines and not self._has_room(len(data)):
            self._dropped_disk += len(lines)
            lines = []
        if lines:
            if self._path is None:
                stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
                self._path = self.folder / f"{stamp}-{os.getpid()}-{uuid.uuid4().hex[:8]}{OPEN_SUFFIX}"
                self._opened = time.monotonic()
                self._bytes = 0
            with open(self._path, "ab") as out:
                out.write(data)
            self._bytes += len(data)
            measured, used, free = self._room
            self._room = (measured, used + len(data), free - len(data))
        if self._path is not None and (time.monotonic() - self._opened >= self.segment_seconds
                                       or self._bytes >= self.max_segment_bytes):
            self._close_segment()
        return len(lines)

    def _has_room(self, size: int) -> bool:
        now = time.monotonic()
        if self._room is None or now - self._room[0] >= self.RESCAN_SECONDS:
            self._room = (now, spool_bytes(self.folder), shutil.disk_usage(self.folder).free)
        _, used, free = self._room
        return (self.max_bytes is None or used + size <= self.max_bytes) and free - size >= self.min_free_bytes

    def flush(self) -> int:
        """`write(take())` in the caller's thread."""
        return self.write(self.take())

    def close_segment(self) -> None:
        with self._lock:
            self._close_segment()

    def _close_segment(self) -> None:
        if self._path is not None:
            os.replace(self._path, self._path.with_name(self._path.name.removesuffix(OPEN_SUFFIX) + CLOSED_SUFFIX))
            self._path = None

    def close(self) -> None:
        """Write what is buffered and close the segment (waits for a write another thread has under way)."""
        with self._lock:
            self._write(self.take())
            self._close_segment()


def spool_bytes(folder: str | Path) -> int:
    """Bytes of the segments (open and closed) in a spool folder."""
    total = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.endswith((OPEN_SUFFIX, CLOSED_SUFFIX)):
                try:
                    total += entry.stat().st_size
                except FileNotFoundError:  # landed (deleted) or closed (renamed) meanwhile
                    pass
    return total


def ready_segments(folder: str | Path, *, stale_seconds: float = 600.0, limit: int | None = None) -> list[Path]:
    """Closed segments, and open ones nobody has written for `stale_seconds` (their worker died), oldest first."""
    root = Path(folder)
    if not root.is_dir():
        return []
    now = time.time()
    found = [p for p in root.iterdir() if p.name.endswith(CLOSED_SUFFIX)
             or (p.name.endswith(OPEN_SUFFIX) and now - p.stat().st_mtime >= stale_seconds)]
    found.sort(key=lambda p: p.name)
    return found[:limit] if limit else found


def read_segments(paths: list[Path]) -> pl.DataFrame:
    """The records of some segments as a typed frame; a torn last line (a worker killed mid-write) is skipped."""
    records: list[dict] = []
    for path in paths:
        for line in path.read_bytes().splitlines():
            if not line.strip():
                continue
            try:
                records.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
    if not records:
        return pl.DataFrame(schema=SCHEMA)
    frame = pl.DataFrame(records, infer_schema_length=None)
    columns = []
    for name, dtype in SCHEMA.items():
        if name not in frame.columns:
            columns.append(pl.lit(None, dtype=dtype).alias(name))
        elif name == "invoked_at":
            columns.append(pl.col(name).str.to_datetime(time_zone="UTC", time_unit="us").alias(name))
        elif name == "flight_date":
            columns.append(pl.col(name).cast(pl.String).str.to_date(strict=False).alias(name))
        else:
            columns.append(pl.col(name).cast(dtype, strict=False).alias(name))
    return frame.select(columns).unique(subset=list(KEYS), keep="last", maintain_order=True)


@dataclass(frozen=True)
class Landed:
    segments: int
    rows: int
    version: int | None


def land(lake, folder: str | Path, *, stale_seconds: float = 600.0, max_segments: int = 500,
         log: Callable[[str], None] = lambda _: None) -> Landed:
    """MERGE the ready segments into `serving/invocations`, then delete them; repeat until none is left."""

    total_segments = total_rows = 0
    version = delta.version(lake, TABLE)
    while True:
        batch = ready_segments(folder, stale_seconds=stale_seconds, limit=max_segments)
        if not batch:
            break
        frame = read_segments(batch)
        if frame.height:
            version = delta.merge(lake, TABLE, frame, keys=KEYS)
        for path in batch:
            path.unlink(missing_ok=True)
        total_segments += len(batch)
        total_rows += frame.height
        log(f"landed {frame.height:,} invocation(s) from {len(batch)} segment(s) (Delta version {version})")
    return Landed(segments=total_segments, rows=total_rows, version=version)
