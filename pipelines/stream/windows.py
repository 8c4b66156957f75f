"""Per-station rolling windows over telemetry in event time. Pure polars, no Dagster, no I/O.

For every event, the windows that end at it: (event_time - 1 h, event_time] and (event_time - 3 h, event_time],
with the count of events, mean / min / max of each measurement, and the vector mean of the wind (speed and
direction averaged as vectors, so 350° and 10° average to north, not south). A window is `complete` once the
station's watermark has passed its end: no event that can still land belongs in it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Final

import polars as pl

WINDOWS: Final = ("1h", "3h")
WINDOW_MEASURES: Final = ("temp", "dewp", "humid", "pressure", "wind_speed")
LOOKBACK: Final = dt.timedelta(hours=3)
"""How far before the first window end the events must reach for the windows to be whole."""

WINDOW_SCHEMA: Final = pl.Schema(
    {
        "station": pl.String(),
        "window": pl.String(),
        "window_end": pl.Datetime("us", "UTC"),
        "date": pl.Date(),
        "count": pl.UInt32(),
        **{f"{m}_{agg}": pl.Float64() for m in WINDOW_MEASURES for agg in ("mean", "min", "max")},
        "wind_vector_speed": pl.Float64(),
        "wind_vector_dir": pl.Float64(),
        "complete": pl.Boolean(),
    }
)


def _wind_components(frame: pl.LazyFrame) -> pl.LazyFrame:
    """u (east) and v (north) of the wind, pointing where it blows to; 0 in a calm, null without a direction."""
    rad = pl.col("wind_dir").radians()
    calm = pl.col("wind_speed") == 0
    return frame.with_columns(
        _u=pl.when(calm).then(0.0).otherwise(-pl.col("wind_speed") * rad.sin()),
        _v=pl.when(calm).then(0.0).otherwise(-pl.col("wind_speed") * rad.cos()),
    )


def rolling_windows(
    events: pl.DataFrame | pl.LazyFrame,
    *,
    windows: Sequence[str] = WINDOWS,
    watermarks: Mapping[str, dt.datetime] | None = None,
) -> pl.DataFrame:
    """Rolling windows per station ending at each event; `watermarks` (station -> time) mark complete ones."""
    lazy = _wind_components(events.lazy().select("station", "event_time", *WINDOW_MEASURES, "wind_dir"))
    lazy = lazy.sort("station", "event_time")
    aggs = [
        pl.len().alias("count"),
        *[getattr(pl.col(m), agg)().alias(f"{m}_{agg}") for m in WINDOW_MEASURES for agg in ("mean", "min", "max")],
        pl.col("_u").mean().alias("_u"),
        pl.col("_v").mean().alias("_v"),
    ]
    frames = [
        lazy.rolling(index_column="event_time", period=period, group_by="station", closed="right")
        .agg(aggs)
        .with_columns(window=pl.lit(period))
        for period in windows
    ]
    marks = pl.LazyFrame(
        {"station": list((watermarks or {}).keys()), "_watermark": list((watermarks or {}).values())},
        schema={"station": pl.String, "_watermark": pl.Datetime("us", "UTC")},
    )
    speed = (pl.col("_u") ** 2 + pl.col("_v") ** 2).sqrt()
    return (
        pl.concat(frames)
        .rename({"event_time": "window_end"})
        .join(marks, on="station", how="left")
        .with_columns(
            date=pl.col("window_end").dt.date(),
            wind_vector_speed=speed,
            # Meteorological direction: where the wind comes from, 0-360; undefined in a calm.
            wind_vector_dir=pl.when(speed > 1e-6)
            .then((pl.arctan2(-pl.col("_u"), -pl.col("_v")).degrees() + 360) % 360),
            complete=(pl.col("window_end") <= pl.col("_watermark")).fill_null(False),
        )
        .select(WINDOW_SCHEMA.names())
        .sort("station", "window", "window_end")
        .collect()
        .cast(WINDOW_SCHEMA)
    )
