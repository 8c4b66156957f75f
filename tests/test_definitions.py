"""The one code location loads on every profile, with the expected graph, and without touching the network."""

from __future__ import annotations

import importlib

import pytest
from dagster import AssetKey, AssetSpec

EXPECTED_ASSETS = {AssetKey(["raw", t]) for t in ("flights", "weather", "airports", "planes", "airlines")}
EXPECTED_GROUPS = {
    "standardize": {AssetKey(["standardized", t]) for t in ("flights", "weather", "airports", "planes", "airlines")},
    "warehouse": {AssetKey(["warehouse", t]) for t in ("fact_flights", "dim_airport", "dim_carrier", "dim_plane",
                                                      "dim_date", "route_daily_kpis", "carrier_monthly_kpis", "kpi_dashboard")},
}


def _load():
    import pipelines.definitions as module

    return importlib.reload(module).defs


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"TRIBUTARY_PROFILE": "localstack", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"},  # nothing listens there
        {"TRIBUTARY_PROFILE": "aws", "TRIBUTARY_LAKE_BUCKET": "b", "TRIBUTARY_SOURCE_SECRET_ID": "s"},
    ],
)
def test_definitions_load_with_the_expected_graph(env: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    defs = _load()
    graph = defs.resolve_asset_graph()
    assert EXPECTED_ASSETS <= set(graph.get_all_asset_keys())
    assert {g for k in EXPECTED_ASSETS for g in [graph.get(k).group_name]} == {"extract"}
    assert defs.resolve_job_def("main_days") and defs.resolve_job_def("main_months") and defs.resolve_job_def("daily_extract")
    for group, keys in EXPECTED_GROUPS.items():
        assert {k for k in graph.get_all_asset_keys() if graph.get(k).group_name == group} == keys
    assert graph.get(AssetKey(["warehouse", "fact_flights"])).parent_keys >= {AssetKey(["standardized", "flights"])}
    assert defs.resolve_sensor_def("source_change_capture")
    assert defs.resolve_sensor_def("follow_upstream")
    assert {k for k in graph.get_all_asset_keys() if graph.get(k).group_name == "ml"} == {
        AssetKey(["ml", t]) for t in ("delay_features", "delay_model", "delay_model_evaluation", "drift_report")}
    assert defs.resolve_sensor_def("delay_model_drift") and defs.resolve_schedule_def("ml_weekly_retrain")
    assert defs.resolve_job_def("ml_retrain")
    # The daily main job stops at the warehouse: retraining is ml_retrain's alone.
    main_keys = defs.resolve_job_def("main_months").asset_layer.executable_asset_keys
    assert AssetKey(["warehouse", "fact_flights"]) in main_keys
    assert not {k for k in main_keys if k.path[0] == "ml"}
    assert {AssetKey(["raw", "documents"]), AssetKey(["standardized", "maintenance_events"]),
            AssetKey(["standardized", "document_text"]), AssetKey(["standardized", "document_embeddings"])} <= set(
        graph.get_all_asset_keys())
    assert defs.resolve_sensor_def("documents_landing")
    assert defs.resolve_schedule_def("daily_extract_schedule")
    flights = graph.get(AssetKey(["raw", "flights"]))
    assert flights.partitions_def.get_partition_keys()[0] == "2013-01-01"
    assert flights.partitions_def.get_partition_keys()[-1] == "2013-12-31"


def test_unknown_profile_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from resources import ProfileError, build_resources

    monkeypatch.setenv("TRIBUTARY_PROFILE", "prod")
    with pytest.raises(ProfileError, match="unknown TRIBUTARY_PROFILE 'prod'"):
        build_resources()


def test_aws_profile_without_a_bucket_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from resources import ProfileError, build_resources

    with pytest.raises(ProfileError, match="TRIBUTARY_LAKE_ROOT"):
        build_resources("aws")


def test_policy_is_applied_to_every_asset_once() -> None:
    from assets.policy import FRESHNESS, KEY_FRESHNESS, OWNERS

    graph = _load().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if not node.is_materializable:
            continue
        assert node.owners == [OWNERS[node.group_name]], key
        assert node.tags["tributary/stage"] == node.group_name and node.tags["tributary/zone"] == key.path[0], key
        assert (node.freshness_policy is not None) == (node.group_name in FRESHNESS or key in KEY_FRESHNESS), key


def test_every_stage_module_is_found_without_a_list() -> None:
    import assets
    import sensors
    from assets.policy import OWNERS
    from pipelines.definitions import stage_definitions

    found = stage_definitions(assets, sensors)
    groups = {s.group_name for d in found for a in (d.assets or []) for s in ([a] if isinstance(a, AssetSpec) else a.specs)}
    assert groups == set(OWNERS)  # every stage, from its own module
    sensor_names = {s.name for d in found for s in (d.sensors or [])}
    assert {"source_change_capture", "delay_model_drift", "documents_landing"} <= sensor_names


def test_the_main_job_runs_its_checks_but_not_the_nightly_ones() -> None:
    """A run checks its suites in polars; Great Expectations' own validation is the nightly job's alone."""
    defs = _load()
    steps = {node.name for node in defs.resolve_job_def("main_months").graph.nodes}
    assert "warehouse__fact_flights" in steps and not {s for s in steps if s.endswith("gx_suite")}
    nightly = {node.name for node in defs.resolve_job_def("quality_nightly").graph.nodes}
    assert "warehouse__fact_flights_gx_suite" in nightly and "warehouse__fact_flights" not in nightly
