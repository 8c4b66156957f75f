"""Build a model bundle a device runs without MLflow or the project: one deterministic tar.

Members: `model.ubj` (the registered booster in XGBoost's own UBJSON format, byte for byte), `spec.json` (the
feature spec), `selftest.json` (encoded-by-the-registered-model rows and the booster's outputs for them),
and `manifest.json` (version, sizes, sha256 of every member, minimum runtime). The same version and rows give
the same bytes: fixed member order, mtimes and owners, no timestamps inside.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipelines.edge.runtime import FORMAT, MANIFEST, MODEL, SELFTEST, SPEC, xgboost_version_tuple

if TYPE_CHECKING:
    from pipelines.ml.artifacts import ModelFiles

SELFTEST_ROWS = 64
TOLERANCE = 1e-5
"""Outputs are float32 tree sums: the same booster and inputs agree to ~1e-7; 1e-5 still catches a wrong model."""


@dataclass(frozen=True)
class Bundle:
    name: str
    """The TUF target path, e.g. `delay_model-v3.tar`."""
    model_version: str
    data: bytes
    manifest: dict

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def target_name(model_name: str, version: str, *, bad: bool = False) -> str:
    return f"{model_name}-v{version}{'-bad' if bad else ''}.tar"


def clean_rows(rows: Sequence[Mapping[str, object]], features: Sequence[str]) -> list[dict[str, object]]:
    """JSON-safe rows restricted to the model's features (NaN becomes null, which the model reads as missing)."""
    out = []
    for row in rows:
        clean: dict[str, object] = {}
        for name in features:
            value = row.get(name)
            if isinstance(value, float) and math.isnan(value):
                value = None
            elif hasattr(value, "item"):  # numpy scalars
                value = value.item()
            clean[name] = value
        out.append(clean)
    return out


def expected_outputs(booster_bytes: bytes, spec: dict, rows: list[dict[str, object]]) -> list[float]:
    """The registered model's outputs for the rows, encoded by the registered model's own `encode` (pandas)."""
    import pandas as pd  # noqa: PLC0415 - start-up: pandas ~0.4 s
    import xgboost as xgb  # noqa: PLC0415 - start-up: xgboost ~1.9 s

    from pipelines.ml.pyfunc_model import encode  # noqa: PLC0415 - start-up: pulls in mlflow ~3.6 s

    booster = xgb.Booster()
    booster.load_model(bytearray(booster_bytes))
    booster.set_param({"nthread": 1})
    frame = pd.DataFrame(rows, columns=spec["features"])
    return [float(v) for v in booster.inplace_predict(encode(frame, spec)).astype("float64")]


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(members[name]), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(members[name]))
    return buffer.getvalue()


def _canonical(doc: object) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def build(
    model: ModelFiles,
    rows: Sequence[Mapping[str, object]],
    *,
    bad: bool = False,
    tolerance: float = TOLERANCE,
) -> Bundle:
    """The bundle of a registered version, with `rows` (holdout rows) as its self-test vector.

    `bad=True` makes a bad release for rollout drills: the same model with self-test expectations that are
    off by 0.25, so every device's self-test fails and the rollout must abort and roll back.
    """
    if not rows:
        raise ValueError("a bundle needs at least one self-test row")
    booster_bytes = model.booster_path.read_bytes()
    spec_bytes = _canonical(model.spec)
    clean = clean_rows(rows, model.spec["features"])
    expected = expected_outputs(booster_bytes, model.spec, clean)
    if bad:
        expected = [min(1.0, v + 0.25) if v < 0.5 else v - 0.25 for v in expected]
    selftest = _canonical({"rows": clean, "expected": expected, "tolerance": tolerance})
    import xgboost as xgb  # noqa: PLC0415 - start-up: xgboost ~1.9 s

    members = {MODEL: booster_bytes, SPEC: spec_bytes, SELFTEST: selftest}
    manifest = {
        "format": FORMAT,
        "model": model.name,
        "model_version": str(model.version),
        "run_id": model.run_id,
        "bad_release_drill": bad,
        "files": {name: {"length": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                  for name, data in sorted(members.items())},
        "min_runtime": {"xgboost": list(xgboost_version_tuple(xgb.__version__)), "python": [3, 10]},
        "features": len(model.spec["features"]),
        "selftest_rows": len(clean),
    }
    members[MANIFEST] = _canonical(manifest)
    return Bundle(name=target_name(model.name, str(model.version), bad=bad), model_version=str(model.version),
                  data=_tar(members), manifest=manifest)


def holdout_rows(frame, *, n: int = SELFTEST_ROWS) -> list[dict[str, object]]:
    """A deterministic self-test sample of a polars frame: every k-th row, so it spans the frame."""
    if frame.height == 0:
        raise ValueError("no rows to build a self-test vector from")
    step = max(1, frame.height // n)
    return frame.gather_every(step).head(n).to_dicts()
