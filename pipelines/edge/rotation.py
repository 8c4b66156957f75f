"""`tributary edge rotate-keys`: new signing keys, announced to devices through TUF's root chain.

The order keeps every step recoverable: the new keys are written to `<key_dir>/next/` first; the repository
then publishes root N+1 (signed by the old root keys and the new ones) and re-signs targets, snapshot and
timestamp with the new keys; only then do the new files replace the old ones, which move to
`<key_dir>/retired/root-v<N>/` (kept: an auditor may need them; delete them once no device trusts root N).
A run that stopped after the root was published finishes from `next/` when run again; one that stopped
before it starts over with fresh keys.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipelines.edge import keys as keyring
from pipelines.edge.keys import ROLES, KeySet, KeysError
from pipelines.edge.repository import Repository

NEXT, RETIRED = "next", "retired"


@dataclass(frozen=True)
class Rotation:
    """What a rotation did: the root version devices now walk to, and which key files changed."""

    root_version: int
    rotated: tuple[str, ...]
    root_keys: int
    root_threshold: int
    resumed: bool


def rotate_keys(repository: Repository, key_dir: str | Path, *, online: bool = True, root: bool = False,
                root_keys: int | None = None, root_threshold: int | None = None) -> Rotation:
    """Rotate the online keys (targets, snapshot, timestamp) and/or the root keys (to `root_keys` keys with
    `root_threshold`); see the module docstring for the order."""
    folder = Path(key_dir).expanduser()
    if not (online or root):
        raise KeysError("nothing to rotate: name the online keys, the root, or both")
    old = keyring.load(folder)
    staged = folder / NEXT
    resumed = _published(repository, staged)
    if resumed is not None:
        new, names = resumed
        repository.resign(new)
    else:
        shutil.rmtree(staged, ignore_errors=True)
        count = root_keys or len(old.root)
        names = ([f"root-{i}" for i in range(1, count + 1)] if root else []) + (list(ROLES) if online else [])
        keyring.write_new(staged, names)
        new = _merged(old, staged, names)
        repository.rotate(old, new, root_threshold=root_threshold if root else None)
    version = repository.root_version()
    _swap(folder, staged, names, version - 1)
    current = repository.current()[0].signed.roles["root"]
    return Rotation(version, tuple(names), len(current.keyids), current.threshold, resumed is not None)


def _merged(old: KeySet, staged: Path, names: list[str]) -> KeySet:
    """The key set after the rotation: staged keys where named, the old ones elsewhere."""
    fresh = keyring.load_files(staged, names)
    roots = tuple(fresh[n] for n in sorted((n for n in names if n.startswith("root-")),
                                           key=lambda n: int(n.split("-")[1])))
    return KeySet(root=roots or old.root, targets=fresh.get("targets", old.targets),
                  snapshot=fresh.get("snapshot", old.snapshot), timestamp=fresh.get("timestamp", old.timestamp))


def _published(repository: Repository, staged: Path) -> tuple[KeySet, list[str]] | None:
    """The staged keys and names when the repository's root already names them (a run that stopped after
    publishing), else None."""
    if not staged.is_dir():
        return None
    names = sorted(p.stem for p in staged.glob("*.pem"))
    if not names:
        return None
    fresh = keyring.load_files(staged, names)
    root = repository.current()[0].signed
    named = {k for role in root.roles.values() for k in role.keyids}
    if not all(signer.public_key.keyid in named for signer in fresh.values()):
        return None
    old = keyring.load(staged.parent)
    return _merged(old, staged, names), names


def _swap(folder: Path, staged: Path, names: list[str], retired_version: int) -> None:
    """Move the replaced key files to retired/root-v<N>/ and the staged ones into their place."""
    archive = folder / RETIRED / f"root-v{retired_version}"
    archive.mkdir(parents=True, exist_ok=True)
    os.chmod(folder / RETIRED, 0o700)
    replaced = set(names)
    if any(n.startswith("root-") for n in names):
        replaced |= {p.stem for p in folder.glob("root-*.pem")}  # a smaller root leaves no stale root-<n>.pem
    for name in sorted(replaced):
        path = folder / f"{name}.pem"
        if path.exists():
            os.replace(path, archive / path.name)
    for name in names:
        os.replace(staged / f"{name}.pem", folder / f"{name}.pem")
    staged.rmdir()
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
