"""One real request for the endpoint, built from the lake (`tributary serve example`, issue 22.2).

The body is a row of `ml/delay_features` cut to the columns the served model reads (the first variant's
`spec.json`), or to the table's model inputs when nothing is published yet; so it is copy-pasteable and
answers 200 from the endpoint as it stands.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import orjson
import polars as pl

from pipelines.core import delta
from pipelines.core.lake import Lake
from pipelines.ml.data import FEATURES, require
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


def json_body(frame: pl.DataFrame) -> str:
    return orjson.dumps({"dataframe_records": frame.to_dicts()}).decode()


def csv_body(frame: pl.DataFrame) -> str:
    return frame.write_csv(include_header=True)


def curl_command(body: str, content_type: str, url: str) -> str:
    """A shell line that sends `body` (quoted for POSIX shells)."""
    return (f"curl -s {url}/invocations -H 'Content-Type: {content_type}' "
            f"-H 'X-Amzn-SageMaker-Inference-Id: user-42' --data-binary {shlex.quote(body)}")
