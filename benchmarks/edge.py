"""Benchmark: edge bundles at fleet scale, the figures the issue asks for.

Builds the 2013 features (the same functions the assets call), trains two small delay models into a temporary
SQLite MLflow store (the first is the fleet's current release, the second the new one), bundles and signs
them into a TUF repository in a temporary lake, then simulates the fleet against the bundle server on loopback:

  - a good release to `--devices` devices with `--faults` of them faulty: time to converge, share on the new
    release, bricked devices, bytes downloaded against the minimum (resume efficiency);
  - a bad-release drill (its self-test fails): devices exposed before the abort, time to roll them back,
    devices left on it;
  - each attack (tampered bundle, wrong signature, replayed release, expired timestamp) against fresh
    devices: how many refused it and still run a trusted model;
  - bundle size and single-row prediction latency on the agent's runtime (median and p95).

    python benchmarks/edge.py [--devices 10000] [--faults 0.1] [--workers 8] [--json OUT]

Times in "sim minutes" are the rollout's accelerated clock (rates and timeouts are per minute); wall seconds
are on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _models(root: Path):
    from pipelines.synthetic.warehouse_2013 import features_2013, register_sample_models
    from pipelines.ml.split import TimeSplit, split
    from pipelines.ml.tracking import MlflowSettings, quiet

    quiet()
    features = features_2013()
    settings = MlflowSettings(tracking_uri=f"sqlite:///{root / 'mlflow.db'}", artifact_location=(root / "art").as_uri())
    versions = register_sample_models(features, settings, rounds=(60, 120), train_sample=60_000)
    holdout = split(features, TimeSplit.latest(features["flight_date"])).holdout
    return settings, versions, holdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--faults", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rows", type=int, default=1000, help="single-row predictions timed")
    parser.add_argument("--attack-devices", type=int, default=100, help="devices per attack")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from pipelines.edge import bundle as bundles
    from pipelines.edge import keys as keyring
    from pipelines.edge.repository import Repository
    from pipelines.edge.runtime import Predictor
    from pipelines.synthetic.fleet import run_attacks, simulate
    from pipelines.core.lake import Lake
    from pipelines.ml.artifacts import download

    root = Path(tempfile.mkdtemp(prefix="tributary-edge-bench-"))
    started = time.monotonic()
    settings, (v1, v2), holdout = _models(root)
    print(f"trained v{v1} and v{v2} in {time.monotonic() - started:.0f}s", file=sys.stderr)
    rows = bundles.holdout_rows(holdout)
    built = {v: bundles.build(download(settings, v, root / f"v{v}"), rows) for v in (v1, v2)}
    bad = bundles.build(download(settings, v2, root / "bad"), rows, bad=True)
    keyring.generate(root / "keys")
    keys = keyring.load(root / "keys")
    repo = Repository(Lake(str(root / "lake")))
    releases = {}
    for label, b, is_bad in (("v1", built[v1], False), ("v2", built[v2], False), ("bad", bad, True)):
        releases[label] = repo.publish(b.name, b.data, keys, custom={"model_version": b.model_version,
                                                                    "bad_release_drill": is_bad})

    predictor = Predictor.from_bytes(built[v2].data)
    sample = bundles.clean_rows(holdout.head(args.rows).to_dicts(), predictor.features)
    for row in sample[:20]:
        predictor.predict_one(row)
    times = []
    for row in sample:
        t0 = time.perf_counter()
        predictor.predict_one(row)
        times.append(time.perf_counter() - t0)
    times.sort()
    figures: dict = {
        "bundle_bytes": releases["v2"].length,
        "bundle_members": {k: v["length"] for k, v in built[v2].manifest["files"].items()},
        "single_row_latency_ms": {"median": round(statistics.median(times) * 1e3, 4),
                                  "p95": round(times[int(0.95 * (len(times) - 1))] * 1e3, 4)},
    }
    factory = (releases["v1"], built[v1].data)
    for label, target in (("good_release", releases["v2"]), ("bad_release", releases["bad"])):
        print(f"simulating {args.devices:,} devices, {label}...", file=sys.stderr)
        result = simulate(repo.lake.uri(repo.prefix), root_json=repo.root_bytes(), factory=factory, target=target,
                          devices=args.devices, faults=args.faults, workers=args.workers,
                          progress=lambda line: print(line, file=sys.stderr))
        figures[label] = result.figures
    print("attacks...", file=sys.stderr)
    figures["attacks"] = run_attacks(repo.lake.uri(repo.prefix), keys, root_json=repo.root_bytes(), factory=factory,
                                     target=releases["v2"], devices=args.attack_devices)
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
