"""Where the delay model is trained: in the run's process, or across Ray Train workers (issue 17).

Run config (`DelayModelConfig.training_backend`, `.training_workers`) wins; otherwise the environment
(`TRIBUTARY_TRAINING_BACKEND`, `TRIBUTARY_TRAINING_WORKERS`, `TRIBUTARY_TRAINING_CPUS_PER_WORKER`,
`TRIBUTARY_RAY_ADDRESS`), read when a run trains, not at import.
"""

from __future__ import annotations

from pipelines.ml.distributed import EngineConfig
from resources.profiles import number, setting


def training_engine(backend: str | None = None, workers: int | None = None) -> EngineConfig:
    """The engine a training run uses: the run's own choice where it made one, else the environment's."""
    chosen = backend or setting("TRIBUTARY_TRAINING_BACKEND") or "local"
    count = workers if workers is not None else int(number("TRIBUTARY_TRAINING_WORKERS", 1, int))
    if chosen == "local" and count > 1:
        chosen = "ray"  # more than one worker is only possible on Ray
    return EngineConfig(backend=chosen, workers=count,
                        cpus_per_worker=int(number("TRIBUTARY_TRAINING_CPUS_PER_WORKER", 1, int)),
                        ray_address=setting("TRIBUTARY_RAY_ADDRESS") or None)
