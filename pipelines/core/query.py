"""SQL over the lake's Delta tables by their asset names, with polars' SQL engine. No Dagster.

Names: warehouse tables by their own name (`fact_flights`, `dim_airport`, ...), the other zones prefixed
with the zone (`standardized_flights`, `quarantine_flights`, `analytics_telemetry_windows`). Polars reads Delta
natively, so nothing is downloaded at run time (DuckDB would fetch its delta extension).

Read-only, and only the lake's tables: polars' SQL can also read any file the process can (`read_csv`,
`read_parquet`, `read_json`, `read_ndjson`, `read_ipc` table functions), and runs `DELETE`, `DROP`, `TRUNCATE` and
`CREATE TABLE` on its in-memory context with exit 0. So a query passes three gates before polars sees it:

1. sqlglot parses it (comments, quoting and case resolved as a SQL parser does): one statement, a query, with no
   statement that writes anywhere inside it (`WITH x AS (DELETE ...)`, `SELECT ... INTO`);
2. every table it reads is a bare name of the lake's catalog or of one of its own CTEs: no table function, no
   schema-qualified name, no file path;
3. whatever sqlglot made of it, no word of its text may start with `read_`, in any case or quoting: polars can
   reach a file only through a table function named `read_*`, so SQL that parses differently in the two parsers
   still cannot name one.

Polars then gets only the named lake tables, so even a name the gates missed resolves to nothing.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping

import polars as pl
import pyarrow.fs as pafs
import sqlglot
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError
from sqlglot import exp
from sqlglot.errors import SqlglotError

from pipelines.core import delta
from pipelines.core.lake import Lake

ZONES = ("warehouse", "standardized", "quarantine", "analytics", "ml", "serving", "edge", "quality")

DIALECT = "duckdb"
"""The sqlglot dialect closest to polars' SQL (`SELECT * EXCLUDE`, `::` casts, `//`, `ILIKE`, nested comments)."""

_TABLE_FUNCTION = re.compile(r"(?<![a-z_])read_", re.IGNORECASE)
"""A word starting with `read_`, the prefix of every table function of polars' SQL (read_csv, read_parquet,
read_json, read_ndjson, read_ipc), quoted or not; `thread_id` is one word and does not match."""

_WRITES = (exp.DML, exp.DDL, exp.Drop, exp.TruncateTable, exp.Alter, exp.Into)
_SOURCES = (exp.Table, exp.Subquery, exp.Unnest, exp.Values)
_ONLY_LAKE = "`tributary query` reads only the lake's tables (`tributary query --tables` lists them)"

# sqlglot logs a warning when it parses an unknown statement as a Command; the refusal already says it in one line.
logging.getLogger("sqlglot").setLevel(logging.ERROR)


class QueryError(ValueError):
    """A query that cannot run; the message says why in one line."""


def catalog(lake: Lake) -> dict[str, str]:
    """Every Delta table in the lake: SQL name -> lake path."""
    names: dict[str, str] = {}
    for zone in ZONES:
        for table in lake.list_dirs(zone):
            if lake.exists(f"{zone}/{table}/_delta_log"):
                names[table if zone == "warehouse" else f"{zone}_{table}"] = f"{zone}/{table}"
    return names


def tables_read(sql: str, tables: Iterable[str]) -> list[str]:
    """The lake tables a read-only query reads, in order; QueryError when it does anything else."""
    tree = _one_query(sql)
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for clause in tree.find_all(exp.From, exp.Join):
        if not isinstance(clause.this, _SOURCES):
            raise QueryError(f"SQL error: cannot read from {clause.this.sql(DIALECT)[:60]}: {_ONLY_LAKE}")
    known = {name.lower(): name for name in tables}
    used: list[str] = []
    for table in tree.find_all(exp.Table):
        name = _lake_table(table, known, ctes)
        if name is not None and name not in used:
            used.append(name)
    return used


def _one_query(sql: str) -> exp.Query:
    """The one read-only statement of `sql`, parsed; QueryError for table functions, writes, or several."""
    if _TABLE_FUNCTION.search(sql):
        raise QueryError(f"table functions (read_csv, read_parquet, ...) are refused, and so is any word starting "
                         f"with read_: {_ONLY_LAKE}")
    try:
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except SqlglotError as exc:
        raise QueryError(f"SQL error: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise QueryError(f"SQL error: give exactly one statement (got {len(statements)})")
    (tree,) = statements
    for node in tree.walk():
        if isinstance(node, _WRITES):
            raise QueryError(f"query is read-only: {_keyword(node)} is refused (the lake's tables change only "
                             "through `tributary run` and the stages' sensors)")
    if not isinstance(tree, exp.Query):
        hint = "; `tributary query --tables` lists the tables" if isinstance(tree, exp.Show) else ""
        raise QueryError(f"SQL error: only a query (SELECT ...) runs here, not {_keyword(tree)}{hint}")
    return tree


def _lake_table(table: exp.Table, known: dict[str, str], ctes: set[str]) -> str | None:
    """The lake table a table reference names (None for a CTE); QueryError for anything else."""
    if not isinstance(table.this, exp.Identifier):
        raise QueryError(f"table function {table.this.sql(DIALECT)[:60]} is refused: {_ONLY_LAKE}")
    if table.args.get("db") or table.args.get("catalog"):
        raise QueryError(f"unknown table {table.sql(DIALECT)}: name a lake table without a schema; {_ONLY_LAKE}")
    name = table.name.lower()
    if name in ctes:
        return None
    if name not in known:
        listed = ", ".join(sorted(known)) or "none yet: run `tributary run` first"
        raise QueryError(f"unknown table {table.name!r}: the query names no known table of the lake "
                         f"(tables: {listed})")
    return known[name]


def run_sql(lake: Lake, sql: str) -> pl.DataFrame:
    """Run one read-only SQL query; only the lake tables it names are opened."""
    tables = catalog(lake)
    used = {name: tables[name] for name in tables_read(sql, tables)}
    if not used:
        known = ", ".join(sorted(tables)) or "none yet: run `tributary run` first"
        raise QueryError(f"the query names no known table (tables: {known})")
    try:
        ctx = pl.SQLContext({name: delta.scan(lake, rel) for name, rel in used.items()})
        return ctx.execute(sql, eager=True)
    except (DeltaError, FileNotFoundError) as exc:  # a damaged table: its log or a data file it names
        raise QueryError(damage(lake, used, exc)) from None
    except (pl.exceptions.PolarsError, ValueError) as exc:  # SQL parse, unknown column, type errors
        raise QueryError(f"SQL error: {_first_line(exc)}") from None


# -- damaged tables ---------------------------------------------------------------------------------------


def damage(lake: Lake, used: Mapping[str, str], exc: BaseException) -> str:
    """One line: which table is damaged, what is wrong with it and what to do."""
    missing = re.search(r"([^/\\\s]+\.parquet)", str(exc)) if isinstance(exc, FileNotFoundError) else None
    for name, rel in used.items():
        try:
            table = DeltaTable(lake.uri(rel), storage_options=delta.storage_options(lake))
            files = table.file_uris()
        except DeltaError as log_exc:
            what = _log_damage(lake, rel) or _delta_reason(log_exc)
            return f"table {name} is damaged: {what}; {_remedy(lake, rel)}"
        except OSError:
            continue
        if missing and any(uri.endswith("/" + missing.group(1)) for uri in files):
            return (f"table {name} is damaged: its data file {missing.group(1)} is missing (the Delta log still "
                    f"names it); {_remedy(lake, rel)}")
    names = ", ".join(used)
    return f"cannot read {names}: {_delta_reason(exc)}; check the table(s) at {lake.uri()}"


def _log_damage(lake: Lake, rel: str) -> str | None:
    """What is wrong with a table's `_delta_log`, found by reading it: a gap in the commits or a broken commit."""
    log = f"{rel}/_delta_log"
    try:
        names = _file_names(lake, log)
    except OSError:  # the lake itself failed: say what deltalake said instead
        return None
    commits = sorted(int(n[:-5]) for n in names if re.fullmatch(r"\d{20}\.json", n))
    checkpoints = [int(n.split(".")[0]) for n in names if re.fullmatch(r"\d{20}\.checkpoint\.parquet", n)]
    first = max(checkpoints) + 1 if checkpoints else 0
    wanted = range(first, max(commits, default=first - 1) + 1)
    gaps = sorted(set(wanted) - set(commits))
    if gaps:
        return f"commit {gaps[0]} of its Delta log is missing ({log}/{gaps[0]:020d}.json)"
    for version in reversed(commits):
        path = f"{log}/{version:020d}.json"
        try:
            for line in lake.read_bytes(path).decode().splitlines():
                if line.strip():
                    json.loads(line)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError both are
            return f"commit {version} of its Delta log is truncated or not JSON ({path})"
        except OSError:
            return None
    return None


def _file_names(lake: Lake, rel: str) -> list[str]:
    infos = lake.fs.get_file_info(pafs.FileSelector(lake.path(rel), allow_not_found=True))
    return [info.base_name for info in infos if info.type == pafs.FileType.File]


def _remedy(lake: Lake, rel: str) -> str:
    asset = "the asset that writes it" if rel.startswith("quarantine/") else rel
    return f"restore it from a backup, or delete {lake.uri(rel)} and materialize {asset} again"


def _delta_reason(exc: BaseException) -> str:
    """The first line of a deltalake or polars error, without the kernel's prefixes and debug dumps."""
    text = _first_line(exc)
    for prefix in ("Kernel error: ", "Generic delta kernel error: ", "Generic DeltaTable error: "):
        text = text.removeprefix(prefix)
    return re.split(r": \w+ \{", text, maxsplit=1)[0]


def _keyword(node: exp.Expression) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return {"truncatetable": "TRUNCATE", "into": "SELECT ... INTO"}.get(node.key, node.key.upper())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def render(df: pl.DataFrame, fmt: str) -> str:
    """The result as a table for people, or as CSV or JSON (an array of records) for programs."""
    if fmt == "csv":
        return df.write_csv()
    if fmt == "json":
        return df.write_json()
    with pl.Config(tbl_rows=100, tbl_cols=-1, tbl_width_chars=200, tbl_hide_dataframe_shape=False):
        return str(df)
