"""The TUF repository in the lake: consistent snapshots, files first, `timestamp.json` last.

Layout under `edge/repository/`:
    metadata/1.root.json, root.json          versioned roots (and the newest, for provisioning devices)
    metadata/<n>.targets.json                 one per release
    metadata/<n>.snapshot.json
    metadata/timestamp.json                   the only mutable name, written last
    targets/<sha256>.<name>                   bundles under hash-prefixed names

A release writes the bundle, then targets, then snapshot, then timestamp; each under a new name except the
timestamp, whose replacement is one atomic PUT or rename (`Lake.publish_bytes`). A client that reads the
old timestamp sees only old, complete files; one that reads the new timestamp finds every file it names.
Built on python-tuf's Metadata API; the layout follows python-tuf's `examples/repository`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer

from pipelines.edge.keys import ROLES, ROOT_THRESHOLD, KeySet
from pipelines.core.lake import Lake

PREFIX = "edge/repository"
EXPIRY = {
    "root": dt.timedelta(days=365),
    "targets": dt.timedelta(days=90),
    "snapshot": dt.timedelta(days=7),
    "timestamp": dt.timedelta(days=1),
}
"""The timestamp is short-lived (freeze attacks last at most a day); `keep_fresh` (the `edge_keep_fresh`
schedule) re-signs it, and the snapshot and targets, before they expire. The same day is a device's tolerance
for a clock running ahead: see `agent` on clock skew."""
RESIGN_WHEN_LEFT = {
    "timestamp": dt.timedelta(hours=12),
    "snapshot": dt.timedelta(days=3),
    "targets": dt.timedelta(days=30),
}
"""`keep_fresh` re-signs a role once less than this is left of its life: half the timestamp's day, so an
hourly schedule may miss eleven runs in a row before a device sees expired metadata."""

_SERIALIZER = JSONSerializer(compact=False)


class RepositoryError(ValueError):
    """The repository cannot be read or published; one line says why."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Release:
    """A published bundle: the TUF target and what it says about itself."""

    path: str
    length: int
    sha256: str
    model_version: str
    release: int
    bad: bool

    @classmethod
    def from_target(cls, info: TargetFile) -> Release:
        custom = info.custom or {}
        return cls(path=info.path, length=info.length, sha256=info.hashes["sha256"],
                   model_version=str(custom.get("model_version", "")), release=int(custom.get("release", 0)),
                   bad=bool(custom.get("bad_release_drill", False)))


class Repository:
    """Read and publish the TUF repository at `<lake>/edge/repository`."""

    def __init__(self, lake: Lake, prefix: str = PREFIX, *, clock: Callable[[], dt.datetime] = _now) -> None:
        self.lake, self.prefix, self.clock = lake, prefix.rstrip("/"), clock

    def rel(self, *parts: str) -> str:
        return "/".join((self.prefix, *parts))

    # -- reading ----------------------------------------------------------------------------------

    def initialized(self) -> bool:
        return self.lake.exists(self.rel("metadata", "timestamp.json"))

    def _read(self, name: str) -> Metadata:
        try:
            return Metadata.from_bytes(self.lake.read_bytes(self.rel("metadata", name)))
        except FileNotFoundError:
            raise RepositoryError(f"the repository at {self.lake.uri(self.prefix)} has no {name}") from None

    def root_bytes(self) -> bytes:
        """The newest root, as a device is provisioned with it."""
        return self.lake.read_bytes(self.rel("metadata", "root.json"))

    def current(self) -> tuple[Metadata[Root], Metadata[Timestamp], Metadata[Snapshot], Metadata[Targets]]:
        """The release a client sees now, following the timestamp."""
        timestamp = self._read("timestamp.json")
        snapshot = self._read(f"{timestamp.signed.snapshot_meta.version}.snapshot.json")
        targets = self._read(f"{snapshot.signed.meta['targets.json'].version}.targets.json")
        return self._read("root.json"), timestamp, snapshot, targets

    def releases(self) -> list[Release]:
        """Every published bundle, oldest release first."""
        if not self.initialized():
            return []
        targets = self.current()[3].signed.targets
        return sorted((Release.from_target(t) for t in targets.values()), key=lambda r: r.release)

    def latest(self, *, include_bad: bool = True) -> Release | None:
        found = [r for r in self.releases() if include_bad or not r.bad]
        return found[-1] if found else None

    def find(self, model_version: str, *, bad: bool = False) -> Release | None:
        for release in self.releases():
            if release.model_version == str(model_version) and release.bad == bad:
                return release
        return None

    # -- writing ----------------------------------------------------------------------------------

    def _write(self, name: str, md: Metadata) -> bytes:
        data = md.to_bytes(_SERIALIZER)
        self.lake.publish_bytes(self.rel("metadata", name), data)
        return data

    def _sign(self, md: Metadata, *signers) -> Metadata:
        md.signatures.clear()
        for signer in signers:
            md.sign(signer, append=True)
        return md

    def init(self, keys: KeySet) -> None:
        """Version 1 of every role: root names the keys (root threshold 2 of 3), no targets yet."""
        if self.initialized():
            raise RepositoryError(f"the repository at {self.lake.uri(self.prefix)} already exists")
        now = self.clock()
        root = Root(expires=now + EXPIRY["root"], consistent_snapshot=True)
        for signer in keys.root:
            root.add_key(signer.public_key, "root")
        root.roles["root"].threshold = ROOT_THRESHOLD
        for role in ("targets", "snapshot", "timestamp"):
            root.add_key(keys.role(role).public_key, role)
        root_md = self._sign(Metadata(root), *keys.root)
        targets = self._sign(Metadata(Targets(expires=now + EXPIRY["targets"])), keys.targets)
        snapshot = Snapshot(expires=now + EXPIRY["snapshot"])
        snapshot.meta["targets.json"] = MetaFile(version=1)
        snapshot_md = self._sign(Metadata(snapshot), keys.snapshot)
        timestamp = Timestamp(expires=now + EXPIRY["timestamp"], snapshot_meta=MetaFile(version=1))
        self._write("1.root.json", root_md)
        self._write("root.json", root_md)
        self._write("1.targets.json", targets)
        self._write("1.snapshot.json", snapshot_md)
        self._write("timestamp.json", self._sign(Metadata(timestamp), keys.timestamp))

    def publish(self, name: str, data: bytes, keys: KeySet, *, custom: dict | None = None) -> Release:
        """Add a bundle as a new release (idempotent: the same name and bytes publish nothing new)."""
        if not self.initialized():
            self.init(keys)
        _, timestamp, snapshot, targets = self.current()
        digest = hashlib.sha256(data).hexdigest()
        existing = targets.signed.targets.get(name)
        if existing is not None:
            if existing.hashes.get("sha256") == digest:
                return Release.from_target(existing)
            raise RepositoryError(f"target {name} is already published with other bytes: publish a new version")
        release = 1 + max((Release.from_target(t).release for t in targets.signed.targets.values()), default=0)
        info = TargetFile.from_data(name, data, ["sha256"])
        info.unrecognized_fields["custom"] = {**(custom or {}), "release": release}
        now = self.clock()
        self.lake.publish_bytes(self.rel("targets", f"{digest}.{name}"), data)
        targets.signed.targets[name] = info
        self._sign_down_from_targets(timestamp, snapshot, targets, keys, now)
        return Release.from_target(info)

    def _sign_down_from_targets(self, timestamp, snapshot, targets, keys, now) -> None:
        """A new targets version, then the snapshot naming it, then the timestamp naming that: the order a client
        reads them in, so no published file names one that is not there yet."""
        targets.signed.version += 1
        targets.signed.expires = now + EXPIRY["targets"]
        self._write(f"{targets.signed.version}.targets.json", self._sign(targets, keys.targets))
        snapshot.signed.meta["targets.json"] = MetaFile(version=targets.signed.version)
        snapshot.signed.version += 1
        snapshot.signed.expires = now + EXPIRY["snapshot"]
        self._write(f"{snapshot.signed.version}.snapshot.json", self._sign(snapshot, keys.snapshot))
        self._publish_timestamp(timestamp, snapshot.signed.version, keys, expires=now + EXPIRY["timestamp"])

    def _publish_timestamp(self, timestamp: Metadata[Timestamp], snapshot_version: int, keys: KeySet, *,
                           expires: dt.datetime, signer=None) -> int:
        timestamp.signed.snapshot_meta = MetaFile(version=snapshot_version)
        timestamp.signed.version += 1
        timestamp.signed.expires = expires
        self._write("timestamp.json", self._sign(timestamp, signer or keys.timestamp))
        return timestamp.signed.version

    def rotate(self, old: KeySet, new: KeySet, *, root_threshold: int | None = None) -> int:
        """A new root version naming `new`'s keys (its root keys with `root_threshold`, by default the current
        one), signed by the old root keys and the new ones (TUF: a threshold of each must verify it), then
        targets, snapshot and timestamp re-signed with the new keys. Devices walk the root chain (N.root.json,
        N+1.root.json, ...) from the root they trust. Returns the new root version."""
        root_md = self._read("root.json")
        root = root_md.signed
        threshold = root_threshold or root.roles["root"].threshold
        if not 1 <= threshold <= len(new.root):
            raise RepositoryError(f"a root threshold of {threshold} needs 1 to {len(new.root)} root keys")
        for role in ("root", *ROLES):
            for keyid in list(root.roles[role].keyids):
                root.revoke_key(keyid, role)
        for signer in new.root:
            root.add_key(signer.public_key, "root")
        root.roles["root"].threshold = threshold
        for role in ROLES:
            root.add_key(new.role(role).public_key, role)
        now = self.clock()
        root.version += 1
        root.expires = now + EXPIRY["root"]
        signers = {s.public_key.keyid: s for s in (*old.root, *new.root)}
        self._write(f"{root.version}.root.json", self._sign(root_md, *signers.values()))
        self._write("root.json", root_md)
        self.resign(new)
        return root.version

    def resign(self, keys: KeySet) -> None:
        """Targets, snapshot and timestamp as new versions signed by `keys` (after a rotation, or to finish one
        that stopped after its root was published)."""
        _, timestamp, snapshot, targets = self.current()
        now = self.clock()
        self._sign_down_from_targets(timestamp, snapshot, targets, keys, now)

    def root_version(self) -> int:
        return self._read("root.json").signed.version

    def keep_fresh(self, keys: KeySet) -> dict[str, int]:
        """Re-sign, as new versions, the roles with less than RESIGN_WHEN_LEFT of their life left: targets, then
        the snapshot (which names the targets version), then the timestamp (which names the snapshot's), each
        written before the one that names it. Returns {role: new version} of what was re-signed."""
        _, timestamp, snapshot, targets = self.current()
        now = self.clock()
        done: dict[str, int] = {}
        if targets.signed.expires - now < RESIGN_WHEN_LEFT["targets"]:
            targets.signed.version += 1
            targets.signed.expires = now + EXPIRY["targets"]
            self._write(f"{targets.signed.version}.targets.json", self._sign(targets, keys.targets))
            snapshot.signed.meta["targets.json"] = MetaFile(version=targets.signed.version)
            done["targets"] = targets.signed.version
        if done or snapshot.signed.expires - now < RESIGN_WHEN_LEFT["snapshot"]:
            snapshot.signed.version += 1
            snapshot.signed.expires = now + EXPIRY["snapshot"]
            self._write(f"{snapshot.signed.version}.snapshot.json", self._sign(snapshot, keys.snapshot))
            done["snapshot"] = snapshot.signed.version
        if done or timestamp.signed.expires - now < RESIGN_WHEN_LEFT["timestamp"]:
            done["timestamp"] = self._publish_timestamp(timestamp, snapshot.signed.version, keys,
                                                        expires=now + EXPIRY["timestamp"])
        return done

    def refresh_timestamp(self, keys: KeySet, *, expires: dt.datetime | None = None, signer=None) -> int:
        """Re-sign the timestamp (a new version) so devices keep trusting the current release.

        `expires` in the past or a foreign `signer` make the freeze and wrong-signature attacks for tests.
        """
        _, timestamp, snapshot, _ = self.current()
        return self._publish_timestamp(timestamp, snapshot.signed.version, keys,
                                       expires=expires or self.clock() + EXPIRY["timestamp"], signer=signer)
