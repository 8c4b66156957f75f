"""The endpoint as a raw ASGI app: the SageMaker container contract and the InvokeEndpoint API.

Raw ASGI rather than Starlette on purpose: the model answers in tens of microseconds, and a framework's
routing, request and response objects would cost more than the model (written by hand; ~200 lines).

- `GET /ping`: 200 once the variants are loaded. A worker loads the published config before it takes
  connections (up to 60 s), so 503 comes only from a worker that has never loaded one (nothing published, or
  a config that does not load).
- `POST /invocations`, `POST /endpoints/<name>/invocations`: CSV or JSON (see parsing.py) ->
  `{"predictions": [...]}` (plus `ignored_columns` when the body had columns the model does not read); the
  variant is named in `X-Amzn-Invoked-Production-Variant`. Errors in the shape boto3 parses (errors.py).
  `{"flights": [{carrier, flight, origin, dest, sched_dep, tailnum}]}` has the features built here from the online
  table (online.py; `online_features.parquet` beside the config, reloaded when it changes; or, in a SageMaker
  container, the lake's Delta table named by `Settings.online_path`, its version re-checked every
  `online_check_seconds`) and answers
  `{"predictions", "variant", "features_as_of", "fallbacks": [[field, ...] per flight]}`, plus `"features"`
  (the model's inputs per flight) with `"return_features": true`.
- `GET /metrics`: Prometheus text (metrics.py). `GET /status`: the config this worker serves.

The config file is watched; a change is loaded in a thread and swapped in only once every model is in
memory, so requests in flight finish on the old variants and none fails. Shadow copies run after the
caller's response is sent. Every answered row is appended to the invocation spool (invocations.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import logging
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pipelines.serving import config as endpoint_config
from pipelines.serving.errors import ERROR_TYPE_HEADER, error_body
from pipelines.serving.invocations import SpoolWriter, flight_key
from pipelines.serving.metrics import NO_VARIANT, Metrics
from pipelines.serving.model import LoadedModel, ModelError
from pipelines.serving.online import ONLINE_FILE, DeltaSource, OnlineFeatures, is_remote
from pipelines.serving.parsing import MAX_BODY_BYTES, BadInput, Decoded, Schema, content_kind, decode, ignored_report
from pipelines.serving.routing import Router, StickyStore, UnknownVariant

log = logging.getLogger("tributary.serving")

VARIANT_HEADER = b"x-amzn-invoked-production-variant"
GENERATION_HEADER = b"x-tributary-config-generation"
MODEL_VERSION_HEADER = b"x-tributary-model-version"
CUSTOM_ATTRIBUTES = "x-amzn-sagemaker-custom-attributes"
JSON = b"application/json"
WATCH_SECONDS = 0.2
STARTUP_LOAD_SECONDS = 60.0
FLUSH_SECONDS = 0.5
SINGLE_VARIANT = "AllTraffic"
INLINE_BODY_BYTES = 16 * 1024
"""Bodies up to this size (~75 rows) are parsed and predicted on the event loop (~1.5 ms at most); larger ones
in a thread, so a request of MAX_ROWS rows (~60 ms of work) does not hold up the requests behind it."""


@dataclass(frozen=True)
class Settings:
    """Where the app finds its config, models and state; built in each worker by the factory uvicorn calls."""

    config_path: str | None = None
    model_dir: str | None = None
    """A model folder served alone as `AllTraffic` while no config is published (the SageMaker container)."""
    endpoint: str = endpoint_config.DEFAULT_ENDPOINT
    spool_dir: str | None = None
    state_dir: str | None = None
    segment_seconds: float = 30.0
    spool_max_mb: float = 1024.0
    """Cap of the invocation spool folder (all workers); rows past it are dropped and counted (invocations.py)."""
    header_seconds: float = 10.0
    """From a connection's opening (or a later request's first byte) to the end of the request head; then 408."""
    body_seconds: float = 30.0
    """From the end of the head to the end of the body (5 MB at ~1.4 Mbit/s); then 408."""
    keepalive_seconds: float = 5.0
    """An idle kept-alive connection is closed after this long (uvicorn's timeout_keep_alive)."""
    max_connections: int = 1000
    """Open connections per worker; one more is answered 503 and closed."""
    online_path: str | None = None
    """The online feature table for flight-key requests; by default `online_features.parquet` beside the config.
    An `s3://` location is the lake's Delta table itself (the SageMaker container)."""
    online_storage: dict[str, str] = field(default_factory=dict)
    """object_store options for a remote online table (endpoint, region, keys; empty: the default chain)."""
    online_check_seconds: float = 30.0
    """How often a remote online table's version is checked (in the watcher, never per request)."""

    def online_file(self) -> str | None:
        if self.online_path:
            return self.online_path
        return str(Path(self.config_path).with_name(ONLINE_FILE)) if self.config_path else None


class Served:
    """A variant ready to answer: its model, input schema and config."""

    __slots__ = ("name", "model", "schema", "version", "share", "version_header")

    def __init__(self, name: str, model: LoadedModel, version: str, share: float = 1.0) -> None:
        self.name = name
        self.model = model
        self.version = version
        self.share = share
        self.version_header = version.encode()
        cats = [f for f, vocab in zip(model.features, model.categorical, strict=True) if vocab is not None]
        self.schema = Schema(model.features, cats)


class Deployment:
    """One endpoint config, fully loaded: swapped in as a whole."""

    def __init__(self, config: endpoint_config.EndpointConfig, variants: dict[str, Served], shadow: Served | None,
                 router: Router) -> None:
        self.config = config
        self.variants = variants
        self.shadow = shadow
        self.router = router
        self.generation = (config.generation or "static").encode()


class App:
    """The ASGI callable (one per worker)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.metrics = Metrics()
        self.deployment: Deployment | None = None
        self.models: dict[str, LoadedModel] = {}
        state = self.settings.state_dir
        self.store = StickyStore(Path(state, "sticky.db") if state else None)
        self.spool = SpoolWriter(self.settings.spool_dir, segment_seconds=self.settings.segment_seconds,
                                 max_bytes=int(self.settings.spool_max_mb * 1024 * 1024)) \
            if self.settings.spool_dir else None
        self._dropped = 0  # spool rows dropped, as last counted in the metric
        self._dropping = False
        self._seen: tuple | None = None
        self._tasks: list[asyncio.Task] = []
        self._shadows: set[asyncio.Task] = set()
        self.load_error: str | None = None
        self.online: OnlineFeatures | None = None
        self.online_error: str | None = None
        self._online_seen: tuple | int | None = None
        self._online_source: DeltaSource | None = None
        self._online_next = 0.0
        self.published = True
        """False while there is nothing to load (no config published and no model folder)."""

    # -- configuration -----------------------------------------------------------------------------

    def _stat(self) -> tuple | None:
        if not self.settings.config_path:
            return None
        try:
            st = os.stat(self.settings.config_path)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _read_config(self) -> endpoint_config.EndpointConfig | None:
        found = endpoint_config.load(self.settings.config_path) if self.settings.config_path else None
        if found is None and self.settings.model_dir:
            found = endpoint_config.EndpointConfig(
                name=self.settings.endpoint,
                variants=(endpoint_config.Variant(SINGLE_VARIANT, "", 1.0, self.settings.model_dir),))
        return found

    def _build(self, cfg: endpoint_config.EndpointConfig) -> Deployment:
        """Load every model the config names (reusing loaded ones) into a new Deployment; runs in a thread."""
        cache = dict(self.models)

        def model(folder: str, version: str) -> LoadedModel:
            if folder not in cache:
                cache[folder] = LoadedModel.load(folder, version=version)
            return cache[folder]

        variants = {v.name: Served(v.name, model(v.model_dir, v.model_version), v.model_version)
                    for v in cfg.variants}
        shadow = None
        if cfg.shadow:
            shadow = Served(cfg.shadow.name, model(cfg.shadow.model_dir, cfg.shadow.model_version),
                            cfg.shadow.model_version, cfg.shadow.sample_share)
        router = Router([v.name for v in cfg.variants], [v.weight for v in cfg.variants],
                        sticky_header=cfg.sticky_header, store=self.store)
        used = {v.model_dir for v in cfg.variants} | ({cfg.shadow.model_dir} if cfg.shadow else set())
        self.models = {k: m for k, m in cache.items() if k in used}
        return Deployment(cfg, variants, shadow, router)

    async def reload(self) -> bool:
        """Load the config if it changed; swap only when every model loaded. False when it could not.

        `self.deployment` is only ever replaced by a loaded one, never cleared: once a worker has served a config
        it keeps serving it until the next one is fully in memory."""
        self.published = True
        await self._reload_online()
        try:
            seen = self._stat()
        except OSError as exc:  # e.g. the folder became unreadable: keep serving what is loaded
            self.load_error = f"cannot stat the endpoint config: {exc}"
            return False
        if seen == self._seen and self.deployment is not None:
            return True
        try:
            cfg = await asyncio.to_thread(self._read_config)
            if cfg is None:
                self.published = False
                self.load_error = "no endpoint config published and no model folder given"
                return False
            deployment = await asyncio.to_thread(self._build, cfg)
        except Exception as exc:  # a bad publish must not take the running variants down
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if message != self.load_error:
                log.error("endpoint config not applied, still serving the previous one: %s", message)
            self.load_error = message
            self._seen = seen if self.deployment is not None else None
            return False
        self.deployment, self._seen, self.load_error = deployment, seen, None
        # Models and vocabularies live as long as the deployment: keep the collector from rescanning them.
        gc.collect()
        gc.freeze()
        log.info("serving %s (%s)%s", cfg.name, ", ".join(f"{v.name}=v{v.model_version or '-'}@{v.weight:g}"
                                                            for v in cfg.variants),
                 f", shadow {cfg.shadow.name}=v{cfg.shadow.model_version}@{cfg.shadow.sample_share:g}"
                 if cfg.shadow else "")
        return True

    async def _reload_online(self) -> None:
        """Load the online feature table when its file changed (in a thread; swapped in whole). A table that does
        not load leaves the previous one serving, and the reason in /status."""
        path = self.settings.online_file()
        if path and is_remote(path):
            return await self._reload_remote_online(path)
        try:
            st = os.stat(path) if path else None
        except OSError:
            st = None
        seen = (st.st_ino, st.st_mtime_ns, st.st_size) if st else None
        if seen is None or seen == self._online_seen:
            return
        try:
            self.online = await asyncio.to_thread(OnlineFeatures.load, path)
            self.online_error = None
            log.info("online features as of %s loaded from %s", self.online.as_of_text, path)
        except Exception as exc:  # a bad file must not stop the worker: keep the previous table
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.online_error = f"online features not loaded from {path}: {reason}"
            log.error("%s", self.online_error)
        self._online_seen = seen

    async def _reload_remote_online(self, uri: str) -> None:
        """The lake's Delta table: every `online_check_seconds`, its latest version (a listing of the log past the
        version held, in a thread); a new version is read and swapped in whole. A failure keeps the previous table
        serving, says why in /status, and is retried at the next check."""
        now = time.monotonic()
        if now < self._online_next:
            return
        self._online_next = now + self.settings.online_check_seconds
        if self._online_source is None:
            self._online_source = DeltaSource(uri, self.settings.online_storage)
        try:
            version = await asyncio.to_thread(self._online_source.version)
            if version is None:
                self.online_error = f"no online feature table at {uri} yet: materialize serving/online_features"
                return
            if version == self._online_seen:
                return
            self.online = await asyncio.to_thread(self._online_source.load, version)
        except Exception as exc:  # the lake unreachable or a bad table: keep the previous one, try again later
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.online_error = f"online features not loaded from {uri}: {reason}"
            log.error("%s", self.online_error)
            return
        self._online_seen, self.online_error = version, None
        log.info("online features as of %s loaded from %s", self.online.as_of_text, self.online.source)

    async def _watch(self) -> None:
        while True:
            try:
                await self.reload()
            except Exception:  # the watcher must outlive any one bad reload, or the worker stops following publishes
                log.exception("endpoint config check failed; trying again")
            await asyncio.sleep(WATCH_SECONDS)

    async def _first_load(self) -> None:
        """Load the published config before the worker takes connections (uvicorn opens the socket only after
        lifespan startup completes): a worker that answered 503 while loading failed requests under load whenever
        it became ready later than the one that answered /ping (issue 14). Bounded: with nothing published, or a
        config that will not load within STARTUP_LOAD_SECONDS, the worker starts anyway and /ping says why."""
        deadline = time.monotonic() + STARTUP_LOAD_SECONDS
        while not await self.reload():
            if not self.published or time.monotonic() >= deadline:
                log.warning("taking requests before a model is loaded (answered 503 until then): %s", self.load_error)
                return
            await asyncio.sleep(WATCH_SECONDS)

    async def _flush(self) -> None:
        """Hand the buffered log to a thread every FLUSH_SECONDS: a disk stall (dirty-page writeback) must
        not stop the event loop, which measured as multi-millisecond tails when the write ran inline."""
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            if self.spool is not None:
                written = 0
                try:
                    written = await asyncio.to_thread(self.spool.write, self.spool.take())
                except OSError as exc:
                    log.error("invocation log not written (kept serving): %s", exc)
                self._count_dropped(written)

    def _count_dropped(self, written: int) -> None:
        """Rows the full spool dropped since the last flush: into the metric, and logged when dropping starts
        and when it stops (not per flush)."""
        dropped = self.spool.dropped
        if dropped > self._dropped:
            endpoint = self.deployment.config.name if self.deployment else self.settings.endpoint
            self.metrics.log_dropped.labels(endpoint).inc(dropped - self._dropped)
            if not self._dropping:
                log.warning("invocation log full (spool cap %g MB, or the disk nearly full): dropping new rows "
                            "until the landing frees space; counted in InvocationLogDroppedRows",
                            self.settings.spool_max_mb)
            self._dropping = True
        elif self._dropping and written:
            log.warning("invocation log writing again; %d row(s) dropped in all so far", dropped)
            self._dropping = False
        self._dropped = dropped

    # -- ASGI ----------------------------------------------------------------------------------------

    async def __call__(self, scope: dict, receive, send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.http(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self._first_load()
                self._tasks = [asyncio.create_task(self._watch()), asyncio.create_task(self._flush())]
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in self._tasks:
                    task.cancel()
                if self.spool is not None:
                    self.spool.close()
                self.store.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def http(self, scope: dict, receive, send) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/invocations" or (path.startswith("/endpoints/") and path.endswith("/invocations")):
            if method != "POST":
                return await _error(send, 405, "use POST for invocations")
            if path != "/invocations":
                name = path[len("/endpoints/"):-len("/invocations")]
                deployment = self.deployment
                own = deployment.config.name if deployment else self.settings.endpoint
                if name != own:
                    return await _error(send, 404, f"no endpoint named {name!r} here (this is {own!r})")
            return await self.invoke(scope, receive, send)
        if path == "/ping":
            if self.deployment is None:
                return await _error(send, 503, self.load_error or "the models are still loading", status="loading")
            return await _answer(send, 200, {"status": "ok"})
        if path == "/metrics":
            body, content_type = self.metrics.exposition()
            return await _raw(send, 200, body, content_type.encode())
        if path == "/status":
            deployment = self.deployment
            online = self.online
            return await _answer(send, 200 if deployment else 503, {
                "pid": os.getpid(), "config": deployment.config.to_json() if deployment else None,
                "error": self.load_error,
                "online_features": {"as_of": online.as_of_text, "path": online.source} if online else None,
                "online_error": self.online_error})
        return await _error(send, 404, f"no route {path}: use /ping, /invocations or /metrics")

    async def invoke(self, scope: dict, receive, send) -> None:
        started = time.perf_counter_ns()
        deployment = self.deployment
        if deployment is None:
            return await _error(send, 503, "the models are still loading")
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        # What does not depend on the model is refused before a variant is picked, and counted under none.
        try:
            kind = content_kind(headers.get("content-type"))
            body = await _body(headers, receive, self.settings.body_seconds)
            large = len(body) > INLINE_BODY_BYTES
            decoded = await asyncio.to_thread(decode, body, kind) if large else decode(body, kind)
        except BadInput as exc:
            return await self._refuse(send, deployment, exc.status, str(exc))
        if decoded.flights:
            if self.online is None:
                return await _error(send, 503, self.online_error or "no online feature table loaded: materialize "
                                    "serving/online_features, or send the features themselves")
            decoded.online = self.online
        try:
            name = deployment.router.pick(headers)
        except UnknownVariant as exc:
            return await self._refuse(send, deployment, 400, str(exc))
        invocations, errors_4xx, errors_5xx, model_latency, overhead_latency = \
            self.metrics.child(deployment.config.name, name)
        invocations.inc()
        variant_header = name.encode()
        served = deployment.variants[name]
        ignored: set[str] = set()  # columns the model does not read, reported in the answer
        try:
            if large:  # parsed and predicted in a thread: the loop keeps answering other requests meanwhile
                rows, predictions, model_ns = await asyncio.to_thread(_score, served, decoded, True, None, ignored)
            else:
                rows, predictions, model_ns = _score(served, decoded, False, None, ignored)
        except BadInput as exc:
            errors_4xx.inc()
            return await _error(send, exc.status, str(exc), variant_header, deployment.generation)
        except ModelError as exc:
            errors_4xx.inc()
            return await _error(send, 424, str(exc), variant_header, deployment.generation)
        except Exception as exc:  # a bug: answer 500, count it, keep serving
            log.exception("invocation failed")
            errors_5xx.inc()
            return await _error(send, 500, f"internal error: {type(exc).__name__}", variant_header,
                                 deployment.generation)
        request_id = os.urandom(12).hex()
        await _raw(send, 200, orjson.dumps(_answer_doc(decoded, served, rows, predictions, ignored)), JSON, variant_header,
                   deployment.generation, request_id.encode(), served.version_header)
        done = time.perf_counter_ns()
        model_us = model_ns // 1000
        overhead_us = max((done - started) // 1000 - model_us, 0)
        model_latency.observe(model_us)
        overhead_latency.observe(overhead_us)
        await self._after_answer(deployment, served, decoded, rows, predictions, request_id, model_us, overhead_us,
                                 headers.get(CUSTOM_ATTRIBUTES), large)

    async def _after_answer(self, deployment: Deployment, served, decoded, rows, predictions, request_id: str,
                            model_us: int, overhead_us: int, attributes: str | None, large: bool) -> None:
        """Once the client has its answer: log the invocation to the spool, and maybe score it on the shadow."""
        if self.spool is not None:
            if large:
                lines = await asyncio.to_thread(_log_lines, deployment, served, rows, predictions, request_id,
                                                model_us, overhead_us, attributes, False, decoded)
            else:
                lines = _log_lines(deployment, served, rows, predictions, request_id, model_us, overhead_us,
                                   attributes, False, decoded)
            self.spool.extend(lines)
        shadow = deployment.shadow
        if shadow is not None and random.random() < shadow.share:
            if large:
                task = asyncio.create_task(self._shadow_large(deployment, served, rows, decoded, request_id,
                                                              attributes))
                self._shadows.add(task)
                task.add_done_callback(self._shadows.discard)
            else:
                asyncio.get_running_loop().call_soon(self._shadow, deployment, served, rows, decoded, request_id,
                                                     attributes)

    async def _refuse(self, send, deployment: Deployment, status: int, message: str) -> None:
        """A request refused before a variant was chosen: counted and answered under VariantName none."""
        invocations, errors_4xx = self.metrics.child(deployment.config.name, NO_VARIANT)[:2]
        invocations.inc()
        errors_4xx.inc()
        # After a 408 or 413 the rest of the body may still be on its way: close rather than read it.
        await _error(send, status, message, NO_VARIANT.encode(), deployment.generation,
                      close=status in (408, 413))

    def _shadow(self, deployment: Deployment, served: Served, rows: list, decoded: Decoded, request_id: str,
                attributes: str | None) -> None:
        """The shadow variant's answer to a copy of a request: counted and logged, never returned."""
        shadow = deployment.shadow
        invocations, errors_4xx, _, model_latency, _ = self.metrics.child(deployment.config.name, shadow.name)
        invocations.inc()
        same = rows if shadow.schema.features == served.schema.features else None
        try:
            rows, predictions, model_ns = _score(shadow, decoded, False, same)
        except (BadInput, ModelError) as exc:
            errors_4xx.inc()
            log.warning("shadow %s failed on request %s: %s", shadow.name, request_id, exc)
            return
        model_latency.observe(model_ns // 1000)
        if self.spool is not None:
            self.spool.extend(_log_lines(deployment, shadow, rows, predictions, request_id, model_ns // 1000, 0,
                                         attributes, True, decoded))

    async def _shadow_large(self, deployment: Deployment, served: Served, rows: list, decoded: Decoded,
                            request_id: str, attributes: str | None) -> None:
        """`_shadow` for a large request: the parsing, the model and the log lines in a thread."""
        shadow = deployment.shadow
        invocations, errors_4xx, _, model_latency, _ = self.metrics.child(deployment.config.name, shadow.name)
        invocations.inc()
        same = rows if shadow.schema.features == served.schema.features else None
        try:
            rows, predictions, model_ns = await asyncio.to_thread(_score, shadow, decoded, True, same)
        except (BadInput, ModelError) as exc:
            errors_4xx.inc()
            log.warning("shadow %s failed on request %s: %s", shadow.name, request_id, exc)
            return
        model_latency.observe(model_ns // 1000)
        if self.spool is not None:
            self.spool.extend(await asyncio.to_thread(_log_lines, deployment, shadow, rows, predictions, request_id,
                                                      model_ns // 1000, 0, attributes, True, decoded))


def _answer_doc(decoded: Decoded, served: Served, rows: list, predictions: list, ignored: set[str]) -> dict:
    """The body of a 200: the predictions, the ignored columns if any, and for flight keys the variant, how fresh
    the online features were, the fallbacks per flight and (on request) the features used."""
    answer = {"predictions": predictions, **ignored_report(ignored)} if ignored else {"predictions": predictions}
    if decoded.flights:
        answer.update(variant=served.name, features_as_of=decoded.online.as_of_text, fallbacks=decoded.fallbacks)
        if decoded.return_features:
            answer["features"] = [dict(zip(served.schema.features, row, strict=True)) for row in rows]
    return answer


def _score(served: Served, decoded: Decoded, threadsafe: bool, rows: list | None = None,
           ignored: set[str] | None = None) -> tuple[list, list, int]:
    """(rows, predictions, model nanoseconds) of a decoded body for one variant (the names of columns it does not
    read added to `ignored`)."""
    if rows is None:
        rows = decoded.rows(served.schema, ignored)
    before = time.perf_counter_ns()
    predictions = served.model.predict_rows(rows, threadsafe=threadsafe)
    return rows, predictions, time.perf_counter_ns() - before


def _log_lines(deployment: Deployment, served: Served, rows: list, predictions: list, request_id: str,
               model_us: int, overhead_us: int, attributes: str | None, shadow: bool,
               decoded: Decoded | None = None) -> list[bytes]:
    """The invocation-log records of one answer, one per row (pure: runs on the loop or in a thread). A row of a
    flight-key request carries its flight's warehouse key; otherwise a one-row request's custom attributes may."""
    if decoded is not None and decoded.flights:
        keys = [decoded.online.flight_key(flight) for flight in decoded.value[1]]
    else:
        keys = [flight_key(attributes) if len(rows) == 1 else (None, None)] * len(rows)
    now = dt.datetime.now(dt.UTC).isoformat()
    features = served.schema.features
    endpoint = deployment.config.name
    return [orjson.dumps({
        "request_id": request_id, "row": i, "shadow": shadow, "endpoint": endpoint,
        "variant": served.name, "model_version": served.version,
        "features": orjson.dumps(dict(zip(features, row, strict=True))).decode(), "prediction": prediction,
        "model_latency_us": model_us, "overhead_latency_us": overhead_us, "invoked_at": now,
        "flight_id": flight_id, "flight_date": flight_date, "custom_attributes": attributes,
    }) for i, (row, prediction, (flight_id, flight_date)) in enumerate(zip(rows, predictions, keys, strict=True))]


async def _body(headers: dict[str, str], receive, seconds: float) -> bytes:
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BadInput(f"request body of {int(declared):,} bytes is over the limit of {MAX_BODY_BYTES:,}", 413)
    chunks: list[bytes] = []
    size = 0
    try:
        # A deadline for the whole body: a client that promises a Content-Length and never sends it, or sends it
        # a byte at a time, held the request (and its connection) forever (issue 21.8).
        async with asyncio.timeout(seconds):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise BadInput("the client went away before sending the whole body")
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise BadInput(f"request body is over the limit of {MAX_BODY_BYTES:,} bytes", 413)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    except TimeoutError:
        promised = f" of the {int(declared):,} promised" if declared and declared.isdigit() else ""
        raise BadInput(f"the request body did not arrive within {seconds:g} s ({size:,} bytes{promised})",
                       408) from None


async def _answer(send, status: int, doc: dict[str, Any], variant: bytes | None = None,
                  generation: bytes | None = None, *, close: bool = False) -> None:
    await _raw(send, status, orjson.dumps(doc), JSON, variant, generation, close=close)


async def _error(send, status: int, message: str, variant: bytes | None = None, generation: bytes | None = None,
                 *, close: bool = False, **extra: Any) -> None:
    """An error answer boto3 parses (errors.py): the error type in its header, the message in the body."""
    body, kind = error_body(status, message, **extra)
    await _raw(send, status, body, JSON, variant, generation, close=close, error_type=kind)


async def _raw(send, status: int, body: bytes, content_type: bytes, variant: bytes | None = None,
               generation: bytes | None = None, request_id: bytes | None = None,
               model_version: bytes | None = None, *, close: bool = False, error_type: bytes | None = None) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if error_type is not None:
        headers.append((ERROR_TYPE_HEADER, error_type))
    if variant is not None:
        headers.append((VARIANT_HEADER, variant))
    if generation is not None:
        headers.append((GENERATION_HEADER, generation))
    if request_id is not None:
        headers.append((b"x-amzn-requestid", request_id))
    if model_version is not None:
        headers.append((MODEL_VERSION_HEADER, model_version))
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings | None = None) -> App:
    """The app of one worker (uvicorn's factory, `resources.serving_workers.create_app`, passes its settings)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(levelname)s %(message)s")
    return App(settings)
