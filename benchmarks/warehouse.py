"""Benchmark: extract -> standardize -> warehouse over every day of the data, through the Dagster graph (one run),
against a plain polars script doing the same work (the floor) and the same pipeline written in pandas (the peer).

For each scale (1, 10, 100: 336,776 to 33.7M flights) it seeds a SQLite source in a temporary folder, then runs
each variant in a fresh process, so that the peak RSS reported is that process's own (`getrusage` in the child):

  graph    `tributary run` (the whole main job: extract, standardize, warehouse) over all days, one run;
           `startup` is the same command for a single day: loading Dagster, the definitions, the instance,
           and the per-run fixed work (reference tables, dimensions, whole-table KPIs)
  floor    `benchmarks/polars_floor.py`: the same extraction, pure transforms, month chunks and Delta writes,
           with no Dagster, no asset checks and no metadata
  pandas   `benchmarks/pandas_peer.py`: the same pipeline in idiomatic pandas (read per day with
           `pandas.read_sql`, standardized by month, written to Delta); see its docstring for what it covers

and prints wall time, flights/s, peak RSS, the graph's start-up, each variant's ratio to the floor, and the
time per stage (the graph's from its steps' events, with the number of materialization events stored). Targets (the issue): graph <= 1.5 x floor + start-up; graph >= 5 x faster
than pandas; at scale 100, graph peak RSS <= 4 GiB and <= 1.3 x the floor's.

    python benchmarks/warehouse.py [--scales 1 10 100] [--variants graph floor pandas] [--plan 100=floor]
                                   [--work DIR] [--timeout-pandas SECONDS] [--json OUT] [--merge EARLIER.json]

Scale 100 through the graph is 36,500 daily partitions, and the Dagster SQLite instance records each
partition's materialization of each partitioned asset (~12-30 ms an event), so it takes hours on a small
machine: select variants per scale with `--plan 100=floor,pandas`. A variant that passes its `--timeout-*`
is stopped and reported as not run. Long runs can be done separately and put in one table: `--json` writes a
run's results, `--merge` adds earlier ones (`--scales` with no value only prints them). Figures are wall-clock
on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
VARIANTS = ("graph", "floor", "pandas")
GIB = 1024


class TimedOut(RuntimeError):
    pass


def _run(cmd: list[str], env: dict, timeout: float | None) -> tuple[float, dict]:
    """Run a child in its own process group; return wall seconds and the JSON line it printed last."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise TimedOut(f"stopped after {timeout:.0f} s") from None
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err[-4000:]}")
    lines = [line for line in out.strip().splitlines() if line.startswith("{")]
    return wall, json.loads(lines[-1]) if lines else {}


def graph(first: str, last: str) -> None:
    """The graph: `tributary run` over [first, last] in this process, so the peak RSS printed is the run's own."""
    import resource

    from pipelines.cli import main

    try:
        main(["run", "--from", first, "--to", last], standalone_mode=False)
    finally:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"peak_rss_mib": round(peak, 1), **_step_times()}))


def _step_times() -> dict:
    """Seconds per stage (the run's steps grouped by the first part of their asset key, from the event log) and
    the number of materialization events the instance stored: where the graph's time went."""
    from dagster import DagsterEventType, DagsterInstance

    instance = DagsterInstance.get()
    runs = instance.get_runs(limit=1)
    if not runs:
        return {}
    started: dict[str, float] = {}
    stages = {"extract": 0.0, "standardize": 0.0, "warehouse": 0.0}
    materializations = 0
    for entry in instance.all_logs(runs[0].run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == DagsterEventType.STEP_START:
            started[entry.step_key] = entry.timestamp
        elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            zone = entry.step_key.split("__", 1)[0]
            stage = {"raw": "extract", "standardized": "standardize"}.get(zone, zone)
            stages[stage] = stages.get(stage, 0.0) + entry.timestamp - started.pop(entry.step_key, entry.timestamp)
        elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            materializations += 1
    return {"stages": {k: round(v, 2) for k, v in stages.items()}, "materializations": materializations}


def _seed(work: Path, scale: int) -> tuple[str, dict[str, int]]:
    from pipelines.synthetic.seed import seed
    from pipelines.extract.sourcedb import create_engine, normalize_url

    dsn = normalize_url(str(work / f"source-{scale}.db"))
    started = time.perf_counter()
    counts = seed(create_engine(dsn, create_dir=True), scale=scale, progress=lambda _: None)
    print(f"  seeded scale {scale} ({counts['flights']:,} flights) in {time.perf_counter() - started:.0f} s",
          file=sys.stderr, flush=True)
    return dsn, counts


def bench(scale: int, variants: list[str], work: Path, timeouts: dict[str, float | None]) -> list[dict]:
    dsn, counts = _seed(work, scale)
    first, last = "2013-01-01", f"{2013 + scale - 1}-12-31"
    flights = counts["flights"]
    results: list[dict] = []

    def home(variant: str) -> Path:
        return work / f"{variant}-{scale}-{uuid.uuid4().hex[:6]}"

    def env(path: Path) -> dict:
        return {
            "TRIBUTARY_PROFILE": "local",
            "TRIBUTARY_HOME": str(path),
            "DAGSTER_HOME": str(path / "dagster"),
            "TRIBUTARY_SOURCE_DSN": dsn,
            "TRIBUTARY_PARTITIONS_END": f"{2013 + scale}-01-01",
        }

    def record(variant: str, cmd: list[str], path: Path, **extra) -> dict | None:
        print(f"  scale {scale}: {variant} ...", file=sys.stderr, flush=True)
        row = {"scale": scale, "variant": variant, "rows": flights, **extra}
        try:
            wall, out = _run(cmd, env(path), timeouts.get(variant))
        except TimedOut as exc:
            row.update(seconds=None, note=str(exc))
            results.append(row)
            print(f"  scale {scale}: {variant} {exc}", file=sys.stderr, flush=True)
            return None
        row.update(seconds=wall, peak_rss_mib=out.get("peak_rss_mib"), stages=out.get("stages"),
                   materializations=out.get("materializations"))
        if out.get("rows") not in (None, flights):
            row["note"] = f"read {out['rows']:,} flights"
        results.append(row)
        print(f"  scale {scale}: {variant} {wall:.1f} s, peak {row['peak_rss_mib']} MiB", file=sys.stderr, flush=True)
        return row

    me = [sys.executable, str(Path(__file__).resolve())]
    for variant in variants:
        if variant == "graph":
            try:
                startup, _ = _run([*me, "--graph", first, first], env(home("startup")), timeouts.get("graph"))
            except TimedOut as exc:
                results.append({"scale": scale, "variant": "graph", "rows": flights, "seconds": None,
                                "note": f"start-up run {exc}"})
                continue
            print(f"  scale {scale}: graph start-up (one day) {startup:.1f} s", file=sys.stderr, flush=True)
            path = home("graph")
            record("graph", [*me, "--graph", first, last], path, startup_s=startup)
        elif variant == "floor":
            path = home("floor")
            record("floor", [sys.executable, str(HERE / "polars_floor.py"), str(path), dsn, first, last], path)
        else:
            path = home("pandas")
            record("pandas", [sys.executable, str(HERE / "pandas_peer.py"), str(path), dsn, first, last], path)
    return results


def _fmt(value, spec: str, empty: str = "") -> str:
    return empty if value is None else format(value, spec)


def report(results: list[dict]) -> None:
    floor = {r["scale"]: r for r in results if r["variant"] == "floor" and r.get("seconds")}
    graphs = {r["scale"]: r for r in results if r["variant"] == "graph" and r.get("seconds")}
    print()
    print(f"{'scale':>5} {'variant':8} {'flights':>11} {'wall s':>8} {'flights/s':>10} {'peak MiB':>9} "
          f"{'startup s':>9} {'x floor':>8} {'net x floor':>11}  note")
    for r in results:
        base = floor.get(r["scale"])
        seconds = r.get("seconds")
        ratio = seconds / base["seconds"] if seconds and base else None
        net = (seconds - r["startup_s"]) / base["seconds"] if seconds and base and r.get("startup_s") else None
        print(f"{r['scale']:>5} {r['variant']:8} {r['rows']:>11,} {_fmt(seconds, '8.1f', '     n/a'):>8} "
              f"{_fmt(r['rows'] / seconds if seconds else None, '10,.0f'):>10} "
              f"{_fmt(r.get('peak_rss_mib'), '9.0f'):>9} "
              f"{_fmt(r.get('startup_s'), '9.1f'):>9} {_fmt(ratio, '7.2f') + 'x' if ratio else '':>8} "
              f"{_fmt(net, '10.2f') + 'x' if net else '':>11}  {r.get('note', '')}")
    staged = [r for r in results if r.get("stages")]
    if staged:
        print()
        print("time per stage (s); the graph's from its steps' start and end events, start-up not included:")
        for r in sorted(staged, key=lambda r: (r["scale"], VARIANTS.index(r["variant"]))):
            events = f" ({r['materializations']:,} materialization events)" if r.get("materializations") else ""
            print(f"  scale {r['scale']:>3} {r['variant']:7} "
                  + ", ".join(f"{k} {v:.1f}" for k, v in r["stages"].items()) + events)
    print()
    print("targets: graph <= 1.5x floor + start-up (net x floor <= 1.5); graph >= 5x faster than pandas; "
          "at scale 100 graph peak RSS <= 4 GiB and <= 1.3x floor")
    for scale in sorted({r["scale"] for r in results}):
        g, f = graphs.get(scale), floor.get(scale)
        p = next((r for r in results if r["scale"] == scale and r["variant"] == "pandas" and r.get("seconds")), None)
        parts = []
        if g and f:
            net = (g["seconds"] - g["startup_s"]) / f["seconds"]
            parts.append(f"graph net {net:.2f}x floor ({'met' if net <= 1.5 else 'NOT met'})")
        if g and p:
            speedup = p["seconds"] / g["seconds"]
            parts.append(f"pandas/graph {speedup:.2f}x ({'met' if speedup >= 5 else 'NOT met'})")
        if p and f:
            parts.append(f"pandas/floor {p['seconds'] / f['seconds']:.2f}x")
        if g and f:
            rss = g["peak_rss_mib"] / f["peak_rss_mib"]
            verdict = "met" if g["peak_rss_mib"] <= 4 * GIB and rss <= 1.3 else "NOT met"
            verdict = verdict if scale >= 100 else "the RSS target is for scale 100"
            parts.append(f"graph RSS {g['peak_rss_mib'] / GIB:.2f} GiB, {rss:.2f}x floor ({verdict})")
        elif f:
            parts.append(f"floor RSS {f['peak_rss_mib'] / GIB:.2f} GiB (graph not run)")
        print(f"  scale {scale}: " + ("; ".join(parts) or "nothing to compare"))


def _plan(args: argparse.Namespace) -> dict[int, list[str]]:
    plan = {scale: list(args.variants) for scale in args.scales}
    for item in args.plan or []:
        scale, _, names = item.partition("=")
        chosen = [n for n in names.split(",") if n]
        unknown = set(chosen) - set(VARIANTS)
        if unknown:
            raise SystemExit(f"--plan {item}: unknown variant(s) {sorted(unknown)}")
        plan[int(scale)] = chosen
    return dict(sorted(plan.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=int, nargs="*", default=[1, 10])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--plan", nargs="*", metavar="SCALE=V1,V2",
                        help="variants for one scale, overriding --variants (e.g. 100=floor,pandas)")
    parser.add_argument("--work", help="folder for the sources and lakes (kept); default a temporary folder")
    parser.add_argument("--timeout-graph", type=float, default=None, help="seconds before a graph run is stopped")
    parser.add_argument("--timeout-floor", type=float, default=None)
    parser.add_argument("--timeout-pandas", type=float, default=None)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--merge", nargs="*", default=[], metavar="FILE",
                        help="add results written earlier with --json (e.g. a long scale run done separately)")
    parser.add_argument("--graph", nargs=2, metavar=("FIRST", "LAST"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.graph:
        return graph(*args.graph)
    plan = _plan(args)
    if not any(plan.values()) and args.merge:
        return report(sorted((r for f in args.merge for r in json.loads(Path(f).read_text())),
                             key=lambda r: (r["scale"], VARIANTS.index(r["variant"]))))
    timeouts = {"graph": args.timeout_graph, "floor": args.timeout_floor, "pandas": args.timeout_pandas}
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="tributary-bench-") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for scale, variants in plan.items():
            if variants:
                results += bench(scale, variants, work, timeouts)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    for earlier in args.merge:
        results += json.loads(Path(earlier).read_text())
    report(sorted(results, key=lambda r: (r["scale"], VARIANTS.index(r["variant"]))))


if __name__ == "__main__":
    main()
