"""`tributary query` on the `localstack` profile (a moto S3 server on loopback): the same rules as on a folder."""

from __future__ import annotations

import polars as pl
import pytest
from click.testing import CliRunner, Result

from pipelines.core import delta
from pipelines.cli import main
from pipelines.core.lake import Lake


@pytest.fixture
def s3_lake(s3_env: dict[str, str]) -> Lake:
    lake = Lake(s3_env["TRIBUTARY_LAKE_ROOT"], endpoint_url=s3_env["AWS_ENDPOINT_URL"], access_key_id="test",
                secret_access_key="test")
    lake.check(create=True)
    for carriers in (["UA"], ["UA", "AA"]):  # versions 0 and 1
        delta.overwrite(lake, "warehouse/dim_carrier", pl.DataFrame({"carrier": carriers, "name": carriers}))
    delta.overwrite(lake, "quarantine/flights", pl.DataFrame({"rule": ["carrier_known"]}))
    return lake


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, ["query", *args])


def one_error_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert result.stdout == "" and len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_s3_lake_answers_and_lists_its_tables(s3_lake: Lake) -> None:
    result = cli("SELECT carrier FROM dim_carrier ORDER BY carrier", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout == "carrier\nAA\nUA\n"
    assert cli("--tables", "--format", "csv").stdout.splitlines() == [
        "table,path", "dim_carrier,warehouse/dim_carrier", "quarantine_flights,quarantine/flights"]


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_csv('/etc/passwd', has_header => false, separator => ':') -- dim_carrier",
    "SELECT * FROM \"READ_PARQUET\"('s3://elsewhere/secret.parquet') /* dim_carrier */",
    "SELECT * FROM dim_carrier, read_json('/etc/hostname')",
])
def test_s3_table_functions_are_refused(s3_lake: Lake, sql: str) -> None:
    assert "table functions" in one_error_line(cli(sql))


@pytest.mark.parametrize("sql", ["DELETE FROM dim_carrier", "DROP TABLE dim_carrier", "TRUNCATE dim_carrier",
                                 "CREATE TABLE x AS SELECT * FROM dim_carrier", "COPY dim_carrier TO 'x.csv'",
                                 "INSERT INTO dim_carrier VALUES ('B6', 'JetBlue')"])
def test_s3_statements_that_write_are_refused(s3_lake: Lake, sql: str) -> None:
    assert "read-only" in one_error_line(cli(sql))
    assert delta.version(s3_lake, "warehouse/dim_carrier") == 1


def test_s3_damaged_tables_fail_in_one_line(s3_lake: Lake) -> None:
    log = "warehouse/dim_carrier/_delta_log"
    newest = s3_lake.read_bytes(f"{log}/{1:020d}.json")
    s3_lake.publish_bytes(f"{log}/{1:020d}.json", newest[:300])
    error = one_error_line(cli("SELECT * FROM dim_carrier"))
    assert "table dim_carrier is damaged: commit 1 of its Delta log is truncated" in error
    assert f"delete {s3_lake.uri('warehouse/dim_carrier')} and materialize" in error

    s3_lake.publish_bytes(f"{log}/{1:020d}.json", newest)
    first = s3_lake.read_bytes(f"{log}/{0:020d}.json")
    s3_lake.delete(f"{log}/{0:020d}.json")
    assert "commit 0 of its Delta log is missing" in one_error_line(cli("SELECT * FROM dim_carrier"))

    s3_lake.publish_bytes(f"{log}/{0:020d}.json", first)
    uri = delta.open_table(s3_lake, "warehouse/dim_carrier").file_uris()[0]  # type: ignore[union-attr]
    s3_lake.delete(uri.removeprefix(s3_lake.uri() + "/"))
    error = one_error_line(cli("SELECT * FROM dim_carrier"))
    assert f"table dim_carrier is damaged: its data file {uri.rsplit('/', 1)[1]} is missing" in error
