"""Every shipped scenario at two seeds: invariants and expectations hold; same seed => same bytes elsewhere."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sim.conftest import OWN_SEED, REGRESSIONS, SCENARIOS, SEEDS

NAMES = [p.stem for p in SCENARIOS]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", NAMES)
def test_scenario_holds_invariants_and_expectations(
    scenario_reports: dict[tuple[str, int], dict[str, Any]], name: str, seed: int
) -> None:
    report = scenario_reports[(name, seed)]
    assert report["invariant_violations"] == [], report["replay_command"]
    assert report["expectation_failures"] == [], report["replay_command"]
    assert report["duplicate_client_order_ids"] == 0
    assert report["positions"] == report["venue_positions"]


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_is_byte_identical_in_another_process(
    scenario_reports: dict[tuple[str, int], dict[str, Any]], name: str
) -> None:
    first, again = scenario_reports[(name, SEEDS[0])], scenario_reports[(name, -SEEDS[0])]
    assert first["audit_sha256"] == again["audit_sha256"]
    assert first["trace_sha256"] == again["trace_sha256"]


def test_seeds_change_the_world(scenario_reports: dict[tuple[str, int], dict[str, Any]]) -> None:
    """The seed must matter: otherwise a sweep proves nothing."""
    differing = [
        n for n in NAMES if scenario_reports[(n, 1)]["trace_sha256"] != scenario_reports[(n, 2)]["trace_sha256"]
    ]
    assert differing, "no scenario's trace depends on its seed"


@pytest.mark.parametrize("name", [p.stem for p in REGRESSIONS])
def test_regression_holds_at_the_seed_that_failed(
    scenario_reports: dict[tuple[str, int], dict[str, Any]], name: str
) -> None:
    """scenarios/regressions/: each file's own seed is the world that found the bug."""
    report = scenario_reports[(name, OWN_SEED)]
    assert report["invariant_violations"] == [] and report["expectation_failures"] == [], report["replay_command"]
