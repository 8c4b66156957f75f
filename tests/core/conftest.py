"""Fixtures of the core tests."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from pipelines.core.lake import Lake


@pytest.fixture(params=["folder", "s3"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Lake:
    """A lake on a folder, then on S3 (the session's moto server): every Delta test runs on both."""
    if request.param == "folder":
        return Lake(str(tmp_path / "lake"))
    endpoint = request.getfixturevalue("s3_endpoint")
    lake = Lake(f"s3://core-{uuid.uuid4().hex[:8]}", endpoint_url=endpoint, access_key_id="t", secret_access_key="t")
    lake.check(create=True)
    return lake
