"""Serving group: the endpoint config from the registry aliases, the invocation log, and the A/B report.

Locally the endpoint is `tributary serve`, which watches the config this group publishes; on `aws` it is a
SageMaker endpoint. The logic lives in pipelines.serving; these assets only wire it to the resources.
"""

import datetime as dt
from collections.abc import Iterator

import polars as pl
from dagster import (AssetCheckResult, AssetCheckSpec, AssetExecutionContext, AssetKey, Config, Definitions,
                     MaterializeResult, MetadataValue, asset)
from pydantic import Field

from assets.common import delta_metadata, markdown_preview, optional_asset
from assets.ml import EVALUATION_KEY, FEATURES_KEY
from assets.warehouse import FACT_FLIGHTS_KEY
from pipelines.core import delta
from pipelines.ml.data import FACT
from pipelines.serving import abtest, online
from pipelines.serving.capture import land_capture
from pipelines.serving.config import from_registry
from pipelines.serving.invocations import KEYS, TABLE as INVOCATIONS, land
from resources.lake import LakeResource
from resources.ml import MlflowResource
from resources.serving import ServingResource
from pipelines.ml.registry import CHAMPION, alias_version

GROUP = "serving"
ENDPOINT_KEY = AssetKey(["serving", "delay_endpoint"])
INVOCATIONS_KEY = AssetKey.from_user_string(INVOCATIONS)
AB_REPORT = "serving/ab_report"
AB_REPORT_KEY = AssetKey.from_user_string(AB_REPORT)
ONLINE_KEY = AssetKey.from_user_string(online.TABLE)


class DelayEndpointConfig(Config):
    champion_weight: float = Field(default=0.9, ge=0, description="Routing weight of the champion variant.")
    challenger_weight: float = Field(default=0.1, ge=0,
                                     description="Routing weight of the challenger (0 leaves it out).")
    shadow_share: float = Field(default=0.0, ge=0, le=1,
                                description="Above 0, the challenger runs as a shadow on this share of traffic "
                                            "instead of taking weighted traffic.")


class AbReportConfig(Config):
    confidence: float = Field(default=0.95, gt=0, lt=1, description="Confidence of the AUC-difference interval.")
    min_labelled: int = Field(default=500, ge=1, description="Labelled flights each variant needs before deciding.")
    margin: float = Field(default=0.005, ge=0, description="AUC gain that would matter.")


@optional_asset(ENDPOINT_KEY, group=GROUP, deps=[EVALUATION_KEY], kinds={"mlflow", "sagemaker"},
                description="Champion and challenger as weighted variants (optional shadow), applied to the running "
                            "endpoint.")
def delay_endpoint(context: AssetExecutionContext, config: DelayEndpointConfig, serving: ServingResource,
                   mlflow: MlflowResource, lake: LakeResource) -> Iterator[MaterializeResult]:
    """Skipped (with the reason in the log), not failed, while the registry has no champion."""

    settings = mlflow.settings()
    if alias_version(settings, CHAMPION) is None:
        context.log.warning(f"serving/delay_endpoint not applied: {settings.model_name} has no champion yet")
        return
    endpoint = from_registry(
        settings, endpoint=serving.endpoint_name, models_root=serving.models_dir,
        champion_weight=config.champion_weight, challenger_weight=config.challenger_weight,
        shadow_share=config.shadow_share, sticky_header=serving.sticky_header, log=context.log.info,
    )
    result = serving.apply(endpoint, lake=lake.get_lake() if serving.mode == "sagemaker" else None,
                           log=context.log.info)
    variants = {v.name: {"model_version": v.model_version, "weight": v.weight} for v in endpoint.variants}
    metadata = {
        "action": result["action"],
        "mode": result["mode"],
        "endpoint": endpoint.name,
        "variants": MetadataValue.json(variants),
        "shadow": MetadataValue.json({"name": endpoint.shadow.name, "model_version": endpoint.shadow.model_version,
                                      "sample_share": endpoint.shadow.sample_share} if endpoint.shadow else {}),
    }
    if result["mode"] == "local":
        metadata["config_path"] = MetadataValue.path(result["config_path"])
        metadata["generation"] = result["generation"]
    else:
        metadata["endpoint_config_name"] = result["endpoint_config_name"]
        metadata["endpoint_config"] = MetadataValue.json(result["endpoint_config"])
    context.log.info(f"endpoint {endpoint.name} {result['action']}: " + ", ".join(
        f"{n}=v{v['model_version']}@{v['weight']:g}" for n, v in variants.items()))
    yield MaterializeResult(metadata=metadata)


@asset(
    key=ONLINE_KEY,
    group_name=GROUP,
    deps=[FEATURES_KEY],
    kinds={"polars", "delta"},
    description="What the endpoint builds a flight's features from (issue 20.1): the latest late rates per key, "
                "recent weather per origin, the published schedule, planes, airports and dates, as the offline "
                "features compute them; published beside the local endpoint config, which reloads it; SageMaker "
                "containers read the Delta table from the lake (S3) and re-check its version.",
)
def online_features(context: AssetExecutionContext, serving: ServingResource, lake: LakeResource) -> MaterializeResult:
    the_lake = lake.get_lake()
    table, versions = online.online_from_lake(the_lake)
    version = delta.overwrite(the_lake, online.TABLE, table)
    metadata = delta_metadata(rows=table.height, uri=the_lake.uri(online.TABLE), version=version,
                              schema=table.schema, preview=table.head(5))
    as_of = table.filter(pl.col("part") == "meta")["as_of"].item()
    metadata.update({"as_of": str(as_of), "source_versions": MetadataValue.json(versions.__dict__),
                     "rows_per_part": MetadataValue.json(dict(table.group_by("part").len().rows()))})
    if serving.mode == "local":
        online.publish(table, serving.online_features_path)
        metadata["published_to"] = MetadataValue.path(serving.online_features_path)
    elif the_lake.scheme == "s3":  # each SageMaker container reads the table itself (its version re-checked)
        metadata["read_by_sagemaker_from"] = MetadataValue.url(the_lake.uri(online.TABLE))
    else:
        context.log.warning(f"the lake is not on S3 ({the_lake.uri()}): the SageMaker containers cannot read the "
                            "online features, so flight-key requests work on the local service only")
    context.log.info(f"online features as of {as_of}: {table.height:,} rows")
    return MaterializeResult(metadata=metadata)


@asset(
    key=INVOCATIONS_KEY,
    group_name=GROUP,
    deps=[ENDPOINT_KEY],
    kinds={"delta"},
    check_specs=[AssetCheckSpec(
        "one_row_per_invocation", asset=INVOCATIONS_KEY, blocking=True,
        description="No (request_id, row, shadow) appears twice: a segment landed twice was absorbed by the MERGE.",
    )],
    description="The endpoint's invocation log (request, variant, features, prediction, latencies), MERGEd once.",
)
def invocations(context: AssetExecutionContext, serving: ServingResource, lake: LakeResource) -> MaterializeResult:
    the_lake = lake.get_lake()
    if serving.mode == "sagemaker":  # SageMaker Data Capture's JSON lines in the lake's serving/capture/
        landed = land_capture(the_lake, serving.endpoint_name, log=context.log.info)
    else:
        landed = land(the_lake, serving.spool_dir, stale_seconds=serving.stale_segment_seconds, log=context.log.info)
    table = delta.open_table(the_lake, INVOCATIONS)
    if table is None:
        context.log.info(f"no invocation spooled yet in {serving.spool_dir}")
        return MaterializeResult(
            metadata={"landed_rows": 0, "landed_segments": 0, "dagster/row_count": 0,
                      "dagster/uri": MetadataValue.path(the_lake.uri(INVOCATIONS))},
            check_results=[AssetCheckResult(check_name="one_row_per_invocation", passed=True,
                                            description="no invocation logged yet")])
    frame = delta.scan(the_lake, INVOCATIONS)
    rows, distinct = frame.select(pl.len(), pl.struct(list(KEYS)).n_unique()).collect().row(0)
    preview = frame.sort("invoked_at", descending=True).head(5).collect()
    metadata = delta_metadata(rows=rows, uri=the_lake.uri(INVOCATIONS), version=table.version(),
                              schema=preview.schema, preview=preview)
    metadata.update({"landed_rows": landed.rows, "landed_segments": landed.segments})
    check = AssetCheckResult(check_name="one_row_per_invocation", passed=rows == distinct,
                             description=f"{rows:,} rows, {distinct:,} distinct invocations",
                             metadata={"duplicates": rows - distinct})
    return MaterializeResult(metadata=metadata, check_results=[check])


@optional_asset(AB_REPORT_KEY, group=GROUP, deps=[INVOCATIONS_KEY, FACT_FLIGHTS_KEY], kinds={"polars", "delta"},
                description="Per variant ROC-AUC, calibration and latency on flights whose outcome arrived; promote "
                            "or keep.")
def ab_report(context: AssetExecutionContext, config: AbReportConfig, lake: LakeResource) -> Iterator[MaterializeResult]:
    """Skipped (with the reason in the log) while there is no invocation log or no warehouse to judge it by."""
    the_lake = lake.get_lake()
    if delta.version(the_lake, INVOCATIONS) is None or delta.version(the_lake, FACT) is None:
        missing = INVOCATIONS if delta.version(the_lake, INVOCATIONS) is None else FACT
        context.log.warning(f"serving/ab_report not written: no {missing} yet")
        return
    log = delta.scan(the_lake, INVOCATIONS).collect()
    flight_ids = log["flight_id"].drop_nulls().unique()
    outcomes = (delta.scan(the_lake, FACT).select("flight_id", "is_late")
                .filter(pl.col("flight_id").is_in(flight_ids.implode())).collect())
    joined = abtest.labelled(log, outcomes)
    report = abtest.per_variant(log, joined)
    comparison = abtest.compare(report, confidence=config.confidence, min_labelled=config.min_labelled,
                                margin=config.margin)
    table = report.with_columns(
        reported_at=pl.lit(dt.datetime.now(dt.UTC)), recommendation=pl.lit(comparison.recommendation),
        auc_difference=pl.lit(comparison.auc_difference, dtype=pl.Float64),
        ci_low=pl.lit(comparison.ci_low, dtype=pl.Float64), ci_high=pl.lit(comparison.ci_high, dtype=pl.Float64))
    version = delta.overwrite(the_lake, AB_REPORT, table)
    context.log.info(f"A/B: {comparison.recommendation}: {comparison.reason}")
    metadata = delta_metadata(rows=table.height, uri=the_lake.uri(AB_REPORT), version=version, schema=table.schema,
                              preview=table)
    metadata.update({
        "recommendation": comparison.recommendation,
        "reason": comparison.reason,
        "auc_difference": comparison.auc_difference,
        "ci_low": comparison.ci_low,
        "ci_high": comparison.ci_high,
        "labelled_invocations": joined.height,
        "invocations": log.height,
        "report": markdown_preview(report, rows=20),
    })
    yield MaterializeResult(metadata=metadata)


defs = Definitions(assets=[delay_endpoint, online_features, invocations, ab_report])
