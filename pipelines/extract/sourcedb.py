"""Connections to the source database (SQLite file or PostgreSQL), with errors a person can act on."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url


class SourceError(RuntimeError):
    """The source database cannot be used; the message says why in one line."""


def normalize_url(dsn: str) -> str:
    """Accept what people type (`postgresql://`, `postgres://`, a bare file path) and name the driver we ship."""
    if "://" not in dsn:
        return f"sqlite:///{Path(dsn).expanduser()}"
    scheme, rest = dsn.split("://", 1)
    if scheme in ("postgresql", "postgres", "postgresql+psycopg2"):
        return f"postgresql+psycopg://{rest}"
    return dsn


def redact(url: str) -> str:
    """The URL with its password hidden, for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparseable URL has no password we could find either
        return url


def create_engine(dsn: str, *, create_dir: bool = False) -> sa.Engine:
    """An engine for the DSN. Raises SourceError for a DSN that cannot name a database we support."""
    url = normalize_url(dsn)
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise SourceError(f"not a database URL: {redact(dsn)!r} ({exc})") from None
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database:
            raise SourceError("a SQLite source needs a file path, e.g. sqlite:///.tributary/source.db")
        path = Path(parsed.database)
        if create_dir:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.exists():
            raise SourceError(f"source database {path} does not exist: run `tributary seed` first")
        return sa.create_engine(url)
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})
    raise SourceError(f"unsupported source database {parsed.get_backend_name()!r}: use SQLite or PostgreSQL")


def check_connection(engine: sa.Engine) -> None:
    """Fail with one clear line when the database cannot be reached or the file is not a database."""
    sqlite = engine.dialect.name == "sqlite"
    try:
        with engine.connect() as conn:
            # SQLite opens any file and only reads it on the first query that touches the schema.
            conn.execute(sa.text("SELECT count(*) FROM sqlite_master" if sqlite else "SELECT 1"))
    except sa.exc.OperationalError as exc:
        raise SourceError(f"cannot connect to source database {redact(str(engine.url))}: {_reason(exc)}") from None
    except sa.exc.DatabaseError as exc:
        if not sqlite:
            raise SourceError(f"cannot use source database {redact(str(engine.url))}: {_reason(exc)}") from None
        raise SourceError(
            f"source file {engine.url.database} is not a SQLite database ({_reason(exc)}): point --dsn or "
            "TRIBUTARY_SOURCE_DSN at the file `tributary seed` wrote, or move this file away and run `tributary seed`"
        ) from None


def _reason(exc: sa.exc.DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]


def check_tables(engine: sa.Engine, names: list[str]) -> None:
    """Fail with one clear line when a source table is missing (an unseeded or wrong database)."""
    check_connection(engine)
    present = set(sa.inspect(engine).get_table_names())
    missing = [n for n in names if n not in present]
    if missing:
        raise SourceError(
            f"source database {redact(str(engine.url))} has no table {', '.join(missing)}: "
            "run `tributary seed` against it (or check the DSN)"
        )
