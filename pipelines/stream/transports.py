"""Three transports behind one interface: a local spool, Amazon Kinesis, and MQTT.

A `Sink` takes records (partition key, payload bytes); a `Source` gives them back per shard, in sequence
order, from any position: `read(shard, after=..., upto=...)` is repeatable, which is what lets a landing run
that died be run again and produce the same files. Sequence numbers are strings, as Kinesis gives them, and
compare as integers within a shard.

- `Spool`: append-only segment files in a folder, one folder per shard (the embedded default, and the
  durable landing the MQTT bridge writes to). A line is `sequence TAB arrival-ms TAB key TAB payload`;
  a payload that holds a tab, a line break or invalid UTF-8 (or starts with `!`) is stored as `!` + base64.
- `KinesisStream`: boto3; shards and sequence numbers as Kinesis assigns them. Resharding (SplitShard,
  MergeShards, UpdateShardCount) closes shards and opens children: `shards()` lists parents before their
  children (ListShards' ParentShardId and AdjacentParentShardId), and `latest()` holds a child back until
  every parent it still lists has been read to its end, so a partition key's records land in order across a
  split or a merge. Each shard keeps its own cursor, so exactly-once is unchanged.
- `MqttSink`: publishes with QoS 1 to `<prefix>/<key>`; MQTT keeps no history, so the records are read
  back from the spool that `pipelines.stream.bridge` fills.
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import hashlib
import io
import json
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import paho.mqtt.client as mqtt
import polars as pl
from botocore.exceptions import BotoCoreError, ClientError

RECORD_SCHEMA: Final = pl.Schema(
    {
        "shard": pl.String(),
        "sequence": pl.String(),
        "arrival": pl.Datetime("us", "UTC"),
        "partition_key": pl.String(),
        "payload": pl.Binary(),
    }
)
"""Records as a source returns them: where they sit in the stream, when they arrived, and the bytes sent."""

Record = tuple[str, bytes]
"""(partition key, payload) as a sink takes it."""


class TransportError(RuntimeError):
    """The stream cannot be used; the message says why in one line."""


def shard_index(key: str, shards: int) -> int:
    """The shard of a partition key: MD5 into equal hash-key ranges, as Kinesis does for a new stream."""
    value = int.from_bytes(hashlib.md5(key.encode()).digest(), "big")
    return min(value * shards >> 128, shards - 1)


def shard_name(index: int) -> str:
    return f"shardId-{index:012d}"


def empty_records() -> pl.DataFrame:
    return pl.DataFrame(schema=RECORD_SCHEMA)


class Sink(ABC):
    """Where a producer sends records."""

    kind: str

    @abstractmethod
    def put(self, records: Sequence[Record]) -> int:
        """Send the records; return how many were accepted (all, or raise)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class Source(ABC):
    """Where the landing reads records from, by shard and sequence number."""

    kind: str

    @abstractmethod
    def shards(self) -> list[str]:
        """The shards that hold records, in order."""

    @abstractmethod
    def read(self, shard: str, *, after: str | None, upto: str | None = None, limit: int = 100_000) -> pl.DataFrame:
        """Records with after < sequence <= upto (at most `limit`), in sequence order, as RECORD_SCHEMA."""

    def latest(self, shard: str, *, after: str | None, limit: int) -> str | None:
        """The sequence a batch of at most `limit` records after `after` ends at; None when nothing is new."""
        records = self.read(shard, after=after, limit=limit)
        return None if records.is_empty() else records["sequence"][-1]

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


# -- spool --------------------------------------------------------------------------------------------------

_SPOOL_META = "_spool.json"
_SEGMENT_SUFFIX = ".log"


def _escape(payload: bytes) -> bytes:
    """A payload safe on one line of a segment; the rare unsafe one is stored as `!` + base64."""
    unsafe = payload.startswith(b"!") or b"\t" in payload or b"\n" in payload or b"\r" in payload
    if not unsafe:
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError:
            unsafe = True
    return b"!" + base64.b64encode(payload) if unsafe else payload


class Spool(Sink, Source):
    """Append-only segment files under `folder/<shard>/`, each named by its first sequence number.

    Writers hold an exclusive lock on the shard while they append, so a producer and the MQTT bridge can
    share a spool; `fsync=True` makes a returned `put` durable (what the bridge needs before it acknowledges).
    A line cut short by a crash is ignored by readers and trimmed by the next writer.
    """

    kind = "spool"

    def __init__(self, folder: str | os.PathLike, *, shards: int = 2, segment_bytes: int = 16 << 20,
                 fsync: bool = True) -> None:
        if shards < 1:
            raise ValueError(f"a spool needs at least one shard, got {shards}")
        self.folder = Path(folder)
        self._shards = shards
        self.segment_bytes = segment_bytes
        self.fsync = fsync

    def _shard_count(self, *, create: bool) -> int:
        meta = self.folder / _SPOOL_META
        if meta.exists():
            return int(json.loads(meta.read_text())["shards"])
        if create:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = meta.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"shards": self._shards}))
            tmp.replace(meta)
        return self._shards

    def shards(self) -> list[str]:
        if not (self.folder / _SPOOL_META).exists():
            return []
        return [shard_name(i) for i in range(self._shard_count(create=False))]

    def _segments(self, shard: str) -> list[tuple[int, Path]]:
        folder = self.folder / shard
        if not folder.is_dir():
            return []
        return sorted((int(p.stem), p) for p in folder.glob(f"*{_SEGMENT_SUFFIX}"))

    @staticmethod
    def _complete(data: bytes) -> bytes:
        end = data.rfind(b"\n")
        return data[: end + 1] if end >= 0 else b""

    @staticmethod
    def _tail(path: Path) -> tuple[int, bytes | None]:
        """(where the complete lines end, the last complete line or None), reading only as much as needed."""
        size = path.stat().st_size
        window = 1 << 16
        with open(path, "rb") as f:
            while True:
                start = max(0, size - window)
                f.seek(start)
                data = f.read()
                end = data.rfind(b"\n")
                if end >= 0:
                    before = data.rfind(b"\n", 0, end)
                    if before >= 0 or start == 0:
                        return start + end + 1, data[before + 1 : end]
                elif start == 0:
                    return 0, None
                window *= 4

    def _last_sequence(self, shard: str) -> int | None:
        """The last complete record's sequence number (reads only the tail of the last segment)."""
        for _first, path in reversed(self._segments(shard)):
            _end, line = self._tail(path)
            if line:
                return int(line.split(b"\t", 1)[0])
        return None

    def put(self, records: Sequence[Record]) -> int:
        count = self._shard_count(create=True)
        by_shard: dict[int, list[Record]] = {}
        for key, payload in records:
            if not key or any(c in key for c in "\t\n\r"):
                raise ValueError(f"bad partition key {key!r}: it must be non-empty, without tabs or line breaks")
            by_shard.setdefault(shard_index(key, count), []).append((key, payload))
        for index, items in by_shard.items():
            self._append(shard_name(index), items)
        return len(records)

    def _append(self, shard: str, items: list[Record]) -> None:
        folder = self.folder / shard
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                segments = self._segments(shard)
                if segments:
                    self._trim_partial(segments[-1][1])
                last = self._last_sequence(shard)
                seq = 0 if last is None else last + 1
                now = int(time.time() * 1000)
                lines = b"".join(b"%d\t%d\t%s\t%s\n" % (seq + i, now, key.encode(), _escape(payload))
                                 for i, (key, payload) in enumerate(items))
                path = segments[-1][1] if segments and segments[-1][1].stat().st_size < self.segment_bytes else (
                    folder / f"{seq:020d}{_SEGMENT_SUFFIX}")
                with open(path, "ab") as out:
                    out.write(lines)
                    out.flush()
                    if self.fsync:
                        os.fsync(out.fileno())
                if self.fsync and path.stat().st_size == len(lines):  # a new segment: make its name durable too
                    dir_fd = os.open(folder, os.O_RDONLY)
                    try:
                        os.fsync(dir_fd)
                    finally:
                        os.close(dir_fd)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _trim_partial(self, path: Path) -> None:
        """Cut a line left half-written by a crashed writer, so the next line starts clean."""
        end, _line = self._tail(path)
        if end != path.stat().st_size:
            with open(path, "r+b") as f:
                f.truncate(end)

    def latest(self, shard: str, *, after: str | None, limit: int) -> str | None:
        last = self._last_sequence(shard)
        if last is None:
            return None
        start = -1 if after is None else int(after)
        return None if last <= start else str(min(last, start + limit))

    def read(self, shard: str, *, after: str | None, upto: str | None = None, limit: int = 100_000) -> pl.DataFrame:
        start = -1 if after is None else int(after)
        stop = None if upto is None else int(upto)
        segments = self._segments(shard)
        firsts = [first for first, _ in segments]
        frames: list[pl.DataFrame] = []
        rows = 0
        for i, (first, path) in enumerate(segments):
            following = firsts[i + 1] if i + 1 < len(firsts) else None
            if following is not None and following <= start + 1:
                continue  # the whole segment is before `after`
            if stop is not None and first > stop:
                break
            data = self._complete(path.read_bytes())
            if not data:
                continue
            frame = pl.read_csv(
                io.BytesIO(data), separator="\t", has_header=False, quote_char=None,
                schema={"sequence": pl.Int64, "arrival": pl.Int64, "partition_key": pl.String, "payload": pl.String},
            ).filter(pl.col("sequence") > start)
            if stop is not None:
                frame = frame.filter(pl.col("sequence") <= stop)
            frames.append(frame)
            rows += frame.height
            if rows >= limit:
                break
        if not frames:
            return empty_records()
        payload = pl.col("payload").fill_null("")
        return (
            pl.concat(frames).head(limit)
            .select(
                pl.lit(shard).alias("shard"),
                pl.col("sequence").cast(pl.String),
                pl.from_epoch("arrival", time_unit="ms").dt.replace_time_zone("UTC").dt.cast_time_unit("us"),
                "partition_key",
                pl.when(payload.str.starts_with("!")).then(payload.str.slice(1).str.decode("base64"))
                .otherwise(payload.cast(pl.Binary)).alias("payload"),
            )
        )


# -- Kinesis ------------------------------------------------------------------------------------------------


def parents_first(parents: dict[str, tuple[str, ...]]) -> list[str]:
    """Shard ids ordered so every parent comes before its children (by id among those that are ready)."""
    waiting = {shard: set(ps) for shard, ps in parents.items()}
    order: list[str] = []
    while waiting:
        ready = sorted(s for s, ps in waiting.items() if not ps - set(order))
        if not ready:  # a cycle cannot come from Kinesis; keep the rest in id order rather than loop
            ready = sorted(waiting)
        for shard in ready:
            order.append(shard)
            del waiting[shard]
    return order


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class KinesisStream(Sink, Source):
    """An Amazon Kinesis data stream (or moto/LocalStack at `endpoint_url`). `create` makes a missing stream."""

    kind = "kinesis"
    MAX_PUT = 500  # records per PutRecords call
    MAX_GET = 10_000  # records per GetRecords call

    def __init__(self, name: str, *, region: str = "us-east-1", endpoint_url: str | None = None,
                 access_key_id: str | None = None, secret_access_key: str | None = None,
                 session_token: str | None = None, create: bool = False, shard_count: int = 2) -> None:
        self.name = name
        self.region = region
        self.endpoint_url = endpoint_url
        self._credentials = {
            k: v for k, v in {"aws_access_key_id": access_key_id, "aws_secret_access_key": secret_access_key,
                              "aws_session_token": session_token}.items() if v
        }
        self.create = create
        self.shard_count = shard_count
        self._client: Any = None
        self._checked = False
        self._parents: dict[str, tuple[str, ...]] = {}  # shard -> its listed parents, as of the last shards()
        self._closed: set[str] = set()
        self._finished: set[str] = set()  # closed shards read to their end in this planning pass

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3  # noqa: PLC0415 - start-up: boto3 ~0.3 s
            from botocore.config import Config  # noqa: PLC0415 - start-up: botocore ~0.2 s

            config = Config(retries={"mode": "standard", "max_attempts": 8}, connect_timeout=5, read_timeout=30)
            self._client = boto3.client("kinesis", region_name=self.region, endpoint_url=self.endpoint_url,
                                        config=config, **self._credentials)
        return self._client

    def check(self) -> None:
        """Fail with one line when the stream cannot be reached; create it first when asked to."""
        if self._checked:
            return

        where = f"Kinesis stream {self.name!r}" + (f" at {self.endpoint_url}" if self.endpoint_url else "")
        try:
            try:
                status = self.client.describe_stream_summary(StreamName=self.name)["StreamDescriptionSummary"]
            except self.client.exceptions.ResourceNotFoundException:
                if not self.create:
                    raise TransportError(f"{where} does not exist") from None
                self.client.create_stream(StreamName=self.name, ShardCount=self.shard_count)
                self.client.get_waiter("stream_exists").wait(StreamName=self.name,
                                                             WaiterConfig={"Delay": 1, "MaxAttempts": 60})
                status = {"StreamStatus": "ACTIVE"}
            if status["StreamStatus"] not in ("ACTIVE", "UPDATING"):
                raise TransportError(f"{where} is {status['StreamStatus']}, not ACTIVE")
        except (BotoCoreError, ClientError) as exc:
            raise TransportError(f"cannot use {where}: {_first_line(exc)}") from None
        self._checked = True

    def shards(self) -> list[str]:
        """Every listed shard, parents before children; starts a planning pass (see `latest`)."""
        self.check()
        listed: list[dict] = []
        kwargs: dict[str, Any] = {"StreamName": self.name}
        while True:
            page = self.client.list_shards(**kwargs)
            listed += page["Shards"]
            if not page.get("NextToken"):
                break
            kwargs = {"NextToken": page["NextToken"]}
        ids = {s["ShardId"] for s in listed}
        # Parents past the retention period are no longer listed: nothing of theirs is left to wait for.
        self._parents = {s["ShardId"]: tuple(p for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId"))
                                             if p in ids) for s in listed}
        self._closed = {s["ShardId"] for s in listed if "EndingSequenceNumber" in s["SequenceNumberRange"]}
        self._finished = set()
        return parents_first(self._parents)

    def latest(self, shard: str, *, after: str | None, limit: int) -> str | None:
        """The last sequence number within `limit` records after `after`; None while a parent of the shard (as
        the last `shards()` listed them) has not been read to its end in this pass, or last time."""
        if any(p not in self._finished for p in self._parents.get(shard, ())):
            return None
        records = self.read(shard, after=after, limit=limit)
        if shard in self._closed and records.height < limit:
            self._finished.add(shard)  # a closed shard read to its end: its children may follow
        return records["sequence"][-1] if records.height else None

    def put(self, records: Sequence[Record]) -> int:
        self.check()
        for start in range(0, len(records), self.MAX_PUT):
            pending = [{"PartitionKey": key, "Data": payload} for key, payload in records[start : start + self.MAX_PUT]]
            for attempt in range(10):
                result = self.client.put_records(StreamName=self.name, Records=pending)
                if not result.get("FailedRecordCount"):
                    break
                # Throttled entries fail one by one; send those again, with backoff.
                pending = [r for r, out in zip(pending, result["Records"], strict=True) if out.get("ErrorCode")]
                time.sleep(min(2.0, 0.05 * 2**attempt))
            else:
                raise TransportError(f"Kinesis refused {len(pending)} record(s) after 10 attempts (throttled)")
        return len(records)

    def read(self, shard: str, *, after: str | None, upto: str | None = None, limit: int = 100_000) -> pl.DataFrame:
        self.check()
        if after is None:
            iterator = self.client.get_shard_iterator(StreamName=self.name, ShardId=shard,
                                                      ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        else:
            iterator = self.client.get_shard_iterator(StreamName=self.name, ShardId=shard,
                                                      ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                                                      StartingSequenceNumber=after)["ShardIterator"]
        stop = None if upto is None else int(upto)
        sequences: list[str] = []
        arrivals: list[dt.datetime] = []
        keys: list[str] = []
        payloads: list[bytes] = []
        empty_polls = 0
        while iterator and len(sequences) < limit:
            wanted = min(self.MAX_GET, limit - len(sequences))
            page = self.client.get_records(ShardIterator=iterator, Limit=wanted)
            done = False
            for record in page["Records"]:
                if stop is not None and int(record["SequenceNumber"]) > stop:
                    done = True
                    break
                sequences.append(record["SequenceNumber"])
                arrivals.append(record["ApproximateArrivalTimestamp"])
                keys.append(record["PartitionKey"])
                payloads.append(record["Data"])
            if done or (stop is not None and sequences and int(sequences[-1]) >= stop):
                break
            iterator = page.get("NextShardIterator")
            if page["Records"] and len(page["Records"]) < wanted and page.get("MillisBehindLatest") == 0:
                break  # caught up with the tip of the shard
            if not page["Records"]:
                # Caught up (or an empty stretch of a real stream: keep going while Kinesis says we are behind).
                empty_polls += 1
                if page.get("MillisBehindLatest", 0) == 0 or empty_polls > 20:
                    break
        if not sequences:
            return empty_records()
        return pl.DataFrame(
            {"shard": [shard] * len(sequences), "sequence": sequences,
             "arrival": [a.astimezone(dt.timezone.utc) for a in arrivals], "partition_key": keys,
             "payload": payloads},
            schema=RECORD_SCHEMA,
        )


# -- MQTT ---------------------------------------------------------------------------------------------------


def connect(client: mqtt.Client, host: str, port: int) -> None:
    """Connect an MQTT client and start its network loop; TransportError when the broker cannot be reached."""
    try:
        client.connect(host, port, keepalive=30)
    except OSError as exc:
        raise TransportError(f"cannot reach the MQTT broker at {host}:{port}: {exc.strerror or exc}") from None
    client.loop_start()


class MqttSink(Sink):
    """Publishes each record with QoS 1 to `<prefix>/<partition key>` and waits for the broker's PUBACKs."""

    kind = "mqtt"

    def __init__(self, host: str = "127.0.0.1", port: int = 1883, *, topic_prefix: str = "tributary/telemetry",
                 client_id: str = "", timeout: float = 30.0) -> None:
        self.host, self.port, self.topic_prefix = host, port, topic_prefix.rstrip("/")
        self.client_id = client_id
        self.timeout = timeout
        self._client: Any = None

    def _connect(self) -> Any:
        if self._client is None:
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=True)
            client.max_inflight_messages_set(100)
            client.max_queued_messages_set(0)
            connect(client, self.host, self.port)
            self._client = client
        return self._client

    def put(self, records: Sequence[Record]) -> int:
        client = self._connect()
        infos = [client.publish(f"{self.topic_prefix}/{key}", payload, qos=1) for key, payload in records]
        deadline = time.monotonic() + self.timeout
        for info in infos:
            info.wait_for_publish(timeout=max(0.0, deadline - time.monotonic()))
            if not info.is_published():
                raise TransportError(f"the MQTT broker at {self.host}:{self.port} did not acknowledge within "
                                     f"{self.timeout:.0f}s")
        return len(records)

    def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None
