"""The standardize stage without Dagster: raw rows typed, in UTC, deduplicated and enriched (`transforms`).

Its tables' lake paths are defined here once; each asset key is the path split at `/`."""

from __future__ import annotations

from typing import Final

REFERENCE_TABLES: Final = ("airports", "planes", "airlines")


def standardized(table: str) -> str:
    """The lake path of a standardized table."""
    return f"standardized/{table}"


def quarantined(table: str) -> str:
    """The lake path of a standardized table's quarantine."""
    return f"quarantine/{table}"


FLIGHTS: Final = standardized("flights")
WEATHER: Final = standardized("weather")
