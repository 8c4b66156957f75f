"""The NoSQL document store: an interface, a local folder, and DynamoDB.

Items are kept as they arrived (the body's bytes, not a re-encoding), so landing can copy them byte for byte
and a broken document still reaches quarantine. Every item lives in one of `SHARDS` partitions (a stable hash
of its id) under a sort key `arrival_key = "<UTC arrival time>#<doc id>"`; a reader asks each shard for the
keys after its cursor, which on DynamoDB is one `Query` per shard, not a table scan. The cursor is a JSON
object, shard -> last key read.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import uuid
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
import time

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from pipelines.documents import DocumentError

SHARDS = 4
Cursor = dict[str, str]


@dataclass(frozen=True)
class StoreItem:
    """One document in the store: its id, arrival key, content type, a few attributes, and its raw body."""

    doc_id: str
    arrival_key: str
    content_type: str
    body: bytes
    kind: str = ""
    tailnum: str | None = None

    @property
    def shard(self) -> str:
        return shard_of(self.doc_id)

    @property
    def arrived_at(self) -> str:
        return self.arrival_key.split("#", 1)[0]


def shard_of(doc_id: str) -> str:
    return f"s{zlib.crc32(doc_id.encode()) % SHARDS}"


def arrival_key(doc_id: str, at: dt.datetime) -> str:
    """A sort key that orders items by arrival (microseconds, UTC) and stays unique per document."""
    return f"{at.astimezone(dt.UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{doc_id}"


class DocumentStore(Protocol):
    """What landing and the sensor need from a NoSQL store."""

    def describe(self) -> str: ...

    def ensure(self) -> None:
        """Check the store can be reached (creating it where allowed); DocumentError in one line otherwise."""

    def put(self, items: Iterable[StoreItem]) -> int: ...

    def read_since(self, cursor: Cursor, *, limit: int | None = None) -> list[StoreItem]:
        """Items after the cursor, oldest first; at most `limit` (the oldest ones) when given."""

    def latest(self, cursor: Cursor) -> Cursor:
        """The newest key of each shard that has items after the cursor (cheap: the sensor calls it)."""


def advance(cursor: Cursor, items: Sequence[StoreItem]) -> Cursor:
    """The cursor after reading `items`."""
    out = dict(cursor)
    for item in items:
        if item.arrival_key > out.get(item.shard, ""):
            out[item.shard] = item.arrival_key
    return out


def _oldest(items: list[StoreItem], limit: int | None) -> list[StoreItem]:
    items.sort(key=lambda i: i.arrival_key)
    return items if limit is None else items[:limit]


class FolderDocumentStore:
    """The embedded store of the `local` profile: `<root>/<shard>/<arrival key>.json`, one envelope per item.

    Files are written aside and renamed into place, so a reader never sees half an item.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def describe(self) -> str:
        return f"folder {self.root}"

    def ensure(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DocumentError(f"cannot create the document store folder {self.root}: {exc.strerror}") from None

    def _name(self, key: str) -> str:
        return key.replace(":", "").replace("#", "~") + ".json"

    def put(self, items: Iterable[StoreItem]) -> int:
        count = 0
        for item in items:
            folder = self.root / item.shard
            folder.mkdir(parents=True, exist_ok=True)
            envelope = {"doc_id": item.doc_id, "arrival_key": item.arrival_key, "content_type": item.content_type,
                        "kind": item.kind, "tailnum": item.tailnum,
                        "body_b64": base64.b64encode(item.body).decode()}
            target = folder / self._name(item.arrival_key)
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
            tmp.write_text(json.dumps(envelope))
            tmp.replace(target)
            count += 1
        return count

    def _keys_after(self, shard: str, after: str) -> list[Path]:
        folder = self.root / shard
        if not folder.is_dir():
            return []
        cut = self._name(after) if after else ""
        return sorted(p for p in folder.iterdir() if p.suffix == ".json" and not p.name.startswith(".")
                      and p.name > cut)

    def read_since(self, cursor: Cursor, *, limit: int | None = None) -> list[StoreItem]:
        items = []
        for s in range(SHARDS):
            shard = f"s{s}"
            for path in self._keys_after(shard, cursor.get(shard, ""))[: limit]:
                env = json.loads(path.read_text())
                items.append(StoreItem(env["doc_id"], env["arrival_key"], env["content_type"],
                                       base64.b64decode(env["body_b64"]), env.get("kind", ""), env.get("tailnum")))
        return _oldest(items, limit)

    def latest(self, cursor: Cursor) -> Cursor:
        out = {}
        for s in range(SHARDS):
            shard = f"s{s}"
            paths = self._keys_after(shard, cursor.get(shard, ""))
            if paths:
                out[shard] = json.loads(paths[-1].read_text())["arrival_key"]
        return out


class DynamoDocumentStore:
    """DynamoDB (or a compatible endpoint: LocalStack, moto): hash key `shard`, range key `arrival_key`."""

    def __init__(
        self,
        table: str,
        *,
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        create: bool = False,
    ) -> None:
        self.table_name = table
        self.region = region
        self.endpoint_url = endpoint_url
        self._credentials = {k: v for k, v in {"aws_access_key_id": access_key_id,
                                               "aws_secret_access_key": secret_access_key,
                                               "aws_session_token": session_token}.items() if v}
        self.create = create
        self._client = None

    def describe(self) -> str:
        return f"DynamoDB table {self.table_name!r}" + (f" at {self.endpoint_url}" if self.endpoint_url else "")

    @property
    def client(self):
        if self._client is None:
            import boto3  # noqa: PLC0415 - start-up: boto3 ~0.3 s
            from botocore.config import Config  # noqa: PLC0415 - start-up: botocore ~0.2 s

            self._client = boto3.client(
                "dynamodb", region_name=self.region, endpoint_url=self.endpoint_url,
                config=Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=30),
                **self._credentials,
            )
        return self._client

    def ensure(self) -> None:
        try:
            self.client.describe_table(TableName=self.table_name)
            return
        except EndpointConnectionError:
            raise DocumentError(f"cannot reach {self.describe()}: nothing answers at that endpoint") from None
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                message = exc.response["Error"].get("Message", "")
                raise DocumentError(f"{self.describe()} refused the request: {message}") from None
        except BotoCoreError as exc:
            raise DocumentError(f"cannot use {self.describe()}: {exc}") from None
        if not self.create:
            raise DocumentError(f"{self.describe()} does not exist (set TRIBUTARY_DOCUMENTS_TABLE or create it)")
        self.client.create_table(
            TableName=self.table_name,
            KeySchema=[{"AttributeName": "shard", "KeyType": "HASH"},
                       {"AttributeName": "arrival_key", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "shard", "AttributeType": "S"},
                                  {"AttributeName": "arrival_key", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.client.get_waiter("table_exists").wait(TableName=self.table_name, WaiterConfig={"Delay": 1})

    def put(self, items: Iterable[StoreItem]) -> int:
        count = 0
        batch: list[dict] = []
        for item in items:
            attrs = {
                "shard": {"S": item.shard},
                "arrival_key": {"S": item.arrival_key},
                "doc_id": {"S": item.doc_id},
                "content_type": {"S": item.content_type},
                "kind": {"S": item.kind},
                "body": {"B": item.body},
            }
            if item.tailnum:
                attrs["tailnum"] = {"S": item.tailnum}
            batch.append({"PutRequest": {"Item": attrs}})
            count += 1
            if len(batch) == 25:
                self._write(batch)
                batch = []
        if batch:
            self._write(batch)
        return count

    def _write(self, batch: list[dict]) -> None:
        """BatchWriteItem, re-sending what DynamoDB left unprocessed (throttling) with backoff."""

        pending = {self.table_name: batch}
        for attempt in range(8):
            unprocessed = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not unprocessed:
                return
            pending = unprocessed
            time.sleep(min(0.05 * 2**attempt, 2.0))
        raise DocumentError(f"{self.describe()} kept throttling: {len(pending[self.table_name])} item(s) not written")

    def _query(self, shard: str, after: str, *, newest_first: bool = False, limit: int | None = None):
        kwargs = {
            "TableName": self.table_name,
            "KeyConditionExpression": "#s = :s AND arrival_key > :after",
            "ExpressionAttributeNames": {"#s": "shard"},
            "ExpressionAttributeValues": {":s": {"S": shard}, ":after": {"S": after or " "}},
            "ScanIndexForward": not newest_first,
        }
        if limit:
            kwargs["Limit"] = limit
        seen = 0
        while True:
            page = self.client.query(**kwargs)
            for raw in page.get("Items", []):
                yield raw
                seen += 1
                if limit and seen >= limit:
                    return
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def read_since(self, cursor: Cursor, *, limit: int | None = None) -> list[StoreItem]:
        items = []
        for s in range(SHARDS):
            shard = f"s{s}"
            for raw in self._query(shard, cursor.get(shard, ""), limit=limit):
                items.append(StoreItem(
                    doc_id=raw["doc_id"]["S"], arrival_key=raw["arrival_key"]["S"],
                    content_type=raw["content_type"]["S"], body=bytes(raw["body"]["B"]),
                    kind=raw.get("kind", {}).get("S", ""), tailnum=raw.get("tailnum", {}).get("S"),
                ))
        return _oldest(items, limit)

    def latest(self, cursor: Cursor) -> Cursor:
        out = {}
        for s in range(SHARDS):
            shard = f"s{s}"
            for raw in self._query(shard, cursor.get(shard, ""), newest_first=True, limit=1):
                out[shard] = raw["arrival_key"]["S"]
        return out
