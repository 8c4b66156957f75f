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

With `--real-agents K` the fleet is the columnar one (`pipelines/synthetic/megafleet.py`: the control plane in
numpy arrays, most devices modelled in batches, K real agents doing TUF and HTTP in the same rollout, the
device status MERGEd into a Delta table in a temporary lake), e.g. a million devices:

    python benchmarks/edge.py --devices 1000000 --real-agents 1000

and the figures add the peak RSS of the process, the load average before and after, and the bytes moved
(measured for the real agents, modelled for the rest, and the real agents' mean scaled to the fleet).

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

from rss import memory_mib  # noqa: E402 - benchmarks/ (the script's own folder)


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


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _columnar(args, repo, factory, releases, root: Path) -> dict:
    """The columnar fleet in a fresh process (so its peak RSS is the fleet's, not the model training's)."""
    import subprocess

    out: dict = {"load_average_before": _loadavg()}
    for label, release, fail_rate in (("good_release", "v2", 0.0), ("failure_rate_release", "v2", args.fail_rate),
                                      ("bad_release", "bad", 0.0)):
        print(f"columnar fleet: {args.devices:,} devices, {args.real_agents} real, {label}...", file=sys.stderr)
        spec = {"repo_root": repo.lake.uri(repo.prefix), "status_lake": str(root / f"status-{label}"),
                "factory": factory[0].release, "target": releases[release].release, "devices": args.devices,
                "real_agents": args.real_agents, "faults": args.faults, "fail_rate": fail_rate,
                "workers": args.workers}
        child = subprocess.run([sys.executable, __file__, "--fleet-child", json.dumps(spec)], check=True,
                               stdout=subprocess.PIPE, text=True)
        out[label] = json.loads(child.stdout)
    out["load_average_after"] = _loadavg()
    return out


def _fleet_child(spec: dict) -> None:
    """One columnar run from a published repository; prints its figures with this process's peak RSS."""
    from pipelines.core.lake import Lake
    from pipelines.synthetic.megafleet import simulate_million

    from pipelines.edge.repository import Repository

    root = Path(spec["repo_root"])
    repo = Repository(Lake(str(root.parent)), root.name)
    by_number = {r.release: r for r in repo.releases()}
    factory, target = by_number[spec["factory"]], by_number[spec["target"]]
    factory_bytes = (root / "targets" / f"{factory.sha256}.{factory.path}").read_bytes()
    before = memory_mib("VmRSS")
    result = simulate_million(root, root_json=repo.root_bytes(), factory=(factory, factory_bytes), target=target,
                              devices=spec["devices"], real_agents=spec["real_agents"], faults=spec["faults"],
                              fail_rate=spec["fail_rate"], workers=spec["workers"], lake=Lake(spec["status_lake"]),
                              progress=lambda line: print(line, file=sys.stderr))
    from pipelines.edge import status as device_status

    peak = memory_mib()
    table = device_status.read(Lake(spec["status_lake"]))
    print(json.dumps({**result.figures, "rss_mib_after_imports": before, "peak_rss_mib": peak,
                      "device_status_table_rows": table.height,
                      "device_status_table_keys": table.select("device_id", "job_id").n_unique()}))


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--fleet-child":
        _fleet_child(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--faults", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rows", type=int, default=1000, help="single-row predictions timed")
    parser.add_argument("--attack-devices", type=int, default=100, help="devices per attack")
    parser.add_argument("--real-agents", type=int, default=None,
                        help="run the columnar million-device simulator with this many real agents")
    parser.add_argument("--fail-rate", type=float, default=0.25,
                        help="columnar mode: the permanent failure rate of the abort-threshold run")
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
    if args.real_agents is not None:
        figures.update(_columnar(args, repo, factory, releases, root))
        print(json.dumps(figures, indent=2))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
        return
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
