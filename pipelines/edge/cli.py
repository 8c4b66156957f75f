"""`tributary edge`: keys, publishing, the bundle server, the device agent, rollouts, status and the simulator."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from pipelines.core.errors import one_line_errors


def _errors() -> tuple[type[BaseException], ...]:
    """The edge stage's own errors; anything else is a bug and keeps its traceback."""
    from pipelines.edge.iot import IotError
    from pipelines.edge.jobs import RolloutConfigError
    from pipelines.edge.keys import KeysError
    from pipelines.edge.repository import RepositoryError
    from pipelines.edge.server import ServerError
    from pipelines.core.lake import LakeError
    from pipelines.ml.registry import RegistryError
    from pipelines.ml.tracking import MlflowUnavailable
    from pipelines.stream.transports import TransportError
    from resources import ProfileError

    return (KeysError, RepositoryError, RolloutConfigError, IotError, LakeError, RegistryError, MlflowUnavailable,
            TransportError, ProfileError, ServerError, ValueError, FileNotFoundError)


_guard = one_line_errors(_errors)


def _checked(option: str, path: str | None, *, folder: bool = False, must_exist: bool = True) -> None:
    """Check the path an option names here, not with click.Path(exists=True, file_okay=...): click reports a
    wrong path as a usage error ("Error: ...", exit 2); every other error of the CLI is one "error:" line, exit 1."""
    if path is None:
        return
    kind = "directory" if folder else "file"
    if Path(path).exists():
        if not (Path(path).is_dir() if folder else Path(path).is_file()):
            raise ValueError(f"{option} {path}: not a {kind}")
    elif must_exist:
        raise ValueError(f"{option} {path}: no such {kind}")


def _edge():
    from resources import current_profile
    from resources.edge import edge_resource

    return edge_resource(current_profile()).process_config_and_initialize()


def _lake():
    from resources import resolved

    return resolved("lake").get_lake()


def _repo():
    from pipelines.edge.repository import Repository

    return Repository(_lake(), _edge().repository_prefix)


@click.group()
def edge() -> None:
    """Edge bundles: signed model bundles rolled out to a device fleet that never bricks."""


@edge.command()
@click.option("--key-dir", type=click.Path(), help="Default: <TRIBUTARY_HOME>/edge/keys.")
@click.option("--force", is_flag=True, help="Replace existing keys (devices then need the new root).")
@_guard
def keygen(key_dir: str | None, force: bool) -> None:
    """Make ed25519 keys: three root keys (threshold 2), targets, snapshot, timestamp (0600 files)."""
    from pipelines.edge.keys import generate

    _checked("--key-dir", key_dir, folder=True, must_exist=False)
    folder = key_dir or _edge().key_dir
    for path in generate(folder, force=force):
        click.echo(f"wrote {path}")
    click.echo(f"keep {folder} out of version control; root keys may move offline once the repository exists")


@edge.command("rotate-keys")
@click.option("--key-dir", type=click.Path(), help="Default: <TRIBUTARY_HOME>/edge/keys.")
@click.option("--online/--no-online", default=True, show_default=True,
              help="Rotate the online keys (targets, snapshot, timestamp).")
@click.option("--root", "root_too", is_flag=True, help="Rotate the root keys too (signed by old and new).")
@click.option("--root-keys", type=click.IntRange(1, 16), help="How many root keys after --root (default: as now).")
@click.option("--root-threshold", type=click.IntRange(1, 16), help="Root signatures required after --root.")
@_guard
def rotate_keys(key_dir: str | None, online: bool, root_too: bool, root_keys: int | None,
                root_threshold: int | None) -> None:
    """New signing keys, announced by a new root version that devices reach through TUF's root chain."""
    from pipelines.edge.rotation import rotate_keys as rotate

    _checked("--key-dir", key_dir, folder=True)
    if (root_keys or root_threshold) and not root_too:
        raise ValueError("--root-keys and --root-threshold change the root: add --root")
    done = rotate(_repo(), key_dir or _edge().key_dir, online=online, root=root_too, root_keys=root_keys,
                  root_threshold=root_threshold)
    click.echo(f"{'finished' if done.resumed else 'published'} root v{done.root_version}: new "
               f"{', '.join(done.rotated)}; root {done.root_threshold} of {done.root_keys} keys. Devices trust it "
               f"once they fetch {done.root_version}.root.json (signed by the old root and the new).")


@edge.command("keep-fresh")
@_guard
def keep_fresh() -> None:
    """Re-sign the timestamp (and snapshot, targets) before they expire: what the edge_keep_fresh schedule runs."""
    from pipelines.edge.keys import load

    done = _repo().keep_fresh(load(_edge().key_dir))
    click.echo("re-signed " + ", ".join(f"{role} v{v}" for role, v in done.items()) if done
               else "nothing to re-sign: every role has more than its margin left")


@edge.command()
@click.option("--version", "version_or_alias", default="champion", show_default=True,
              help="A registered version or alias.")
@click.option("--bad-release", is_flag=True, help="Publish a drill bundle whose self-test fails.")
@_guard
def publish(version_or_alias: str, bad_release: bool) -> None:
    """Build the bundle of a registered version and publish it into the TUF repository (idempotent)."""
    from pipelines.edge.release import publish_model
    from pipelines.ml.cli import _settings

    lake, settings = _lake(), _edge()
    release, new = publish_model(lake, _settings(), settings.key_dir, version_or_alias=version_or_alias,
                                 bad=bad_release, prefix=settings.repository_prefix, log=click.echo)
    if not new:
        click.echo(f"nothing to do: {release.path} is release {release.release}")
        return
    from assets.edge import BUNDLE_KEY, bundle_metadata

    _record("tributary edge publish", [(BUNDLE_KEY, bundle_metadata(lake, release, settings.repository_prefix))])


def _record(command: str, written: list, observed: list = ()) -> None:
    """Materializations of what the command wrote (observations of what it only looked at) in the Dagster
    instance, with the metadata the assets' runs report, so the UI shows it."""
    from assets.recorded import materialization, observation, record

    events = [materialization(key, metadata, command) for key, metadata in written]
    events += [observation(key, metadata, command) for key, metadata in observed]
    # On stderr: stdout stays the command's own output (simulate's is JSON for a pipe).
    record(command, events, echo=lambda line: click.echo(line, err=True), warn=lambda line: click.echo(line, err=True))


@edge.command("serve-repo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8750, show_default=True)
@click.option("--root", type=click.Path(), help="A repository folder. Default: the local lake's repository.")
@_guard
def serve_repo(host: str, port: int, root: str | None) -> None:
    """Serve the TUF repository over HTTP with byte ranges (devices resume downloads)."""
    from pipelines.edge.server import BundleServer

    _checked("--root", root, folder=True)
    if root is None:
        lake = _lake()
        if lake.scheme != "file":
            raise ValueError("serve-repo serves a local lake; on S3 devices fetch from the bucket or CloudFront")
        root = lake.uri(_edge().repository_prefix)
    with BundleServer(root, host=host, port=port) as server:
        click.echo(f"serving {root} at {server.url} (Ctrl-C to stop)")
        try:
            while server.thread.is_alive():
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass


@edge.command()
@click.option("--device-id", required=True)
@click.option("--state-dir", required=True, type=click.Path())
@click.option("--repo-url", help="Default: the edge resource's repository URL.")
@click.option("--root-json", type=click.Path(),
              help="The trusted root to provision a new device with. Default: the lake repository's root.json.")
@click.option("--quota-bytes", type=int, help="Storage available for bundles (simulates a small flash).")
@click.option("--hold-at", hidden=True, help="Tests: park the process after persisting this step.")
@_guard
def agent(device_id: str, state_dir: str, repo_url: str | None, root_json: str | None, quota_bytes: int | None,
          hold_at: str | None) -> None:
    """Run a device: recover an interrupted install, then carry out IoT jobs received over MQTT."""
    from pipelines.edge.agent import DeviceAgent, FileStorage
    from pipelines.edge.jobs import run_device

    _checked("--state-dir", state_dir, folder=True, must_exist=False)
    _checked("--root-json", root_json)
    settings = _edge()
    storage = FileStorage(state_dir, quota_bytes=quota_bytes)

    def hook(step: str) -> None:
        if hold_at and step == hold_at:
            Path(state_dir, f"held-{step}").touch()
            click.echo(f"{device_id}: holding at {step}", err=True)
            while True:
                time.sleep(3600)

    device = DeviceAgent(device_id, storage, repo_url or settings.repository_url, hook=hook)
    root = Path(root_json).read_bytes() if root_json else None
    if not Path(storage.metadata_dir, "root.json").exists():
        device.provision(root if root is not None else _repo().root_bytes())
    click.echo(f"{device_id}: running v{device.version or '-'} from {state_dir}", err=True)
    run_device(device, host=settings.mqtt_host, port=settings.mqtt_port, prefix=settings.topic_prefix,
               log=lambda line: click.echo(line, err=True))


@edge.command()
@click.option("--things", help="Comma-separated thing names. Default: the edge resource's fleet.")
@click.option("--config", "config_path", type=click.Path(),
              help="Rollout JSON (CreateJob shape + cohorts).")
@click.option("--timeout", type=float, default=600.0, show_default=True)
@_guard
def rollout(things: str | None, config_path: str | None, timeout: float) -> None:
    """Roll the newest release out to the local fleet over MQTT (aborts and rolls back by itself)."""
    from pipelines.edge import status as device_status
    from pipelines.edge.jobs import RolloutConfig
    from pipelines.edge.release import plan_campaign, run_local_rollout

    _checked("--config", config_path)
    settings = _edge()
    names = [t for t in (things.split(",") if things else settings.things()) if t]
    if not names:
        raise ValueError("no devices: pass --things or set TRIBUTARY_EDGE_FLEET")
    config = RolloutConfig.from_json(json.loads(Path(config_path).read_text())) if config_path else settings.rollout()
    lake = _lake()
    campaign = plan_campaign(_repo(), names, config)

    def progress(c) -> None:
        click.echo(f"\r{device_status.bar(c.rollout.terminal(), len(c.rollout.executions))} {c.rollout.status}",
                   nl=False, err=True)

    run_local_rollout(lake, campaign, host=settings.mqtt_host, port=settings.mqtt_port, prefix=settings.topic_prefix,
                      timeout=timeout, progress=progress)
    click.echo("", err=True)
    for line in device_status.render(device_status.summary(device_status.read(lake), campaign.rollout.job_id)):
        click.echo(line)
    from assets.edge import ROLLOUT_KEY, STATUS_KEY, local_rollout_metadata

    rollout_metadata, status_metadata = local_rollout_metadata(lake, campaign, config)
    _record("tributary edge rollout", [(ROLLOUT_KEY, rollout_metadata), (STATUS_KEY, status_metadata)])


@edge.command()
@click.option("--job", "job_id", help="Default: the newest rollout.")
@click.option("--watch", is_flag=True, help="Refresh every two seconds until the rollout ends.")
@_guard
def status(job_id: str | None, watch: bool) -> None:
    """Device counts per state and model version, with a progress bar while a rollout runs."""
    from pipelines.edge import status as device_status

    lake = _lake()
    while True:
        summary = device_status.summary(device_status.read(lake), job_id)
        lines = device_status.render(summary)
        click.echo("\n".join(lines))
        if not watch or summary["rollout_status"] not in ("IN_PROGRESS",):
            return
        time.sleep(2)
        click.echo("\x1b[2J\x1b[H", nl=False)


@edge.command()
@click.option("--devices", type=click.IntRange(1, 1_000_000), default=1000, show_default=True)
@click.option("--faults", type=click.FloatRange(0, 1), default=0.1, show_default=True,
              help="Share of devices hit by a fault.")
@click.option("--bad-release", is_flag=True, help="Roll out the newest bad-release drill bundle instead.")
@click.option("--workers", type=click.IntRange(1, 64), default=8, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@_guard
def simulate(devices: int, faults: float, bad_release: bool, workers: int, seed: int) -> None:
    """Simulate a fleet on the previous release taking the newest one, with faults; print the figures."""
    from pipelines.synthetic.fleet import simulate as run

    repo = _repo()
    if repo.lake.scheme != "file":
        raise ValueError("the simulator serves the repository from a local lake folder")
    good = [r for r in repo.releases() if not r.bad]
    bad = [r for r in repo.releases() if r.bad]
    if bad_release and not bad:
        raise ValueError("no bad-release drill published: run `tributary edge publish --bad-release` first")
    target = bad[-1] if bad_release else (good[-1] if good else None)
    factory = [r for r in good if target and r.release < target.release]
    if target is None or not factory:
        raise ValueError("the simulator needs two releases: the fleet's current one and a newer one to roll out")
    factory_bytes = repo.lake.read_bytes(repo.rel("targets", f"{factory[-1].sha256}.{factory[-1].path}"))
    result = run(repo.lake.uri(repo.prefix), root_json=repo.root_bytes(), factory=(factory[-1], factory_bytes),
                 target=target, devices=devices, faults=faults, workers=workers, seed=seed,
                 progress=lambda line: click.echo(line, err=True))
    click.echo(json.dumps(result.figures, indent=2))
    from dagster import MetadataValue

    from assets.edge import ROLLOUT_KEY

    # In memory: nothing in the lake changed (edge/device_status included), so an observation, not a materialization.
    _record("tributary edge simulate", [], [(ROLLOUT_KEY, {
        "simulated": True, "target": target.path, "from": factory[-1].path, "devices": devices, "faults": faults,
        "seed": seed, "status": result.campaign.rollout.status, "figures": MetadataValue.json(result.figures)})])


if __name__ == "__main__":
    sys.exit(edge())
