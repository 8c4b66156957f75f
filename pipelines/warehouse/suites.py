"""Great Expectations suites for the standardized and warehouse tables: types, ranges, keys, references.

Each suite is a function of the `great_expectations.expectations` module (imported lazily by
`pipelines.core.quality.validate`), plus, for the fact table, the dimension keys it must reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipelines.standardize.transforms import DELAY_CLASSES, WEATHER_RANGES


def _not_null(e: Any, *columns: str) -> list:
    return [e.ExpectColumnValuesToNotBeNull(column=c) for c in columns]


def standardized_flights(e: Any) -> Sequence:
    return [
        *_not_null(e, "flight_id", "flight_date", "carrier", "flight", "origin", "sched_dep_local", "cancelled"),
        e.ExpectColumnValuesToBeUnique(column="flight_id"),
        e.ExpectColumnValuesToBeInSet(column="delay_class", value_set=list(DELAY_CLASSES)),
        e.ExpectColumnValuesToBeBetween(column="distance", min_value=1, max_value=12_500),
        e.ExpectColumnValuesToBeBetween(column="origin_lat", min_value=-90, max_value=90),
        e.ExpectColumnValuesToBeBetween(column="dep_delay", min_value=-24 * 60, max_value=3 * 24 * 60),
    ]


def standardized_weather(e: Any) -> Sequence:
    return [
        *_not_null(e, "origin", "time_hour", "obs_date"),
        e.ExpectCompoundColumnsToBeUnique(column_list=["origin", "time_hour"]),
        *[e.ExpectColumnValuesToBeBetween(column=c, min_value=lo, max_value=hi) for c, (lo, hi) in WEATHER_RANGES.items()],
    ]


def standardized_airports(e: Any) -> Sequence:
    return [*_not_null(e, "faa"), e.ExpectColumnValuesToBeUnique(column="faa"),
            e.ExpectColumnValuesToBeBetween(column="lat", min_value=-90, max_value=90),
            e.ExpectColumnValuesToBeBetween(column="lon", min_value=-180, max_value=180)]


def standardized_planes(e: Any) -> Sequence:
    return [*_not_null(e, "tailnum"), e.ExpectColumnValuesToBeUnique(column="tailnum"),
            e.ExpectColumnValuesToBeBetween(column="seats", min_value=1, max_value=1000)]


def standardized_airlines(e: Any) -> Sequence:
    return [*_not_null(e, "carrier", "name"), e.ExpectColumnValuesToBeUnique(column="carrier")]


def fact_flights(e: Any, *, carriers: list[str], airports: list[str], tailnums: list[str]) -> Sequence:
    """Keys, ranges, and referential integrity to the dimensions (every code must be a dimension member)."""
    return [
        *_not_null(e, "flight_id", "flight_date", "carrier", "origin", "dest"),
        e.ExpectColumnValuesToBeUnique(column="flight_id"),
        e.ExpectColumnValuesToBeInSet(column="carrier", value_set=carriers),
        e.ExpectColumnValuesToBeInSet(column="origin", value_set=airports),
        e.ExpectColumnValuesToBeInSet(column="dest", value_set=airports),
        e.ExpectColumnValuesToBeInSet(column="tailnum", value_set=tailnums),
        e.ExpectColumnValuesToBeBetween(column="arr_delay", min_value=-24 * 60, max_value=3 * 24 * 60),
    ]


def dimension(key: str) -> Any:
    def suite(e: Any) -> Sequence:
        return [*_not_null(e, key), e.ExpectColumnValuesToBeUnique(column=key)]

    return suite


def route_daily_kpis(e: Any) -> Sequence:
    return [
        *_not_null(e, "flight_date", "origin", "dest", "flights"),
        e.ExpectCompoundColumnsToBeUnique(column_list=["flight_date", "origin", "dest"]),
        e.ExpectColumnValuesToBeBetween(column="late_share", min_value=0, max_value=1),
        e.ExpectColumnValuesToBeBetween(column="flights", min_value=1),
    ]


def carrier_monthly_kpis(e: Any) -> Sequence:
    return [
        e.ExpectCompoundColumnsToBeUnique(column_list=["carrier", "year", "month"]),
        e.ExpectColumnValuesToBeBetween(column="on_time_share", min_value=0, max_value=1),
    ]
