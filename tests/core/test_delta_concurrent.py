"""Many processes committing month range overwrites to one Delta table at once, on a folder and on S3 (moto).

delta-rs 1.6.6 refuses a commit that conflicts with one landed since its snapshot (CommitFailedError); before
`retry_on_conflict` the losers' months were lost. Racing *first* commits of a new table are not made safe (delta-rs
replays a later one as an append): the tests start from an existing table, as fanned-out runs do.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from deltalake.exceptions import CommitFailedError

from pipelines.core import delta
from pipelines.core.lake import Lake
from tests.conftest import stop_process

# One writer: imports, says "ready", waits for the go file (so that all commit at the same moment), writes.
WRITER = """
import datetime as dt, json, sys, time
from pathlib import Path
import polars as pl
from pipelines.core import delta
from pipelines.core.lake import Lake
spec = json.loads(sys.argv[1])
lake = Lake(**spec["lake"])
first, last = dt.date.fromisoformat(spec["first"]), dt.date.fromisoformat(spec["last"])
df = pl.DataFrame({"day": pl.date_range(first, last, eager=True)}).with_columns(writer=pl.lit(spec["writer"]))
print("ready", flush=True)
deadline = time.monotonic() + 300
while not Path(spec["go"]).exists():
    if time.monotonic() > deadline:
        sys.exit("no go file")
    time.sleep(0.01)
print(delta.overwrite_range(lake, "warehouse/t", df, column="day", first=first, last=last), flush=True)
"""

DISJOINT = range(1, 9)  # eight writers, one month each
SAME = 9  # two writers re-running the same month


def month(m: int) -> tuple[dt.date, dt.date]:
    return dt.date(2013, m, 1), dt.date(2013, m, calendar.monthrange(2013, m)[1])


def start_writers(lake: Lake, go: Path) -> dict[str, subprocess.Popen]:
    months = {f"m{m}": m for m in DISJOINT} | {"same-a": SAME, "same-b": SAME}
    procs = {}
    for writer, m in months.items():
        first, last = month(m)
        spec = {"lake": {"root": lake.root, "endpoint_url": lake.endpoint_url, "access_key_id": lake.access_key_id,
                         "secret_access_key": lake.secret_access_key},
                "first": first.isoformat(), "last": last.isoformat(), "writer": writer, "go": str(go)}
        procs[writer] = subprocess.Popen([sys.executable, "-c", WRITER, json.dumps(spec)], stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True)
    return procs


def race(procs: dict[str, subprocess.Popen], go: Path) -> None:
    """Wait until every writer is ready, let them all commit at once, and require each to succeed."""
    try:
        for name, proc in procs.items():
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", f"{name}: {proc.stderr.read() if proc.stderr else ''}"
        go.touch()
        for name, proc in procs.items():
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, f"{name} failed: {err}"
    finally:
        for proc in procs.values():
            stop_process(proc)


def test_ten_concurrent_writers_lose_and_duplicate_nothing(lake: Lake, tmp_path: Path) -> None:
    # The table exists, as fanned-out runs find it (deploy/ray/fanout.py runs the first month alone): racing
    # first commits of a new table are not safe in delta-rs 1.6, which replays a later one as an append.
    december = month(12)
    delta.overwrite_range(lake, "warehouse/t", pl.DataFrame({"day": pl.date_range(*december, eager=True)})
                          .with_columns(writer=pl.lit("m12")), column="day", first=december[0], last=december[1])
    go = tmp_path / "go"
    race(start_writers(lake, go), go)
    out = delta.scan(lake, "warehouse/t").collect()
    assert out["day"].n_unique() == out.height, "a day is duplicated"
    for m in DISJOINT:
        first, last = month(m)
        rows = out.filter(pl.col("day").is_between(first, last))
        assert rows.height == last.day and rows["writer"].unique().to_list() == [f"m{m}"], f"month {m} lost"
    first, last = month(SAME)
    same = out.filter(pl.col("day").is_between(first, last))
    assert same.height == last.day, "the month written twice at once is duplicated or lost"
    assert same["writer"].n_unique() == 1, "the two writers of one month are mixed: the last one must win whole"
    assert out.height == sum(month(m)[1].day for m in [*DISJOINT, SAME, 12])
    assert delta.version(lake, "warehouse/t") == 10  # the first write, then ten commits, none lost


def test_a_conflict_is_retried_and_a_lasting_one_is_reported_in_one_line() -> None:
    calls = []

    def flaky() -> int:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise CommitFailedError("Commit failed: a concurrent transactions added new data.\nHelp: rerun")
        return 7

    assert delta.retry_on_conflict(flaky, "warehouse/t", base_delay=0.001) == 7
    assert len(calls) == 3

    def always() -> int:
        raise CommitFailedError("Commit failed: a concurrent transaction deleted data this operation read.\nHelp")

    with pytest.raises(delta.ConcurrentWriteError, match=r"^warehouse/t: the commit lost .* 4 times: .*read\.$"):
        delta.retry_on_conflict(always, "warehouse/t", attempts=4, base_delay=0.001)


# One upserting writer: as WRITER, but a MERGE of a shared key and a key of its own into a dimension-like table.
MERGER = """
import json, sys, time
from pathlib import Path
import polars as pl
from pipelines.core import delta
from pipelines.core.lake import Lake
spec = json.loads(sys.argv[1])
lake = Lake(**spec["lake"])
df = pl.DataFrame({"key": ["shared", spec["writer"]], "writer": [spec["writer"]] * 2})
print("ready", flush=True)
deadline = time.monotonic() + 300
while not Path(spec["go"]).exists():
    if time.monotonic() > deadline:
        sys.exit("no go file")
    time.sleep(0.01)
print(delta.merge(lake, "warehouse/dim", df, keys=["key"]), flush=True)
"""


def test_concurrent_upserts_all_land_once(lake: Lake, tmp_path: Path) -> None:
    """Month runs fanned out upsert the same dimensions: before, a MERGE that conflicted failed its run."""
    delta.merge(lake, "warehouse/dim", pl.DataFrame({"key": ["shared"], "writer": ["first"]}), keys=["key"])
    go = tmp_path / "go"
    writers = [f"w{i}" for i in range(6)]
    procs = {}
    for writer in writers:
        spec = {"lake": {"root": lake.root, "endpoint_url": lake.endpoint_url, "access_key_id": lake.access_key_id,
                         "secret_access_key": lake.secret_access_key}, "writer": writer, "go": str(go)}
        procs[writer] = subprocess.Popen([sys.executable, "-c", MERGER, json.dumps(spec)], stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True)
    race(procs, go)
    out = delta.scan(lake, "warehouse/dim").collect()
    assert sorted(out["key"]) == sorted(["shared", *writers]), "a key is lost or duplicated"
    assert out.filter(pl.col("key") != "shared").select((pl.col("key") == pl.col("writer")).all()).item()
    assert delta.version(lake, "warehouse/dim") == len(writers)  # the first write, then one commit each
