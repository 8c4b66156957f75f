"""The running webserver's asset graph is one connected lineage: from the source tables, the stream and the
document store, through the warehouse, to the model, the endpoint and the edge bundle."""

from __future__ import annotations


import networkx as nx
import pytest

from tests.ui.conftest import webserver

pytestmark = pytest.mark.e2e

ASSET_NODES = """
{ assetNodes { assetKey { path } dependencyKeys { path } groupName isExecutable } }
"""
SOURCES = {"source/flightsdb/flights", "source/flightsdb/weather", "source/flightsdb/planes",
           "source/flightsdb/airports", "source/flightsdb/airlines", "source/telemetry_stream",
           "source/document_store"}
CALENDAR = "warehouse/dim_date"
"""The one table made from nothing upstream: the calendar is generated."""


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> nx.DiGraph:
    folder = tmp_path_factory.mktemp("lineage")
    (folder / "dagster_home").mkdir()
    (folder / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {"DAGSTER_HOME": str(folder / "dagster_home"), "TRIBUTARY_HOME": str(folder / "home")}
    with webserver(folder, env) as server:
        nodes = server.graphql(ASSET_NODES)["assetNodes"]
    g = nx.DiGraph()
    for node in nodes:
        key = "/".join(node["assetKey"]["path"])
        g.add_node(key, group=node["groupName"], executable=node["isExecutable"])
        g.add_edges_from(("/".join(d["path"]), key) for d in node["dependencyKeys"])
    return g


def test_one_connected_graph(graph: nx.DiGraph) -> None:
    parts = list(nx.weakly_connected_components(graph))
    assert len(parts) == 1, [sorted(p) for p in parts]
    assert len(graph) >= 44


def test_it_starts_at_the_external_sources(graph: nx.DiGraph) -> None:
    roots = {n for n in graph if graph.in_degree(n) == 0}
    assert roots == SOURCES | {CALENDAR}
    assert {n for n in graph if not graph.nodes[n]["executable"]} == SOURCES
    assert {graph.nodes[n]["group"] for n in SOURCES} == {"sources"}
    for node in set(graph) - SOURCES - {CALENDAR}:
        assert nx.ancestors(graph, node) & SOURCES, f"{node} descends from no source"


@pytest.mark.parametrize(("source", "target"), [
    ("source/flightsdb/flights", "warehouse/fact_flights"),
    ("source/flightsdb/flights", "ml/delay_model"),
    ("source/flightsdb/flights", "serving/delay_endpoint"),
    ("source/flightsdb/flights", "edge/delay_model_bundle"),
    ("source/flightsdb/weather", "ml/delay_model"),
    ("source/telemetry_stream", "analytics/flight_weather_telemetry"),
    ("source/document_store", "warehouse/document_index"),
    ("source/flightsdb/planes", "warehouse/document_index"),
])
def test_paths_the_readme_draws(graph: nx.DiGraph, source: str, target: str) -> None:
    assert nx.has_path(graph, source, target), f"no path {source} -> {target}"
