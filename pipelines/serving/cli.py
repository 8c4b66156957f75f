"""`tributary serve`: run the endpoint; `serve weights` re-weights it; `serve status` shows what it serves;
`serve example` prints a real request built from the lake."""

from __future__ import annotations

import json
import os

import click

from pipelines.core.errors import Failure, one_line_errors


def _errors() -> tuple[type[BaseException], ...]:
    """The project's own errors; anything else is a bug and keeps its traceback."""
    from pipelines.core.lake import LakeError
    from pipelines.ml.data import MissingTableError
    from pipelines.ml.registry import RegistryError
    from pipelines.ml.tracking import MlflowUnavailable
    from pipelines.serving.model import ModelLoadError
    from pipelines.serving.sagemaker import SageMakerError

    return (ValueError, RegistryError, MlflowUnavailable, ModelLoadError, SageMakerError, OSError, MissingTableError,
            LakeError)


_guard = one_line_errors(_errors)


def _resource():
    from resources import current_profile
    from resources.serving import serving_resource

    return serving_resource(current_profile()).process_config_and_initialize()


@click.group(invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=lambda: os.cpu_count() or 1,
              help="Worker processes (default: one per core).")
@click.option("--config", "config_path", help="Endpoint config to watch. Default: the profile's (serving resource).")
@click.option("--model-dir", type=click.Path(file_okay=False),
              help="Serve this model folder (spec.json + booster) as variant AllTraffic until a config is published "
                   "(the SageMaker container passes /opt/ml/model).")
@click.option("--spool", "spool_dir", help="Invocation log spool folder. Default: the profile's.")
@click.option("--state", "state_dir", help="Folder for sticky assignments and metrics files. Default: the profile's.")
@click.option("--no-log", is_flag=True, help="Do not spool the invocation log.")
@click.option("--access-log", is_flag=True, help="Log every request (slow; for debugging).")
@click.pass_context
@_guard
def serve(ctx: click.Context, host: str, port: int, workers: int, config_path: str | None, model_dir: str | None,
          spool_dir: str | None, state_dir: str | None, no_log: bool, access_log: bool) -> None:
    """The delay-model endpoint (SageMaker container contract): /ping, /invocations, /metrics."""
    if ctx.invoked_subcommand is not None:
        return
    from pipelines.serving.server import ServeOptions, serve as run_server
    from resources.serving_workers import FACTORY, endpoint_name, settings, worker_environment

    # Given every folder (the container's `serve` does), the profile's resource (and Dagster) is not needed.
    complete = config_path and state_dir and (spool_dir or no_log)
    resource = None if complete else _resource()
    if resource is not None and not config_path and not model_dir and resource.mode == "local" \
            and resource.current() is None:
        _publish_from_registry(resource)
    config_path = config_path or resource.config_path
    click.echo(f"serving on http://{host}:{port} with {workers} worker(s); config {config_path}"
               f"{f', model {model_dir}' if model_dir else ''}")
    options = ServeOptions(
        host=host, port=port, workers=workers, config_path=config_path, model_dir=model_dir,
        endpoint=endpoint_name() if resource is None else resource.endpoint_name,
        state_dir=state_dir or resource.state_dir,
        spool_dir=None if no_log else (spool_dir or resource.spool_dir), access_log=access_log)
    run_server(options, factory=FACTORY, environment=worker_environment(options),
               keepalive_seconds=settings().keepalive_seconds)


def _publish_from_registry(resource) -> None:
    """No endpoint config yet (after `make demo`, nothing has materialized serving/delay_endpoint): build it from
    the registry's aliases as that asset does, with its default weights, and say so."""
    from assets.serving import DelayEndpointConfig  # the asset's defaults, not a copy of them
    from pipelines.serving.config import from_registry
    from resources import resolved

    settings = resolved("mlflow").settings()
    defaults = DelayEndpointConfig()
    click.echo(f"no endpoint config at {resource.config_path} (serving/delay_endpoint has not run): building it "
               f"from the registry's aliases of {settings.model_name}, as that asset would")
    endpoint = from_registry(settings, endpoint=resource.endpoint_name, models_root=resource.models_dir,
                             champion_weight=defaults.champion_weight, challenger_weight=defaults.challenger_weight,
                             shadow_share=defaults.shadow_share, sticky_header=resource.sticky_header, log=click.echo)
    resource.apply(endpoint, log=click.echo)
    click.echo("published: " + ", ".join(f"{v.name}=v{v.model_version}@{v.weight:g}" for v in endpoint.variants))


@serve.command()
@click.argument("pairs", nargs=-1, required=True, metavar="VARIANT=WEIGHT...")
@_guard
def weights(pairs: tuple[str, ...]) -> None:
    """Re-weight the running endpoint's variants, e.g. `champion=0.9 challenger=0.1` (no reload, no redeploy)."""
    from pipelines.serving.config import parse_weights

    result = _resource().reweight(parse_weights(list(pairs)), log=click.echo)
    click.echo(f"{result['mode']}: " + ", ".join(f"{k}={v:g}" for k, v in result["weights"].items()))


@serve.command()
@_guard
def status() -> None:
    """The endpoint config the service serves (local), as JSON."""
    from resources.profiles import current_profile
    from resources.serving_settings import config_path, serving_mode

    if serving_mode(current_profile()) == "local":  # a file to read: no resource, no Dagster (fast start)
        from pipelines.serving.config import load

        path, current = config_path(), load(config_path())
    else:
        resource = _resource()
        path, current = resource.config_path, resource.current()
    if current is None:
        raise Failure(f"no endpoint config at {path}: `tributary serve` builds it from the registry's aliases, "
                      "or materialize serving/delay_endpoint")
    click.echo(json.dumps(current.to_json(), indent=2, sort_keys=True))


@serve.command()
@click.option("--rows", type=click.IntRange(1, 100), default=1, show_default=True, help="Flights in the request.")
@click.option("--csv", "as_csv", is_flag=True, help="A text/csv body (with its header line) instead of JSON.")
@click.option("--body", "body_only", is_flag=True, help="Print only the body (e.g. `| curl --data-binary @- ...`).")
@click.option("--url", default="http://127.0.0.1:8080", show_default=True, help="The endpoint in the curl line.")
@click.option("--flights", "by_flight", is_flag=True,
              help="Only the flight-key request ({\"flights\": [...]}, the endpoint builds the features).")
@_guard
def example(rows: int, as_csv: bool, body_only: bool, url: str, by_flight: bool) -> None:
    """A real request, from the latest flights of ml/delay_features: a curl line (or its body) to paste, then the
    same flights by flight key (the endpoint builds their features from serving/online_features)."""
    from pipelines.serving.example import (csv_body, curl_command, example_flights, example_rows, flights_body,
                                           json_body, served_features)
    from resources import resolved

    if by_flight and as_csv:
        raise click.UsageError("a flight-key request is JSON: drop --csv")
    lake = resolved("lake").get_lake()
    keyed = flights_body(example_flights(lake, rows))
    if by_flight:
        click.echo(keyed if body_only else curl_command(keyed, "application/json", url))
        return
    frame = example_rows(lake, served_features(_resource().current()), rows)
    body, content_type = (csv_body(frame), "text/csv") if as_csv else (json_body(frame), "application/json")
    if body_only:
        click.echo(body.rstrip("\n"))
        return
    click.echo(curl_command(body, content_type, url))
    click.echo("# the same flight(s) by flight key (features built by the endpoint from serving/online_features):")
    click.echo(curl_command(keyed, "application/json", url))


if __name__ == "__main__":
    serve()
