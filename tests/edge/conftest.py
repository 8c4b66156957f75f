"""Edge fixtures: bundles of the two registered delay_model versions, signing keys, a repository per test."""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.edge import bundle as bundles
from pipelines.edge import keys as keyring
from pipelines.edge.repository import Release, Repository
from pipelines.core.lake import Lake
from tests.conftest import service_missing

BROKER = ("127.0.0.1", 1883)


@dataclass(frozen=True)
class EdgeModels:
    champion: bundles.Bundle
    challenger: bundles.Bundle
    bad: bundles.Bundle
    rows: list[dict]
    key_dir: Path


@pytest.fixture(scope="session")
def edge_models(registered_delay_model, tmp_path_factory) -> EdgeModels:
    from pipelines.ml.artifacts import download

    m = registered_delay_model
    root = tmp_path_factory.mktemp("edge_models")
    rows = bundles.holdout_rows(m.holdout, n=64)
    champion = download(m.settings, m.champion, root / "champion")
    challenger = download(m.settings, m.challenger, root / "challenger")
    key_dir = root / "keys"
    keyring.generate(key_dir)
    return EdgeModels(champion=bundles.build(champion, rows), challenger=bundles.build(challenger, rows),
                      bad=bundles.build(challenger, rows, bad=True), rows=rows, key_dir=key_dir)


@dataclass
class Repo:
    repo: Repository
    lake: Lake
    keys: keyring.KeySet
    releases: dict[str, Release]

    @property
    def root(self) -> str:
        return self.lake.uri(self.repo.prefix)

    def target_file(self, release: Release) -> Path:
        return Path(self.root, "targets", f"{release.sha256}.{release.path}")


@pytest.fixture
def repo(edge_models: EdgeModels, tmp_path: Path) -> Repo:
    """A repository with the champion (release 1), the challenger (2) and a bad-release drill (3)."""
    lake = Lake(str(tmp_path / "lake"))
    repository = Repository(lake)
    keys = keyring.load(edge_models.key_dir)
    releases = {}
    for label, b, bad in (("champion", edge_models.champion, False), ("challenger", edge_models.challenger, False),
                          ("bad", edge_models.bad, True)):
        releases[label] = repository.publish(b.name, b.data, keys, custom={
            "model_version": b.model_version, "bad_release_drill": bad})
    return Repo(repository, lake, keys, releases)


@pytest.fixture(scope="module")
def mosquitto() -> tuple[str, int]:
    """The local Mosquitto broker of the e2e edge tests: skipped when it is not running (failed under CI)."""
    try:
        socket.create_connection(BROKER, timeout=2).close()
    except OSError as exc:
        service_missing("Mosquitto at 127.0.0.1:1883", exc)
    return BROKER


def new_devices(repo: Repo, tmp_path: Path, prefix: str, count: int) -> tuple[list[str], Path]:
    """`count` fresh device names (each's state is `tmp_path / name`) and the root metadata they trust."""
    root_json = tmp_path / "root.json"
    root_json.write_bytes(repo.repo.root_bytes())
    tag = uuid.uuid4().hex[:6]
    return [f"{prefix}-{tag}-{i}" for i in range(count)], root_json
