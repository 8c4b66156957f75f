"""Routing without a server: weighted draws, pins, and sticky ids shared by two 'workers' across a re-weight."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from pipelines.serving.config import ConfigError, EndpointConfig, Variant, parse_weights, reweighted
from pipelines.serving.routing import Router, StickyStore, UnknownVariant, Weights


def test_draws_follow_the_weights() -> None:
    random.seed(3)
    weights = Weights(["a", "b", "c"], [0.6, 0.3, 0.1])
    n = 20_000
    counts = {name: 0 for name in "abc"}
    for _ in range(n):
        counts[weights.draw()] += 1
    for name, p in (("a", 0.6), ("b", 0.3), ("c", 0.1)):
        assert abs(counts[name] / n - p) < 4 * math.sqrt(p * (1 - p) / n)
    assert Weights(["a", "b"], [1.0, 0.0]).draw() == "a"


def test_pins_and_unknown_variants() -> None:
    router = Router(["champion", "challenger"], [0.9, 0.1], sticky_header="x-user", store=None)
    assert router.pick({"x-amzn-sagemaker-target-variant": "challenger"}) == "challenger"
    with pytest.raises(UnknownVariant, match="unknown target variant 'shadow': this endpoint has champion, challenger"):
        router.pick({"x-amzn-sagemaker-target-variant": "shadow"})


def test_sticky_ids_agree_across_workers_and_survive_a_reweight(tmp_path: Path) -> None:
    path = tmp_path / "sticky.db"
    one, two = StickyStore(path), StickyStore(path)
    before = Router(["champion", "challenger"], [0.5, 0.5], sticky_header="x-user", store=one)
    other = Router(["champion", "challenger"], [0.5, 0.5], sticky_header="x-user", store=two)
    ids = [f"user-{i}" for i in range(400)]
    first = {i: before.pick({"x-user": i}) for i in ids}
    assert set(first.values()) == {"champion", "challenger"}
    assert {i: other.pick({"x-user": i}) for i in ids} == first  # the other worker sees the same assignment

    after = Router(["champion", "challenger"], [0.05, 0.95], sticky_header="x-user", store=StickyStore(path))
    assert {i: after.pick({"x-user": i}) for i in ids} == first
    assert {i: after.pick({"x-amzn-sagemaker-inference-id": i}) for i in ids} == first  # the SageMaker header too

    # A variant that leaves (or drains to 0) hands its ids to the live ones; the others stay put.
    drained = Router(["champion", "challenger"], [1.0, 0.0], sticky_header="x-user", store=two)
    moved = {i: drained.pick({"x-user": i}) for i in ids}
    assert set(moved.values()) == {"champion"}
    assert all(moved[i] == "champion" for i in ids if first[i] == "champion")


def test_weights_by_hand() -> None:
    config = EndpointConfig(name="e", variants=(Variant("champion", "1", 0.9), Variant("challenger", "2", 0.1)))
    assert parse_weights(["champion=0.5", "challenger=0.5"]) == {"champion": 0.5, "challenger": 0.5}
    assert [v.weight for v in reweighted(config, {"challenger": 0.3}).variants] == [0.9, 0.3]
    for bad in (["champion"], ["champion=-1"], ["=1"], ["champion=x"]):
        with pytest.raises(ConfigError, match="VARIANT=WEIGHT"):
            parse_weights(bad)
    with pytest.raises(ConfigError, match="has no variant nope"):
        reweighted(config, {"nope": 1.0})
    with pytest.raises(ConfigError, match="add up to 0"):
        reweighted(config, {"champion": 0, "challenger": 0})
