"""The deployment files in deploy/.

The instance configs open real Dagster instances on the PostgreSQL of this machine (a database of the test's
own); every other file is parsed and checked against the schema of the tool that reads it (Dagster's
instance and workspace schemas, the ECS API model in botocore), and nothing under deploy/ holds a credential.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import MaterializeResult, asset

from tests.conftest import PG_ADMIN_DSN, service_missing

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
INSTANCE_YAMLS = {"simple": DEPLOY / "dagster.yaml", "ecs": DEPLOY / "ecs" / "dagster.yaml"}
LAKE_ZONES = ("raw", "standardized", "quarantine", "warehouse", "mlflow", "serving", "edge")
PG_ENV = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")


def _load(path: Path) -> Any:
    text = path.read_text()
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


def _config_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file() and p.suffix in (".json", ".yaml", ".yml"))


def _all_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file())


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


# -- PostgreSQL ----------------------------------------------------------------------------------------


def _pg_url(database: str | None = None):
    """The test PostgreSQL (TRIBUTARY_TEST_PG, as in tests/conftest.py), optionally at another database."""
    from sqlalchemy.engine import make_url

    url = make_url(PG_ADMIN_DSN).set(drivername="postgresql")
    return url.set(database=database) if database else url


def _connect(database: str | None = None, **kwargs):
    import psycopg

    return psycopg.connect(_pg_url(database).render_as_string(hide_password=False), **kwargs)


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh, empty database for this test alone, dropped afterwards. Skips without PostgreSQL unless CI=true."""
    import psycopg
    from psycopg import sql

    try:
        admin = _connect(autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        url = _pg_url()
        service_missing(f"PostgreSQL at {url.host}:{url.port}", str(exc).strip())
    name = f"tributary_deploy_{uuid.uuid4().hex[:12]}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_database: str):
    """Point DAGSTER_HOME at a fresh folder and DAGSTER_PG_* at the test database; returns an installer."""
    url = _pg_url()
    home = tmp_path / "deploy_dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_HOST", url.host or "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_PORT", str(url.port or 5432))
    monkeypatch.setenv("DAGSTER_PG_USERNAME", url.username or "postgres")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", url.password or "")
    monkeypatch.setenv("DAGSTER_PG_DB", pg_database)

    def install(config: Path) -> Path:
        shutil.copy(config, home / "dagster.yaml")
        return home

    return install


@asset(key=["deploy_check", "probe"])
def probe() -> MaterializeResult:
    """A one-line asset for the round trip through the instance."""
    return MaterializeResult(metadata={"dagster/row_count": 3})


def _round_trip(instance, database: str) -> None:
    """Materialize an asset through the instance, read run and event back, and find the run in PostgreSQL."""
    from dagster import AssetKey, DagsterRunStatus, materialize

    result = materialize([probe], instance=instance, tags={"tributary/stage": "deploy_check"})
    assert result.success

    run = instance.get_run_by_id(result.run_id)
    assert run is not None and run.status == DagsterRunStatus.SUCCESS
    assert run.tags["tributary/stage"] == "deploy_check"
    event = instance.get_latest_materialization_event(AssetKey(["deploy_check", "probe"]))
    assert event is not None and event.run_id == result.run_id
    assert event.asset_materialization.metadata["dagster/row_count"].value == 3
    assert instance.all_instigator_state() == []  # the schedule storage answers from its tables

    with _connect(database) as conn:
        stored = conn.execute("SELECT status FROM runs WHERE run_id = %s", (result.run_id,)).fetchone()
        events = conn.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", (result.run_id,)).fetchone()
        schedule_tables = conn.execute("SELECT to_regclass('instigators'), to_regclass('job_ticks')").fetchone()
    assert stored == ("SUCCESS",)
    assert events[0] > 0
    assert schedule_tables == ("instigators", "job_ticks")


def test_instance_on_postgres(dagster_home, pg_database: str) -> None:
    from dagster import DagsterInstance, DefaultRunLauncher, QueuedRunCoordinator
    from dagster_postgres import (
        DagsterPostgresStorage,
        PostgresEventLogStorage,
        PostgresRunStorage,
        PostgresScheduleStorage,
    )

    dagster_home(INSTANCE_YAMLS["simple"])
    config = _load(INSTANCE_YAMLS["simple"])
    instance = DagsterInstance.get()
    try:
        assert instance.get_ref().storage_data.class_name == DagsterPostgresStorage.__name__
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert isinstance(instance.run_launcher, DefaultRunLauncher)

        queue = instance.get_concurrency_config().run_queue_config
        runs = config["concurrency"]["runs"]
        assert queue is not None
        assert queue.max_concurrent_runs == runs["max_concurrent_runs"] > 0
        assert list(queue.tag_concurrency_limits) == runs["tag_concurrency_limits"]
        pools = instance.get_concurrency_config().pool_config
        assert pools.default_pool_limit == config["concurrency"]["pools"]["default_limit"] == 4
        assert pools.pool_granularity.value == "op"
        assert instance.run_coordinator.dequeue_interval_seconds == 5

        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_start_timeout_seconds == 300
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
        assert not instance.telemetry_enabled

        _round_trip(instance, pg_database)
    finally:
        instance.dispose()


def test_ecs_instance_opens_without_aws(
    dagster_home, pg_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a run task or the code server does on ECS: open the instance and record a run. The EcsRunLauncher
    must stay unbuilt (it would call ECS and needs DAGSTER_RUN_TASK_DEFINITION), so neither is given here."""
    from dagster import DagsterInstance, QueuedRunCoordinator
    from dagster_postgres import PostgresRunStorage

    monkeypatch.delenv("DAGSTER_RUN_TASK_DEFINITION", raising=False)
    monkeypatch.setenv("DAGSTER_COMPUTE_LOG_BUCKET", "tributary-compute-logs-test")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    # RDS gets TLS (`sslmode: require`); the PostgreSQL of a test machine has none.
    config = _load(INSTANCE_YAMLS["ecs"])
    assert config["storage"]["postgres"]["postgres_db"].pop("params") == {"sslmode": "require"}
    ecs_yaml = tmp_path / "ecs-dagster.yaml"
    ecs_yaml.write_text(yaml.safe_dump(config))
    dagster_home(ecs_yaml)
    instance = DagsterInstance.get()
    try:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert instance.run_monitoring_enabled
        assert instance.get_ref().run_launcher_data.class_name == "EcsRunLauncher"
        _round_trip(instance, pg_database)
    finally:
        instance.dispose()


# -- Files parse and validate --------------------------------------------------------------------------


CONTENT_CHECKS = {
    "deploy/dagster.yaml": "test_instance_on_postgres",
    "deploy/ecs/dagster.yaml": "test_ecs_instance_opens_without_aws",
    "deploy/ecs/task-definitions.json": "test_ecs_containers_run_the_image_roles_on_their_ports",
    "deploy/docker-compose.yaml": "test_compose_references_existing_paths",
    "deploy/workspace.yaml": "test_workspace_points_at_the_code_server",
    "deploy/ray/dagster.yaml": "test_the_ray_instance_reaches_the_ray_cluster_it_ships_with",
    "deploy/ray/raycluster.yaml": "test_the_ray_instance_reaches_the_ray_cluster_it_ships_with",
    "deploy/serving/endpoint-config.json": "test_endpoint_config_request_has_shadow_variants_and_matches_the_example",
    "deploy/edge/rollout.json": "test_rollout_json_parses_and_matches_create_job",
    "deploy/edge/iam-policy.json": "test_policies_are_least_privilege",
    "deploy/edge/device-policy.json": "test_policies_are_least_privilege",
    "deploy/edge/job-document.json": "test_policies_are_least_privilege",
    **{f"deploy/iam/{p.name}": "test_iam_policy_is_least_privilege" for p in (DEPLOY / "iam").glob("*.json")},
    **{f"deploy/serving/{p.name}": "test_sagemaker_roles_reach_only_the_delay_endpoint_and_its_models"
       for p in (DEPLOY / "serving").glob("iam-*.json")},
}
"""Each config file under deploy/ and the test that checks what it says (not only that it parses)."""


def test_every_config_file_has_a_content_test() -> None:
    """A config file that is only parsed proves nothing: each must be named here with a test that reads its
    content, and that test must exist."""
    assert sorted(_rel(p) for p in _config_files()) == sorted(CONTENT_CHECKS)
    sources = "\n".join(p.read_text() for p in (REPO / "tests").rglob("test_*.py"))
    missing = sorted({name for name in CONTENT_CHECKS.values() if f"def {name}(" not in sources})
    assert not missing


def _ecs_containers() -> dict[str, dict]:
    return {c["name"]: c for task in _load(DEPLOY / "ecs" / "task-definitions.json")
            for c in task["containerDefinitions"]}


def test_ecs_containers_run_the_image_roles_on_their_ports() -> None:
    """Every ECS container runs the image deploy/Dockerfile builds, with a command its entrypoint knows, on the
    port that role listens on; the code server's port is the one the workspace dials."""
    entrypoint = (DEPLOY / "entrypoint.sh").read_text()
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "COPY --chmod=0755 deploy/entrypoint.sh /usr/local/bin/tributary-entrypoint" in dockerfile
    assert 'ENTRYPOINT ["/usr/local/bin/tributary-entrypoint"]' in dockerfile
    default_ports = {role: int(port) for role, port in (
        ("code-server", re.search(r"DAGSTER_CODE_SERVER_PORT:-(\d+)", entrypoint).group(1)),
        ("webserver", re.search(r"DAGSTER_WEBSERVER_PORT:-(\d+)", entrypoint).group(1)))}
    containers = _ecs_containers()
    assert set(containers) == {"webserver", "daemon", "code-server", "run"}
    for name, container in containers.items():
        assert container["image"] == "${IMAGE_URI}", name
        assert "entryPoint" not in container, f"{name}: the image's entrypoint must stay"
        command = container.get("command")
        if name == "run":
            assert command is None  # the EcsRunLauncher supplies `dagster api execute_run ...`
            continue
        assert command == [name] and f"\n  {name})" in entrypoint, f"{name}: entrypoint has no role {command}"
        ports = [m["containerPort"] for m in container.get("portMappings", [])]
        assert ports == ([default_ports[name]] if name in default_ports else []), name
        health = " ".join(container.get("healthCheck", {}).get("command", []))
        if name in default_ports:
            assert str(default_ports[name]) in health, f"{name}: the health check probes another port"
    (entry,) = _load(DEPLOY / "workspace.yaml")["load_from"]
    assert entry["grpc_server"]["port"] == default_ports["code-server"]
    for name in ("code-server", "run"):  # the containers that run the assets pick the AWS profile
        env = {e["name"]: e["value"] for e in containers[name]["environment"]}
        assert env["TRIBUTARY_PROFILE"] == "aws", name


def test_the_ray_instance_reaches_the_ray_cluster_it_ships_with() -> None:
    """deploy/ray/dagster.yaml launches runs as Ray jobs on the dashboard port of deploy/ray/raycluster.yaml's
    head, on the shared PostgreSQL storage, passing the lake and profile through; head and workers run one image,
    the head takes no CPU work, and the lake is S3 (a run's steps may land on any pod)."""
    instance = _load(DEPLOY / "ray" / "dagster.yaml")
    pg = instance["storage"]["postgres"]["postgres_db"]
    assert [pg[f] for f in ("hostname", "port", "username", "password", "db_name")] == [{"env": v} for v in PG_ENV]
    launcher = instance["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_ray", "RayRunLauncher")
    ray = launcher["config"]["ray"]
    assert {"DAGSTER_HOME", "TRIBUTARY_PROFILE", "TRIBUTARY_LAKE_ROOT"} <= set(ray["env_vars"])
    assert not [v for v in ray["env_vars"] if re.search(r"PASSWORD|SECRET", v)]
    assert instance["telemetry"] == {"enabled": False}

    cluster = _load(DEPLOY / "ray" / "raycluster.yaml")["spec"]
    head = cluster["headGroupSpec"]
    (head_container,) = head["template"]["spec"]["containers"]
    workers = [c for group in cluster["workerGroupSpecs"] for c in group["template"]["spec"]["containers"]]
    assert workers and {c["image"] for c in workers} == {head_container["image"]}
    assert head["rayStartParams"]["num-cpus"] == "0"
    ports = {p["name"]: p["containerPort"] for p in head_container["ports"]}
    assert ray["address"].rsplit(":", 1)[1] == str(ports["dashboard"])
    for container in (head_container, *workers):
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["TRIBUTARY_PROFILE"] == "aws" and env["TRIBUTARY_LAKE_ROOT"].startswith("s3://")
        assert not [n for n in env if re.search(r"PASSWORD|SECRET_ACCESS|TOKEN", n)], "secrets come from secretRef"


def test_the_serving_image_runs_the_serving_cli_on_the_sagemaker_port() -> None:
    """deploy/serving/Dockerfile starts `serve`, which runs the project's serving CLI with options that CLI
    accepts, on the port the image exposes (SageMaker's 8080)."""
    from click.testing import CliRunner

    from pipelines.serving.cli import serve

    dockerfile = (DEPLOY / "serving" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["/usr/local/bin/serve"]' in dockerfile
    assert "COPY deploy/serving/serve /usr/local/bin/serve" in dockerfile
    script = (DEPLOY / "serving" / "serve").read_text()
    exposed = int(re.search(r"^EXPOSE (\d+)$", dockerfile, re.M).group(1))
    assert exposed == 8080 and f"SAGEMAKER_BIND_TO_PORT:-{exposed}" in script
    assert "-m pipelines.serving.cli" in script
    options = re.findall(r"(--[a-z-]+) ", script)
    assert {"--host", "--port", "--workers", "--model-dir", "--config", "--spool", "--state"} <= set(options)
    result = CliRunner().invoke(serve, [*(f"{o}=x" if o not in ("--port", "--workers") else f"{o}=1"
                                          for o in options), "--help"])
    assert result.exit_code == 0, result.output


def test_the_deploy_files_exist() -> None:
    expected = [
        "dagster.yaml", "ecs/dagster.yaml", "Dockerfile", "entrypoint.sh", "docker-compose.yaml", "workspace.yaml",
        "ecs/task-definitions.json", "README.md",
    ]
    missing = [name for name in expected if not (DEPLOY / name).is_file()]
    assert not missing
    assert sorted((DEPLOY / "iam").glob("*.json"))


def _validate_class_config(section: dict) -> None:
    from dagster._config import validate_config
    from dagster._serdes import class_from_code_pointer

    cls = class_from_code_pointer(section["module"], section["class"])
    result = validate_config(cls.config_type(), section.get("config") or {})
    assert result.success, f"{section['class']}: {[e.message for e in result.errors]}"


@pytest.mark.parametrize("kind", sorted(INSTANCE_YAMLS))
def test_instance_config_validates(kind: str) -> None:
    """Dagster's own check of dagster.yaml, plus each pluggable class's config against that class's schema."""
    from dagster._core.instance.config import dagster_instance_config

    path = INSTANCE_YAMLS[kind]
    config, custom_class = dagster_instance_config(str(path.parent))
    assert custom_class is None

    pg = config["storage"]["postgres"]["postgres_db"]
    for field, var in zip(("hostname", "port", "username", "password", "db_name"), PG_ENV, strict=True):
        assert pg[field] == {"env": var}
    # dagster-postgres needs psycopg2; SQLAlchemy 2.1 would pick psycopg 3 for a bare postgresql://.
    assert pg["scheme"] == "postgresql+psycopg2"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["telemetry"] == {"enabled": False}
    assert config["run_monitoring"]["enabled"] is True
    assert config["concurrency"]["runs"]["tag_concurrency_limits"]

    expected_launcher = {"simple": "DefaultRunLauncher", "ecs": "EcsRunLauncher"}[kind]
    assert config["run_launcher"]["class"] == expected_launcher
    for key in ("run_coordinator", "run_launcher", "compute_logs"):
        if key in config:
            _validate_class_config(config[key])


def test_the_validation_catches_mistakes(tmp_path: Path) -> None:
    """The checks above are not vacuous: a misspelt launcher field and a misspelt top-level key both fail."""
    from dagster._config import validate_config
    from dagster._core.errors import DagsterInvalidConfigError
    from dagster._core.instance.config import dagster_instance_config
    from dagster_aws.ecs import EcsRunLauncher

    launcher = dict(_load(INSTANCE_YAMLS["ecs"])["run_launcher"]["config"])
    launcher["task_definiton"] = launcher.pop("task_definition")
    assert not validate_config(EcsRunLauncher.config_type(), launcher).success

    config = _load(INSTANCE_YAMLS["simple"])
    config["run_monitorng"] = config.pop("run_monitoring")
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(DagsterInvalidConfigError):
        dagster_instance_config(str(tmp_path))


def test_workspace_points_at_the_code_server() -> None:
    from dagster._core.workspace.config_schema import process_workspace_config

    workspace = _load(DEPLOY / "workspace.yaml")
    assert process_workspace_config(workspace).success
    (entry,) = workspace["load_from"]
    server = entry["grpc_server"]
    compose = _load(DEPLOY / "docker-compose.yaml")
    assert server["host"] in compose["services"]
    assert server["location_name"] == "tributary"  # [tool.dagster] code_location_name in pyproject.toml
    assert f'DAGSTER_CODE_SERVER_PORT:-{server["port"]}' in (DEPLOY / "entrypoint.sh").read_text()


def test_compose_references_existing_paths() -> None:
    compose = _load(DEPLOY / "docker-compose.yaml")
    services = compose["services"]
    assert {"postgres", "code-server", "webserver", "daemon"} <= set(services)
    declared_volumes = set(compose.get("volumes") or {})
    entrypoint = (DEPLOY / "entrypoint.sh").read_text()

    for name, service in services.items():
        build = service.get("build")
        if build:
            context = (DEPLOY / build["context"]).resolve()
            assert context.is_dir(), f"{name}: build context {context}"
            assert (context / build["dockerfile"]).is_file(), f"{name}: {build['dockerfile']}"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (DEPLOY / source).exists(), f"{name}: bind mount {source} does not exist"
            else:
                assert source in declared_volumes, f"{name}: volume {source} is not declared"
        command = service.get("command")
        if command and service.get("build"):
            assert f"\n  {command[0]})" in entrypoint, f"{name}: entrypoint has no role {command[0]!r}"

    for role in ("code-server", "webserver", "daemon"):
        env = services[role]["environment"]
        assert set(PG_ENV) <= set(env), role
    assert {"webserver", "daemon"} <= {
        n for n, s in services.items() if "code-server" in (s.get("depends_on") or {})
    }


def test_dockerfile() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    instructions = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert instructions[0] == "FROM python:3.11-slim"
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.M))

    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")

    for line in instructions:
        if not line.startswith("COPY "):
            continue
        parts = [p for p in line.split()[1:] if not p.startswith("--")]
        for source in parts[:-1]:
            source = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], source)
            assert (REPO / source).exists(), f"COPY source {source} does not exist"
    assert re.search(r"pip install [^\n]*\s\.\s", text), "the image installs the project with pip"
    assert "dagster-postgres" in text or "dagster-postgres" in (REPO / "pyproject.toml").read_text()
    assert 'CMD ["code-server"]' in text


@pytest.mark.parametrize(
    ("role", "program"),
    [
        ("code-server", "dagster"),
        ("webserver", "dagster-webserver"),
        ("daemon", "dagster-daemon"),
        ("tributary", "tributary"),
    ],
)
def test_entrypoint_roles_use_real_cli_options(role: str, program: str, tmp_path: Path) -> None:
    """Each role of entrypoint.sh runs a command whose options this Dagster version accepts."""
    import subprocess

    from click.testing import CliRunner

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for fake in ("dagster", "dagster-webserver", "dagster-daemon", "tributary"):
        (bin_dir / fake).write_text('#!/bin/sh\nbasename "$0" > "$ARGV_OUT"\nprintf \'%s\\n\' "$@" >> "$ARGV_OUT"\n')
        (bin_dir / fake).chmod(0o755)
    out = tmp_path / "argv"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "DAGSTER_HOME": "/opt/dagster/dagster_home", "ARGV_OUT": str(out)}
    extra = ["seed"] if role == "tributary" else []
    subprocess.run(["sh", str(DEPLOY / "entrypoint.sh"), role, *extra], env=env, check=True, timeout=30)
    called, *args = out.read_text().splitlines()
    assert called == program
    if program == "tributary":
        assert args == ["seed"]
        return

    from dagster._cli import cli as dagster_cli
    from dagster._daemon.cli import cli as daemon_cli
    from dagster_webserver.cli import cli as webserver_cli

    cli = {"dagster": dagster_cli, "dagster-webserver": webserver_cli, "dagster-daemon": daemon_cli}[program]
    # --help comes last: click rejects an unknown option while parsing, before --help prints and exits.
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0, result.output
    if role != "code-server":
        assert "/opt/dagster/dagster_home/workspace.yaml" in args


def test_ecs_task_definitions_match_the_ecs_api() -> None:
    import botocore.session
    from botocore.validate import ParamValidator

    ecs = botocore.session.get_session().get_service_model("ecs")
    shape = ecs.operation_model("RegisterTaskDefinition").input_shape
    tasks = _load(DEPLOY / "ecs" / "task-definitions.json")
    families = {task["family"]: task for task in tasks}
    assert {"tributary-webserver", "tributary-daemon", "tributary-code-server", "tributary-run"} <= set(families)

    for task in tasks:
        report = ParamValidator().validate(task, shape)
        assert not report.has_errors(), f"{task['family']}: {report.generate_report()}"
        for container in task["containerDefinitions"]:
            env = {e["name"]: e["value"] for e in container.get("environment", [])}
            secret_names = {s["name"] for s in container.get("secrets", [])}
            assert set(PG_ENV) <= set(env) | secret_names, container["name"]
            assert "DAGSTER_PG_PASSWORD" in secret_names
            for name in env:
                assert not re.search(r"PASSWORD|SECRET_ACCESS|TOKEN", name), f"{name} belongs in secrets"
            for secret in container.get("secrets", []):
                assert secret["valueFrom"].startswith("${"), secret  # an ARN placeholder, never a value


def test_ecs_run_launcher_starts_against_the_registered_task_definitions(monkeypatch: pytest.MonkeyPatch) -> None:
    """The launcher of ecs/dagster.yaml, built by Dagster from that config, finds the `run` container of the
    task definition it is given, once the task definitions of this folder are registered (moto's ECS)."""
    import boto3
    from dagster._serdes import ConfigurableClassData
    from dagster_aws.ecs import EcsRunLauncher
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("DAGSTER_RUN_TASK_DEFINITION", "tributary-run")
    filled = re.sub(
        r"\$\{([A-Z][A-Z0-9_]*)\}",
        lambda m: {"AWS_ACCOUNT_ID": "123456789012", "AWS_REGION": "us-east-1"}.get(m.group(1), m.group(1).lower()),
        (DEPLOY / "ecs" / "task-definitions.json").read_text(),
    )
    section = _load(INSTANCE_YAMLS["ecs"])["run_launcher"]
    with mock_aws():
        ecs = boto3.client("ecs", region_name="us-east-1")
        for task in json.loads(filled):
            ecs.register_task_definition(**task)
        data = ConfigurableClassData(section["module"], section["class"], yaml.safe_dump(section["config"]))
        launcher = data.rehydrate(as_type=EcsRunLauncher)
    assert launcher.task_definition == "arn:aws:ecs:us-east-1:123456789012:task-definition/tributary-run:1"
    assert launcher.container_name == "run"


def test_ecs_launcher_fits_the_task_definitions_and_policy() -> None:
    launcher = _load(INSTANCE_YAMLS["ecs"])["run_launcher"]["config"]
    assert launcher["secrets_tag"] is None  # no secretsmanager:ListSecrets on Resource "*"
    assert _load(INSTANCE_YAMLS["ecs"])["run_monitoring"]["max_resume_run_attempts"] == 0
    tasks = {task["family"]: task for task in _load(DEPLOY / "ecs" / "task-definitions.json")}
    for family in ("tributary-webserver", "tributary-daemon"):
        (container,) = tasks[family]["containerDefinitions"]
        env = {e["name"]: e["value"] for e in container["environment"]}
        run_family = env[launcher["task_definition"]["env"]]
        assert launcher["container_name"] in {c["name"] for c in tasks[run_family]["containerDefinitions"]}
    policy = _load(DEPLOY / "iam" / "ecs-run-launcher.json")
    run_task = [s for s in policy["Statement"] if s["Action"] == "ecs:RunTask"]
    assert run_task and run_task[0]["Resource"].endswith(f"task-definition/{run_family}:*")


# -- IAM -----------------------------------------------------------------------------------------------


def test_sagemaker_roles_reach_only_the_delay_endpoint_and_its_models() -> None:
    """The SageMaker policies name what the serving code creates: the endpoint, its configs and `-v<version>`
    models, and the lake prefix the model tarballs are uploaded to; `*` only where AWS has no resource ARN."""
    from pipelines.serving.config import DEFAULT_ENDPOINT
    from pipelines.serving.sagemaker import MODEL_TARBALL, model_name

    tarballs = f"arn:aws:s3:::${{LAKE_BUCKET}}/{MODEL_TARBALL.rsplit('/', 2)[0]}/*"
    assert fnmatch.fnmatchcase(f"arn:aws:s3:::${{LAKE_BUCKET}}/{MODEL_TARBALL.format(version=7)}", tarballs)
    trust = _load(DEPLOY / "serving" / "iam-sagemaker-trust.json")
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "sagemaker.amazonaws.com"}]
    deploy = _load(DEPLOY / "serving" / "iam-sagemaker-deploy.json")["Statement"]
    execution = _load(DEPLOY / "serving" / "iam-sagemaker-execution.json")["Statement"]
    sagemaker = next(s for s in deploy if any(a.startswith("sagemaker:") for a in _as_list(s["Action"])))
    names = {r.rsplit(":", 1)[1] for r in sagemaker["Resource"]}
    assert names == {f"model/{model_name(DEFAULT_ENDPOINT, '')}*", f"endpoint-config/{DEFAULT_ENDPOINT}-*",
                     f"endpoint/{DEFAULT_ENDPOINT}"}
    capture = [s for s in execution if s.get("Sid") == "WriteTheDataCapture"]
    assert [(_as_list(s["Action"]), s["Resource"]) for s in capture] == [
        (["s3:PutObject"], "arn:aws:s3:::${LAKE_BUCKET}/serving/capture/*")]  # DataCapture writes there, only
    # The containers read the lake's online features (flight keys, issue 20.1): list its Delta log, get its files.
    from pipelines.serving.online import TABLE as ONLINE_TABLE

    online = [s for s in execution if s.get("Sid") in ("ReadTheOnlineFeatures", "ListTheOnlineFeaturesLog")]
    assert sorted((_as_list(s["Action"]), s["Resource"], s.get("Condition")) for s in online) == [
        (["s3:GetObject"], f"arn:aws:s3:::${{LAKE_BUCKET}}/{ONLINE_TABLE}/*", None),
        (["s3:ListBucket"], "arn:aws:s3:::${LAKE_BUCKET}", {"StringLike": {"s3:prefix": [f"{ONLINE_TABLE}/*"]}})]
    s3 = [s for s in (*deploy, *execution)
          if any(a.startswith("s3:") for a in _as_list(s["Action"])) and s not in capture and s not in online]
    assert s3 and all(s["Resource"] == tarballs for s in s3)
    assert [_as_list(s["Action"]) for s in execution if s["Resource"] == tarballs] == [["s3:GetObject"]]
    unscoped = {a for s in (*deploy, *execution) if s["Resource"] == "*" for a in _as_list(s["Action"])}
    assert unscoped == {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}
    (metrics,) = [s for s in execution if "cloudwatch:PutMetricData" in _as_list(s["Action"])]
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}}
    (passrole,) = [s for s in deploy if s["Action"] == "iam:PassRole"]
    assert passrole["Condition"]["StringEquals"]["iam:PassedToService"] == "sagemaker.amazonaws.com"

READ_VERBS = ("Get", "List", "Describe", "BatchGet", "BatchCheck", "Query", "Scan", "Head")


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _is_write(action: str) -> bool:
    return not action.split(":", 1)[1].startswith(READ_VERBS)


def _policies() -> list[Path]:
    return sorted((DEPLOY / "iam").glob("*.json"))


@pytest.mark.parametrize("path", _policies(), ids=_rel)
def test_iam_policy_is_least_privilege(path: Path) -> None:
    policy = _load(path)
    assert policy["Version"] == "2012-10-17"
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement
        actions = _as_list(statement["Action"])
        for action in actions:
            service, name = action.split(":", 1)
            assert "*" not in name, f"{path.name}: wildcard action {action}"
        if "Principal" in statement:  # a trust policy: only ECS tasks may assume the role
            assert actions == ["sts:AssumeRole"] and statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
            continue
        resources = _as_list(statement["Resource"])
        if any(r == "*" for r in resources):
            writes = [a for a in actions if _is_write(a)]
            assert not writes, f"{path.name} {statement.get('Sid')}: {writes} on Resource '*'"
        for resource in resources:
            assert resource == "*" or resource.startswith(("arn:aws:", "${")), resource


def test_lake_policy_is_limited_to_the_zones() -> None:
    policy = _load(DEPLOY / "iam" / "lake-readwrite.json")
    bucket = "arn:aws:s3:::${LAKE_BUCKET}"
    for statement in policy["Statement"]:
        for resource in _as_list(statement["Resource"]):
            if resource == bucket:
                assert _as_list(statement["Action"]) == ["s3:ListBucket"]
                assert "Condition" in statement
            else:
                zone = resource.removeprefix(bucket + "/").removesuffix("/*")
                assert resource == f"{bucket}/{zone}/*" and zone in LAKE_ZONES, resource
        prefixes = statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
        if prefixes:
            assert sorted(_as_list(prefixes)) == sorted(f"{zone}/*" for zone in LAKE_ZONES)
    written = {
        r for s in policy["Statement"] if "s3:PutObject" in _as_list(s["Action"]) for r in _as_list(s["Resource"])
    }
    assert written == {f"{bucket}/{zone}/*" for zone in LAKE_ZONES}


def test_secrets_are_read_one_by_one() -> None:
    for path in _policies():
        for statement in _load(path)["Statement"]:
            if any(a.startswith("secretsmanager:") for a in _as_list(statement["Action"])):
                assert len(_as_list(statement["Resource"])) == 1 and statement["Resource"].endswith("_SECRET_ARN}")
                assert all(not _is_write(a) for a in _as_list(statement["Action"]))


def test_placeholders_are_documented() -> None:
    readme = (DEPLOY / "README.md").read_text()
    used = set()
    for path in [*_policies(), DEPLOY / "ecs" / "task-definitions.json"]:
        used |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", path.read_text()))
    assert used
    undocumented = sorted(name for name in used if f"${{{name}}}" not in readme)
    assert not undocumented


# -- No credentials ------------------------------------------------------------------------------------

_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)(?<![\w:.{$-])([A-Z0-9_]*(?:PASSWORD|PASSWD|SECRET_ACCESS_KEY|SESSION_TOKEN|AUTH_TOKEN|API_KEY)[A-Z0-9_]*)"
    r"[\"']?[ \t]*[:=][ \t]*[\"']?([^\"'\s,}]*)"
)
_URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:([^@\s/]+)@")
_SECRET_KEY_LIKE = re.compile(r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+=]*\d)(?=[A-Za-z0-9/+=]*[a-z])"
                              r"(?=[A-Za-z0-9/+=]*[A-Z])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])")


def _is_placeholder(value: str) -> bool:
    return value in ("", "null", "~") or value.startswith("${") or bool(re.fullmatch(r"<[^>]+>", value))


def credential_findings(text: str) -> list[str]:
    findings = [m.group(0) for m in _KEY_ID.finditer(text)]
    findings += [m.group(0) for m in _PRIVATE_KEY.finditer(text)]
    findings += [m.group(0) for m in _SECRET_KEY_LIKE.finditer(text)]
    findings += [m.group(0) for m in _SECRET_ASSIGNMENT.finditer(text) if not _is_placeholder(m.group(2))]
    findings += [m.group(0) for m in _URL_PASSWORD.finditer(text) if not _is_placeholder(m.group(1))]
    return findings


@pytest.mark.parametrize("path", _all_files(), ids=_rel)
def test_no_credentials(path: Path) -> None:
    assert credential_findings(path.read_text()) == []


@pytest.mark.parametrize(
    "text",
    [
        "aws_access_key_id = AKIAABCDEFGHIJKLMNOP",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "POSTGRES_PASSWORD: hunter2",
        '"DAGSTER_PG_PASSWORD": "hunter2"',
        "TRIBUTARY_SOURCE_DSN=postgresql://tributary:hunter2@db:5432/source",
    ],
)
def test_the_credential_scan_finds_planted_secrets(text: str) -> None:
    assert credential_findings(text)
