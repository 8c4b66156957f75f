"""The extract stage's source database as a Dagster resource: a SQLite file locally, PostgreSQL (RDS on AWS) otherwise."""

from __future__ import annotations

import json
import os
from urllib.parse import quote

import sqlalchemy as sa
from pydantic import Field, PrivateAttr

from pipelines.extract.sourcedb import SourceError, check_tables, create_engine
from resources.aws import AwsConnection, aws_connection
from resources.profiles import env, home, value

PARTITIONS_END_DEFAULT = "2014-01-01"
"""First day after the data (exclusive). A seed at --scale N reaches 2013+N; set TRIBUTARY_PARTITIONS_END to
cover it, or to an empty value for an open-ended source that keeps receiving flights (production)."""


class SourceDatabaseResource(AwsConnection):
    """The operational database that `tributary seed` fills and the extract assets read."""

    dsn: str | None = Field(default=None, description="SQLAlchemy URL, postgresql:// DSN or SQLite file path.")
    secret_id: str | None = Field(
        default=None, description="Secrets Manager secret with the RDS credentials (used when dsn is empty)."
    )
    _engine: sa.Engine | None = PrivateAttr(default=None)

    def resolved_dsn(self) -> str:
        if self.dsn:
            return self.dsn
        if self.secret_id:
            return _dsn_from_secret(self.secret_id, self.client("secretsmanager"))
        raise SourceError("no source database configured: set TRIBUTARY_SOURCE_DSN (or TRIBUTARY_SOURCE_SECRET_ID)")

    def get_engine(self, *, tables: list[str] | None = None) -> sa.Engine:
        """A checked engine: raises SourceError in one line when the database or a table is missing."""
        if self._engine is None:
            self._engine = create_engine(self.resolved_dsn())
        if tables:
            check_tables(self._engine, tables)
        return self._engine


def _dsn_from_secret(secret_id: str, client) -> str:
    """Build a DSN from an RDS-style secret (username, password, host, port, dbname)."""
    try:
        secret = json.loads(client.get_secret_value(SecretId=secret_id)["SecretString"])
    except Exception as exc:  # botocore raises many kinds; all mean the same thing to the user
        raise SourceError(f"cannot read the source database secret {secret_id!r}: {exc}") from None
    user = quote(secret["username"], safe="")
    password = quote(secret.get("password", ""), safe="")
    return (
        f"postgresql+psycopg://{user}:{password}@{secret['host']}:{secret.get('port', 5432)}/"
        f"{secret.get('dbname', 'postgres')}"
    )


def source_db_resource(profile: str) -> SourceDatabaseResource:
    """The source database of a profile: SQLite under TRIBUTARY_HOME, PostgreSQL on localstack, RDS on aws."""
    default = {"local": f"sqlite:///{os.path.join(home(), 'source.db')}",
               "localstack": "postgresql://postgres@127.0.0.1:5432/test", "aws": None}[profile]
    return SourceDatabaseResource(dsn=env("TRIBUTARY_SOURCE_DSN", default),
                                  secret_id=env("TRIBUTARY_SOURCE_SECRET_ID", None), **aws_connection(profile))


def partitions_end() -> str | None:
    """The end of the daily partitions (TRIBUTARY_PARTITIONS_END; empty: open-ended)."""
    end = value("TRIBUTARY_PARTITIONS_END")
    return PARTITIONS_END_DEFAULT if end is None else (end.strip() or None)
