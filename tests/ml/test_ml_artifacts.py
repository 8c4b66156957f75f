"""A registered version's booster and spec as plain files: the same predictions as the pyfunc, no MLflow needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.ml.artifacts import download, resolve_version
from pipelines.ml.registry import RegistryError


def test_the_downloaded_booster_predicts_what_the_registered_pyfunc_predicts(registered_delay_model, tmp_path: Path) -> None:
    import mlflow
    import xgboost as xgb

    from pipelines.ml.pyfunc_model import encode

    m = registered_delay_model
    files = download(m.settings, "champion", tmp_path / "champion")
    assert files.version == m.champion and files.features == m.inputs
    rows = m.holdout.select(m.inputs).head(200).to_pandas()
    booster = xgb.Booster()
    booster.load_model(files.booster_path)
    direct = booster.inplace_predict(encode(rows, files.spec))
    pyfunc = mlflow.pyfunc.load_model(f"models:/{m.settings.model_name}/{m.champion}").predict(rows)
    np.testing.assert_allclose(direct, pyfunc, rtol=1e-6)


def test_an_unknown_alias_or_version_is_one_clear_error(registered_delay_model) -> None:
    m = registered_delay_model
    assert resolve_version(m.settings, "challenger") == m.challenger
    with pytest.raises(RegistryError, match="no version with the alias 'staging'"):
        resolve_version(m.settings, "staging")
    with pytest.raises(RegistryError, match="has no version 999"):
        download(m.settings, "999")
