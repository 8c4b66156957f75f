"""Documents automation: land new NoSQL items and new files under the landing prefix, then read them."""


import hashlib
import json

from dagster import (AssetSelection, DefaultSensorStatus, Definitions, RunRequest, SensorEvaluationContext,
                     SensorResult, SkipReason, sensor)

from assets.documents import document_assets
from pipelines.documents.landing import pending, read_state
from resources.documents import DocumentStoreResource
from resources.lake import LakeResource


def plan_landing(cursor: dict, new: dict) -> tuple[dict, str | None]:
    """(next cursor, run key or None) given the sensor's cursor and what the sources hold beyond it.

    The run key names the position reached, so a tick that sees the same documents again asks for nothing new.
    """
    if not new:
        return cursor, None
    following = {"store": new.get("store", cursor.get("store", {})),
                 "landing": new.get("landing", cursor.get("landing", ""))}
    digest = hashlib.sha256(json.dumps(following, sort_keys=True).encode()).hexdigest()[:16]
    return following, f"documents:{digest}"


@sensor(
    name="documents_landing",
    asset_selection=AssetSelection.assets(*document_assets),
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
    description="Land documents that arrived in the NoSQL store or under the landing prefix, then read them.",
)
def documents_landing(
    context: SensorEvaluationContext, lake: LakeResource, documents: DocumentStoreResource
) -> SensorResult:
    the_lake = lake.get_lake()
    store = documents.get_store()
    # Without a cursor the sensor starts where landing stands, not at the beginning of the sources.
    cursor = json.loads(context.cursor) if context.cursor else read_state(the_lake)
    cursor = {"store": cursor.get("store", {}), "landing": cursor.get("landing", "")}
    new = pending(the_lake, store, prefix=documents.landing_prefix, cursor=cursor)
    following, run_key = plan_landing(cursor, new)
    if run_key is None:
        newest = max(cursor["store"].values(), default="none") if cursor["store"] else "none"
        return SensorResult(
            skip_reason=SkipReason(
                f"no new document in {store.describe()} (newest item read: {newest}) or under "
                f"{documents.landing_prefix} (last file: {cursor['landing'] or 'none'})"
            ),
            cursor=json.dumps(cursor, sort_keys=True),
        )
    what = ", ".join(filter(None, ["new items in the store" if "store" in new else "",
                                   "new files under the landing prefix" if "landing" in new else ""]))
    context.log.info(f"requesting a documents run: {what}")
    return SensorResult(
        run_requests=[RunRequest(run_key=run_key, tags={"tributary/trigger": "documents_landing"})],
        cursor=json.dumps(following, sort_keys=True),
    )


defs = Definitions(sensors=[documents_landing])
