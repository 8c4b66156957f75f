"""The device-side predictor: load a bundle, encode a row as the registered model does, predict, self-test.

numpy, xgboost and the standard library only: a device has neither MLflow, pandas nor this project. The
encoding mirrors `pipelines.ml.pyfunc_model.encode` (features in `spec["features"]` order; a categorical
becomes its position in `spec["categories"][name]`, an unseen one is NaN; numbers are float32).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import xgboost as xgb

MANIFEST = "manifest.json"
MODEL = "model.ubj"
SPEC = "spec.json"
SELFTEST = "selftest.json"
FORMAT = 1


class BundleError(ValueError):
    """A bundle that this runtime must not run; the message says why in one line."""


@dataclass(frozen=True)
class SelfTestResult:
    passed: bool
    rows: int
    max_abs_error: float
    reason: str


def runtime_version() -> tuple[int, int]:
    major, minor = xgboost_version_tuple(xgb.__version__)
    return major, minor


def xgboost_version_tuple(text: str) -> tuple[int, int]:
    parts = (text.split(".") + ["0"])[:2]
    return int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or 0)


def read_members(data: bytes) -> dict[str, bytes]:
    """The files of a bundle (an uncompressed tar), refusing anything but plain files at the top level."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            out: dict[str, bytes] = {}
            for member in tar.getmembers():
                if not member.isfile() or "/" in member.name or member.name.startswith("."):
                    raise BundleError(f"unexpected bundle member {member.name!r}")
                handle = tar.extractfile(member)
                out[member.name] = handle.read() if handle else b""
            return out
    except tarfile.TarError as exc:
        raise BundleError(f"not a bundle: {exc}") from None


class Predictor:
    """One bundle loaded: the booster, its encoding, and the bundle's own self-test vector."""

    def __init__(self, members: Mapping[str, bytes]) -> None:
        for name in (MANIFEST, MODEL, SPEC, SELFTEST):
            if name not in members:
                raise BundleError(f"the bundle has no {name}")
        self.manifest = json.loads(members[MANIFEST])
        if self.manifest.get("format") != FORMAT:
            raise BundleError(f"bundle format {self.manifest.get('format')!r} is not {FORMAT}")
        for name, info in self.manifest["files"].items():
            data = members.get(name)
            if data is None or len(data) != info["length"] or hashlib.sha256(data).hexdigest() != info["sha256"]:
                raise BundleError(f"bundle member {name} does not match its manifest")
        need = tuple(self.manifest["min_runtime"]["xgboost"])
        if runtime_version() < need:
            raise BundleError(f"the bundle needs xgboost >= {need[0]}.{need[1]}, this runtime has {xgb.__version__}")
        self.spec = json.loads(members[SPEC])
        self.features: list[str] = list(self.spec["features"])
        self.vocab: dict[str, dict[object, int]] = {
            name: {value: i for i, value in enumerate(values)} for name, values in self.spec["categories"].items()
        }
        self.booster = xgb.Booster()
        self.booster.load_model(bytearray(members[MODEL]))
        # One row at a time is a device's case: a thread pool costs more than it gives.
        self.booster.set_param({"nthread": 1})
        self.selftest = json.loads(members[SELFTEST])

    @classmethod
    def from_bytes(cls, data: bytes) -> Predictor:
        return cls(read_members(data))

    @property
    def version(self) -> str:
        return str(self.manifest["model_version"])

    def encode(self, rows: Sequence[Mapping[str, object]]) -> np.ndarray:
        """The model's input matrix for row dicts (a missing key or None is NaN)."""
        out = np.full((len(rows), len(self.features)), np.nan, dtype=np.float32)
        for j, name in enumerate(self.features):
            vocab = self.vocab.get(name)
            for i, row in enumerate(rows):
                value = row.get(name)
                if value is None:
                    continue
                if vocab is not None:
                    code = vocab.get(value)
                    if code is not None:
                        out[i, j] = code
                else:
                    out[i, j] = _number(value)
        return out

    def predict(self, rows: Sequence[Mapping[str, object]]) -> np.ndarray:
        """P(late) for each row, as float64 like the registered pyfunc."""
        return self.booster.inplace_predict(self.encode(rows)).astype(np.float64)

    def predict_one(self, row: Mapping[str, object]) -> float:
        return float(self.predict([row])[0])

    def self_test(self) -> SelfTestResult:
        """Predict the bundle's own vector and compare with the outputs recorded when it was built."""
        rows, expected = self.selftest["rows"], np.asarray(self.selftest["expected"], dtype=np.float64)
        tolerance = float(self.selftest.get("tolerance", 1e-5))
        try:
            got = self.predict(rows)
        except Exception as exc:  # a device reports why its self-test failed rather than crash
            return SelfTestResult(False, len(rows), math.inf, f"prediction failed: {exc}")
        if got.shape != expected.shape:
            return SelfTestResult(False, len(rows), math.inf, f"{got.shape[0]} outputs for {expected.shape[0]} rows")
        error = float(np.max(np.abs(got - expected))) if len(rows) else 0.0
        passed = bool(np.isfinite(got).all()) and error <= tolerance
        reason = (f"{len(rows)} rows within {tolerance:g}" if passed
                  else f"max |error| {error:.3g} over {len(rows)} rows exceeds {tolerance:g}")
        return SelfTestResult(passed, len(rows), error, reason)


def _number(value: object) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return math.nan
