"""Benchmark: extract -> standardize -> warehouse over every day of the data, through the Dagster graph, against a
plain polars script doing the same work (the floor), the same work with no per-month pieces at all (at-once),
and the same pipeline written in pandas (the peer).

For each scale (1, 10, 100: 336,776 to 33.7M flights, one to a hundred years) it seeds a SQLite source in a
temporary folder, then runs each variant in a fresh process, so that the peak RSS reported is that process's
own (`getrusage` in the child):

  graph    `tributary run` (the whole main job: the days extracted in one run, the months built in a second)
           over all days; `startup` is the part of that process before its first run starts (imports, the
           definitions, the instance); `net` is the rest. `day` is a scheduled day on the lake the year left:
           the last day's flights and weather re-extracted, then everything downstream of them (its month,
           the dimensions, the KPIs), reported as start-up + work (its first run's start to its last run's
           end) + exit (the rest of the process).
  floor    `benchmarks/polars_floor.py`: the same extraction (one query per month), pure transforms, months
           and Delta writes, with no Dagster, no asset checks and no metadata
  at-once  the floor with the whole range as one piece: the data's own cost
  pandas   `benchmarks/pandas_peer.py`: the same pipeline in idiomatic pandas (read per day with
           `pandas.read_sql`, standardized by month, written to Delta); see its docstring for what it covers

and prints wall time, flights/s, peak RSS, the mean load average while it ran, each variant's ratio to the
floor, the time per stage (the graph's from its steps' events, with the number of materialization events
stored), and at the largest scale the p50 of `tributary query` doing a group-by over every row of the fact.

    python benchmarks/warehouse.py [--scales 1 10 100] [--variants graph floor at-once pandas] [--plan 100=graph,floor]
                                   [--work DIR] [--timeout-pandas SECONDS] [--json OUT] [--merge EARLIER.json]

A variant that passes its `--timeout-*` is stopped and reported as not run. Long runs can be done separately
and put in one table: `--json` writes a run's results, `--merge` adds earlier ones (`--scales` with no value
only prints them). Figures are wall-clock on whatever else the machine is doing: the load column says how busy.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from rss import memory_mib  # benchmarks/ (the script's own folder)

STARTED = time.time()
"""When this script began, on the clock the runs' events are stamped with (the interpreter's own start, some
30 ms, is not in it): psutil's process start time is rounded to the whole second of the boot time, which made a
start-up up to 1 s too long."""

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
VARIANTS = ("day", "graph", "floor", "at-once", "pandas")
GIB = 1024


class TimedOut(RuntimeError):
    pass


def _run(cmd: list[str], env: dict, timeout: float | None) -> tuple[float, dict]:
    """Run a child in its own process group; return wall seconds and the JSON line it printed last, with the
    mean 1-minute load average sampled every 2 s while it ran."""
    started, cpu_before = time.perf_counter(), _children_cpu()
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    loads: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(2.0):
            loads.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise TimedOut(f"stopped after {timeout:.0f} s") from None
    finally:
        stop.set()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err[-4000:]}")
    lines = [line for line in out.strip().splitlines() if line.startswith("{")]
    result = json.loads(lines[-1]) if lines else {}
    result["load"] = round(sum(loads) / len(loads), 1) if loads else round(os.getloadavg()[0], 1)
    result["cpu_s"] = round(_children_cpu() - cpu_before, 1)
    return wall, result


def _children_cpu() -> float:
    """User + system CPU seconds of the finished children: steadier than wall time on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


MAIN = "group:extract or group:standardize or group:warehouse"
SCHEDULED = f"(key:raw/flights or key:raw/weather)+ and ({MAIN})"
"""What the daily schedule and the automation after it run: the day's flights and weather, then everything
downstream of them in the main job (the reference snapshots are change capture's, not the clock's)."""


def graph(first: str, last: str, selection: str = MAIN) -> None:
    """The graph: `tributary run` over [first, last] in this process, so the peak RSS printed is the run's own;
    the process then ends as the `tributary` console script does (`pipelines/core/fast_exit.py`)."""
    from pipelines.core import fast_exit  # first, as in the console script
    from pipelines.cli import main

    # Read before the runs, on the clock their events are stamped with (a step of the system clock by 23 s
    # during a scale-100 run made stage times read after the run skip its first run).
    process_started = STARTED
    try:
        main(["run", "--from", first, "--to", last, "--select", selection], standalone_mode=False)
    finally:
        peak = memory_mib()
        # The stage times are read from the event log by another process (`--step-times`): reading them here
        # would add an instance and the runs' logs to the graph's own time.
        print(json.dumps({"peak_rss_mib": round(peak, 1), "process_started": process_started}))
    fast_exit.arm(0)  # a failed run raised above and exits as Python does


def _step_times(process_started: float) -> dict:
    """Seconds per stage (the steps of this process's runs grouped by the first part of their asset key, from
    the event log), the number of materialization events stored, and the start-up: from the process's start to
    its first run's start."""
    from dagster import DagsterEventType, DagsterInstance

    instance = DagsterInstance.get()
    runs = [r.dagster_run for r in instance.get_run_records(limit=5)
            if r.dagster_run.tags.get("tributary/days") and (r.start_time or 0) >= process_started]
    if not runs:
        return {}
    started: dict[str, float] = {}
    stages = {"extract": 0.0, "standardize": 0.0, "warehouse": 0.0}
    materializations, first_run, last_end = 0, None, None
    for run in runs:
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None:
                continue
            if event.event_type == DagsterEventType.RUN_START:
                first_run = entry.timestamp if first_run is None else min(first_run, entry.timestamp)
            elif event.event_type in (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE):
                last_end = entry.timestamp if last_end is None else max(last_end, entry.timestamp)
            elif event.event_type == DagsterEventType.STEP_START:
                started[entry.step_key] = entry.timestamp
            elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                zone = entry.step_key.split("__", 1)[0]
                stage = {"raw": "extract", "standardized": "standardize"}.get(zone, zone)
                stages[stage] = stages.get(stage, 0.0) + entry.timestamp - started.pop(entry.step_key, entry.timestamp)
            elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
                materializations += 1
    return {"stages": {k: round(v, 2) for k, v in stages.items()}, "materializations": materializations,
            "startup_s": round(first_run - process_started, 2) if first_run else None,
            "runs_s": round(last_end - first_run, 2) if first_run and last_end else None}


def _query_p50(env: dict, repeats: int = 5) -> dict:
    """`tributary query` of a group-by over every row of the fact, as a user runs it (a fresh process each)."""
    sql = ("SELECT carrier, count(*) AS flights, avg(arr_delay) AS mean_arr_delay FROM fact_flights "
           "GROUP BY carrier ORDER BY carrier")
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        done = subprocess.run([str(Path(sys.executable).with_name("tributary")), "query", sql, "--format", "csv"],
                              env={**os.environ, **env}, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"tributary query failed:\n{done.stderr[-2000:]}")
        times.append(time.perf_counter() - began)
    return {"query_p50_s": round(statistics.median(times), 2), "query_runs": repeats}


def _seed(work: Path, scale: int) -> tuple[str, dict[str, int]]:
    from pipelines.synthetic.seed import seed
    from pipelines.extract.sourcedb import create_engine, normalize_url

    dsn = normalize_url(str(work / f"source-{scale}.db"))
    started = time.perf_counter()
    counts = seed(create_engine(dsn, create_dir=True), scale=scale, progress=lambda _: None)
    print(f"  seeded scale {scale} ({counts['flights']:,} flights) in {time.perf_counter() - started:.0f} s",
          file=sys.stderr, flush=True)
    return dsn, counts


def _record(results: list[dict], scale: int, flights: int, variant: str, cmd: list[str], env: dict,
            timeout: float | None, **extra) -> dict | None:
    """Run one variant and append its row to `results` (a row with no time when it was stopped)."""
    print(f"  scale {scale}: {variant} ...", file=sys.stderr, flush=True)
    row = {"scale": scale, "variant": variant, "rows": flights, **extra}
    results.append(row)
    try:
        wall, out = _run(cmd, env, timeout)
    except TimedOut as exc:
        row.update(seconds=None, note=str(exc))
        print(f"  scale {scale}: {variant} {exc}", file=sys.stderr, flush=True)
        return None
    if out.get("process_started") is not None:  # a graph run: its stages from its event log, read apart
        times = _run([*cmd[:2], "--step-times", str(out["process_started"])], env, None)[1]
        out.update({k: v for k, v in times.items() if k not in ("load", "cpu_s")})
    row.update(seconds=wall, peak_rss_mib=out.get("peak_rss_mib"), stages=out.get("stages"),
               materializations=out.get("materializations"), load=out.get("load"), startup_s=out.get("startup_s"),
               runs_s=out.get("runs_s"), cpu_s=out.get("cpu_s"))
    if out.get("rows") not in (None, flights):
        row["note"] = f"read {out['rows']:,} flights"
    print(f"  scale {scale}: {variant} {wall:.1f} s, peak {row['peak_rss_mib']} MiB, load {row['load']}",
          file=sys.stderr, flush=True)
    return row


def bench(scale: int, variants: list[str], work: Path, timeouts: dict[str, float | None]) -> list[dict]:
    dsn, counts = _seed(work, scale)
    first, last = "2013-01-01", f"{2013 + scale - 1}-12-31"
    results: list[dict] = []

    def env(path: Path) -> dict:
        return {
            "TRIBUTARY_PROFILE": "local",
            "TRIBUTARY_HOME": str(path),
            "DAGSTER_HOME": str(path / "dagster"),
            "TRIBUTARY_SOURCE_DSN": dsn,
            "TRIBUTARY_PARTITIONS_END": f"{2013 + scale}-01-01",
        }

    me = [sys.executable, str(Path(__file__).resolve())]
    floor = [sys.executable, str(HERE / "polars_floor.py")]
    for variant in [v for v in variants if v != "day"]:  # the day runs after the graph, on its lake
        path = work / f"{variant}-{scale}-{uuid.uuid4().hex[:6]}"
        args = [str(path), dsn, first, last]
        cmd = {"graph": [*me, "--graph", first, last], "floor": [*floor, *args],
               "at-once": [*floor, *args, "--at-once"],
               "pandas": [sys.executable, str(HERE / "pandas_peer.py"), *args]}[variant]
        done = _record(results, scale, counts["flights"], variant, cmd, env(path), timeouts.get(variant))
        if variant == "graph" and done and "day" in variants:
            # A scheduled day on the lake the year left: the last day re-extracted, its month rebuilt.
            day = _record(results, scale, None, "day", [*me, "--graph", last, last, "--scheduled"], env(path),
                          timeouts.get("day"))
            if day:
                day.update(_query_p50(env(path)))
    return results


def _fmt(value, spec: str, empty: str = "") -> str:
    return empty if value is None else format(value, spec)


def report(results: list[dict]) -> None:
    floor = {r["scale"]: r for r in results if r["variant"] == "floor" and r.get("seconds")}
    graphs = {r["scale"]: r for r in results if r["variant"] == "graph" and r.get("seconds")}
    print()
    print(f"{'scale':>5} {'variant':8} {'flights':>11} {'wall s':>8} {'flights/s':>10} {'peak MiB':>9} "
          f"{'startup s':>9} {'net s':>7} {'net x floor':>11} {'load':>5} {'cpu s':>6}  note")
    for r in results:
        base = floor.get(r["scale"])
        seconds, startup = r.get("seconds"), r.get("startup_s")
        net = seconds - startup if seconds and startup is not None else seconds
        ratio = net / base["seconds"] if net and base and r["variant"] != "day" else None
        rate = r["rows"] / seconds if seconds and r.get("rows") else None
        print(f"{r['scale']:>5} {r['variant']:8} {_fmt(r.get('rows'), '11,'):>11} {_fmt(seconds, '8.1f', '     n/a'):>8} "
              f"{_fmt(rate, '10,.0f'):>10} {_fmt(r.get('peak_rss_mib'), '9.0f'):>9} {_fmt(startup, '9.1f'):>9} "
              f"{_fmt(net, '7.1f'):>7} {_fmt(ratio, '10.2f') + 'x' if ratio else '':>11} {_fmt(r.get('load'), '5.1f'):>5} {_fmt(r.get('cpu_s'), '6.1f'):>6}"
              f"  {r.get('note', '')}{_query_note(r)}")
    staged = [r for r in results if r.get("stages")]
    if staged:
        print()
        print("time per stage (s); the graph's from its steps' start and end events, start-up not included:")
        for r in sorted(staged, key=lambda r: (r["scale"], VARIANTS.index(r["variant"]))):
            events = f" ({r['materializations']:,} materialization events)" if r.get("materializations") else ""
            if r.get("runs_s") is not None:
                events += f"; runs {r['runs_s']:.1f} s from the first one's start to the last one's end"
            print(f"  scale {r['scale']:>3} {r['variant']:7} "
                  + ", ".join(f"{k} {v:.1f}" for k, v in r["stages"].items()) + events)
    print()
    print("targets: graph net <= 1.5x floor; graph >= 3x faster than pandas net of start-up, and faster in wall time; "
          "a day's work <= 2 s; at scale 100 peak RSS <= 4 GiB and net time <= 110x the scale-1 net time")
    for scale in sorted({r["scale"] for r in results}):
        print(f"  scale {scale}: " + ("; ".join(_verdicts(results, scale, floor, graphs)) or "nothing to compare"))


def _query_note(r: dict) -> str:
    return f"query p50 {r['query_p50_s']:.2f} s" if r.get("query_p50_s") is not None else ""


def _verdicts(results: list[dict], scale: int, floor: dict, graphs: dict) -> list[str]:
    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    g, f = graphs.get(scale), floor.get(scale)
    p = next((r for r in results if r["scale"] == scale and r["variant"] == "pandas" and r.get("seconds")), None)
    day = next((r for r in results if r["scale"] == scale and r["variant"] == "day" and r.get("seconds")), None)
    net = g["seconds"] - (g.get("startup_s") or 0) if g else None
    parts = []
    if g and f:
        parts.append(f"graph net {net / f['seconds']:.2f}x floor ({met(net <= 1.5 * f['seconds'])})")
    if g and p:
        parts.append(f"pandas/graph net {p['seconds'] / net:.2f}x, wall {p['seconds'] / g['seconds']:.2f}x "
                     f"({met(p['seconds'] >= 3 * net and p['seconds'] > g['seconds'])})")
    if day:
        # The day's work: from its first run's start to its last run's end; what the process spends after them
        # (its exit) is shown apart, not hidden. The process's start and its runs' events are read from two
        # clocks, so an exit shorter than their skew (~0.1 s) shows as 0.
        startup = day.get("startup_s") or 0
        work = day.get("runs_s") or day["seconds"] - startup
        parts.append(f"a day: start-up {startup:.1f} s + work {work:.1f} s ({met(work <= 2)}) + exit "
                     f"{max(day['seconds'] - startup - work, 0.0):.1f} s")
    one = graphs.get(1)
    if g and scale >= 100:
        parts.append(f"graph RSS {g['peak_rss_mib'] / GIB:.2f} GiB ({met(g['peak_rss_mib'] <= 4 * GIB)})")
        if one:
            growth = net / (one["seconds"] - (one.get("startup_s") or 0))
            parts.append(f"net time {growth:.0f}x scale 1 ({met(growth <= 110)})")
    return parts


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
    parser.add_argument("--scales", type=int, nargs="*", default=[1])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS,
                        help="day runs after graph, on its lake")
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
    parser.add_argument("--scheduled", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--step-times", type=float, metavar="PROCESS_STARTED", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step_times is not None:
        return print(json.dumps(_step_times(args.step_times)))
    if args.graph:
        return graph(*args.graph, selection=SCHEDULED if args.scheduled else MAIN)
    plan = _plan(args)
    if not any(plan.values()) and args.merge:
        return report(sorted((r for f in args.merge for r in json.loads(Path(f).read_text())),
                             key=lambda r: (r["scale"], VARIANTS.index(r["variant"]))))
    timeouts = {"graph": args.timeout_graph, "day": args.timeout_graph, "floor": args.timeout_floor,
                "at-once": args.timeout_floor, "pandas": args.timeout_pandas}
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
