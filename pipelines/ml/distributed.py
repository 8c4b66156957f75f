"""Where a booster is fitted: in this process (`local`), or data-parallel across Ray Train workers (`ray`).

No Dagster. The engine is chosen by config (`TuningConfig.backend`, `TuningConfig.workers`). Ray Train's
`XGBoostTrainer` (Ray 2.60, Train v2 API: a per-worker training function) was chosen over `xgboost.dask` because
Ray is already the project's scale-out dependency (`deploy/ray/`), and over `xgboost_ray`, which is unmaintained.
Each worker takes every n-th row of train and validate (strided, so each shard spans the whole time range),
builds its own `QuantileDMatrix` and runs plain `xgboost.train`: Ray's XGBoost backend starts XGBoost's
collective tracker, so the quantile sketches, the gradient histograms and the evaluation metrics are all-reduced
and every worker grows the same trees; early stopping sees the same (global) validation AUC on every worker.
Rank 0's booster comes back through a Ray Train checkpoint.

The data go to the object store once per engine (`ray.put`), not once per trial. Not bit-identical to the local
fit: the distributed quantile sketch picks slightly different histogram cut points (the README gives how close).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np

BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class EngineConfig:
    """How boosters are fitted: `local` is one in-process `xgboost.train`; `ray` is `workers` Ray Train workers of
    `cpus_per_worker` cores each, on the cluster at `ray_address` (a local one started for the fit when unset)."""

    backend: str = "local"
    workers: int = 1
    cpus_per_worker: int = 1
    ray_address: str | None = None
    storage_path: str | None = None
    """Where Ray Train keeps its checkpoints; must be shared by every node on a real cluster (s3://...). A temporary
    folder when unset (enough for one machine)."""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"training backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if self.workers < 1 or self.cpus_per_worker < 1:
            raise ValueError(f"workers and cpus_per_worker must be at least 1, not {self.workers}, "
                             f"{self.cpus_per_worker}")
        if self.backend == "local" and self.workers != 1:
            raise ValueError(f"{self.workers} training workers need the `ray` backend")


class LocalEngine:
    """`xgboost.train` in this process, on matrices built once."""

    def __init__(self, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                 feature_names: list[str]) -> None:
        import xgboost as xgb  # noqa: PLC0415 - start-up: xgboost ~1.9 s

        self._x, self._y, self._names = (x_train, x_val), (y_train, y_val), feature_names
        self._train = xgb.QuantileDMatrix(x_train, y_train, max_bin=256, feature_names=feature_names)
        self._val = xgb.DMatrix(x_val, y_val, feature_names=feature_names)

    def train(self, params: dict[str, Any], rounds: int, *, early_stopping_rounds: int | None = None,
              refit: bool = False):
        """Early-stopped on validate; or, with `refit`, `rounds` rounds on train + validate without evaluation."""
        import xgboost as xgb  # noqa: PLC0415 - start-up: xgboost ~1.9 s

        if refit:
            d_all = xgb.QuantileDMatrix(np.vstack(self._x), np.concatenate(self._y), max_bin=256,
                                        feature_names=self._names)
            return xgb.train(params, d_all, num_boost_round=rounds)
        return xgb.train(params, self._train, num_boost_round=rounds, evals=[(self._val, "validation")],
                         early_stopping_rounds=early_stopping_rounds, verbose_eval=False)

    def close(self) -> None:
        """Nothing to release."""


def _train_per_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: its strided shard of the data, then plain `xgboost.train` (the collective is set up)."""
    import ray  # noqa: PLC0415 - start-up: ray ~1.5 s
    import ray.train  # noqa: PLC0415 - start-up: ray ~1.5 s
    import xgboost as xgb  # noqa: PLC0415 - start-up: xgboost ~1.9 s
    from ray.train.xgboost import RayTrainReportCallback  # noqa: PLC0415 - start-up: ray ~1.5 s

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    x_train, y_train, x_val, y_val = ray.get(config["data"])
    names = config["feature_names"]
    if config["refit"]:
        x, y = np.vstack([x_train, x_val]), np.concatenate([y_train, y_val])
        d_train = xgb.QuantileDMatrix(x[rank::world], y[rank::world], max_bin=256, feature_names=names)
        evals = []
    else:
        d_train = xgb.QuantileDMatrix(x_train[rank::world], y_train[rank::world], max_bin=256, feature_names=names)
        evals = [(xgb.DMatrix(x_val[rank::world], y_val[rank::world], feature_names=names), "validation")]
    xgb.train(config["params"], d_train, num_boost_round=config["rounds"], evals=evals,
              early_stopping_rounds=config["early_stopping_rounds"] if evals else None, verbose_eval=False,
              callbacks=[RayTrainReportCallback(frequency=0, checkpoint_at_end=True)])


class RayEngine:
    """Data-parallel `xgboost.train` across Ray Train workers; the data put in the object store once."""

    def __init__(self, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                 feature_names: list[str], config: EngineConfig) -> None:
        import ray  # noqa: PLC0415 - start-up: ray ~1.5 s

        self._config, self._names = config, feature_names
        self._started_ray = False
        if not ray.is_initialized():
            if config.ray_address:
                ray.init(address=config.ray_address, log_to_driver=False)
            else:  # a private local instance for this fit, sized to the workers
                ray.init(num_cpus=config.workers * config.cpus_per_worker, include_dashboard=False,
                         log_to_driver=False, configure_logging=False)
            self._started_ray = True
        self._data = ray.put((x_train, y_train, x_val, y_val))
        self._storage = None if config.storage_path else tempfile.TemporaryDirectory(prefix="tributary-raytrain-")
        self._runs = 0

    def train(self, params: dict[str, Any], rounds: int, *, early_stopping_rounds: int | None = None,
              refit: bool = False):
        """The same contract as LocalEngine.train; each call is one Ray Train run."""
        from ray.train import RunConfig, ScalingConfig  # noqa: PLC0415 - start-up: ray ~1.5 s
        from ray.train.xgboost import RayTrainReportCallback, XGBoostTrainer  # noqa: PLC0415 - start-up: ray ~1.5 s

        self._runs += 1
        cpus = self._config.cpus_per_worker
        trainer = XGBoostTrainer(
            _train_per_worker,
            train_loop_config={"data": self._data, "feature_names": self._names, "refit": refit, "rounds": rounds,
                               "early_stopping_rounds": early_stopping_rounds, "params": {**params, "nthread": cpus}},
            scaling_config=ScalingConfig(num_workers=self._config.workers, resources_per_worker={"CPU": cpus}),
            run_config=RunConfig(name=f"delay-model-{self._runs}",
                                 storage_path=self._config.storage_path or self._storage.name),
        )
        result = trainer.fit()
        return RayTrainReportCallback.get_model(result.checkpoint)

    def close(self) -> None:
        """Stop the local Ray instance this engine started, drop its checkpoints."""
        import ray  # noqa: PLC0415 - start-up: ray ~1.5 s

        if self._started_ray:
            ray.shutdown()
        if self._storage is not None:
            self._storage.cleanup()


def engine(config: EngineConfig, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
           feature_names: list[str]) -> LocalEngine | RayEngine:
    """The engine the config asks for, holding the training and validation data."""
    if config.backend == "ray":
        return RayEngine(x_train, y_train, x_val, y_val, feature_names, config)
    return LocalEngine(x_train, y_train, x_val, y_val, feature_names)
