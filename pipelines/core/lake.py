"""The data lake: one code path for a local folder (`file://`) and S3 or any S3-compatible endpoint (`s3://`).

pyarrow's filesystem does the byte I/O (with retries and backoff on S3); `storage_options` gives the same
location to deltalake and polars, which speak object_store's option names.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq


class LakeError(RuntimeError):
    """The lake cannot be used; the message says why in one line."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True)
class Lake:
    """A lake rooted at a folder or an S3 prefix. Paths given to the methods are relative to the root."""

    root: str
    region: str = "us-east-1"
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None

    @property
    def scheme(self) -> str:
        return "s3" if self.root.startswith("s3://") else "file"

    @cached_property
    def _base(self) -> str:
        if self.scheme == "s3":
            parsed = urlparse(self.root)
            return f"{parsed.netloc}{parsed.path}".rstrip("/")
        path = self.root[len("file://") :] if self.root.startswith("file://") else self.root
        return str(Path(path).expanduser().resolve())

    @property
    def bucket(self) -> str | None:
        return self._base.split("/", 1)[0] if self.scheme == "s3" else None

    @property
    def allow_http(self) -> bool:
        return bool(self.endpoint_url and self.endpoint_url.startswith("http://"))

    def uri(self, rel: str = "") -> str:
        """The full location of a lake path as deltalake, polars and people see it: `s3://...` or an absolute
        path (not a file:// URI, whose percent-encoding of spaces polars' Delta reader does not undo)."""
        prefix = f"s3://{self._base}" if self.scheme == "s3" else self._base
        return f"{prefix}/{rel}".rstrip("/") if rel else prefix

    def path(self, rel: str) -> str:
        """The path of a lake file inside `fs`."""
        return f"{self._base}/{rel}".rstrip("/")

    @cached_property
    def fs(self) -> pafs.FileSystem:
        if self.scheme == "file":
            return pafs.LocalFileSystem()
        kwargs: dict[str, Any] = {
            "region": self.region,
            "connect_timeout": 5,
            "request_timeout": 30,
            "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=4),
            "allow_bucket_creation": True,  # used only by check(create=True), for test endpoints
        }
        if self.access_key_id:
            kwargs.update(access_key=self.access_key_id, secret_key=self.secret_access_key)
            if self.session_token:
                kwargs["session_token"] = self.session_token
        if self.endpoint_url:
            parsed = urlparse(self.endpoint_url)
            kwargs.update(endpoint_override=parsed.netloc, scheme=parsed.scheme or "https")
            kwargs["force_virtual_addressing"] = False
        return pafs.S3FileSystem(**kwargs)

    @property
    def storage_options(self) -> dict[str, str]:
        """Options for deltalake and polars (object_store names). Empty for a local lake."""
        if self.scheme == "file":
            return {}
        opts = {"AWS_REGION": self.region}
        if self.endpoint_url:
            opts["AWS_ENDPOINT_URL"] = self.endpoint_url
            # object_store refuses plain HTTP unless told, even for a loopback endpoint.
            if self.allow_http:
                opts["AWS_ALLOW_HTTP"] = "true"
        if self.access_key_id:
            opts["AWS_ACCESS_KEY_ID"] = self.access_key_id
            opts["AWS_SECRET_ACCESS_KEY"] = self.secret_access_key or ""
            if self.session_token:
                opts["AWS_SESSION_TOKEN"] = self.session_token
        return opts

    # -- checks ---------------------------------------------------------------------------------

    def check(self, *, create: bool = False) -> None:
        """Fail with one clear line when the lake cannot be reached or written; create a missing bucket if asked."""
        where = self.uri() + (f" at {self.endpoint_url}" if self.endpoint_url else "")
        if self.scheme == "file":
            try:
                Path(self._base).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LakeError(f"cannot create the lake folder {self._base}: {exc.strerror}") from None
            return
        try:
            info = self.fs.get_file_info(self.bucket)
            if info.type == pafs.FileType.NotFound:
                if not create:
                    raise LakeError(f"lake bucket {self.bucket!r} does not exist ({where})")
                self.fs.create_dir(self.bucket)
        except OSError as exc:
            reason = _first_line(exc)
            if "NETWORK_CONNECTION" in reason or "Could not connect" in reason:
                raise LakeError(f"cannot reach the lake {where}: nothing answers at that endpoint") from None
            raise LakeError(f"the lake {where} refused the request: {reason}") from None

    # -- files ----------------------------------------------------------------------------------

    def exists(self, rel: str) -> bool:
        return self.fs.get_file_info(self.path(rel)).type != pafs.FileType.NotFound

    def read_bytes(self, rel: str) -> bytes:
        with self.fs.open_input_stream(self.path(rel)) as stream:
            return stream.read()

    def read_json(self, rel: str) -> dict | None:
        """A JSON document, or None when it does not exist."""
        try:
            return json.loads(self.read_bytes(rel))
        except FileNotFoundError:
            return None

    def publish_bytes(self, rel: str, data: bytes) -> None:
        """Write a whole file so that a reader sees the old content or the new one, never a part.

        An S3 PUT is atomic by itself; on a folder the file is written aside and renamed into place.
        """
        target = self.path(rel)
        if self.scheme == "s3":
            with self.fs.open_output_stream(target) as out:
                out.write(data)
            return
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{target}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "wb") as out:
            out.write(data)
        Path(tmp).replace(target)

    def publish_json(self, rel: str, doc: dict) -> None:
        self.publish_bytes(rel, json.dumps(doc, indent=2, sort_keys=True, default=str).encode())

    def delete(self, rel: str) -> None:
        try:
            self.fs.delete_file(self.path(rel))
        except FileNotFoundError:
            pass

    def list_dirs(self, rel: str) -> list[str]:
        """Names of the folders directly under a lake path (empty when it does not exist)."""
        selector = pafs.FileSelector(self.path(rel), allow_not_found=True)
        return sorted(
            info.base_name for info in self.fs.get_file_info(selector) if info.type == pafs.FileType.Directory
        )

    def parquet_writer(self, rel: str, schema: pa.Schema) -> pq.ParquetWriter:
        """A streaming Parquet writer: batches go out as they come, so memory does not grow with the file."""
        target = self.path(rel)
        if self.scheme == "file":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        return pq.ParquetWriter(target, schema, filesystem=self.fs, compression="zstd")
