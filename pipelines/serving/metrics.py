"""Per-variant metrics named as SageMaker's, in Prometheus format, correct across uvicorn workers.

prometheus_client's multiprocess mode: each worker writes its counters to memory-mapped files in one
folder (`PROMETHEUS_MULTIPROC_DIR`), and `GET /metrics` on any worker sums them. The folder must be chosen
before a metric is created, so the server sets it before the workers start (`server.prepare_metrics_dir`).
Latencies are in microseconds, as SageMaker reports ModelLatency and OverheadLatency.
"""

from __future__ import annotations

import os

LABELS = ("EndpointName", "VariantName")
LATENCY_BUCKETS_US = (50, 100, 200, 300, 500, 750, 1_000, 2_000, 5_000, 10_000, 50_000, 100_000, 1_000_000)
NO_VARIANT = "none"
"""VariantName of a request refused before a variant was chosen: a wrong content type, a body too large, too
slow, malformed or with too many rows, an unknown target variant (Invocations and Invocation4XXErrors)."""


class Metrics:
    """The five SageMaker invocation metrics, labelled by endpoint and variant."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, values  # noqa: PLC0415 - prometheus_client picks its multiprocess mode when first imported

        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        if self.multiprocess:
            # The value class is fixed when prometheus_client is first imported; the directory may have been
            # set after that (a single-worker server in the CLI's own process), so choose it again here.
            values.ValueClass = values.get_value_class()
        self.registry = CollectorRegistry(auto_describe=True)
        kw = {"labelnames": LABELS, "registry": self.registry}
        self.invocations = Counter("Invocations", "Requests sent to the variant (shadow copies under the shadow "
                                                  "variant's name).", **kw)
        self.errors_4xx = Counter("Invocation4XXErrors", "Requests answered 4xx (bad input, unknown variant, "
                                                         "model error 424).", **kw)
        self.errors_5xx = Counter("Invocation5XXErrors", "Requests answered 5xx.", **kw)
        self.model_latency = Histogram("ModelLatency", "Microseconds the model took (encode + predict).",
                                       buckets=LATENCY_BUCKETS_US, **kw)
        self.overhead_latency = Histogram("OverheadLatency", "Microseconds of the request spent outside the model "
                                                             "(reading, parsing, routing, answering).",
                                          buckets=LATENCY_BUCKETS_US, **kw)
        self.log_dropped = Counter("InvocationLogDroppedRows", "Invocation-log rows dropped because the spool (or "
                                   "the buffer in front of it) was full: answered, never landed.",
                                   labelnames=("EndpointName",), registry=self.registry)
        self._children: dict[tuple[str, str], tuple] = {}

    def child(self, endpoint: str, variant: str) -> tuple:
        """(invocations, 4xx, 5xx, model latency, overhead latency) of one variant, resolved once."""
        key = (endpoint, variant)
        found = self._children.get(key)
        if found is None:
            found = tuple(m.labels(endpoint, variant) for m in (
                self.invocations, self.errors_4xx, self.errors_5xx, self.model_latency, self.overhead_latency))
            self._children[key] = found
        return found

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text of every worker's metrics (or this process's when single-process)."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess  # noqa: PLC0415 - prometheus_client picks its multiprocess mode when first imported

        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
