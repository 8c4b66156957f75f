"""The delay model as an MLflow pyfunc, logged as code: serving needs mlflow, xgboost, numpy and pandas, not Tributary.

MLflow runs this file when it loads the model, so it imports nothing from the project. Training imports
`encode` from here too, so the model sees its inputs encoded exactly as it was trained: categories become
their position in the training vocabulary (an unseen one is missing, which the trees handle), numbers
become float32.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xgboost as xgb
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

SPEC_ARTIFACT = "spec"
BOOSTER_ARTIFACT = "booster"


def vocabularies(spec: dict) -> dict[str, pd.Index]:
    """Each categorical's vocabulary as an index, built once per model rather than once per request."""
    return {name: pd.Index(values, dtype=object) for name, values in spec["categories"].items()}


def encode(frame: pd.DataFrame, spec: dict, indexes: dict[str, pd.Index] | None = None) -> np.ndarray:
    """The model's input matrix: `spec["features"]` in order, categories as vocabulary codes, NaN for missing."""
    missing = [c for c in spec["features"] if c not in frame.columns]
    if missing:
        raise ValueError(f"the delay model needs column(s) {', '.join(missing)}")
    indexes = indexes if indexes is not None else vocabularies(spec)
    out = np.empty((len(frame), len(spec["features"])), dtype=np.float32)
    for j, name in enumerate(spec["features"]):
        values = frame[name]
        if name in indexes:
            codes = indexes[name].get_indexer(values.astype(object))
            out[:, j] = np.where(codes < 0, np.nan, codes)
        else:
            if values.dtype.kind not in "fiub":
                values = pd.to_numeric(values, errors="coerce")
            out[:, j] = values.to_numpy(dtype=np.float32, na_value=np.nan)
    return out


class DelayModel(PythonModel):
    """P(arrival more than 15 minutes late) for each row of scheduled-flight features."""

    def load_context(self, context) -> None:
        with open(context.artifacts[SPEC_ARTIFACT]) as handle:
            self.spec = json.load(handle)
        self.indexes = vocabularies(self.spec)
        self.booster = xgb.Booster()
        self.booster.load_model(context.artifacts[BOOSTER_ARTIFACT])
        # One row at a time is the endpoint's case; a thread pool costs more than it gives there.
        self.booster.set_param({"nthread": int(self.spec.get("predict_nthread", 1))})

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return self.booster.inplace_predict(encode(frame, self.spec, self.indexes)).astype(np.float64)


set_model(DelayModel())
