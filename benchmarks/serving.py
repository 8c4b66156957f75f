"""Serving benchmark: `tributary serve` against `mlflow models serve` on the same registered model, same run.

    .venv/bin/python benchmarks/serving.py [--tracking-uri sqlite:///... --version 3] [--rate 1000 --seconds 30]

Phase 1, constant rate: single-row JSON requests (`dataframe_split`) at `--rate` req/s for `--seconds`,
open loop: each request has a scheduled send time and its latency counts from that time, so a stall is not
hidden by the client waiting (no coordinated omission). The client is an asyncio/uvloop HTTP/1.1 client
written here (Debian's wrk has no constant-rate mode and wrk2 is not packaged; `hey -q` rate-limits each
worker in a closed loop); then the same rate paced by wrk's `delay()` hook, whose client costs far less CPU on
a 2-core machine where client and server share the cores. Phase 2, saturation: `wrk` (Debian package) with 16 connections for
`--saturation-seconds`; throughput is wrk's Requests/sec. Both servers get `--workers` processes.
Without --tracking-uri a small model is trained and registered in a temporary store first.

With --flights (issue 20.1) the second server is not mlflow but the same `tributary serve` answering flight keys
(`{"flights": [{carrier, flight, origin, dest, sched_dep, tailnum}]}`), its features built from an online table
of the 2013 warehouse as of the flight's prediction instant; the figures compare that path with the raw-feature
path (the same flight's offline features) on the same server, at the same rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "GIT_PYTHON_REFRESH": "quiet",
         "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _flight_case(rows: list[dict], tables: dict, config_path: Path) -> tuple[dict, bytes]:
    """(the offline row of a flight with weather and a known plane, the body asking for it by key); the online
    table as of its prediction instant published beside the endpoint config."""
    import polars as pl

    from pipelines.ml.data import FACT
    from pipelines.serving.online import ONLINE_FILE, build_online_features, publish
    from pipelines.standardize import WEATHER
    from pipelines.warehouse import DIM_AIRPORT, DIM_DATE, DIM_PLANE

    row = next(r for r in rows[len(rows) // 2:] if r["origin_temp"] is not None and r["plane_type"] is not None)
    fact = tables[FACT]
    flight = fact.filter(pl.col("flight_id") == row["flight_id"]).row(0, named=True)
    table = build_online_features(fact, weather=tables[WEATHER], planes=tables[DIM_PLANE],
                                  airports=tables[DIM_AIRPORT], dates=tables[DIM_DATE], as_of=row["predict_at"])
    publish(table, config_path.with_name(ONLINE_FILE))
    key = {"carrier": flight["carrier"], "flight": flight["flight"], "origin": flight["origin"],
           "dest": flight["dest"], "sched_dep": flight["sched_dep_local"].isoformat(timespec="minutes"),
           "tailnum": flight["tailnum"]}
    return row, json.dumps({"flights": [key]}).encode()


def _wait_online(port: int, log: Path, seconds: float = 60.0) -> None:
    """Until the server says it has loaded the online feature table."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as response:
            if json.loads(response.read()).get("online_features"):
                return
        time.sleep(0.25)
    raise SystemExit(f"error: the server did not load the online features: {log.read_text()[-1500:]}")


def _interleaved(port: int, raw: bytes, flights: bytes, rate: float, seconds: float, connections: int) -> str:
    """Raw-feature and flight-key requests in turn at `rate` in all, latencies kept apart: the comparison a
    shared machine's changing load does not tilt (the sequential phases each get whatever load their minute has)."""
    import uvloop

    print(f"interleaved: {rate:.0f} req/s for {seconds:.0f}s ...", flush=True)
    by_body: list[list[float]] = [[], []]
    _, errors, sent = uvloop.run(_constant_rate(port, "/invocations", raw, rate, seconds, connections,
                                                by_body=by_body, bodies=(raw, flights)))
    p99 = [_percentile(sorted(lat), 0.99) * 1e3 for lat in by_body]
    p50 = [_percentile(sorted(lat), 0.50) * 1e3 for lat in by_body]
    return (f"interleaved, raw and flight-key requests in turn at {rate:.0f} req/s in all for {seconds:.0f}s "
          f"(open loop): {sent} sent, {errors} errors; raw p50 {p50[0]:.2f} / p99 {p99[0]:.2f} ms, flight key "
          f"p50 {p50[1]:.2f} / p99 {p99[1]:.2f} ms: {p99[1] / p99[0]:.2f}x "
            f"({'met' if p99[1] <= 2 * p99[0] else 'NOT met'}); /proc/loadavg "
            f"{Path('/proc/loadavg').read_text().strip()}")


def _flight_summary(rate: float, raw: dict, flights: dict) -> None:
    """The flight-key path against the raw-feature path: the issue's target is p99 within 2x."""
    paced = flights["paced"]
    if paced:
        print(f"tributary serve, flight keys paced by wrk (20 connections): {paced['sent']} requests at "
              f"{paced['rate']:,.0f} req/s, {paced['errors']} errors, p50 {paced['p50']:.2f} ms, "
              f"p90 {paced['p90']:.2f} ms, p99 {paced['p99']:.2f} ms")
    print(f"load average after: {os.getloadavg()[0]:.2f} (/proc/loadavg: {Path('/proc/loadavg').read_text().strip()})")
    print()
    ratio = flights["p99"] / raw["p99"]
    line = f"target: flight-key p99 <= 2x raw-feature p99 at {rate:.0f} req/s: open loop {flights['p99']:.2f} / " \
           f"{raw['p99']:.2f} ms = {ratio:.2f}x ({'met' if ratio <= 2 else 'NOT met'})"
    if paced and raw["paced"]:
        paced_ratio = paced["p99"] / raw["paced"]["p99"]
        line += f"; paced by wrk {paced['p99']:.2f} / {raw['paced']['p99']:.2f} ms = {paced_ratio:.2f}x " \
                f"({'met' if paced_ratio <= 2 else 'NOT met'})"
    print(line)


def _bodies(spec: dict, rows: list[dict], tables: dict, config_path: Path, flights: bool) -> tuple[bytes, bytes]:
    """(the raw-feature body, the flight-key body or b""): with --flights both ask about the same flight."""
    features = spec["features"]
    flight_body = b""
    if flights:
        row, flight_body = _flight_case(rows, tables, config_path)
        print(f"flight key: {flight_body.decode()}", flush=True)
    elif rows:
        row = rows[len(rows) // 2]
    else:
        row = {f: spec["categories"][f][0] if f in spec["categories"] else 1.0 for f in features}
    return json.dumps({"dataframe_split": {"columns": features, "data": [[row[f] for f in features]]}}).encode(), \
        flight_body


def _model_and_rows(args: argparse.Namespace, work: Path) -> tuple[str, list[dict], dict]:
    """(tracking URI, holdout rows or none, the 2013 warehouse tables or none): a model trained here unless one is
    given; the rows and tables are needed to train, and for --flights."""
    from pipelines.synthetic.warehouse_2013 import features_2013, warehouse_2013

    tables = warehouse_2013() if args.flights or not args.tracking_uri else {}
    if not args.tracking_uri:
        tracking_uri, _, rows = _train(work / "mlflow", tables)
        return tracking_uri, rows, tables
    return args.tracking_uri, features_2013(tables).tail(2000).to_dicts() if args.flights else [], tables


def _train(store: Path, tables: dict) -> tuple[str, str, list[dict]]:
    """A small registered model (one Optuna trial on a sample) and some holdout rows; (tracking URI, version, rows)."""
    from pipelines.ml import registry
    from pipelines.synthetic.warehouse_2013 import features_2013
    from pipelines.ml.split import TimeSplit, split
    from pipelines.ml.tracking import MlflowSettings
    from pipelines.ml.train import TuningConfig, train_and_register

    print("training a small model for the benchmark ...", flush=True)
    features = features_2013(tables)
    settings = MlflowSettings(tracking_uri=f"sqlite:///{store / 'mlflow.db'}",
                              artifact_location=(store / "artifacts").as_uri())
    result = train_and_register(features, settings, config=TuningConfig(
        n_trials=1, max_rounds=100, early_stopping_rounds=10, seed=1, train_sample=50_000, nthread=2))
    registry.promote(settings, result.model_version, reason="benchmark")
    holdout = split(features, TimeSplit.latest(features["flight_date"])).holdout
    return settings.tracking_uri, result.model_version, holdout.head(2000).to_dicts()


def _wait(url: str, process: subprocess.Popen, seconds: float, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.25)
    raise SystemExit(f"error: server at {url} did not start: {log.read_text()[-1500:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


async def _constant_rate(port: int, path: str, body: bytes, rate: float, seconds: float,
                         connections: int, grace: float = 10.0, *,
                         by_body: list[list[float]] | None = None, bodies: tuple[bytes, ...] = ()
                         ) -> tuple[list[float], int, int]:
    """Open-loop load: (latencies in seconds of the OK answers, errors and timeouts, sent). With `bodies`, the
    requests take them in turn and each one's latencies also go to `by_body[k]` (paths compared at the same
    instants, so a neighbour's load falls on both alike)."""
    requests = [(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(b)}\r\n\r\n").encode() + b for b in (bodies or (body,))]
    queue: asyncio.Queue[tuple[float, int] | None] = asyncio.Queue()
    latencies: list[float] = []
    split = by_body or [[] for _ in requests]
    clock = time.perf_counter  # uvloop's loop.time() ticks in whole milliseconds

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while True:
            item = await queue.get()
            if item is None:
                writer.close()
                return
            scheduled, k = item
            try:
                writer.write(requests[k])
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
                payload = await reader.readexactly(length)
                ok = head.startswith(b"HTTP/1.1 200") and b"predictions" in payload
            except (OSError, asyncio.IncompleteReadError, AttributeError):
                ok = False
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            if ok:
                latencies.append(clock() - scheduled)
                split[k].append(latencies[-1])

    workers = [asyncio.create_task(connection()) for _ in range(connections)]
    start = clock() + 0.2
    total = int(rate * seconds)
    sent = 0
    while sent < total:
        now = clock()
        due = min(total, int((now - start) * rate) + 1) if now >= start else 0
        while sent < due:
            queue.put_nowait((start + sent / rate, sent % len(requests)))
            sent += 1
        # Sleep until the next send is due (the loop wakes a little late; the sends it owes go out at once).
        await asyncio.sleep(max(0.0, start + sent / rate - clock()))
    for _ in workers:
        queue.put_nowait(None)
    # A server slower than the rate has a backlog: what it has not answered `grace` seconds after the last
    # scheduled send counts as an error (a timeout), so a slow server cannot stretch the run without bound.
    done, pending = await asyncio.wait(workers, timeout=grace)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return latencies, sent - len(latencies), sent


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _saturation(port: int, path: str, body: bytes, seconds: int, work: Path) -> tuple[float, str]:
    wrk = shutil.which("wrk")
    if wrk is None:
        return float("nan"), "wrk not installed (apt-get install -y wrk)"
    script = work / f"post-{port}.lua"
    script.write_text(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f"wrk.body = {json.dumps(body.decode())}\n")
    out = subprocess.run([wrk, "-t1", "-c16", f"-d{seconds}s", "-s", str(script), f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    found = re.search(r"Requests/sec:\s*([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    note = f"{bad.group(1)} non-2xx" if bad else ""
    return (float(found.group(1)) if found else float("nan")), note


def _paced(port: int, path: str, body: bytes, rate: float, seconds: float, connections: int,
           work: Path) -> dict | None:
    """The same rate from wrk (C, a fraction of the Python client's CPU), each connection pausing
    connections/rate between requests (wrk's `delay()` hook). Closed loop per connection, so latency counts from
    the actual send; wrk's Requests/sec says which rate was really held. None when wrk is missing."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    script = work / f"paced-{port}.lua"
    script.write_text(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f"wrk.body = {json.dumps(body.decode())}\n"
                      f"function delay() return {connections * 1000.0 / rate:.3f} end\n")
    out = subprocess.run([wrk, "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", str(script),
                          f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True,
                         timeout=seconds + 60).stdout

    def ms(label: str) -> float:
        found = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if not found:
            return float("nan")
        return float(found.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[found.group(2)]

    total = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    achieved = re.search(r"Requests/sec:\s*([\d.]+)", out)
    return {"sent": int(total.group(1)) if total else 0,
            "errors": (int(bad.group(1)) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0),
            "p50": ms("50%"), "p90": ms("90%"), "p99": ms("99%"),
            "rate": float(achieved.group(1)) if achieved else float("nan")}


def _buckets(port: int, metric: str) -> dict[float, float]:
    """Cumulative bucket counts (le -> count, summed over variants) of a histogram on the server's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    out: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(f"{metric}_bucket{{"):
            le = float(re.search(r'le="([^"]+)"', line).group(1))
            out[le] = out.get(le, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def _bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The upper bound of the bucket holding quantile q of what was observed between two scrapes."""
    delta = sorted((le, after.get(le, 0.0) - before.get(le, 0.0)) for le in after)
    total = delta[-1][1] if delta else 0.0
    return next((le for le, count in delta if total and count >= q * total), float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", help="MLflow store holding delay_model (default: train one here).")
    parser.add_argument("--version", help="Registered version to serve (default: the champion).")
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--saturation-seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--connections", type=int, default=32, help="Client connections of the constant-rate phase.")
    parser.add_argument("--flights", action="store_true",
                        help="Compare flight-key requests with raw-feature ones on tributary serve (no mlflow).")
    args = parser.parse_args()
    os.environ.update(QUIET)
    import uvloop

    from pipelines.ml.artifacts import resolve_version
    from pipelines.ml.tracking import MlflowSettings
    from pipelines.serving.config import EndpointConfig, Variant, prepare_models, publish, registry_fetch

    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    tracking_uri, rows, tables = _model_and_rows(args, work)
    settings = MlflowSettings(tracking_uri=tracking_uri)
    version = resolve_version(settings, args.version or "champion")
    model_dir = prepare_models([version], work / "models", registry_fetch(settings))[version]
    spec = json.loads((model_dir / "spec.json").read_text())
    features = spec["features"]
    config_path = work / "endpoint.json"
    body, flight_body = _bodies(spec, rows, tables, config_path, args.flights)

    publish(config_path, EndpointConfig(name="tributary-delay", variants=(Variant("champion", version, 1.0,
                                                                                  str(model_dir)),)))
    servers = []
    t_port, m_port = _free_port(), _free_port()
    t_log, m_log = work / "tributary.log", work / "mlflow.log"
    # mlflow models serve runs `uvicorn` from PATH: the interpreter's own bin folder must come first.
    env = {**os.environ, "TRIBUTARY_HOME": str(work / "home"), "MLFLOW_TRACKING_URI": tracking_uri,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    py = sys.executable
    tributary = subprocess.Popen(
        [py, "-m", "pipelines.serving.cli", "--port", str(t_port), "--workers", str(args.workers),
         "--config", str(config_path), "--spool", str(work / "spool"), "--state", str(work / "state")],
        cwd=ROOT, env=env, stdout=t_log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    servers.append(tributary)
    mlflow_server = None
    if not args.flights:
        mlflow_bin = str(Path(py).with_name("mlflow"))
        mlflow_server = subprocess.Popen(
            [mlflow_bin, "models", "serve", "-m", f"models:/{settings.model_name}/{version}", "--env-manager",
             "local", "-h", "127.0.0.1", "-p", str(m_port), "--workers", str(args.workers)],
            cwd=work, env=env, stdout=m_log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
        servers.append(mlflow_server)
    results = []
    try:
        _wait(f"http://127.0.0.1:{t_port}/ping", tributary, 60, t_log)
        if mlflow_server is not None:
            _wait(f"http://127.0.0.1:{m_port}/ping", mlflow_server, 180, m_log)
        else:
            _wait_online(t_port, t_log)
        print(f"model delay_model v{version} ({len(features)} features); {args.workers} worker(s) per server; "
              f"{os.cpu_count()} cores; load average before {os.getloadavg()[0]:.2f} "
              f"(/proc/loadavg: {Path('/proc/loadavg').read_text().strip()})", flush=True)
        plan = (("tributary serve", t_port, "/invocations", tributary, body),
                ("mlflow models serve", m_port, "/invocations", mlflow_server, body)) if mlflow_server else \
            (("tributary, raw features", t_port, "/invocations", tributary, body),
             ("tributary, flight key", t_port, "/invocations", tributary, flight_body))
        for name, port, path, process, body in plan:
            # Warm up (first requests load lazily in some servers); saturation first, so that the backlog a
            # slow server builds in the constant-rate phase cannot eat into its saturation figure.
            uvloop.run(_constant_rate(port, path, body, 200, 2, 8))
            print(f"{name}: saturation with wrk for {args.saturation_seconds}s ...", flush=True)
            saturation, note = _saturation(port, path, body, args.saturation_seconds, work)
            time.sleep(1)
            print(f"{name}: {args.rate:.0f} req/s for {args.seconds:.0f}s ...", flush=True)
            ours = name == plan[0][0]  # the server-side histograms are read for the first phase only
            if ours:
                scraped = {m: _buckets(port, m) for m in ("ModelLatency", "OverheadLatency")}
            latencies, errors, sent = uvloop.run(
                _constant_rate(port, path, body, args.rate, args.seconds, args.connections))
            ordered = sorted(latencies)
            paced = _paced(port, path, body, args.rate, args.seconds, 20, work) if process is tributary else None
            if ours:
                server_side = {m: _bucket_quantile(scraped[m], _buckets(port, m), 0.99) for m in scraped}
            results.append({"server": name, "sent": sent, "ok": len(ordered), "errors": errors,
                            "p50": _percentile(ordered, 0.50) * 1e3, "p95": _percentile(ordered, 0.95) * 1e3,
                            "p99": _percentile(ordered, 0.99) * 1e3, "max": (ordered[-1] if ordered else 0) * 1e3,
                            "saturation": saturation, "note": note, "alive": process.poll() is None,
                            "paced": paced})
        interleaved = _interleaved(t_port, plan[0][4], flight_body, args.rate, args.seconds, args.connections) \
            if args.flights else ""
    finally:
        for process in servers:
            _stop(process)

    print()
    print(f"single-row requests, {args.rate:.0f} req/s for {args.seconds:.0f}s (open loop; latency from the scheduled "
          f"send; errors include requests not answered 10 s after the last send; percentiles over answered ones), "
          f"then wrk -c16 saturation")
    header = f"{'server':<20} {'sent':>6} {'ok':>6} {'errors':>6} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} " \
             f"{'max ms':>7} {'saturation req/s':>17}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['server']:<20} {r['sent']:>6} {r['ok']:>6} {r['errors']:>6} {r['p50']:>7.2f} {r['p95']:>7.2f} "
              f"{r['p99']:>7.2f} {r['max']:>7.2f} {r['saturation']:>17,.0f} {r['note']}")
    print(f"tributary serve, server side (its own /metrics) during that phase: p99 ModelLatency <= "
          f"{server_side['ModelLatency']:,.0f} us, p99 OverheadLatency <= {server_side['OverheadLatency']:,.0f} us "
          f"(histogram bucket bounds)")
    paced = results[0]["paced"]
    if paced:
        print(f"tributary serve, the same rate paced by wrk (20 connections, latency from the actual send): "
              f"{paced['sent']} requests at {paced['rate']:,.0f} req/s, {paced['errors']} errors, "
              f"p50 {paced['p50']:.2f} ms, p90 {paced['p90']:.2f} ms, p99 {paced['p99']:.2f} ms")
    ours, theirs = results[0], results[1]
    if args.flights:
        _flight_summary(args.rate, ours, theirs)
        print(interleaved)
        shutil.rmtree(work, ignore_errors=True)
        return
    ratio = ours["saturation"] / theirs["saturation"] if theirs["saturation"] else float("nan")
    print(f"load average after: {os.getloadavg()[0]:.2f} (this benchmark itself adds about 2-3; more means other work "
          f"shared the cores)")
    print()
    best_p99 = min(ours["p99"], paced["p99"] if paced else float("inf"))
    paced_note = f", {paced['p99']:.2f} ms paced by wrk" if paced else ""
    print(f"targets: p99 <= 5 ms at {args.rate:.0f} req/s: {'met' if best_p99 <= 5 else 'NOT met'} "
          f"({ours['p99']:.2f} ms open loop{paced_note}); "
          f"saturation >= 3x mlflow: {'met' if ratio >= 3 else 'NOT met'} ({ratio:.1f}x)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
