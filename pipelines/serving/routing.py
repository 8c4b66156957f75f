"""Which variant answers a request: pinned by header, sticky by id, else drawn by weight.

Stickiness across uvicorn workers and re-weights: a hash of the id alone would move ids whenever weights
change, so the first assignment of an id is *remembered* in a small SQLite table (WAL) that every worker
of the endpoint opens. The first pick is still the hash (so two workers that meet a new id at once agree
in the common case; `INSERT OR IGNORE` settles a race, the first writer wins). An id keeps its variant for
as long as that variant exists with a weight above 0; a removed or drained variant's ids are drawn again.
Each worker caches what it has read (an assignment only changes when its variant leaves), so a repeat id
costs a dict lookup, a new id one small SQLite write.
"""

from __future__ import annotations

import bisect
import hashlib
import random
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

TARGET_VARIANT_HEADER = "x-amzn-sagemaker-target-variant"
CACHE_SIZE = 200_000


class UnknownVariant(ValueError):
    """A pinned variant the endpoint does not have (answered 400)."""


class Weights:
    """Cumulative weights for drawing a variant with probability weight / sum of weights."""

    def __init__(self, names: Sequence[str], weights: Sequence[float]) -> None:
        live = [(n, w) for n, w in zip(names, weights, strict=True) if w > 0]
        self.names = [n for n, _ in live]
        total = sum(w for _, w in live)
        acc, cumulative = 0.0, []
        for _, w in live:
            acc += w / total
            cumulative.append(acc)
        cumulative[-1] = 1.0
        self.cumulative = cumulative
        self.weight = dict(zip(names, weights, strict=True))

    def draw(self, u: float | None = None) -> str:
        """The variant at point `u` in [0, 1) (random when None)."""
        return self.names[bisect.bisect_right(self.cumulative, random.random() if u is None else u)]

    def hashed(self, key: str) -> str:
        """A deterministic draw for a sticky id (stable while the weights are)."""
        digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
        return self.draw(int.from_bytes(digest, "big") / 2**64)


class StickyStore:
    """id -> variant, shared by the workers through one SQLite file; thread-safe within a process."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = str(path) if path else ":memory:"
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS assignment (id TEXT PRIMARY KEY, variant TEXT NOT NULL, "
                         "assigned_at REAL NOT NULL)")
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def assign(self, key: str, weights: Weights) -> str:
        """The variant of `key`: its remembered one while it is live, else a new draw (remembered)."""
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and weights.weight.get(cached, 0) > 0:
                self._cache.move_to_end(key)
                return cached
            row = self._db.execute("SELECT variant FROM assignment WHERE id = ?", (key,)).fetchone()
            if row is not None and weights.weight.get(row[0], 0) > 0:
                return self._remember(key, row[0])
            pick = weights.hashed(key)
            if row is None:
                self._db.execute("INSERT OR IGNORE INTO assignment VALUES (?, ?, ?)", (key, pick, time.time()))
            else:  # its variant left: move it, unless another worker already did
                self._db.execute("UPDATE assignment SET variant = ?, assigned_at = ? WHERE id = ? AND variant = ?",
                                 (pick, time.time(), key, row[0]))
            winner = self._db.execute("SELECT variant FROM assignment WHERE id = ?", (key,)).fetchone()[0]
            return self._remember(key, winner if weights.weight.get(winner, 0) > 0 else pick)

    def _remember(self, key: str, variant: str) -> str:
        self._cache[key] = variant
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return variant

    def close(self) -> None:
        self._db.close()


class Router:
    """Routing for one endpoint config: production variants, their weights and the sticky header."""

    def __init__(self, names: Sequence[str], weights: Sequence[float], *, sticky_header: str,
                 store: StickyStore | None) -> None:
        self.names = set(names)
        self.order = list(names)
        self.weights = Weights(names, weights)
        self.sticky_headers = tuple(dict.fromkeys(["x-amzn-sagemaker-inference-id", sticky_header.lower()]))
        self.store = store

    def pick(self, headers: dict[str, str]) -> str:
        """The variant for a request's headers (lower-case names)."""
        target = headers.get(TARGET_VARIANT_HEADER)
        if target is not None:
            if target not in self.names:
                raise UnknownVariant(f"unknown target variant {target!r}: this endpoint has "
                                     f"{', '.join(self.order)}")
            return target
        if self.store is not None:
            for name in self.sticky_headers:
                key = headers.get(name)
                if key:
                    return self.store.assign(key, self.weights)
        return self.weights.draw()
