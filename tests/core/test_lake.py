"""The lake: one code path for a folder and for an S3-compatible endpoint (a moto server on loopback)."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.core.lake import Lake, LakeError


def _lakes(tmp_path: Path, endpoint: str) -> list[Lake]:
    return [
        Lake(str(tmp_path / "lake")),
        Lake(f"s3://lake-{uuid.uuid4().hex[:8]}/prefix", endpoint_url=endpoint,
             access_key_id="test", secret_access_key="test"),
    ]


def test_same_code_path_for_folder_and_s3(tmp_path: Path, s3_endpoint: str) -> None:
    for lake in _lakes(tmp_path, s3_endpoint):
        lake.check(create=True)
        schema = pa.schema([("x", pa.int64())])
        writer = lake.parquet_writer("raw/t/date=2013-01-01/r.parquet", schema)
        writer.write_table(pa.table({"x": [1, 2, 3]}, schema=schema))
        writer.close()
        lake.publish_json("raw/t/date=2013-01-01/_manifest.json", {"file": "r.parquet"})
        assert lake.read_json("raw/t/date=2013-01-01/_manifest.json") == {"file": "r.parquet"}
        assert lake.read_json("raw/t/missing.json") is None
        assert lake.list_dirs("raw/t") == ["date=2013-01-01"]
        table = pq.read_table(lake.path("raw/t/date=2013-01-01/r.parquet"), filesystem=lake.fs)
        assert table.column("x").to_pylist() == [1, 2, 3]
        assert lake.uri("raw/t").endswith("/raw/t")


def test_publish_on_a_folder_is_atomic_and_leaves_no_temp_file(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    for i in range(3):
        lake.publish_json("m.json", {"i": i})
    assert lake.read_json("m.json") == {"i": 2}
    assert [p.name for p in (tmp_path / "lake").iterdir()] == ["m.json"]


def test_storage_options_spell_out_plain_http_for_object_store() -> None:
    lake = Lake("s3://b", endpoint_url="http://127.0.0.1:9000", access_key_id="k", secret_access_key="s")
    assert lake.storage_options == {
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
    }
    assert "AWS_ALLOW_HTTP" not in Lake("s3://b", endpoint_url="https://s3.example").storage_options
    assert Lake("/tmp/x").storage_options == {}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_endpoint_is_one_clear_line() -> None:
    lake = Lake("s3://b", endpoint_url=f"http://127.0.0.1:{_closed_port()}", access_key_id="k", secret_access_key="s")
    with pytest.raises(LakeError, match="cannot reach the lake") as info:
        lake.check(create=True)
    assert "\n" not in str(info.value)


def test_missing_bucket_is_refused_unless_creation_is_asked(s3_endpoint: str) -> None:
    lake = Lake(f"s3://nope-{uuid.uuid4().hex[:8]}", endpoint_url=s3_endpoint, access_key_id="k", secret_access_key="s")
    with pytest.raises(LakeError, match="does not exist"):
        lake.check()
