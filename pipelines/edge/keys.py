"""The repository's signing keys: ed25519, one PEM file per key in a local key directory (0600, never committed).

Root is split over three keys with a threshold of two (losing or leaking one root key neither locks us out nor
lets anyone rotate the root); targets, snapshot and timestamp have one key each. The timestamp key is the one
an online publisher must hold; the root keys could live offline (the folder is the default, not a rule).
`tributary edge rotate-keys` (rotation.py) replaces keys: the root may then have another count and threshold,
so the root keys are whatever `root-<n>.pem` files the folder holds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner

ROOT_KEYS = 3
ROOT_THRESHOLD = 2
ROLES = ("targets", "snapshot", "timestamp")


class KeysError(ValueError):
    """Keys missing, unreadable or too open; the message says which and what to do."""


def _names(root_keys: int = ROOT_KEYS) -> list[str]:
    return [f"root-{i}" for i in range(1, root_keys + 1)] + list(ROLES)


@dataclass(frozen=True)
class KeySet:
    """The private signers of every top-level role."""

    root: tuple[CryptoSigner, ...]
    targets: CryptoSigner
    snapshot: CryptoSigner
    timestamp: CryptoSigner

    def role(self, name: str) -> CryptoSigner:
        return {"targets": self.targets, "snapshot": self.snapshot, "timestamp": self.timestamp}[name]


def generate(key_dir: str | Path, *, force: bool = False) -> list[Path]:
    """Write fresh ed25519 keys (0600 files in a 0700 folder); refuse to overwrite unless `force`."""
    folder = Path(key_dir).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    paths = [folder / f"{name}.pem" for name in _names()]
    existing = [p.name for p in paths if p.exists()]
    if existing and not force:
        raise KeysError(f"keys already exist in {folder} ({', '.join(existing)}): pass --force to replace them "
                        "(every device then needs the new root), or rotate them: tributary edge rotate-keys")
    return write_new(folder, [p.stem for p in paths])


def write_new(folder: Path, names: list[str]) -> list[Path]:
    """Fresh ed25519 keys `<name>.pem` in `folder` (0600, each fsynced before its rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    paths = [folder / f"{name}.pem" for name in names]
    for path in paths:
        signer = CryptoSigner.generate_ed25519()
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(signer.private_bytes)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    return paths


def _load(path: Path) -> CryptoSigner:
    if not path.exists():
        raise KeysError(f"no key {path.name} in {path.parent}: run `tributary edge keygen` first")
    if path.stat().st_mode & 0o077:
        raise KeysError(f"{path} is readable by others: chmod 600 it")
    try:
        return CryptoSigner(load_pem_private_key(path.read_bytes(), None))
    except ValueError as exc:
        raise KeysError(f"{path} is not an ed25519 PEM key: {exc}") from None


def load(key_dir: str | Path) -> KeySet:
    """The signers from a key directory (one clear line when a key is missing or too open)."""
    folder = Path(key_dir).expanduser()
    return KeySet(root=tuple(_load(path) for path in root_key_files(folder)),
                  targets=_load(folder / "targets.pem"), snapshot=_load(folder / "snapshot.pem"),
                  timestamp=_load(folder / "timestamp.pem"))


def load_files(folder: Path, names: list[str]) -> dict[str, CryptoSigner]:
    """{name: signer} of `<name>.pem` files in a folder."""
    return {name: _load(folder / f"{name}.pem") for name in names}


def root_key_files(folder: Path) -> list[Path]:
    """root-1.pem, root-2.pem, ... as the folder holds them (at least root-1.pem, or its absence is reported)."""
    found = sorted(folder.glob("root-*.pem"), key=lambda p: int(p.stem.split("-", 1)[1])
                   if p.stem.split("-", 1)[1].isdigit() else 0)
    return found or [folder / "root-1.pem"]


def exists(key_dir: str | Path) -> bool:
    return all((Path(key_dir).expanduser() / f"{name}.pem").exists() for name in _names())
