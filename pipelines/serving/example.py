"""One real request for the endpoint, built from the lake (`tributary serve example`, issue 22.2).

The body is a row of `ml/delay_features` cut to the columns the served model reads (the first variant's
`spec.json`), or to the table's model inputs when nothing is published yet; so it is copy-pasteable and
answers 200 from the endpoint as it stands. `flight_keys` turns the same flights into a flight-key request
(`{"flights": [...]}`, issue 20.1), which the endpoint answers from its online features.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import orjson
import polars as pl

from pipelines.core import delta
from pipelines.core.lake import Lake
from pipelines.ml.data import FACT, FEATURES, require
from pipelines.ml.features import model_inputs
from pipelines.serving.config import EndpointConfig
from pipelines.serving.model import find_model_files


def served_features(config: EndpointConfig | None) -> list[str] | None:
    """The features the config's first variant reads, in order; None without a config."""
    if config is None or not config.variants:
        return None
    spec, _ = find_model_files(config.variants[0].model_dir)
    return list(json.loads(Path(spec).read_text())["features"])


def example_rows(lake: Lake, features: list[str] | None, rows: int = 1) -> pl.DataFrame:
    """The latest `rows` flights of ml/delay_features, with only the model's features."""
    version = require(lake, FEATURES)
    scan = delta.scan(lake, FEATURES, version=version)
    columns = features or model_inputs(scan.collect_schema().names())
    missing = [c for c in columns if c not in scan.collect_schema().names()]
    if missing:
        raise ValueError(f"{FEATURES} lacks the served model's feature(s) {', '.join(missing)}: rebuild it "
                         "(tributary run --select 'group:ml') or publish a model trained on it")
    return scan.sort(["flight_date", "flight_id"], descending=True).head(rows).select(columns).collect()


def example_flights(lake: Lake, rows: int = 1) -> list[dict]:
    """The same latest `rows` flights of ml/delay_features as flight keys: carrier, number, origin and local
    departure from the warehouse key (`2013-12-31/UA/1545/EWR/0515`), dest from the row, tailnum from
    fact_flights when the lake has it (else null: the plane's fields then fall back, and the answer says so)."""
    frame = (delta.scan(lake, FEATURES, version=require(lake, FEATURES))
             .sort(["flight_date", "flight_id"], descending=True).head(rows).select("flight_id", "dest").collect())
    tails: dict[str, str | None] = {}
    if delta.version(lake, FACT) is not None:
        tails = dict(delta.scan(lake, FACT).filter(pl.col("flight_id").is_in(frame["flight_id"].implode()))
                     .select("flight_id", "tailnum").collect().rows())
    keys = []
    for flight_id, dest in frame.rows():
        day, carrier, number, origin, hhmm = flight_id.split("/")
        keys.append({"carrier": carrier, "flight": int(number), "origin": origin, "dest": dest,
                     "sched_dep": f"{day}T{hhmm[:2]}:{hhmm[2:]}", "tailnum": tails.get(flight_id)})
    return keys


def flights_body(flights: list[dict]) -> str:
    return orjson.dumps({"flights": flights, "return_features": True}).decode()


def json_body(frame: pl.DataFrame) -> str:
    return orjson.dumps({"dataframe_records": frame.to_dicts()}).decode()


def csv_body(frame: pl.DataFrame) -> str:
    return frame.write_csv(include_header=True)


def curl_command(body: str, content_type: str, url: str) -> str:
    """A shell line that sends `body` (quoted for POSIX shells)."""
    return (f"curl -s {url}/invocations -H 'Content-Type: {content_type}' "
            f"-H 'X-Amzn-SageMaker-Inference-Id: user-42' --data-binary {shlex.quote(body)}")
