"""What each warehouse column means, for the catalog: `assets.common.column_schema` puts these descriptions into
`dagster/column_schema`, so the UI's column list of a table says what an analyst needs to read it.

A column name can mean different things in different tables (`year` of a plane is its year of manufacture;
`cancelled` is a flag on the fact and a count in the KPIs), so descriptions are kept per table and a schema is
matched to its table by its columns.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from pipelines.standardize.transforms import MINOR_DELAY_MAX_MINUTES, ON_TIME_MAX_MINUTES
from pipelines.warehouse import (CARRIER_MONTHLY_KPIS, DIM_AIRPORT, DIM_CARRIER, DIM_DATE, DIM_PLANE, FACT_FLIGHTS,
                                 ROUTE_DAILY_KPIS)

_WEATHER: Final = {
    "temp": "temperature, °F",
    "dewp": "dew point, °F",
    "humid": "relative humidity, %",
    "wind_dir": "wind direction, degrees",
    "wind_speed": "wind speed, mph",
    "wind_gust": "wind gust speed, mph",
    "precip": "precipitation, inches",
    "pressure": "sea-level pressure, millibars",
    "visib": "visibility, miles",
}

COLUMNS: Final[dict[str, dict[str, str]]] = {
    FACT_FLIGHTS: {
        "flight_id": "Flight key: scheduled local date/carrier/flight number/origin/scheduled hhmm.",
        "flight_date": "Scheduled departure date, local to the origin; the partition column. Key to dim_date.date.",
        "year": "Year of the scheduled departure (local).",
        "month": "Month of the scheduled departure (local), 1-12.",
        "day": "Day of month of the scheduled departure (local).",
        "carrier": "Two-letter carrier code. Key to dim_carrier.carrier.",
        "flight": "Flight number.",
        "tailnum": "Aircraft tail number. Key to dim_plane.tailnum (null when the source had none).",
        "origin": "Origin airport FAA code. Key to dim_airport.faa.",
        "dest": "Destination airport FAA code. Key to dim_airport.faa.",
        "sched_dep_local": "Scheduled departure, origin local time.",
        "dep_local": "Actual departure, origin local time (null when cancelled).",
        "sched_arr_local": "Scheduled arrival, destination local time.",
        "arr_local": "Actual arrival, destination local time (null when cancelled or diverted).",
        "sched_dep_utc": "Scheduled departure, UTC.",
        "dep_utc": "Actual departure, UTC.",
        "sched_arr_utc": "Scheduled arrival, UTC.",
        "arr_utc": "Actual arrival, UTC.",
        "dep_delay": "Departure delay, minutes (negative: early).",
        "arr_delay": "Arrival delay, minutes (negative: early).",
        "air_time": "Minutes in the air.",
        "distance": "Great-circle distance between the airports, miles.",
        "block_minutes": "Actual gate-to-gate minutes (arr_utc - dep_utc).",
        "sched_block_minutes": "Scheduled gate-to-gate minutes.",
        "cancelled": "True when the flight never departed.",
        "is_late": f"True when the arrival delay is above {ON_TIME_MAX_MINUTES} minutes (US DOT definition).",
        "delay_class": f"on_time (<= {ON_TIME_MAX_MINUTES} min late), minor (<= {MINOR_DELAY_MAX_MINUTES}), major, "
                       "or cancelled.",
        "origin_known": "False when the origin is an unknown member of dim_airport (no airport record).",
        "dest_known": "False when the destination is an unknown member of dim_airport.",
        "plane_known": "False when the tail number is an unknown member of dim_plane.",
        "weather_known": "True when the origin had a weather observation in the scheduled hour.",
        **{f"origin_{name}": f"Origin weather in the scheduled hour: {what}." for name, what in _WEATHER.items()},
    },
    DIM_AIRPORT: {
        "faa": "FAA airport code (the key).",
        "name": "Airport name.",
        "lat": "Latitude, degrees.",
        "lon": "Longitude, degrees.",
        "alt": "Altitude, feet.",
        "tz": "Offset from UTC in hours (standard time).",
        "dst": "Daylight saving rule: A (US), U (unknown), N (none).",
        "tzone": "IANA time zone, used to convert local times to UTC.",
        "known": "False for an unknown member: a code flights use that the airports table lacks.",
    },
    DIM_CARRIER: {
        "carrier": "Two-letter carrier code (the key).",
        "name": "Carrier name.",
    },
    DIM_PLANE: {
        "tailnum": "Tail number (the key).",
        "year": "Year of manufacture.",
        "type": "Aircraft type (fixed wing single or multi engine, rotorcraft).",
        "manufacturer": "Manufacturer.",
        "model": "Model.",
        "engines": "Number of engines.",
        "seats": "Number of seats.",
        "speed": "Average cruising speed, mph (mostly null in the source).",
        "engine": "Engine type.",
        "known": "False for an unknown member: a tail number flights use that the planes table lacks.",
    },
    DIM_DATE: {
        "date": "Calendar date (the key).",
        "year": "Year.",
        "month": "Month, 1-12.",
        "day": "Day of month.",
        "quarter": "Quarter, 1-4.",
        "day_of_year": "Day of the year, 1-366.",
        "iso_week": "ISO week number.",
        "weekday": "ISO weekday, 1 (Monday) to 7 (Sunday).",
        "weekday_name": "Weekday name.",
        "is_weekend": "True on Saturday and Sunday.",
        "holiday": "US federal holiday on this day, '(observed)' when moved off a weekend; null otherwise.",
        "is_holiday": "True on a US federal holiday (observed days included).",
    },
    ROUTE_DAILY_KPIS: {
        "flight_date": "Scheduled departure date, local.",
        "origin": "Origin airport FAA code.",
        "dest": "Destination airport FAA code.",
        "flights": "Scheduled flights on the route that day.",
        "cancelled": "Cancelled flights.",
        "mean_dep_delay": "Mean departure delay, minutes, over flights with a known delay.",
        "mean_arr_delay": "Mean arrival delay, minutes, over flights with a known delay.",
        "late_share": f"Share of arrivals more than {ON_TIME_MAX_MINUTES} minutes late, among flights with a known "
                      "arrival delay.",
        "p90_arr_delay": "90th percentile arrival delay, minutes (linear interpolation).",
    },
    CARRIER_MONTHLY_KPIS: {
        "carrier": "Two-letter carrier code.",
        "year": "Year.",
        "month": "Month, 1-12.",
        "flights": "Scheduled flights in the month.",
        "cancelled": "Cancelled flights.",
        "on_time_share": f"Share of all scheduled flights arriving at most {ON_TIME_MAX_MINUTES} minutes late "
                         "(cancelled and diverted flights count as not on time, as in US DOT reporting).",
        "mean_dep_delay": "Mean departure delay, minutes.",
        "mean_arr_delay": "Mean arrival delay, minutes.",
    },
}
"""Column descriptions of each warehouse table, by its lake path."""


def descriptions(columns: Iterable[str]) -> dict[str, str]:
    """The descriptions of the warehouse table whose columns these are (all of them, in any order), or {} for a
    table that is not in the warehouse."""
    names = set(columns)
    for described in COLUMNS.values():
        if names == set(described):
            return described
    return {}
