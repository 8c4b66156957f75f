"""Training is a function of the data and the config: the same booster bytes whatever the row order or load."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import polars as pl

from pipelines.ml.train import TuningConfig, fit

CONFIG = TuningConfig(n_trials=3, max_rounds=40, early_stopping_rounds=5, train_sample=25_000)


@contextmanager
def cpu_hog(processes: int = 2) -> Iterator[None]:
    """Keep every core busy (as a loaded CI machine does) while the block runs."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def test_training_twice_gives_the_same_booster_bytes_beside_a_cpu_hog(features: pl.DataFrame) -> None:
    first = fit(features, config=CONFIG)
    # Another row order, as a Delta scan may return, and a machine with no idle core.
    with cpu_hog():
        second = fit(features.sample(fraction=1.0, shuffle=True, seed=99), config=CONFIG)
    assert len(first.trials) == len(second.trials) == CONFIG.n_trials
    assert [t.params for t in first.trials] == [t.params for t in second.trials]
    assert first.holdout == second.holdout
    assert first.booster_bytes() == second.booster_bytes()
