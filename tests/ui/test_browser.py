"""The Dagster UI in a real browser (Playwright driving Debian's chromium) over a lake that has run: the lineage,
the catalog, fact_flights with its checks and partitions, and the run, as a person sees them.

Screenshots are kept in `tributary-ui-screenshots/` beside pytest's run folders (by default
/tmp/pytest-of-<user>/); the README's lineage picture is one of them (docs/lineage.png).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ui.conftest import Webserver, webserver

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BIN = Path(sys.executable).parent
MONTH = ("2013-01-01", "2013-01-31")
BATCH = "group:extract or group:standardize or group:warehouse"
SETTLE_MS = 60_000
"""How long a page may take to show what is asserted (the UI loads its data after the page)."""


@dataclass(frozen=True)
class RanLake:
    home: Path
    env: dict[str, str]
    run_id: str


@pytest.fixture(scope="module")
def ran_lake(seeded_sqlite: str, tmp_path_factory: pytest.TempPathFactory) -> RanLake:
    """January 2013 through extract, standardize and warehouse, by `tributary run`, into its own instance."""
    home = tmp_path_factory.mktemp("ui_lake")
    env = {"TRIBUTARY_HOME": str(home), "TRIBUTARY_SOURCE_DSN": seeded_sqlite, "DAGSTER_HOME": str(home / "dagster")}
    ran = subprocess.run([str(BIN / "tributary"), "run", "--from", MONTH[0], "--to", MONTH[1], "--select", BATCH],
                         env={**os.environ, **env}, capture_output=True, text=True, timeout=1800)
    assert ran.returncode == 0, ran.stderr[-3000:]
    run_ids = re.findall(r"run ([0-9a-f-]{36}) .*succeeded", ran.stdout + ran.stderr)
    assert run_ids, ran.stdout[-2000:]
    return RanLake(home, env, run_ids[-1])


@pytest.fixture(scope="module")
def ui(ran_lake: RanLake) -> Iterator[Webserver]:
    with webserver(ran_lake.home, ran_lake.env) as server:
        assert server.graphql("mutation { setNuxSeen }")["setNuxSeen"] is True  # no first-visit dialog
        yield server


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Beside pytest's numbered run folders, not in one: pytest deletes all but the last three of those."""
    folder = tmp_path_factory.getbasetemp().parent / "tributary-ui-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {folder}")
    return folder


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, ui: Webserver):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1600, "height": 1000}, base_url=ui.url)
    page = context.new_page()
    page.set_default_timeout(SETTLE_MS)
    expect.set_options(timeout=SETTLE_MS)
    yield page
    context.close()


def test_the_lineage_is_one_graph_from_the_sources(page, shots: Path) -> None:
    from playwright.sync_api import expect

    page.goto("/asset-groups")
    expect(page.get_by_text("Global asset lineage")).to_be_visible()
    graph = page.locator("[data-testid='asset-graph'], svg").first
    expect(graph).to_be_visible()
    for group in ("sources", "extract", "standardize", "warehouse", "documents", "ml", "serving", "edge", "stream"):
        expect(page.get_by_text(group, exact=True).last).to_be_visible()
    expect(page.get_by_text(re.compile(r"first-visit|Welcome to Dagster", re.I))).to_have_count(0)
    page.screenshot(path=shots / "lineage.png")


def test_the_catalog_lists_the_stages_with_their_state(page, shots: Path) -> None:
    from playwright.sync_api import expect

    page.goto("/assets")
    body = page.locator("body")
    expect(body).to_contain_text("analytics / telemetry_windows")  # the list is virtual: the first rows
    expect(body).to_contain_text("Never materialized")  # the stream has not run here
    page.goto("/assets?asset-selection=group%3Awarehouse")
    for name in ("warehouse / fact_flights", "warehouse / dim_plane", "warehouse / carrier_monthly_kpis"):
        expect(body).to_contain_text(name)
    expect(body).to_contain_text("Materialized")
    expect(body).to_contain_text(re.compile(r"\d+ partitions"))
    page.screenshot(path=shots / "catalog_warehouse.png")


def test_fact_flights_shows_columns_checks_and_partitions(page, shots: Path) -> None:
    from playwright.sync_api import expect

    page.goto("/assets/warehouse/fact_flights")
    body = page.locator("body")
    expect(body).to_contain_text("Row count")
    expect(body).to_contain_text("Key to dim_carrier.carrier")  # the column descriptions
    expect(body).to_contain_text("data-platform")  # the owner (the UI drops the team: prefix)
    expect(body).to_contain_text("Fails if more than 2 days since last materialization")  # the freshness policy
    page.screenshot(path=shots / "fact_flights.png")

    page.goto("/assets/warehouse/fact_flights?view=checks")
    expect(body).to_contain_text("expectations")
    expect(body).to_contain_text("Succeeded")
    expect(body).to_contain_text(re.compile(r"fact_flights: all \d+ expectations met"))
    page.screenshot(path=shots / "fact_flights_checks.png")

    page.goto("/assets/warehouse/fact_flights?view=partitions")
    expect(body).to_contain_text(re.compile(r"Materialized \([1-9]\d*\)"))
    expect(body).to_contain_text("Failed (0)")
    expect(body).to_contain_text("2013-01-01")
    page.screenshot(path=shots / "fact_flights_partitions.png")


def test_the_run_shows_its_steps_succeeded(page, ran_lake: RanLake, shots: Path) -> None:
    from playwright.sync_api import expect

    page.goto(f"/runs/{ran_lake.run_id}")
    body = page.locator("body")
    expect(body).to_contain_text("Success")
    expect(body).to_contain_text(re.compile(r"Succeeded \(\d+\)"))
    expect(body).to_contain_text("Errored (0)")
    expect(body).to_contain_text("warehouse__fact_flights")
    page.screenshot(path=shots / "run.png")


def test_the_kpi_dashboard_opens_offline_with_its_charts(page, ran_lake: RanLake, shots: Path) -> None:
    from playwright.sync_api import expect

    dashboard = ran_lake.home / "lake" / "warehouse" / "kpi_dashboard" / "index.html"
    assert dashboard.is_file(), "tributary run did not build warehouse/kpi_dashboard"
    page.route("http*://**", lambda route: route.abort())  # offline: everything the page needs is inside it
    page.goto(dashboard.as_uri())
    expect(page.get_by_role("heading", name="Tributary KPIs")).to_be_visible()
    for chart in ("on-time", "route-delays", "quarantine"):
        plot = page.locator(f"#{chart}-chart.js-plotly-plot")
        expect(plot).to_be_visible()
        expect(plot.locator("svg.main-svg").first).to_be_visible()  # plotly drew it
    expect(page.locator("#on-time-chart .legend")).to_contain_text("UA")  # a line per carrier
    expect(page.locator("#on-time-chart .scatterlayer .trace")).to_have_count(16)
    expect(page.locator("#route-delays-chart .barlayer .point")).to_have_count(20)
    expect(page.locator("#model-quality")).to_contain_text("no model has been evaluated yet")
    page.screenshot(path=shots / "kpi_dashboard.png", full_page=True)
