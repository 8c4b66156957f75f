"""Delta writes: partition-scoped overwrite and MERGE give the same table when re-run, on a folder and on S3."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable, write_deltalake

from pipelines.core import delta
from pipelines.core.lake import Lake

D1, D2, D3 = dt.date(2013, 1, 1), dt.date(2013, 1, 2), dt.date(2013, 1, 3)


def test_overwrite_range_replaces_only_its_days_and_reruns_are_idempotent(lake: Lake) -> None:
    days = pl.DataFrame({"d": [D1, D2, D3], "x": [1, 2, 3]})
    delta.overwrite_range(lake, "w/t", days, column="d", first=D1, last=D3)
    again = pl.DataFrame({"d": [D2, D2], "x": [20, 21]})
    for _ in range(2):
        delta.overwrite_range(lake, "w/t", again, column="d", first=D2, last=D2)
    out = delta.scan(lake, "w/t").sort("d", "x").collect()
    assert out.rows() == [(D1, 1), (D2, 20), (D2, 21), (D3, 3)]
    assert delta.version(lake, "w/t") == 2
    table = delta.open_table(lake, "w/t")  # file statistics on the range column only
    assert table.metadata().configuration == {delta.STATS_COLUMNS: "d"}
    assert "min.d" in table.get_add_actions(flatten=True).schema.names
    assert "min.x" not in table.get_add_actions(flatten=True).schema.names


def test_overwrite_range_refuses_rows_outside_the_range(lake: Lake) -> None:
    with pytest.raises(ValueError, match="fall outside"):
        delta.overwrite_range(lake, "w/t", pl.DataFrame({"d": [D3], "x": [1]}), column="d", first=D1, last=D2)
    assert delta.version(lake, "w/t") is None


def test_merge_upserts_on_the_key(lake: Lake) -> None:
    delta.merge(lake, "w/k", pl.DataFrame({"k": ["a", "b"], "v": [1, 2]}), keys=["k"])
    for _ in range(2):
        delta.merge(lake, "w/k", pl.DataFrame({"k": ["b", "c"], "v": [3, 4]}), keys=["k"])
    assert delta.scan(lake, "w/k").sort("k").collect().rows() == [("a", 1), ("b", 3), ("c", 4)]


def test_merge_of_only_changed_rows_commits_nothing_when_nothing_changed(lake: Lake) -> None:
    dim = pl.DataFrame({"k": ["a", "b", "c"], "v": [1.0, None, 3.0]})
    assert delta.merge(lake, "w/d", dim, keys=["k"], only_changed=True) == 0
    assert delta.merge(lake, "w/d", dim, keys=["k"], only_changed=True) == 0  # nulls equal nulls: no commit
    changed = pl.DataFrame({"k": ["a", "b", "c", "d"], "v": [1.0, 2.0, 3.0, 4.0]})
    assert delta.changed_rows(changed, delta.scan(lake, "w/d"))["k"].to_list() == ["b", "d"]
    assert delta.merge(lake, "w/d", changed, keys=["k"], only_changed=True) == 1
    assert delta.scan(lake, "w/d").sort("k").collect().rows() == [("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0)]
    wider = changed.with_columns(w=pl.lit("x"))  # a new column: every row is upserted
    assert delta.changed_rows(wider, delta.scan(lake, "w/d")).height == 4
    assert delta.merge(lake, "w/d", wider, keys=["k"], only_changed=True) == 2
    assert delta.scan(lake, "w/d").select("w").unique().collect()["w"].to_list() == ["x"]


def test_scan_reads_an_earlier_version(lake: Lake) -> None:
    delta.overwrite(lake, "w/o", pl.DataFrame({"x": [1]}))
    delta.overwrite(lake, "w/o", pl.DataFrame({"x": [2]}))
    assert delta.scan(lake, "w/o", version=0).collect()["x"].to_list() == [1]
    assert delta.scan(lake, "w/o").collect()["x"].to_list() == [2]


def test_kept_open_reuses_one_handle_and_sees_every_writers_commits(lake: Lake) -> None:
    delta.overwrite_range(lake, "w/h", pl.DataFrame({"d": [D1], "x": [1]}), column="d", first=D1, last=D1)
    with delta.kept_open():
        handle = delta.open_table(lake, "w/h")
        assert delta.open_table(lake, "w/h") is handle
        other = DeltaTable(lake.uri("w/h"), storage_options=delta.storage_options(lake))  # another writer
        write_deltalake(other, pl.DataFrame({"d": [D2], "x": [2]}).to_arrow(), mode="append")
        assert delta.scan(lake, "w/h").sort("d").collect()["x"].to_list() == [1, 2]
        assert delta.overwrite_range(lake, "w/h", pl.DataFrame({"d": [D2], "x": [20]}), column="d",
                                     first=D2, last=D2) == 2
        assert delta.scan(lake, "w/h").sort("d").collect()["x"].to_list() == [1, 20]
        assert delta.scan(lake, "w/h", version=1).sort("d").collect()["x"].to_list() == [1, 2]
        assert delta.open_table(lake, "w/h") is handle and handle.version() == 2
    assert delta.open_table(lake, "w/h") is not handle


def test_a_day_partitioned_table_is_refused_then_migrated_in_place(lake: Lake) -> None:
    """A lake written before month writes: a clear refusal naming the command, then the same rows unpartitioned."""
    from deltalake import write_deltalake

    old = pl.DataFrame({"d": [D1, D2, D3], "x": [1, 2, 3]})
    write_deltalake(lake.uri("w/old"), old.to_arrow(), partition_by=["d"], storage_options=delta.storage_options(lake))
    with pytest.raises(delta.OldLayout, match=r"^w/old is on the old day-partitioned layout \(d\): run `tributary "
                                              r"lake migrate` once, then run again$"):
        delta.overwrite_range(lake, "w/old", old.head(1), column="d", first=D1, last=D1)
    before = delta.version(lake, "w/old")
    assert delta.migrate_unpartitioned(lake, "w/old", batch_rows=1) == before + 1
    assert delta.partition_columns(delta.open_table(lake, "w/old")) == []
    assert delta.scan(lake, "w/old").collect().sort("d").equals(old)
    assert delta.scan(lake, "w/old", version=before).collect().sort("d").equals(old)  # the old version stays readable
    assert delta.migrate_unpartitioned(lake, "w/old") is None  # done once
    delta.overwrite_range(lake, "w/old", pl.DataFrame({"d": [D2], "x": [20]}), column="d", first=D2, last=D2)
    assert delta.scan(lake, "w/old").collect().sort("d")["x"].to_list() == [1, 20, 3]


def test_month_writes_leave_one_file_per_month(tmp_path: Path) -> None:
    """The month layout: each month's overwrite replaces its own file, so re-runs never pile up small files."""
    lake = Lake(str(tmp_path / "lake"))
    for _ in range(3):
        for month in (1, 2):
            first = dt.date(2013, month, 1)
            days = pl.date_range(first, first + dt.timedelta(days=27), eager=True)
            delta.overwrite_range(lake, "w/t", pl.DataFrame({"d": days, "x": range(days.len())}), column="d",
                                  first=first, last=days[-1])
    assert len(delta.open_table(lake, "w/t").file_uris()) == 2
    assert delta.scan(lake, "w/t").collect().height == 56


def _month(year: int, month: int) -> list[dt.date]:
    first = dt.date(year, month, 1)
    after = (first + dt.timedelta(days=32)).replace(day=1)
    return [first + dt.timedelta(days=i) for i in range((after - first).days)]


def test_commit_groups_are_calendar_years_with_the_last_month_alone() -> None:
    run = [_month(2013, m) for m in (11, 12)] + [_month(2014, m) for m in range(1, 13)]
    groups = delta.commit_groups(run)
    assert [[m[0] for m in g] for g in groups] == [
        [dt.date(2013, 11, 1), dt.date(2013, 12, 1)],
        [dt.date(2014, m, 1) for m in range(1, 12)],
        [dt.date(2014, 12, 1)],
    ]
    assert delta.commit_groups(run[:1]) == [run[:1]]
    assert delta.commit_groups([]) == []


def test_write_months_commits_a_year_a_file_and_a_rerun_of_one_month_replaces_only_it(lake: Lake) -> None:
    """A two-year range run: one commit (one file) a year of each table, the run's last month apart; every month
    is still yielded as it is built; a later month's rerun replaces its rows only."""
    run = [_month(y, m) for y in (2013, 2014) for m in range(1, 13)]

    def build(days: list[dt.date]) -> dict[str, pl.DataFrame]:
        main = pl.DataFrame({"d": days, "x": [1] * len(days)})
        return {"w/main": main, "w/side": main.head(1).rename({"d": "p"})}

    out = list(delta.write_months(lake, run, {"w/main": "d", "w/side": "p"}, build))
    assert [days[0] for days, _, _ in out] == [m[0] for m in run]
    assert [version for _, _, version in out if version is not None][0] == 0
    assert out[-1][2] == 2  # three commits: 2013, 2014 to November, December
    for name, rows in (("w/main", 730), ("w/side", 24)):
        table = delta.open_table(lake, name)
        assert (len(table.file_uris()), table.version()) == (3, 2)
        assert delta.scan(lake, name).collect().height == rows
    march = _month(2013, 3)
    again = list(delta.write_months(lake, [march], {"w/main": "d", "w/side": "p"},
                                    lambda days: {"w/main": pl.DataFrame({"d": days[:2], "x": [7, 7]}),
                                                  "w/side": pl.DataFrame({"p": days[:1], "x": [7]})}))
    assert len(again) == 1
    main = delta.scan(lake, "w/main").collect()
    assert main.height == 730 - 31 + 2
    assert main.filter(pl.col("d").is_between(march[0], march[-1]))["x"].to_list() == [7, 7]
    assert main.filter(pl.col("x") == 1).height == 730 - 31


def test_write_months_commits_early_past_the_row_bound(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delta, "COMMIT_ROWS", 59)  # January and February, a day a row
    run = [_month(2013, m) for m in range(1, 7)]
    versions = [v for _, _, v in delta.write_months(
        lake, run, {"w/t": "d"}, lambda days: {"w/t": pl.DataFrame({"d": days, "x": [1] * len(days)})})]
    assert versions == [None, 0, 0, 1, 2, 3]  # Jan-Feb, Mar-Apr, May (the year's group ends), June alone
    assert delta.scan(lake, "w/t").collect().height == sum(len(m) for m in run)
