"""The systems the graph reads but does not write, as external assets: the source database's tables, the
telemetry stream and the document store. Declared so the lineage starts where the README's diagram starts.

Dagster cannot materialize them; `assets/policy.py` makes each raw asset depend on the source it reads.
"""

from __future__ import annotations

from typing import Final

from dagster import AssetKey, AssetSpec, Definitions

from pipelines.documents import RAW as RAW_DOCUMENTS
from pipelines.extract.extraction import SOURCE
from pipelines.extract.source import TABLES
from pipelines.stream.landing import RAW as RAW_TELEMETRY

GROUP = "sources"
STREAM_KEY = AssetKey(["source", "telemetry_stream"])
DOCUMENT_STORE_KEY = AssetKey(["source", "document_store"])


def table_key(table: str) -> AssetKey:
    return AssetKey(["source", SOURCE, table])


source_specs = [
    *(AssetSpec(table_key(name), group_name=GROUP, kinds={"postgres", "sqlite"},
                description=f"The operational `{name}` table of the source database (SQLite locally, PostgreSQL or "
                            "RDS elsewhere), read one day at a time by the extract stage.")
      for name in TABLES),
    AssetSpec(STREAM_KEY, group_name=GROUP, kinds={"kinesis", "mqtt"},
              description="Weather-station telemetry as it is sent: a Kinesis stream, an MQTT topic (through the "
                          "bridge) or a local spool folder, by profile."),
    AssetSpec(DOCUMENT_STORE_KEY, group_name=GROUP, kinds={"dynamodb", "s3"},
              description="Maintenance records in the NoSQL store (a folder locally, DynamoDB elsewhere) and files "
                          "dropped under the landing prefix."),
]

READS: Final[dict[AssetKey, AssetKey]] = {
    **{AssetKey(["raw", name]): table_key(name) for name in TABLES},
    AssetKey.from_user_string(RAW_TELEMETRY): STREAM_KEY,
    AssetKey.from_user_string(RAW_DOCUMENTS): DOCUMENT_STORE_KEY,
}
"""Which external source each raw asset reads."""

defs = Definitions(assets=source_specs)
