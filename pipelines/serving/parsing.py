"""Request bodies -> rows in the model's feature order, or a BadInput that says what was expected.

Accepted, as `mlflow models serve` accepts them (and SageMaker's CSV): `text/csv`, one row per line in the
signature's column order (a header line equal to the feature names is skipped); `application/json` with
exactly one of `dataframe_split` ({"columns": [...], "data": [[...]]}), `dataframe_records` ([{...}]),
`instances` (rows as objects or as lists in feature order) or `inputs` (columns as {"name": [...]}, or rows
like `instances`). Categoricals stay strings; numbers become floats; empty or null is missing.
Columns the model does not read are ignored and reported (`ignored`), as SageMaker containers commonly do, so
a row of `ml/delay_features` (ids, label and all) can be sent as it is (issue 22.2); in CSV that needs a
header line naming the columns. A missing feature, or one named twice, is still refused.
Written by hand (orjson does the JSON): every error must name the column and row it is about, and show the
caller's value only in bounded form. At most MAX_BODY_BYTES and MAX_ROWS rows per request; a UTF-8 BOM is
ignored.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

import orjson

MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_ROWS = 2_000
"""Rows per request. Not the body limit in other words: 5 MB holds 134,430 rows of 39 empty values, which cost
a worker 1.6 GB, 1.5-2 s of blocked event loop and 171 MB of invocation log. 2,000 rows is twice the busiest
day of NYC departures in 2013 (1,014 flights), costs ~60 ms of one core (parse 36, predict 8, log 17 ms on this
machine) and ~2.2 MB of invocation log; more belongs in a batch job, as SageMaker puts it in Batch Transform."""
JSON_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs", "flights")
FLIGHT_FIELDS = ("carrier", "flight", "origin", "dest", "sched_dep", "tailnum")
"""A flight key (`flights`, issue 20.1): the endpoint builds the features from the online table (online.py).
`tailnum` may be null or left out; `sched_dep` is ISO 8601, local at the origin unless it carries an offset."""
FLIGHT_OPTIONS = ("return_features",)
_CODE = re.compile(r"[A-Za-z0-9]{1,10}")
BOM = "\ufeff"
BOM_BYTES = BOM.encode()


class BadInput(ValueError):
    """A request the endpoint refuses; `status` is the HTTP answer (400, 413 or 415)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Schema:
    """What a model reads: feature names in order and which of them are categorical (strings)."""

    __slots__ = ("features", "categorical", "index")

    def __init__(self, features: Sequence[str], categorical: Sequence[str]) -> None:
        self.features = list(features)
        cats = set(categorical)
        self.categorical = [f in cats for f in self.features]
        self.index = {name: i for i, name in enumerate(self.features)}

    def expected(self) -> str:
        return f"{len(self.features)} columns in this order: {', '.join(self.features)}"


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def content_kind(content_type: str | None) -> str:
    """"csv" or "json" for a Content-Type the endpoint reads; BadInput 415 for any other."""
    kind = media_type(content_type)
    if kind == "text/csv":
        return "csv"
    if kind == "application/json":
        return "json"
    raise BadInput(f"unsupported content type {_show(kind) if kind else '(none)'}: send text/csv or application/json",
                   415)


class Decoded:
    """A body that passed every check that does not depend on the model: size, encoding, syntax, shape and
    row count. `rows(schema)` does the rest. The split lets the server refuse bad bodies before it picks a
    variant, and count them under none (issue 23.4)."""

    __slots__ = ("kind", "value", "max_rows", "online", "fallbacks", "return_features")

    def __init__(self, kind: str, value: Any, max_rows: int = MAX_ROWS) -> None:
        self.kind = kind
        self.value = value
        self.max_rows = max_rows
        self.online: Any = None
        """For flight keys: the OnlineFeatures the rows are built from (set by the app)."""
        self.fallbacks: list[list[str]] | None = None
        self.return_features = False

    @property
    def flights(self) -> bool:
        return self.kind == "json" and self.value[0] == "flights"

    def rows(self, schema: Schema, ignored: set[str] | None = None) -> list[list[Any]]:
        """Rows (lists in `schema.features` order); BadInput naming the column and row otherwise. The names of
        columns the model does not read are added to `ignored`."""
        ignored = set() if ignored is None else ignored
        if self.flights:
            return self._flight_rows(schema)
        rows = _csv_rows(self.value, schema, ignored) if self.kind == "csv" else \
            _json_rows(*self.value, schema, ignored)
        if len(rows) > self.max_rows:  # a CSV without a header line, or with blank lines, counted exactly here
            raise _too_many_rows(f"{len(rows):,} rows", self.max_rows)
        if not rows:
            raise BadInput(f"the request holds no rows: send at least one row of {schema.expected()}")
        return rows

    def _flight_rows(self, schema: Schema) -> list[list[Any]]:
        try:
            rows, self.fallbacks = self.online.vectors(self.value[1], schema.features)
        except KeyError as exc:
            raise BadInput(f"the model reads feature(s) the online features do not build ({exc.args[0]}): send "
                           "the features themselves (dataframe_split, dataframe_records, instances or inputs)") \
                from None
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        return rows


def decode(body: bytes, kind: str, *, max_rows: int = MAX_ROWS) -> Decoded:
    """The model-independent half of parsing (`kind` from `content_kind`)."""
    if len(body) > MAX_BODY_BYTES:
        raise BadInput(f"request body of {len(body):,} bytes is over the limit of {MAX_BODY_BYTES:,}", 413)
    try:
        value = _decode_csv(body, max_rows) if kind == "csv" else _decode_json(body, max_rows)
    except RecursionError:  # nothing here recurses over the caller's values any more; kept as a last guard
        raise BadInput("the request body is nested too deeply") from None
    decoded = Decoded(kind, value, max_rows)
    if decoded.flights:
        decoded.return_features = value[2]
    return decoded


def parse(body: bytes, content_type: str | None, schema: Schema, *, max_rows: int = MAX_ROWS,
          ignored: set[str] | None = None) -> list[list[Any]]:
    """Rows (lists in `schema.features` order) from a request body; BadInput with the reason otherwise."""
    return decode(body, content_kind(content_type), max_rows=max_rows).rows(schema, ignored)


def ignored_report(ignored: set[str], shown: int = 20) -> dict[str, Any]:
    """The answer's note on ignored columns: at most `shown` names (sorted, each cut to 40 characters: they come
    from the caller) and their count."""
    names = sorted(ignored)
    return {"ignored_columns": [n if len(n) <= 40 else n[:37] + "..." for n in names[:shown]],
            "ignored_column_count": len(names)}


def _too_many_rows(what: str, max_rows: int) -> BadInput:
    return BadInput(f"the request holds {what}, over the limit of {max_rows:,} rows per request: split it into "
                    f"requests of at most {max_rows:,} rows (or score in batch)", 413)


def _decode_csv(body: bytes, max_rows: int) -> list[list[str]]:
    # Line breaks are counted before anything is decoded or allocated per line: a 5 MB body of empty
    # 39-value rows held 134,430 rows and took a worker to 1.6 GB (issue 21.1). A header and a last empty
    # line are allowed on top of `max_rows`.
    breaks = body.count(b"\n") + body.count(b"\r") - body.count(b"\r\n")
    if breaks > max_rows + 2:
        raise _too_many_rows(f"{breaks:,} lines", max_rows)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput("the CSV body is not UTF-8 text") from None
    # A byte-order mark (Excel writes one) would otherwise become part of the first value: the first carrier
    # turned into an unseen category and the header line went unrecognised.
    text = text.removeprefix(BOM)
    try:
        return list(csv.reader(text.splitlines(), strict=True))
    except csv.Error as exc:
        raise BadInput(f"malformed CSV: {exc}") from None


def _csv_rows(records: list[list[str]], schema: Schema, ignored: set[str]) -> list[list[Any]]:
    width = len(schema.features)
    order: list[int] | None = None  # positions of the features when a header names more columns
    rows: list[list[Any]] = []
    for n, record in enumerate(records, start=1):
        if not record or (len(record) == 1 and not record[0].strip()):
            continue  # a blank line, e.g. the last newline
        if n == 1:
            names = [v.strip() for v in record]
            if names == schema.features:
                continue  # a header naming the features in order
            if len(set(names)) == len(names) and schema.index.keys() <= set(names):
                order = [names.index(f) for f in schema.features]  # a header naming them among others
                ignored.update(name for name in names if name not in schema.index)
                width = len(names)
                continue
        if len(record) != width:
            raise BadInput(f"CSV line {n} has {len(record)} values; expected "
                           + (f"{width} (one per header column)" if order else schema.expected()))
        if order is not None:
            record = [record[k] for k in order]
        rows.append([_csv_value(v, j, n, schema) for j, v in enumerate(record)])
    return rows


def _csv_value(raw: str, j: int, row: int, schema: Schema) -> Any:
    value = raw.strip()
    if not value:
        return None
    if schema.categorical[j]:
        return value
    return _number(value, raw, j, row, schema)


def _number(text: str, raw: Any, j: int, row: int, schema: Schema) -> float:
    """A number written as text; float() alone also takes '1_000' and non-ASCII digits, which no CSV writer
    produces and which more likely mean a column mix-up than a number."""
    try:
        number = float(text)
    except ValueError:
        raise BadInput(f"column {schema.features[j]!r} (row {row}) expects a number, got {_show(raw)}") from None
    if "_" in text or not text.isascii():
        raise BadInput(f"column {schema.features[j]!r} (row {row}) expects a number, got {_show(raw)} "
                       f"(write plain ASCII digits, without '_' separators)")
    return number


def _decode_json(body: bytes, max_rows: int) -> tuple:
    try:
        # orjson refuses a byte-order mark, which RFC 8259 lets a parser ignore; it refuses nesting deeper
        # than 1,024 levels itself ("depth limit exceeded").
        doc = orjson.loads(memoryview(body)[len(BOM_BYTES):] if body.startswith(BOM_BYTES) else body)
    except orjson.JSONDecodeError as exc:
        raise BadInput(f"malformed JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadInput(f"the JSON body must be an object with exactly one of {', '.join(JSON_KEYS)}")
    present = [k for k in JSON_KEYS if k in doc]
    if len(present) != 1:
        found = ", ".join(present) if present else "none of them"
        raise BadInput(f"the JSON body needs exactly one of {', '.join(JSON_KEYS)} (found {found})")
    key = present[0]
    payload = doc[key]
    count = _json_row_count(key, payload)
    if count > max_rows:
        raise _too_many_rows(f"{count:,} rows", max_rows)
    if key == "flights":
        return key, _flights(payload, doc), doc.get("return_features", False)
    return key, payload


def _flights(payload: list, doc: dict) -> list:
    """The flight keys of a `flights` body, checked field by field (online.Flight tuples)."""
    from pipelines.serving.online import Flight  # noqa: PLC0415 - online imports polars; parsing stays light

    unknown = [k for k in doc if k not in ("flights", *FLIGHT_OPTIONS)]
    if unknown:
        raise BadInput(f"unknown field(s) beside flights: {_names(unknown)} (allowed: {', '.join(FLIGHT_OPTIONS)})")
    if not isinstance(doc.get("return_features", False), bool):
        raise BadInput(f"return_features must be true or false, got {_show(doc['return_features'])}")
    if not payload:
        raise BadInput("the request holds no flights: send at least one {" + ", ".join(FLIGHT_FIELDS) + "}")
    return [Flight(*_flight(raw, i)) for i, raw in enumerate(payload, start=1)]


def _flight(raw: Any, i: int) -> tuple:
    if not isinstance(raw, dict):
        raise BadInput(f"flight {i} must be an object with {', '.join(FLIGHT_FIELDS)}")
    extra = [k for k in raw if k not in FLIGHT_FIELDS]
    missing = [k for k in FLIGHT_FIELDS if k != "tailnum" and raw.get(k) is None]
    if extra or missing:
        what = f"missing {', '.join(missing)}" if missing else f"unknown field(s) {_names(extra)}"
        raise BadInput(f"flight {i}: {what}; a flight is {{{', '.join(FLIGHT_FIELDS)}}} (tailnum may be null)")
    for name in ("carrier", "origin", "dest"):
        if not isinstance(raw[name], str) or not _CODE.fullmatch(raw[name]):
            raise BadInput(f"flight {i}: {name} must be a code of letters and digits, got {_show(raw[name])}")
    number = raw["flight"]
    if isinstance(number, str) and number.isascii() and number.isdigit():
        number = int(number)
    if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number < 100_000:
        raise BadInput(f"flight {i}: flight must be a flight number (0-99999), got {_show(raw['flight'])}")
    tailnum = raw.get("tailnum")
    if tailnum is not None and (not isinstance(tailnum, str) or not _CODE.fullmatch(tailnum)):
        raise BadInput(f"flight {i}: tailnum must be a registration of letters and digits or null, "
                       f"got {_show(tailnum)}")
    try:
        departure = dt.datetime.fromisoformat(raw["sched_dep"]) if isinstance(raw["sched_dep"], str) else None
    except ValueError:
        departure = None
    if departure is None:
        raise BadInput(f"flight {i}: sched_dep must be an ISO 8601 date and time such as 2013-12-31T05:15 (local "
                       f"at the origin, or with its UTC offset), got {_show(raw['sched_dep'])}")
    return raw["carrier"], number, raw["origin"], raw["dest"], departure, tailnum or None


def _json_row_count(key: str, payload: Any) -> int:
    """How many rows the payload under `key` holds; BadInput when it does not have that key's shape."""
    if key == "flights" and not isinstance(payload, list):
        raise BadInput("flights must be a list of objects {" + ", ".join(FLIGHT_FIELDS) + "}")
    if key == "dataframe_split":
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            raise BadInput('dataframe_split must be {"columns": [...], "data": [[...], ...]}')
        if not isinstance(payload.get("columns", []), list):
            raise BadInput("dataframe_split columns must be a list of names")
        return len(payload["data"])
    if key == "inputs" and isinstance(payload, dict):
        if not all(isinstance(c, list) for c in payload.values()):
            raise BadInput("inputs as an object must map each feature to a list of values (one per row)")
        return max((len(c) for c in payload.values()), default=0)
    if not isinstance(payload, list):
        if key == "dataframe_records":
            raise BadInput("dataframe_records must be a list of objects (one per row)")
        raise BadInput(f"{key} must be a list of rows (objects, or lists in feature order)"
                       + (" or an object of columns" if key == "inputs" else ""))
    return len(payload)


def _json_rows(key: str, payload: Any, schema: Schema, ignored: set[str]) -> list[list[Any]]:
    if key == "dataframe_split":
        return _split(payload, schema, ignored)
    if key == "dataframe_records":
        return [_record(r, i, schema, key, ignored) for i, r in enumerate(payload, start=1)]
    if key == "inputs" and isinstance(payload, dict):
        return _columns(payload, schema, ignored)
    return [_record(r, i, schema, key, ignored) if isinstance(r, dict) else _positional(r, i, schema, key)
            for i, r in enumerate(payload, start=1)]


def _check_names(names: Sequence[Any], schema: Schema, where: str, ignored: set[str]) -> None:
    """Refuse names that are not strings, a missing feature or a name given twice; add the others the model does
    not read to `ignored`."""
    bad = next((n for n in names if not isinstance(n, str)), None)
    if bad is not None:
        raise BadInput(f"{where} column names must be strings, got {_show(bad)}; expected {schema.expected()}")
    given = list(names)
    named = set(given)
    missing = [f for f in schema.features if f not in named]
    unknown = [n for n in given if n not in schema.index]
    if missing or len(given) != len(named):
        parts = [f"missing {_names(missing)}"] if missing else ["a column named twice"]
        if unknown:
            parts.append(f"besides {_names(unknown)}, which it ignores")
        raise BadInput(f"{where} columns do not match the model ({'; '.join(parts)}); expected {schema.expected()}")
    ignored.update(unknown)


def _names(names: list[str], shown: int = 8) -> str:
    """Some names for an error message: at most `shown`, each cut to 40 characters (they come from the caller)."""
    text = ", ".join(n if len(n) <= 40 else n[:37] + "..." for n in names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _split(payload: dict, schema: Schema, ignored: set[str]) -> list[list[Any]]:
    columns = payload.get("columns", schema.features)
    in_order = columns == schema.features
    if not in_order:
        _check_names(columns, schema, "dataframe_split", ignored)
        position = {name: k for k, name in enumerate(columns)}
        order = [position[f] for f in schema.features]
    rows = []
    width = len(columns)
    for i, raw in enumerate(payload["data"], start=1):
        if not isinstance(raw, list) or len(raw) != width:
            got = f"{len(raw)} values" if isinstance(raw, list) else type(raw).__name__
            raise BadInput(f"dataframe_split row {i} has {got}; expected {width} (one per column)")
        if in_order:
            rows.append(_positional(raw, i, schema, "dataframe_split"))
        else:
            rows.append([_json_value(raw[k], j, i, schema) for j, k in enumerate(order)])
    return rows


def _record(raw: Any, i: int, schema: Schema, where: str, ignored: set[str]) -> list[Any]:
    if not isinstance(raw, dict):
        raise BadInput(f"{where} row {i} must be an object of feature -> value")
    if len(raw) != len(schema.features) or any(k not in schema.index for k in raw):
        _check_names(list(raw), schema, f"{where} row {i}", ignored)
    return [_json_value(raw[f], j, i, schema) for j, f in enumerate(schema.features)]


def _positional(raw: Any, i: int, schema: Schema, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise BadInput(f"{where} row {i} must be an object or a list of {len(schema.features)} values")
    if len(raw) != len(schema.features):
        raise BadInput(f"{where} row {i} has {len(raw)} values; expected {schema.expected()}")
    categorical = schema.categorical
    out = list(raw)
    for j, v in enumerate(raw):
        # The common case (a float where a number belongs, a string where a category does) costs one check.
        if v.__class__ is float and not categorical[j] or v.__class__ is str and categorical[j]:
            continue
        out[j] = _json_value(v, j, i, schema)
    return out


def _columns(payload: dict, schema: Schema, ignored: set[str]) -> list[list[Any]]:
    _check_names(list(payload), schema, "inputs", ignored)
    columns = [payload[f] for f in schema.features]
    lengths = {len(c) for c in columns}
    if len(lengths) != 1:
        raise BadInput(f"inputs columns have different lengths ({', '.join(map(str, sorted(lengths)))})")
    return [[_json_value(columns[j][i], j, i + 1, schema) for j in range(len(columns))]
            for i in range(lengths.pop())]


def _json_value(value: Any, j: int, row: int, schema: Schema) -> Any:
    if value is None:
        return None
    if schema.categorical[j]:
        if isinstance(value, str):
            return value if value else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        raise BadInput(f"column {schema.features[j]!r} (row {row}) expects a string, got {_show(value)}")
    if isinstance(value, float):
        return value
    if isinstance(value, bool):  # before int: bool is an int in Python, but true is not a number in JSON
        raise BadInput(f"column {schema.features[j]!r} (row {row}) expects a number, got {_show(value)}")
    if isinstance(value, int):
        return float(value)
    if isinstance(value, str):
        if not value.strip():
            return None
        return _number(value, value, j, row, schema)
    raise BadInput(f"column {schema.features[j]!r} (row {row}) expects a number, got {_show(value)}")


def _show(value: Any, limit: int = 40) -> str:
    """A short description of a value the caller sent, bounded whatever it is: a JSON value nested a thousand
    deep made repr() raise RecursionError (answered 500), and a long string made a long error message."""
    if value is None or isinstance(value, bool):
        return "null" if value is None else ("true" if value else "false")
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else repr(value[:limit - 3]) + "..."
    if isinstance(value, (int, float)):
        text = repr(value)
        return text if len(text) <= limit else text[:limit - 3] + "..."
    if isinstance(value, list):
        return f"a list of {len(value)} value(s)"
    if isinstance(value, dict):
        return f"an object with {len(value)} key(s)"
    return type(value).__name__
