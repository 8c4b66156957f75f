"""Profiles and the environment: the one place a `TRIBUTARY_*` variable is named, defaulted and read.

A leaf module: it imports nothing from the project and nothing heavy (Dagster's `EnvVar` is imported when a
resource is built), so the CLI, the serving workers and tests can use it cheaply. `VARIABLES` is the registry
of every `TRIBUTARY_*` variable; the README's table is checked against it (tests/test_environment.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

Profile = Literal["local", "localstack", "aws"]
PROFILES: tuple[Profile, ...] = ("local", "localstack", "aws")


class ProfileError(ValueError):
    """An unknown or incomplete profile; the message says what to set."""


@dataclass(frozen=True)
class Variable:
    name: str
    default: str
    """The default as the README shows it (per profile where it differs)."""
    meaning: str


_HOME = "`$TRIBUTARY_HOME`"
VARIABLES: tuple[Variable, ...] = (
    # profile and local state
    Variable("TRIBUTARY_PROFILE", "local", "Which resources: local, localstack or aws."),
    Variable("TRIBUTARY_HOME", ".tributary", "Folder of local state: source database, lake, Dagster instance, MLflow."),
    Variable("TRIBUTARY_MAX_CONCURRENT", "2", "localstack, aws: steps of one run executed at once (multiprocess executor)."),
    Variable("TRIBUTARY_PARTITIONS_END", "2014-01-01", "First day after the data (exclusive); a seed at --scale N needs 2013+N."),
    Variable("TRIBUTARY_FULL_EXIT", "0", "`tributary` commands: 1 keeps Python's teardown at exit (skipped by default, after "
             "the atexit hooks: it took 1.2 s after a year's run; `pipelines/core/fast_exit.py`)."),
    # lake and source database
    Variable("TRIBUTARY_LAKE_ROOT", f"local: {_HOME}/lake; localstack: s3://tributary-lake",
             "Lake root: folder, file:// URI or s3://bucket[/prefix]."),
    Variable("TRIBUTARY_LAKE_BUCKET", "", "aws: the lake bucket, when TRIBUTARY_LAKE_ROOT is not set."),
    Variable("TRIBUTARY_SOURCE_DSN", f"local: sqlite:///{_HOME}/source.db; localstack: postgresql://postgres@127.0.0.1:5432/test",
             "Source database: SQLAlchemy URL, postgresql:// DSN or SQLite path."),
    Variable("TRIBUTARY_SOURCE_SECRET_ID", "", "Secrets Manager secret with the RDS credentials (used when the DSN is empty)."),
    # stream
    Variable("TRIBUTARY_STREAM_KIND", "local: spool; localstack, aws: kinesis", "Telemetry transport: spool, kinesis or mqtt."),
    Variable("TRIBUTARY_STREAM_SPOOL", f"{_HOME}/stream/spool", "The spool folder (local stream, MQTT bridge landing)."),
    Variable("TRIBUTARY_STREAM_MAX_RECORDS", "100000", "Records per shard in one landing batch."),
    Variable("TRIBUTARY_KINESIS_STREAM", "tributary-telemetry", "The Kinesis stream name."),
    Variable("TRIBUTARY_KINESIS_SHARDS", "2", "Shards of a Kinesis stream the resource creates (localstack)."),
    Variable("TRIBUTARY_MQTT_HOST", "127.0.0.1", "MQTT broker host (stream and edge jobs)."),
    Variable("TRIBUTARY_MQTT_PORT", "1883", "MQTT broker port."),
    Variable("TRIBUTARY_MQTT_TOPIC", "tributary/telemetry", "Telemetry topic prefix; one sub-topic per station."),
    # documents
    Variable("TRIBUTARY_DOCUMENTS_DIR", f"{_HOME}/documents", "local: the folder document store."),
    Variable("TRIBUTARY_DOCUMENTS_TABLE", "tributary-documents", "localstack, aws: the DynamoDB table of records."),
    Variable("TRIBUTARY_DOCUMENTS_LANDING", "landing/documents", "Lake prefix that producers drop document files under."),
    Variable("TRIBUTARY_OCR_THREADS", "0 (min(4, cores))", "Threads of the OCR model."),
    # ml
    Variable("TRIBUTARY_MLFLOW_TRACKING_URI", f"local: sqlite:///{_HOME}/mlflow.db; localstack: http://127.0.0.1:5000",
             "MLflow tracking store or server."),
    Variable("TRIBUTARY_MLFLOW_REGISTRY_URI", "the tracking URI", "MLflow model registry store."),
    Variable("TRIBUTARY_MLFLOW_ARTIFACT_LOCATION", "local: <lake>/mlflow; else the server's",
             "Artifact root of a new experiment."),
    Variable("TRIBUTARY_DRIFT_WINDOW_DAYS", "28", "Drift sensor and ml/drift_report: the recent window in days."),
    Variable("TRIBUTARY_DRIFT_PSI_THRESHOLD", "0.25", "Drift sensor and ml/drift_report: PSI above which a feature drifted."),
    Variable("TRIBUTARY_TRAINING_BACKEND", "local", "Where the delay model trains: local (the run's process) or ray (Ray Train)."),
    Variable("TRIBUTARY_TRAINING_WORKERS", "1", "Ray Train workers of one fit (more than 1 implies ray)."),
    Variable("TRIBUTARY_TRAINING_CPUS_PER_WORKER", "1", "Cores (XGBoost threads) of each Ray Train worker."),
    Variable("TRIBUTARY_RAY_ADDRESS", "", "ray: the cluster to train on (ray.init address); a local one per fit when unset."),
    # serving
    Variable("TRIBUTARY_SERVING_MODE", "local, localstack: local; aws: sagemaker", "Endpoint backend: local or sagemaker."),
    Variable("TRIBUTARY_SERVING_ENDPOINT", "tributary-delay", "Endpoint name."),
    Variable("TRIBUTARY_SERVING_CONFIG", f"{_HOME}/serving/endpoint.json", "Endpoint config the local service watches."),
    Variable("TRIBUTARY_SERVING_MODELS", f"{_HOME}/serving/models", "Served model versions, unpacked."),
    Variable("TRIBUTARY_SERVING_SPOOL", f"{_HOME}/serving/spool", "The service's invocation log segments."),
    Variable("TRIBUTARY_SERVING_STATE", f"{_HOME}/serving/state", "Sticky assignments and metrics files of the workers."),
    Variable("TRIBUTARY_SERVING_STICKY_HEADER", "x-amzn-sagemaker-inference-id",
             "Header whose value pins a caller to a variant."),
    Variable("TRIBUTARY_SAGEMAKER_ROLE_ARN", "", "aws: execution role of the SageMaker models."),
    Variable("TRIBUTARY_SAGEMAKER_IMAGE_URI", "", "aws: the serving image in ECR."),
    Variable("TRIBUTARY_SAGEMAKER_INSTANCE_TYPE", "ml.m5.large", "aws: instance type of each variant."),
    Variable("TRIBUTARY_SAGEMAKER_INSTANCE_COUNT", "1", "aws: instances of each variant."),
    Variable("TRIBUTARY_SAGEMAKER_CAPTURE_PERCENT", "100",
             "aws: share of requests SageMaker Data Capture writes to the lake's serving/capture/."),
    Variable("TRIBUTARY_MODEL_VERSION", "", "Set by the SageMaker deploy in each model container: the served version."),
    Variable("TRIBUTARY_SERVE_CONFIG", "", "Set by `tributary serve` for its workers: the endpoint config."),
    Variable("TRIBUTARY_SERVE_MODEL_DIR", "", "Set by `tributary serve` for its workers: the --model-dir."),
    Variable("TRIBUTARY_SERVE_ENDPOINT", "tributary-delay", "Set by `tributary serve` for its workers: the endpoint name."),
    Variable("TRIBUTARY_SERVE_SPOOL", "", "Set by `tributary serve` for its workers: the invocation spool."),
    Variable("TRIBUTARY_SERVE_STATE", "", "Set by `tributary serve` for its workers: the state folder."),
    Variable("TRIBUTARY_SERVE_SEGMENT_SECONDS", "30", "Invocation log: seconds before a segment is closed."),
    Variable("TRIBUTARY_SERVE_SPOOL_MAX_MB", "1024", "Invocation log: cap of the spool folder (all workers)."),
    Variable("TRIBUTARY_SERVE_HEADER_SECONDS", "10", "Deadline for a request head; then 408."),
    Variable("TRIBUTARY_SERVE_BODY_SECONDS", "30", "Deadline for a request body after its head; then 408."),
    Variable("TRIBUTARY_SERVE_KEEPALIVE_SECONDS", "5", "An idle kept-alive connection is closed after this long."),
    Variable("TRIBUTARY_SERVE_MAX_CONNECTIONS", "1000", "Open connections per worker; one more is answered 503."),
    Variable("TRIBUTARY_SERVE_ONLINE_FEATURES", "", "Set by the SageMaker deploy in each model container: the lake's "
             "serving/online_features Delta table (s3://...) flight keys are served from; a path serves a parquet file."),
    Variable("TRIBUTARY_SERVE_ONLINE_CHECK_SECONDS", "30", "How often a serving worker checks that table's version."),
    # edge
    Variable("TRIBUTARY_EDGE_KEY_DIR", f"{_HOME}/edge/keys", "The bundle signing keys (never committed)."),
    Variable("TRIBUTARY_EDGE_REPOSITORY_URL", "http://127.0.0.1:8750", "Where devices fetch the TUF repository."),
    Variable("TRIBUTARY_EDGE_JOBS", "local, localstack: mqtt; aws: iot", "Rollout jobs: mqtt (local controller) or iot."),
    Variable("TRIBUTARY_EDGE_TOPIC_PREFIX", "$aws", "IoT Jobs topic prefix."),
    Variable("TRIBUTARY_EDGE_FLEET", "", "Comma-separated thing names of the local fleet."),
    Variable("TRIBUTARY_EDGE_IOT_TARGETS", "", "Comma-separated thing / thing-group ARNs for CreateJob."),
    Variable("TRIBUTARY_EDGE_ROLLOUT_CONFIG", "", "Rollout JSON (CreateJob shape + cohorts), a path or inline."),
    # operations
    Variable("TRIBUTARY_ALERT_WEBHOOK_URL", "", "Webhook (Slack, Teams, any JSON POST) told of every failed run; unset: logged only."),
    # deploy scripts, tests and benchmarks (read by shell or by the harness, not by the application)
    Variable("TRIBUTARY_IMAGE", "tributary:latest", "deploy/docker-compose.yaml: the image of the services."),
    Variable("TRIBUTARY_PYTHON", "python", "deploy/serving/serve: the interpreter of the serving container."),
    Variable("TRIBUTARY_SERVE_CONFIG_FILE", f"{_HOME}/serving/endpoint.json",
             "deploy/serving/serve: the endpoint config the container watches."),
    Variable("TRIBUTARY_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test", "tests: the PostgreSQL server."),
    Variable("TRIBUTARY_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test", "benchmarks/extract.py: the PostgreSQL server."),
    Variable("TRIBUTARY_NAB_DIR", "", "tributary stream nab, benchmarks/nab.py, tests: a copy of the NAB corpus (docs/nab.md)."),
    Variable("TRIBUTARY_SROIE_DIR", "", "tests: the SROIE receipts (img/, box/) for the real-scan OCR check (docs/sroie.md)."),
)
REGISTRY: dict[str, Variable] = {v.name: v for v in VARIABLES}


def markdown_table() -> str:
    """The README's table of variables (tests/test_environment.py checks that the README holds exactly this)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{v.name}` | {v.default.replace('|', '/') if v.default else '—'} | {v.meaning} |" for v in VARIABLES]
    return "\n".join(rows)


def _registered(name: str) -> str:
    if name.startswith("TRIBUTARY_") and name not in REGISTRY:
        raise KeyError(f"{name} is not in resources.profiles.VARIABLES: add it there (and to the README table)")
    return name


def setting(name: str) -> str | None:
    """The variable's value now, stripped; None when it is unset or empty."""
    value = os.environ.get(_registered(name), "").strip()
    return value or None


def value(name: str) -> str | None:
    """The variable's raw value: None when unset (an empty value is a value)."""
    return os.environ.get(_registered(name))


def env(name: str, default: Any, *, kind: type = str) -> Any:
    """A resource field: the variable as an EnvVar when set (Dagster reads it at use time), else `default`."""
    if not setting(name):
        return default
    from dagster import EnvVar  # noqa: PLC0415 - a leaf: the CLI and the serving image (no Dagster) import it

    return EnvVar.int(name) if kind is int else EnvVar(name)


def number(name: str, default: float, kind: type = float) -> Any:
    """A positive number from the variable, or `default`; a bad value is named in one line."""
    raw = setting(name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a {kind.__name__}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, not {raw}")
    return value


def full_exit() -> bool:
    """TRIBUTARY_FULL_EXIT=1: the `tributary` command lets Python tear itself down at exit."""
    return setting("TRIBUTARY_FULL_EXIT") == "1"


def current_profile() -> Profile:
    profile = setting("TRIBUTARY_PROFILE") or "local"
    return check_profile(profile)


def check_profile(profile: str) -> Profile:
    if profile not in PROFILES:
        raise ProfileError(f"unknown TRIBUTARY_PROFILE {profile!r}: use one of {', '.join(PROFILES)}")
    return profile  # type: ignore[return-value]


def home() -> str:
    """The folder for local state (source database, lake, Dagster instance, MLflow): `.tributary` by default."""
    return setting("TRIBUTARY_HOME") or ".tributary"


def max_concurrent() -> int:
    """Steps of one run executed at once off the local profile."""
    return int(number("TRIBUTARY_MAX_CONCURRENT", 2, int))


def aws_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
