"""The endpoint config: which registry versions serve as which named variants, with which weights.

No Dagster. One JSON document, published atomically (written aside, then `os.replace`) where the running
service watches it; the service loads any new model before it switches, so a publish never fails a request.
The same document is what the `aws` profile turns into a SageMaker endpoint config.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from pipelines.ml.registry import CHALLENGER, CHAMPION, alias_version

DEFAULT_ENDPOINT = "tributary-delay"
INFERENCE_ID_HEADER = "x-amzn-sagemaker-inference-id"


class ConfigError(ValueError):
    """An endpoint config that cannot be served; the message says what to fix."""


@dataclass(frozen=True)
class Variant:
    """A production variant: a named registry version with a routing weight (relative, as SageMaker's)."""

    name: str
    model_version: str
    weight: float
    model_dir: str = ""


@dataclass(frozen=True)
class Shadow:
    """A variant that receives a copy of `sample_share` of the traffic; its answers are logged, never returned."""

    name: str
    model_version: str
    sample_share: float
    model_dir: str = ""


@dataclass(frozen=True)
class EndpointConfig:
    name: str
    variants: tuple[Variant, ...]
    shadow: Shadow | None = None
    sticky_header: str = INFERENCE_ID_HEADER
    published_at: str = field(default="")
    generation: str = field(default="")

    def __post_init__(self) -> None:
        validate(self)

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["variants"] = [asdict(v) for v in self.variants]
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "EndpointConfig":
        try:
            variants = tuple(Variant(name=str(v["name"]), model_version=str(v["model_version"]),
                                     weight=float(v["weight"]), model_dir=str(v.get("model_dir", "")))
                             for v in doc["variants"])
            shadow_doc = doc.get("shadow")
            shadow = None if not shadow_doc else Shadow(
                name=str(shadow_doc["name"]), model_version=str(shadow_doc["model_version"]),
                sample_share=float(shadow_doc["sample_share"]), model_dir=str(shadow_doc.get("model_dir", "")))
            return cls(name=str(doc.get("name", DEFAULT_ENDPOINT)), variants=variants, shadow=shadow,
                       sticky_header=str(doc.get("sticky_header") or INFERENCE_ID_HEADER).lower(),
                       published_at=str(doc.get("published_at", "")), generation=str(doc.get("generation", "")))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"malformed endpoint config: {exc!r}") from None


def validate(config: EndpointConfig) -> None:
    if not config.variants:
        raise ConfigError(f"endpoint {config.name} needs at least one production variant")
    names = [v.name for v in config.variants] + ([config.shadow.name] if config.shadow else [])
    if len(set(names)) != len(names):
        raise ConfigError(f"variant names must be unique: {', '.join(names)}")
    for v in config.variants:
        if not v.name or not v.name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"variant name {v.name!r} must be letters, digits, '-' or '_'")
        if not v.weight >= 0:
            raise ConfigError(f"variant {v.name} has weight {v.weight}: weights cannot be negative")
    if sum(v.weight for v in config.variants) <= 0:
        raise ConfigError(f"endpoint {config.name}: the variant weights add up to 0; give one a positive weight")
    if config.shadow and not 0 < config.shadow.sample_share <= 1:
        raise ConfigError(f"shadow sample share {config.shadow.sample_share} must be in (0, 1]")


def parse_weights(pairs: list[str]) -> dict[str, float]:
    """`["champion=0.9", "challenger=0.1"]` -> {"champion": 0.9, "challenger": 0.1}."""
    weights: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if not sep or not name.strip() or not weight >= 0:
            raise ConfigError(f"bad weight {pair!r}: use VARIANT=WEIGHT with a weight >= 0, e.g. champion=0.9")
        weights[name.strip()] = weight
    if not weights:
        raise ConfigError("give at least one VARIANT=WEIGHT, e.g. champion=0.9 challenger=0.1")
    return weights


def reweighted(config: EndpointConfig, weights: Mapping[str, float]) -> EndpointConfig:
    """The same variants with new weights; naming a variant the endpoint lacks is an error (nothing changes)."""
    unknown = [n for n in weights if config.variant(n) is None]
    if unknown:
        raise ConfigError(f"endpoint {config.name} has no variant {', '.join(unknown)} "
                          f"(it has {', '.join(v.name for v in config.variants)})")
    variants = tuple(replace(v, weight=float(weights.get(v.name, v.weight))) for v in config.variants)
    return replace(config, variants=variants)


def same_models(a: EndpointConfig | None, b: EndpointConfig) -> bool:
    """True when only weights differ: a re-weight, not a redeploy."""
    if a is None:
        return False
    key = lambda c: ({v.name: v.model_version for v in c.variants},  # noqa: E731
                     (c.shadow.name, c.shadow.model_version) if c.shadow else None)
    return key(a) == key(b)


def load(path: str | Path) -> EndpointConfig | None:
    """The published config, or None when nothing is published yet."""
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the endpoint config {path}: {exc}") from None
    return EndpointConfig.from_json(doc)


def publish(path: str | Path, config: EndpointConfig) -> EndpointConfig:
    """Write the config so a reader sees the old one or the new one, never a part; return it as published."""
    stamped = replace(config, published_at=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                      generation=uuid.uuid4().hex[:12])
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    with os.fdopen(fd, "w") as out:
        json.dump(stamped.to_json(), out, indent=2, sort_keys=True)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, target)
    return stamped


def model_dir(models_root: str | Path, version: str) -> Path:
    return Path(models_root) / f"v{version}"


def prepare_models(
    versions: list[str], models_root: str | Path, fetch: Callable[[str, Path], tuple[Path, Path]],
    *, log: Callable[[str], None] = lambda _: None,
) -> dict[str, Path]:
    """Each version's spec.json + booster.ubj in `models_root/v<version>/`, fetched once (a folder appears whole).

    `fetch(version, tmp)` returns the (spec, booster) files it downloaded into `tmp`.
    """
    out: dict[str, Path] = {}
    for version in dict.fromkeys(versions):
        target = model_dir(models_root, version)
        if not (target / "spec.json").is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".v{version}-", dir=target.parent))
            try:
                log(f"fetching model v{version} into {target}")
                spec, booster = fetch(version, staging / "download")
                (staging / "model").mkdir()
                shutil.copyfile(spec, staging / "model" / "spec.json")
                shutil.copyfile(booster, staging / "model" / f"booster{booster.suffix}")
                try:
                    os.replace(staging / "model", target)
                except OSError:
                    if not (target / "spec.json").is_file():  # not another publisher winning the race
                        raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        out[version] = target
    return out


def registry_fetch(settings) -> Callable[[str, Path], tuple[Path, Path]]:
    """A `fetch` for `prepare_models` that reads a version from the MLflow registry (pipelines.ml.artifacts)."""

    def fetch(version: str, dest: Path) -> tuple[Path, Path]:
        from pipelines.ml.artifacts import download  # noqa: PLC0415 - start-up: pulls in mlflow ~3.6 s

        files = download(settings, version, dest)
        return files.spec_path, files.booster_path

    return fetch


def from_registry(
    settings, *, endpoint: str, models_root: str | Path, champion_weight: float, challenger_weight: float,
    shadow_share: float = 0.0, shadow_alias: str = "challenger", sticky_header: str = INFERENCE_ID_HEADER,
    log: Callable[[str], None] = lambda _: None,
) -> EndpointConfig:
    """The config the aliases describe: `champion` (and `challenger` when it names another version).

    With `shadow_share` > 0 the challenger runs as a shadow instead of a weighted variant (it sees a copy
    of that share of traffic and answers no one).
    """

    champion = alias_version(settings, CHAMPION)
    if champion is None:
        raise ConfigError(f"model {settings.model_name} has no champion yet: evaluate and promote a version first")
    challenger = alias_version(settings, CHALLENGER)
    if challenger == champion:
        challenger = None
    dirs = prepare_models([champion] + ([challenger] if challenger else []), models_root,
                          registry_fetch(settings), log=log)
    variants = [Variant(CHAMPION, champion, champion_weight, str(dirs[champion]))]
    shadow = None
    if challenger and shadow_share > 0 and shadow_alias == CHALLENGER:
        shadow = Shadow(f"{CHALLENGER}-shadow", challenger, shadow_share, str(dirs[challenger]))
    elif challenger and challenger_weight > 0:
        variants.append(Variant(CHALLENGER, challenger, challenger_weight, str(dirs[challenger])))
    if len(variants) == 1:
        variants[0] = replace(variants[0], weight=1.0)
    return EndpointConfig(name=endpoint, variants=tuple(variants), shadow=shadow, sticky_header=sticky_header.lower())
