"""The document store: the same behaviour from the local folder and from DynamoDB (a moto server on loopback)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest

from pipelines.documents import DocumentError
from pipelines.documents.store import (
    DynamoDocumentStore,
    FolderDocumentStore,
    StoreItem,
    advance,
    arrival_key,
)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _items(n: int, start: int = 0) -> list[StoreItem]:
    return [StoreItem(f"mr-{i:04d}", arrival_key(f"mr-{i:04d}", T0 + dt.timedelta(seconds=i)), "application/json",
                      b'{"i": %d}' % i, "maintenance_record", "N14228") for i in range(start, start + n)]


@pytest.fixture(params=["folder", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "folder":
        return FolderDocumentStore(tmp_path / "store")
    endpoint = request.getfixturevalue("s3_endpoint")
    return DynamoDocumentStore(f"docs-{uuid.uuid4().hex[:8]}", endpoint_url=endpoint, access_key_id="test",
                               secret_access_key="test", create=True)


def test_items_come_back_in_arrival_order_after_the_cursor(store) -> None:
    store.ensure()
    store.ensure()  # idempotent
    assert store.read_since({}) == [] and store.latest({}) == {}
    assert store.put(_items(40)) == 40
    everything = store.read_since({})
    assert [i.doc_id for i in everything] == [f"mr-{i:04d}" for i in range(40)]
    assert everything[7].body == b'{"i": 7}' and everything[7].tailnum == "N14228"
    assert [i.doc_id for i in store.read_since({}, limit=5)] == [f"mr-{i:04d}" for i in range(5)]

    cursor = advance({}, everything[:25])
    rest = store.read_since(cursor)
    assert [i.doc_id for i in rest] == [f"mr-{i:04d}" for i in range(25, 40)]
    assert set(store.latest(cursor).values()) <= {i.arrival_key for i in rest}
    assert max(store.latest(cursor).values()) == everything[-1].arrival_key

    store.put(_items(3, start=40))
    assert [i.doc_id for i in store.read_since(advance(cursor, rest))] == ["mr-0040", "mr-0041", "mr-0042"]
    assert store.latest(advance({}, store.read_since({}))) == {}


def test_missing_dynamodb_table_and_unreachable_endpoint_are_one_line(s3_endpoint: str) -> None:
    missing = DynamoDocumentStore("no-such-table", endpoint_url=s3_endpoint, access_key_id="test",
                                  secret_access_key="test")
    with pytest.raises(DocumentError, match="DynamoDB table 'no-such-table' .* does not exist"):
        missing.ensure()
    nowhere = DynamoDocumentStore("t", endpoint_url="http://127.0.0.1:9", access_key_id="test",
                                  secret_access_key="test")
    with pytest.raises(DocumentError, match="cannot reach DynamoDB table 't' at http://127.0.0.1:9"):
        nowhere.ensure()


def test_folder_store_writes_whole_files(tmp_path: Path) -> None:
    store = FolderDocumentStore(tmp_path / "store")
    store.put(_items(5))
    names = [p.name for p in (tmp_path / "store").rglob("*")]
    assert not any(n.endswith(".tmp") for n in names)
