"""`tributary query` underneath: SQL over Delta tables by their asset names, one-line errors; read-only, and only the
lake's tables; a damaged table named in one line."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner, Result

from pipelines.core import delta
from pipelines.cli import main
from pipelines.core.lake import Lake
from pipelines.core.query import QueryError, catalog, render, run_sql


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lake:
    monkeypatch.setenv("TRIBUTARY_LAKE_ROOT", str(tmp_path / "lake"))  # the `local` profile's lake, for the CLI
    lake = Lake(str(tmp_path / "lake"))
    delta.overwrite(lake, "warehouse/dim_carrier", pl.DataFrame({"carrier": ["UA", "AA"], "name": ["United", "American"]}))
    delta.overwrite(lake, "standardized/flights", pl.DataFrame({"carrier": ["UA", "UA", "AA"], "arr_delay": [5, 25, -3]}))
    return lake


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, ["query", *args])


def one_error_line(result: Result) -> str:
    """The error a failed command printed: exit 1, one `error:` line on stderr, nothing on stdout."""
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_catalog_names_tables_by_asset_name(lake: Lake) -> None:
    assert catalog(lake) == {"dim_carrier": "warehouse/dim_carrier", "standardized_flights": "standardized/flights"}


def test_sql_joins_across_zones(lake: Lake) -> None:
    out = run_sql(lake, "SELECT d.name, count(*) AS n, avg(f.arr_delay) AS mean_delay FROM standardized_flights f "
                        "JOIN dim_carrier d ON f.carrier = d.carrier GROUP BY d.name ORDER BY d.name")
    assert out.rows() == [("American", 1, -3.0), ("United", 2, 15.0)]


@pytest.mark.parametrize(
    ("sql", "message"),
    [("SELEC 1 FROM dim_carrier", "SQL error"), ("SELECT nope FROM dim_carrier", "SQL error"),
     ("SELECT * FROM fact_nothing", "names no known table")],
)
def test_errors_are_one_line(lake: Lake, sql: str, message: str) -> None:
    with pytest.raises(QueryError, match=message) as info:
        run_sql(lake, sql)
    assert "\n" not in str(info.value)


def test_render_formats(lake: Lake) -> None:
    df = run_sql(lake, "SELECT carrier FROM dim_carrier ORDER BY carrier")
    assert render(df, "csv") == "carrier\nAA\nUA\n"
    assert json.loads(render(df, "json")) == [{"carrier": "AA"}, {"carrier": "UA"}]
    assert "carrier" in render(df, "table")


# -- issue 21.6: only the lake's tables, and only reads --------------------------------------------------------

READS_A_FILE = [
    "SELECT * FROM read_csv('{f}', has_header => false, separator => ':') -- dim_carrier",
    "SELECT * FROM read_csv('{f}', has_header => false) /* dim_carrier */",
    "SELECT * FROM READ_CSV('{f}', has_header => false) WHERE 'dim_carrier' <> ''",
    "SELECT * FROM \"Read_Csv\"('{f}', has_header => false) -- dim_carrier",
    "SELECT * FROM read_csv/**/('{f}', has_header => false) -- dim_carrier",
    "SELECT * FROM dim_carrier, read_csv('{f}', has_header => false)",
    "SELECT * FROM dim_carrier d JOIN read_csv('{f}', has_header => false) s ON true",
    "SELECT (SELECT count(*) FROM read_csv('{f}', has_header => false)) AS n FROM dim_carrier",
    "WITH dim_carrier AS (SELECT * FROM read_csv('{f}', has_header => false)) SELECT * FROM dim_carrier",
    "SELECT carrier FROM dim_carrier UNION ALL SELECT * FROM read_csv('{f}', has_header => false)",
    "/* /* */ SELECT * FROM read_csv('{f}', has_header => false) -- */ SELECT * FROM dim_carrier",
    "SELECT * FROM read_parquet('{f}') -- dim_carrier",
    "SELECT * FROM read_json('{f}') -- dim_carrier",
    "SELECT * FROM read_ndjson('{f}') -- dim_carrier",
    "SELECT * FROM read_ipc('{f}') -- dim_carrier",
]


@pytest.mark.parametrize("template", READS_A_FILE)
def test_table_functions_are_refused_however_the_sql_hides_them(lake: Lake, tmp_path: Path, template: str) -> None:
    secret = tmp_path / "edge_private.key"
    secret.write_text("tributary-secret:do-not-print\n")
    error = one_error_line(cli(template.format(f=secret)))
    assert "table functions" in error and "reads only the lake's tables" in error
    assert "do-not-print" not in error


@pytest.mark.parametrize(
    "sql",
    ["SELECT * FROM main.dim_carrier", "SELECT * FROM 'edge_private.key'", "SELECT * FROM glob('*.key')",
     "SELECT * FROM dim_carrier JOIN LATERAL (SELECT 1 AS x) s ON true"],
)
def test_only_the_lakes_tables_can_be_read(lake: Lake, sql: str) -> None:
    error = one_error_line(cli(sql))
    assert "reads only the lake's tables" in error or "names no known table" in error


@pytest.mark.parametrize(
    ("sql", "keyword"),
    [("DELETE FROM dim_carrier WHERE carrier = 'UA'", "DELETE"), ("DROP TABLE dim_carrier", "DROP"),
     ("TRUNCATE dim_carrier", "TRUNCATE"), ("CREATE TABLE x AS SELECT * FROM dim_carrier", "CREATE"),
     ("INSERT INTO dim_carrier VALUES ('B6', 'JetBlue')", "INSERT"), ("COPY dim_carrier TO 'out.csv'", "COPY"),
     ("UPDATE dim_carrier SET name = 'x'", "UPDATE"), ("SELECT * INTO x FROM dim_carrier", "INTO"),
     ("WITH gone AS (DELETE FROM dim_carrier RETURNING *) SELECT * FROM gone", "DELETE"),
     ("delete /* a comment */ FROM dim_carrier", "DELETE")],
)
def test_statements_that_write_fail_in_one_line_and_change_nothing(lake: Lake, sql: str, keyword: str) -> None:
    before = delta.version(lake, "warehouse/dim_carrier")
    error = one_error_line(cli(sql))
    assert "read-only" in error and keyword in error
    assert delta.version(lake, "warehouse/dim_carrier") == before
    assert run_sql(lake, "SELECT count(*) AS n FROM dim_carrier").item() == 2


@pytest.mark.parametrize("sql", ["SHOW TABLES", "EXPLAIN SELECT * FROM dim_carrier",
                                 "SELECT 1 FROM dim_carrier; SELECT 2 FROM dim_carrier"])
def test_anything_but_one_query_fails_in_one_line(lake: Lake, sql: str) -> None:
    assert "SQL error" in one_error_line(cli(sql))


def test_quoting_case_comments_and_ctes_still_read_the_lake(lake: Lake) -> None:
    result = cli("WITH \"Late\" AS (SELECT * FROM STANDARDIZED_FLIGHTS /* read_csv( */ WHERE arr_delay > 0) "
                 "SELECT carrier, thread_id FROM (SELECT l.carrier, 1 AS thread_id FROM late l) ORDER BY carrier",
                 "--format", "csv")
    assert "table functions" in result.stderr  # even inside a comment, `read_` is refused
    result = cli("WITH \"Late\" AS (SELECT * FROM \"STANDARDIZED_FLIGHTS\" -- a comment\n WHERE arr_delay > 0) "
                 "SELECT carrier, 1 AS thread_id FROM late ORDER BY carrier", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout == "carrier,thread_id\nUA,1\nUA,1\n"


# -- issue 21.5: a damaged table is one line naming it, what is wrong and what to do -------------------------------

def _damaged(lake: Lake, how: str) -> None:
    for carriers in (["UA"], ["UA", "AA"]):  # versions 0, 1, 2
        delta.overwrite(lake, "warehouse/dim_carrier", pl.DataFrame({"carrier": carriers, "name": carriers}))
    log = Path(lake.uri("warehouse/dim_carrier/_delta_log"))
    if how == "truncated commit":
        newest = log / f"{2:020d}.json"
        newest.write_bytes(newest.read_bytes()[:300])
    elif how == "missing commit":
        (log / f"{1:020d}.json").unlink()
    else:
        uri = delta.open_table(lake, "warehouse/dim_carrier").file_uris()[0]  # type: ignore[union-attr]
        Path(uri.removeprefix("file://")).unlink()


@pytest.mark.parametrize(("how", "what"), [("truncated commit", "commit 2 of its Delta log is truncated"),
                                           ("missing commit", "commit 1 of its Delta log is missing"),
                                           ("missing data file", "data file part-")])
def test_a_damaged_table_fails_in_one_line_naming_it(lake: Lake, how: str, what: str) -> None:
    _damaged(lake, how)
    sql = "SELECT d.name, f.arr_delay FROM standardized_flights f JOIN dim_carrier d USING (carrier)"
    error = one_error_line(cli(sql))
    assert error.startswith("error: table dim_carrier is damaged: ")
    assert what in error
    assert f"restore it from a backup, or delete {lake.uri('warehouse/dim_carrier')}" in error
    assert "materialize warehouse/dim_carrier again" in error
    assert cli("SELECT count(*) AS n FROM standardized_flights", "--format", "csv").stdout == "n\n3\n"


# -- issue 23.4: what can be queried, and the help that says so --------------------------------------------------

def test_tables_lists_every_queryable_table_from_the_lake(lake: Lake) -> None:
    delta.overwrite(lake, "standardized/telemetry", pl.DataFrame({"station": ["JFK"], "temp": [1.5]}))
    delta.overwrite(lake, "quarantine/flights", pl.DataFrame({"rule": ["carrier_known"]}))
    result = cli("--tables", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["table,path", "dim_carrier,warehouse/dim_carrier",
                                          "quarantine_flights,quarantine/flights",
                                          "standardized_flights,standardized/flights",
                                          "standardized_telemetry,standardized/telemetry"]
    for name in ("standardized_telemetry", "quarantine_flights"):
        assert cli(f"SELECT count(*) AS n FROM {name}", "--format", "csv").stdout == "n\n1\n"


def test_tables_on_an_empty_lake_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUTARY_LAKE_ROOT", str(tmp_path / "empty"))
    assert "run `tributary run` first" in one_error_line(cli("--tables"))


def test_help_says_what_can_be_queried_and_summaries_are_whole() -> None:
    help_text = cli("--help").output
    assert "--tables" in help_text and "standardized_telemetry" in help_text and "quarantine_flights" in help_text
    top = CliRunner().invoke(main, ["--help"]).output
    summaries = {line.split()[0]: line for line in top.splitlines() if line.startswith("  ") and line.split()}
    for command in ("query", "search"):
        assert "(e.g." not in summaries[command], summaries[command]
        assert not summaries[command].rstrip().endswith("("), summaries[command]
