"""`make ray-demo`: a local Ray head on loopback, a range of the main job fanned out on it, checked against the
same range run in one process; prints the Ray job ids and the wall time, always stops the head.

Exits 0 when every run succeeded and every warehouse table equals the one-process run's, 1 otherwise. Every wait
has a deadline. The pitfalls met (issue 17) are handled here: Redis may hold 6379 (the GCS gets a free port);
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 keeps Ray on loopback; RAY_AUTH_MODE=disabled; the venv's bin leads PATH
(the launcher's entrypoint is a bare `dagster api ...`); the code pointer is absolute (fanout.py).

    python deploy/ray/demo.py --from 2013-01-01 --to 2013-01-31 [--max-runs 2] [--days-per-run 7]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import polars as pl
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BIN = Path(sys.executable).parent
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start_head(tmp: Path, env: dict[str, str], *, timeout: float, attempts: int = 3) -> tuple[subprocess.Popen, str]:
    """`ray start --head --block` in its own session (so that the whole head stops with one signal), on loopback
    ports of its own; returns it and its job-submission address once the dashboard answers.

    A head that exits while it starts is started again, on new ports, up to `attempts` times, each exit's reason
    printed: beside the whole test suite a chosen free port was taken before Ray bound it, and once the head
    exited (1) with one of its processes gone while two Ray clusters and two busy-loops shared the 2 cores."""
    for attempt in range(1, attempts + 1):
        try:
            return _start_head_once(tmp / f"ray-{attempt}", env, timeout=timeout)
        except HeadExited as exc:
            print(f"attempt {attempt} of {attempts}: {exc}", file=sys.stderr, flush=True)
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


class HeadExited(RuntimeError):
    """The head exited while it started; the message says why, from its own output and its session's logs."""


def _why(log: list[str], temp: Path, lines: int = 12) -> str:
    """The head's last output line and its session logs' last error lines: `ray start` prints only that one of
    its processes ended, the process's own log says why."""
    found = [f"{path.name}: {line.strip()}" for path in sorted(temp.glob("session_*/logs/*"))
             if path.is_file() and path.suffix in (".err", ".log", ".out")
             for line in path.read_text(errors="replace").splitlines()[-200:]
             if any(word in line for word in ("ERROR", "Error", "FATAL", "Traceback", "died", "exited", "timed out"))]
    last = log[-1] if log else "no output"
    return "; ".join([last, *found[-lines:]])


def _start_head_once(tmp: Path, env: dict[str, str], *, timeout: float) -> tuple[subprocess.Popen, str]:
    tmp.mkdir(parents=True, exist_ok=True)
    gcs, dash, client, agent, metrics, renv = free_ports(6)
    worker = free_ports(1)[0]
    cmd = [str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(gcs),
           "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash), "--ray-client-server-port", str(client),
           "--dashboard-agent-listen-port", str(agent), "--metrics-export-port", str(metrics),
           "--runtime-env-agent-port", str(renv), "--min-worker-port", str(worker),
           "--max-worker-port", str(min(worker + 50, 65535)), "--num-cpus", "2",
           "--temp-dir", str(tmp / "ray"), "--disable-usage-stats", "--include-dashboard", "true"]
    # The dashboard (which serves job submission) gives each of its modules 30 s to start and exits when one
    # is late: beside a loaded test suite (load 22) MetricsHead was. They get as long as the caller waits.
    env = {**env, "RAY_DASHBOARD_SUBPROCESS_MODULE_WAIT_READY_TIMEOUT": str(max(timeout, 30.0))}
    head = subprocess.Popen(cmd, env=env, stdout=open(tmp / "head.log", "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
                            start_new_session=True)
    address = f"http://127.0.0.1:{dash}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if head.poll() is not None:
            log = (tmp / "head.log").read_text(errors="replace").strip().splitlines()
            taken = any("port is not used by multiple components" in line for line in log)
            reason = "a chosen port was taken before Ray bound it" if taken else _why(log, tmp / "ray")
            raise HeadExited(f"the Ray head exited ({head.returncode}): {reason}")
        # Up means `ray start` says so (its node registered) and the dashboard answers: the dashboard answers
        # first, and under load the node then missed Ray's fixed 30-s registration wait and the head exited.
        if "Ray runtime started" not in (tmp / "head.log").read_text(errors="replace"):
            time.sleep(1)
            continue
        try:
            with urllib.request.urlopen(f"{address}/api/version", timeout=5):
                return head, address
        except OSError:
            time.sleep(1)
    stop_head(head)
    raise RuntimeError(f"the Ray head did not answer on {address} within {timeout:.0f}s")


def stop_head(head: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM to the head's whole session, then SIGKILL what is left (the GCS and raylet outlive a SIGTERM)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(head.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _group_alive(head.pid):
                head.wait(timeout=timeout)
                return
            time.sleep(0.5)
    head.wait(timeout=timeout)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def warehouse_differences(ray_lake: Path, local_lake: Path) -> list[str]:
    """The warehouse tables that differ between the two lakes (rows compared sorted, all columns)."""
    differ = []
    tables = sorted(p.name for p in (local_lake / "warehouse").iterdir() if (p / "_delta_log").exists())
    for table in tables:
        if not (ray_lake / "warehouse" / table / "_delta_log").exists():
            differ.append(f"{table}: missing")
            continue
        a, b = (pl.read_delta(str(lake / "warehouse" / table)) for lake in (ray_lake, local_lake))
        if a.columns != b.columns or not a.sort(a.columns).equals(b.sort(b.columns)):
            differ.append(f"{table}: {a.height} rows through Ray, {b.height} in one process")
    return differ or ([] if tables else ["no warehouse table was written"])


def run(cmd: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, cwd=ROOT, timeout=timeout, capture_output=True, text=True, check=False)


def prepare(tmp: Path, args: argparse.Namespace) -> dict[str, str]:
    """The environment of the demo: its own Dagster home (deploy/ray/dagster.yaml), lake and source."""
    env = {**os.environ, **RAY_ENV, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "TRIBUTARY_PROFILE": "local", "TRIBUTARY_HOME": str(tmp / "home"), "DAGSTER_HOME": str(tmp / "dagster"),
           "TRIBUTARY_LAKE_ROOT": str(tmp / "lake-ray")}
    (tmp / "dagster").mkdir()
    if not env.get("TRIBUTARY_SOURCE_DSN"):
        seeded = run([str(BIN / "tributary"), "seed"], env, args.timeout)
        if seeded.returncode:
            raise RuntimeError(f"seeding the source failed: {seeded.stderr.strip()[-500:]}")
    return env


def demo(args: argparse.Namespace, tmp: Path) -> int:
    env = prepare(tmp, args)
    began = time.monotonic()
    head, address = start_head(tmp, env, timeout=args.timeout)
    try:
        print(f"ray head up at {address} in {time.monotonic() - began:.1f}s", flush=True)
        config = yaml.safe_load((HERE / "dagster.yaml").read_text())
        config["run_launcher"]["config"]["ray"]["address"] = address
        config.pop("storage")  # SQLite under DAGSTER_HOME: the head is on this machine
        (tmp / "dagster" / "dagster.yaml").write_text(yaml.safe_dump(config))
        fanned = time.monotonic()
        out = run([sys.executable, str(HERE / "fanout.py"), "--from", args.start, "--to", args.end,
                   "--days-per-run", str(args.days_per_run), "--max-runs", str(args.max_runs),
                   "--timeout", str(args.timeout)], env, args.timeout + 60)
        print(out.stdout, end="")
        print(f"through Ray: {time.monotonic() - fanned:.1f}s wall", flush=True)
        if out.returncode:
            # the fan-out's last lines: its retries (launches, commits) say what went wrong before the error
            print("\n".join(out.stderr.strip().splitlines()[-15:]) or "error: the fan-out failed", file=sys.stderr)
            return 1
    finally:
        stop_head(head)
        print("ray head stopped", flush=True)
    local_env = {**env, "DAGSTER_HOME": str(tmp / "dagster-local"), "TRIBUTARY_LAKE_ROOT": str(tmp / "lake-local")}
    (tmp / "dagster-local").mkdir()
    one = time.monotonic()
    local = run([str(BIN / "tributary"), "run", "--select", "group:extract or group:standardize or group:warehouse",
                 "--from", args.start, "--to", args.end], local_env, args.timeout)
    if local.returncode:
        print(f"error: the one-process run failed: {local.stderr.strip()[-500:]}", file=sys.stderr)
        return 1
    print(f"one process: {time.monotonic() - one:.1f}s wall")
    differ = warehouse_differences(tmp / "lake-ray", tmp / "lake-local")
    if differ:
        print("error: the warehouse through Ray differs: " + "; ".join(differ), file=sys.stderr)
        return 1
    print("the warehouse through Ray equals the one-process run's, table for table")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="start", default="2013-01-01")
    parser.add_argument("--to", dest="end", default="2013-01-31")
    parser.add_argument("--days-per-run", type=int, default=7)
    parser.add_argument("--max-runs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=900, help="seconds for each stage (head, fan-out, check)")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="tray-", dir="/tmp"))  # short: Ray's socket paths (<108 bytes) live under it
    print(f"working in {tmp}", flush=True)
    try:
        return demo(args, tmp)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
