"""The NAB scorer: hand-computed scores on tiny series, NAB's own sweep loop, and the published windowedGaussian."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from pipelines.stream.cli import stream
from pipelines.stream import nab
from pipelines.stream.anomaly import SeriesDetector

STANDARD = nab.Cost(tp=1.0, fp=0.11, fn=1.0)
LOW_FN = nab.Cost(tp=1.0, fp=0.11, fn=2.0)
T0 = dt.datetime(2020, 1, 1)


def _series(name: str, rows: int, windows: list[tuple[int, int]]) -> nab.Series:
    stamps = [T0 + dt.timedelta(minutes=5 * i) for i in range(rows)]
    return nab.Series(name, stamps, np.zeros(rows), windows)


def _at(rows: int, **scores: float) -> np.ndarray:
    """Zeros, with the given scores at rows named r<index>."""
    out = np.zeros(rows)
    for key, value in scores.items():
        out[int(key[1:])] = value
    return out


def test_the_scaled_sigmoid_matches_nab_documented_values() -> None:
    values = nab.scaled_sigmoid(np.array([-1.0, -0.5, 0.0, 1.0, 3.0, 3.5]))
    assert values == pytest.approx([0.98661, 0.84828, 0.0, -0.98661, 2 / (1 + math.exp(15)) - 1, -1.0], abs=1e-5)


def test_probation_is_fifteen_percent_capped_at_750_rows() -> None:
    assert nab.probation_length(20) == 3
    assert nab.probation_length(4032) == 604
    assert nab.probation_length(22695) == 750


# One file of 100 rows, probation rows 0-14, one window over rows 50-53 (width 4). Long enough that the null
# detector (a constant) scores best by detecting nothing: -1, the window missed.
ONE = _series("toy/one.csv", 100, [(50, 53)])


def _standard(results: dict[str, np.ndarray], corpus: tuple[nab.Series, ...] = (ONE,), **kw) -> nab.Score:
    return nab.score(list(corpus), results, {"standard": STANDARD}, **kw)["standard"]


def test_a_detection_at_the_left_edge_of_the_window_is_perfect() -> None:
    result = _standard({ONE.name: _at(100, r50=1.0)})
    assert (result.threshold, result.raw, result.tp, result.fp) == (1.0, pytest.approx(1.0), 1, 0)
    assert result.normalized == pytest.approx(100.0)  # null: -1 (the window missed); perfect: +1


def test_a_detection_at_the_right_edge_earns_the_sigmoid_of_its_position() -> None:
    # position -1/4: 2*sigmoid(5/4) - 1 = tanh(5/8), divided by the left edge's tanh(5/2)
    earned = math.tanh(0.625) / math.tanh(2.5)
    result = _standard({ONE.name: _at(100, r53=1.0)})
    assert result.raw == pytest.approx(earned)
    assert result.normalized == pytest.approx(100 * (earned + 1) / 2)


def test_a_false_positive_alone_loses_to_detecting_nothing_unless_the_threshold_is_imposed() -> None:
    results = {ONE.name: _at(100, r20=1.0)}
    assert _standard(results).normalized == pytest.approx(0.0)  # best threshold 1.1: nothing detected, = null
    imposed = _standard(results, thresholds={"standard": 1.0})
    assert imposed.raw == pytest.approx(-1.0 - 0.11)
    assert imposed.normalized == pytest.approx(100 * (-1.11 + 1) / 2)


def test_a_false_positive_just_after_a_window_costs_less_than_a_far_one() -> None:
    # row 54 is 1/3 of (width - 1) past the right edge: 0.11 * (2*sigmoid(-5/3) - 1)
    near = _standard({ONE.name: _at(100, r50=1.0, r54=1.0)})
    far = _standard({ONE.name: _at(100, r50=1.0, r59=1.0)})  # 2 widths past: 2*sigmoid(-10) - 1
    assert near.raw == pytest.approx(1.0 + 0.11 * math.tanh(-5 / 6))
    assert far.raw == pytest.approx(1.0 + 0.11 * math.tanh(-5.0))


def test_rows_in_probation_are_not_scored() -> None:
    result = _standard({ONE.name: _at(100, r1=1.0, r50=1.0)})
    assert (result.raw, result.fp) == (pytest.approx(1.0), 0)


def test_the_threshold_is_chosen_over_the_whole_corpus() -> None:
    a = _series("toy/a.csv", 100, [(50, 53)])
    b = _series("toy/b.csv", 100, [(50, 53)])
    results = {a.name: _at(100, r50=0.9), b.name: _at(100, r20=0.95, r50=0.5)}
    result = _standard(results, corpus=(a, b))
    # 1.1: -2; 0.95: -2.11; 0.9: -1.11; 0.5: 1 + 1 - 0.11; 0: every other row a false positive too
    assert (result.threshold, result.raw, result.tp, result.fp) == (0.5, pytest.approx(1.89), 2, 1)
    assert result.normalized == pytest.approx(100 * (1.89 + 2) / 4)
    low_fn = nab.score([a, b], results, {"low_fn": LOW_FN})["low_fn"]
    assert low_fn.normalized == pytest.approx(100 * (1.89 + 4) / 6)  # null: -2 per missed window


def _nab_loop(corpus: list[nab.Series], results: dict[str, np.ndarray], cost: nab.Cost) -> list[tuple[float, float]]:
    """NAB's `Sweeper.calcSweepScore` + `calcScoreByThreshold`, transcribed loop for loop."""
    points = []
    for series in corpus:
        rows = len(series.timestamps)
        probation = nab.probation_length(rows)
        lefts = {left: right for left, right in series.windows}
        current, prev_right, prev_width = None, None, None
        for i, score in enumerate(results[series.name]):
            if current is None and i in lefts:
                current = (i, lefts[i])
            if current is not None:
                width = current[1] - current[0] + 1
                weight = nab.scaled_sigmoid(-(current[1] - i + 1) / width) * cost.tp / nab.MAX_TP
                name = f"{series.name}|{current[0]}"
            else:
                weight = -1.0 if prev_right is None else nab.scaled_sigmoid(abs(prev_right - i) / (prev_width - 1))
                weight, name = weight * cost.fp, None
            if i >= probation:
                points.append((score, float(weight), name))
            if current is not None and i == current[1]:
                prev_right, prev_width, current = i, current[1] - current[0] + 1, None
    points.sort(key=lambda p: p[0], reverse=True)
    parts = {"fp": 0.0} | {p[2]: -cost.fn for p in points if p[2] is not None}
    out, threshold = [], 1.1
    for score, weight, name in points:
        if score != threshold:
            out.append((threshold, sum(parts.values())))
            threshold = score
        if name is None:
            parts["fp"] += weight
        else:
            parts[name] = max(parts[name], weight)
    out.append((threshold, sum(parts.values())))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_vectorised_sweep_equals_nab_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    corpus = [_series("toy/a.csv", 60, [(20, 27), (40, 44)]), _series("toy/b.csv", 40, [(3, 9)]),
              _series("toy/c.csv", 30, [])]
    results = {s.name: rng.integers(0, 12, len(s.timestamps)) / 11 for s in corpus}  # ties on purpose
    for cost in (STANDARD, LOW_FN):
        thresholds, totals, _, _ = nab.sweep(nab._rows(corpus, results, cost), cost)
        expected = _nab_loop(corpus, results, cost)
        assert thresholds.tolist() == [t for t, _ in expected]
        assert totals == pytest.approx([s for _, s in expected])


def test_results_round_trip_in_nab_format_and_a_bad_label_is_refused(tmp_path: Path) -> None:
    path = nab.write_results(tmp_path, "mine", ONE, _at(100, r50=1.0))
    assert path == tmp_path / "mine" / "toy" / "mine_one.csv"
    assert path.read_text().splitlines()[0] == "timestamp,value,anomaly_score,label"
    assert nab.read_results(tmp_path / "mine", "mine", [ONE])[ONE.name].tolist() == _at(100, r50=1.0).tolist()
    (tmp_path / "labels").mkdir()
    (tmp_path / "data" / "toy").mkdir(parents=True)
    (tmp_path / "data" / "toy" / "one.csv").write_text("timestamp,value\n2020-01-01 00:00:00,1\n")
    (tmp_path / "labels" / "combined_windows.json").write_text(
        json.dumps({"toy/one.csv": [["2020-01-01 00:00:00.000000", "2020-01-02 00:00:00.000000"]]}))
    with pytest.raises(ValueError, match="not a timestamp of the file"):
        nab.load_corpus(tmp_path)
    with pytest.raises(FileNotFoundError, match="no NAB corpus"):
        nab.load_corpus(tmp_path / "nowhere")


def nab_dir() -> Path:
    """TRIBUTARY_NAB_DIR, else ../shared/data/nab beside the repository (only where the corpus was provided)."""
    default = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nab"
    return Path(os.environ.get("TRIBUTARY_NAB_DIR", default))


def test_rescoring_windowed_gaussian_reproduces_the_published_scores() -> None:
    root = nab_dir()
    if not (root / "results" / "windowedGaussian").is_dir():
        pytest.skip(f"the NAB corpus with results/windowedGaussian is not at {root} (set TRIBUTARY_NAB_DIR to a "
                    "checkout of github.com/numenta/NAB)")
    corpus = nab.load_corpus(root)
    assert len(corpus) == 58 and sum(len(s.windows) for s in corpus) == 116
    results = nab.read_results(root / "results" / "windowedGaussian", "windowedGaussian", corpus)
    scores = nab.score(corpus, results, nab.load_profiles(root))
    published = nab.scoreboard(root)["windowedGaussian"]
    assert scores["standard"].normalized == pytest.approx(39.65, abs=0.1)
    assert scores["reward_low_FP_rate"].normalized == pytest.approx(20.87, abs=0.1)
    assert scores["reward_low_FN_rate"].normalized == pytest.approx(47.41, abs=0.1)
    for profile, value in published.items():
        assert scores[profile].normalized == pytest.approx(value, abs=1e-6)
    assert scores["standard"].raw == pytest.approx(-24.0131054891, abs=1e-8)  # NAB's Totals row


def _toy_corpus(root: Path) -> None:
    """Two files of 400 rows, one with a spike inside its window, in NAB's layout. The noise is bounded: a
    Gaussian's tail keeps setting new extremes, which SeriesDetector's range rule flags (as Numenta's does)."""
    rng = np.random.default_rng(3)
    windows = {}
    for name, spike in (("toyA/flat.csv", None), ("toyB/spiky.csv", 300)):
        values = 10 + rng.uniform(-1.7, 1.7, 400)
        if spike is not None:
            values[spike] += 25
        stamps = [(T0 + dt.timedelta(minutes=5 * i)).strftime("%Y-%m-%d %H:%M:%S") for i in range(400)]
        path = root / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("timestamp,value\n" + "".join(f"{t},{v}\n" for t, v in zip(stamps, values, strict=True)))
        windows[name] = [] if spike is None else [[stamps[280] + ".000000", stamps[320] + ".000000"]]
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    (root / "config").mkdir()
    costs = {"standard": 0.11, "reward_low_FP_rate": 0.22, "reward_low_FN_rate": 0.11}
    (root / "config" / "profiles.json").write_text(json.dumps({
        name: {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 2.0 if "FN" in name else 1.0, "fpWeight": fp,
                              "tnWeight": 1.0}} for name, fp in costs.items()}))


def test_the_detector_scores_each_value_before_it_sees_the_next() -> None:
    rng = np.random.default_rng(0)
    values = rng.uniform(-1.7, 1.7, 600)  # bounded noise: no new extreme but the spike after the first rows
    values[500] = 12.0
    scores = SeriesDetector().score_many(values)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert int(np.argmax(scores)) == 500
    changed = values.copy()
    changed[501:] = 100.0  # the future changes; the past's scores must not
    assert SeriesDetector().score_many(changed)[:501] == scores[:501]


def test_stream_nab_writes_nab_result_files_and_prints_the_scores(tmp_path: Path) -> None:
    _toy_corpus(tmp_path / "nab")
    out = tmp_path / "out"
    result = CliRunner().invoke(stream, ["nab", "--data", str(tmp_path / "nab"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("tributary", "rollingZScore", "halfSpaceTrees"):
        frame = pl.read_csv(out / name / "toyB" / f"{name}_spiky.csv")
        assert frame.columns == ["timestamp", "value", "anomaly_score", "label"]
        assert frame["anomaly_score"].is_between(0, 1).all() and frame["label"].sum() == 41
    line = next(row for row in result.output.splitlines() if row.startswith("tributary "))
    caught = math.tanh(2.5 * 21 / 41) / math.tanh(2.5)  # the spike, 21 rows before the right edge of 41
    assert float(line.split()[2]) == pytest.approx(100 * (caught + 1) / 2, abs=0.01)  # and nothing else flagged
    bad = CliRunner().invoke(stream, ["nab", "--data", str(tmp_path / "none")])
    assert bad.exit_code == 1 and "error: no NAB corpus" in bad.output


def test_a_spike_that_comes_every_day_at_the_same_time_is_no_surprise() -> None:
    rng = np.random.default_rng(1)
    per_day = 288  # every 5 minutes
    values = rng.normal(0, 1, per_day * 20)
    values[36::per_day] += 15  # a daily job at 03:00
    values[per_day * 15 + 180] += 15  # one spike at 15:00 on day 15
    times = [i * 300.0 for i in range(len(values))]
    scores = SeriesDetector().score_many(values, times)
    job, lone = per_day * 15 + 36, per_day * 15 + 180
    assert scores[job] < 0.5 < 0.99 < scores[lone]
    assert SeriesDetector().score_many(values)[job] > 0.99  # without the times, the job looks like the lone spike
