"""The shared registered-model fixture gives two distinct real versions with the aliases the stages read."""

from __future__ import annotations

from pipelines.ml import registry


def test_the_fixture_registers_a_champion_and_a_challenger(registered_delay_model) -> None:
    m = registered_delay_model
    assert m.champion != m.challenger
    assert registry.alias_version(m.settings, registry.CHAMPION) == m.champion
    assert registry.alias_version(m.settings, registry.CHALLENGER) == m.challenger
    assert m.holdout.height > 10_000 and set(m.inputs) <= set(m.holdout.columns)
