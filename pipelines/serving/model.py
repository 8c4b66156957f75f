"""One loaded model: the booster and the encoder of its inputs, with no pandas and no DMatrix per request.

The encoding matches `pipelines.ml.pyfunc_model.encode` value for value: `spec["features"]` in order, a
categorical becomes its position in the training vocabulary (unseen or missing -> NaN), a number becomes
float32 (missing -> NaN). Parsing (`parsing.py`) has already checked names, counts and number syntax.
"""

from __future__ import annotations

import ctypes
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SPEC_FILE = "spec.json"
BOOSTER_FILES = ("booster.ubj", "booster.json")
NAN = float("nan")


class ModelLoadError(RuntimeError):
    """A model folder that cannot be served; the message names the folder and what is wrong."""


class ModelError(RuntimeError):
    """The model failed on inputs that parsed (answered 424, as SageMaker does)."""


def find_model_files(folder: str | Path) -> tuple[Path, Path]:
    """(spec.json, booster) in a model folder: as `prepare_models` lays it out, or as MLflow downloads it."""
    root = Path(folder)
    if not root.is_dir():
        raise ModelLoadError(f"model folder {root} does not exist")
    spec = root / SPEC_FILE if (root / SPEC_FILE).is_file() else next(iter(sorted(root.rglob(SPEC_FILE))), None)
    booster = None
    for name in BOOSTER_FILES:
        hits = [root / name] if (root / name).is_file() else sorted(root.rglob(name))
        if hits:
            booster = hits[0]
            break
    if spec is None or booster is None:
        raise ModelLoadError(f"model folder {root} needs {SPEC_FILE} and {' or '.join(BOOSTER_FILES)}")
    return spec, booster


@dataclass
class LoadedModel:
    """A booster with its feature spec; `predict_rows` takes parsed rows in spec order."""

    folder: str
    spec: dict
    booster: Any
    version: str = ""
    features: list[str] = field(default_factory=list)
    categorical: list[dict[str, int] | None] = field(default_factory=list)
    """Per feature: the vocabulary (value -> code) of a categorical, None for a number."""
    fast: Any = None

    @classmethod
    def load(cls, folder: str | Path, *, version: str = "") -> "LoadedModel":
        import xgboost as xgb  # noqa: PLC0415 - start-up: xgboost ~1.9 s

        spec_path, booster_path = find_model_files(folder)
        try:
            spec = json.loads(spec_path.read_text())
            features = list(spec["features"])
            categories = spec.get("categories", {})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(f"cannot read the feature spec {spec_path}: {exc}") from None
        booster = xgb.Booster()
        try:
            booster.load_model(str(booster_path))
        except xgb.core.XGBoostError as exc:
            raise ModelLoadError(f"cannot load the booster {booster_path}: {str(exc).splitlines()[0]}") from None
        # One row per request: a thread pool costs more than it gives, and workers are the parallelism.
        booster.set_param({"nthread": 1})
        vocab = [{v: i for i, v in enumerate(categories[f])} if f in categories else None for f in features]
        loaded = cls(folder=str(folder), spec=spec, booster=booster, version=str(version or spec.get("version", "")),
                     features=features, categorical=vocab)
        loaded.fast = DensePredictor.for_booster(booster, len(features))
        return loaded

    def encode(self, rows: list[list[Any]]) -> np.ndarray:
        """The float32 input matrix of rows already in spec order (strings for categoricals, floats or None)."""
        out = np.empty((len(rows), len(self.features)), dtype=np.float32)
        vocab = self.categorical
        for i, row in enumerate(rows):
            values = [NAN] * len(row)
            for j, value in enumerate(row):
                codes = vocab[j]
                if codes is not None:
                    code = codes.get(value if isinstance(value, str) or value is None else _as_category(value))
                    values[j] = NAN if code is None else code
                else:
                    values[j] = NAN if value is None else value
            out[i] = values
        return out

    def predict_rows(self, rows: list[list[Any]], *, threadsafe: bool = False) -> list[float]:
        """P(late) per row; ModelError when the booster refuses (e.g. a spec that does not match it).

        The fast path keeps its buffers on the object, so only one thread may use it: the event loop's. Any
        other thread passes `threadsafe=True` and gets xgboost's own inplace_predict (safe from any thread for
        tree boosters since xgboost 1.4; the same answers, checked at load time)."""
        matrix = self.encode(rows)
        try:
            if self.fast is not None and not threadsafe:
                return self.fast.predict(matrix)
            return self.booster.inplace_predict(matrix).astype(np.float64).tolist()
        except Exception as exc:  # xgboost raises XGBoostError, ValueError or TypeError for a bad input shape
            raise ModelError(f"model v{self.version or '?'} failed: {str(exc).strip().splitlines()[0]}") from None


def _as_category(value: Any) -> str:
    """A JSON number sent for a categorical, as pandas' object comparison would meet it (1 -> "1")."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value)


class DensePredictor:
    """`XGBoosterPredictFromDense` called directly: what `Booster.inplace_predict` does for a numpy array, without
    its per-call Python work (type dispatch, JSON-encoding the same arguments, building ctypes arrays), which
    costs ~200 us, more than the model itself. Written by hand against xgboost's C API; used only
    when it gives the same answers as `inplace_predict` on a probe row at load time."""

    def __init__(self, booster: Any, n_features: int) -> None:
        from xgboost.core import _LIB, _ProxyDMatrix, make_jcargs  # noqa: PLC0415 - start-up: xgboost ~1.9 s

        self._call = _LIB.XGBoosterPredictFromDense
        self._handle = booster.handle
        self._args = make_jcargs(type=0, training=False, iteration_begin=0, iteration_end=0, missing=NAN,
                                 strict_shape=False, cache_id=0)
        # With no proxy matrix xgboost builds one per call, and with it a context that reads the cgroup CPU
        # quota from /sys (11 system calls, ~30 us); one proxy of our own, kept for the booster's life, avoids it.
        self._proxy_matrix = _ProxyDMatrix()
        self._proxy = self._proxy_matrix.handle
        self._shape = ctypes.POINTER(ctypes.c_uint64)()
        self._dims = ctypes.c_uint64()
        self._preds = ctypes.POINTER(ctypes.c_float)()
        self._refs = (ctypes.byref(self._shape), ctypes.byref(self._dims), ctypes.byref(self._preds))
        self.n_features = n_features

    @classmethod
    def for_booster(cls, booster: Any, n_features: int) -> "DensePredictor | None":
        if booster.num_features() != n_features:
            return None  # let inplace_predict raise its own clear error per request
        try:
            fast = cls(booster, n_features)
            probe = np.linspace(-1.0, 3.0, 3 * n_features, dtype=np.float32).reshape(3, n_features)
            probe[1, ::3] = np.nan
            expected = booster.inplace_predict(probe).astype(np.float64).tolist()
            if np.allclose(fast.predict(probe), expected, rtol=0, atol=0):
                return fast
        except Exception:  # an xgboost whose C API differs: the public method still works
            return None
        return None

    def predict(self, matrix: np.ndarray) -> list[float]:
        rows, cols = matrix.shape
        if cols != self.n_features:
            raise ValueError(f"Feature shape mismatch, expected: {self.n_features}, got {cols}")
        interface = (f'{{"data": [{matrix.ctypes.data}, true], "shape": [{rows}, {cols}], "strides": null, '
                     f'"typestr": "<f4", "version": 3}}').encode()
        status = self._call(self._handle, interface, self._args, self._proxy, *self._refs)
        if status != 0:
            from xgboost.core import _LIB  # noqa: PLC0415 - start-up: xgboost ~1.9 s

            raise ValueError(_LIB.XGBGetLastError().decode())
        preds = self._preds
        n = 1
        for i in range(self._dims.value):
            n *= self._shape[i]
        if n != rows:
            raise ValueError(f"the model returned {n} values for {rows} rows")
        return [float(preds[i]) for i in range(n)] if n <= 64 else \
            np.ctypeslib.as_array(preds, shape=(n,)).astype(np.float64).tolist()
