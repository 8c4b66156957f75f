"""SeriesDetector's range rule: a value beyond everything seen so far scores 1 (Numenta's spatial anomaly)."""

from __future__ import annotations

import numpy as np

from pipelines.stream.anomaly import SeriesConfig, SeriesDetector


def _noisy_with_spike(rows: int = 600) -> np.ndarray:
    """Uniform noise in [0, 10] with one spike to 100 at row 200: the past's range is then 0..100."""
    values = np.random.default_rng(5).uniform(0, 10, rows)
    values[200] = 100.0
    return values


def test_a_value_beyond_the_whole_past_range_by_more_than_the_tolerance_scores_one() -> None:
    values = _noisy_with_spike()
    values[500] = 106.0  # 100 + 6 % of the range 0..100: beyond the 5 % tolerance
    scores = SeriesDetector().score_many(values)
    assert scores[500] == 1.0
    without = SeriesDetector(SeriesConfig(spatial=None)).score_many(values)
    assert without[500] < 1.0  # ranked among past surprises alone, it cannot reach 1
    assert scores[200] == 1.0  # the spike left the range too (0..10 then)
    assert scores[:200] == without[:200]  # nothing before it did


def test_a_value_within_the_tolerance_of_the_past_range_is_not_outside() -> None:
    detector = SeriesDetector()
    values = _noisy_with_spike(500)
    detector.score_many(values)
    low, high = float(values.min()), float(values.max())
    margin = 0.05 * (high - low)
    assert not detector.outside(high + 0.9 * margin)
    assert not detector.outside(low - 0.9 * margin)
    assert detector.outside(high + 1.1 * margin)
    assert detector.outside(low - 1.1 * margin)


def test_the_range_rule_waits_for_the_warmup() -> None:
    detector = SeriesDetector(SeriesConfig(warmup=30))
    detector.score_many([1.0, 2.0] * 14)  # 28 values seen
    assert not detector.outside(1e6)
    detector.score_many([1.0, 2.0])
    assert detector.outside(1e6)
