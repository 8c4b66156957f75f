"""The warehouse stage without Dagster: the star schema (`star`) and its quality suites (`suites`).

Its tables' lake paths are defined here once; each asset key is the path split at `/`."""

from __future__ import annotations

from typing import Final

DIM_AIRPORT: Final = "warehouse/dim_airport"
DIM_CARRIER: Final = "warehouse/dim_carrier"
DIM_PLANE: Final = "warehouse/dim_plane"
DIM_DATE: Final = "warehouse/dim_date"
FACT_FLIGHTS: Final = "warehouse/fact_flights"
ROUTE_DAILY_KPIS: Final = "warehouse/route_daily_kpis"
CARRIER_MONTHLY_KPIS: Final = "warehouse/carrier_monthly_kpis"
DASHBOARD: Final = "warehouse/kpi_dashboard/index.html"
"""The analysts' KPI page (`dashboard`), one self-contained HTML file."""
