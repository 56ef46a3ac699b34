"""Proof the harness can fail: an engine whose retries use a fresh client order id is caught."""

from __future__ import annotations

from pathlib import Path

import msgspec

from sim.scenario import load_scenario
from sim.world import WorldOptions, run_scenario

ROOT = Path(__file__).resolve().parents[2]


def test_switching_off_idempotent_retries_is_caught(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "scenarios" / "ambiguous_submits.toml")
    # Without bracket legs: a duplicate of a bracket entry is refused by the venue's own wash-trade rule (its
    # first copy's legs rest on the other side), which would hide the bug in some seeds. Plain orders are not.
    scenario = msgspec.structs.replace(
        scenario, execution=msgspec.structs.replace(scenario.execution, brackets=False)
    )
    report = run_scenario(scenario, out_dir=tmp_path, options=WorldOptions(break_idempotency=True))
    duplicates = [v for v in report.invariant_violations if "duplicate submission" in v]
    assert duplicates, report.invariant_violations
    assert not report.ok
    assert report.replay_command.startswith("ttlive sim ")


def test_the_same_scenario_passes_with_the_real_engine(tmp_path: Path) -> None:
    """The control: the failure above is the broken retries', not the scenario's."""
    scenario = load_scenario(ROOT / "scenarios" / "ambiguous_submits.toml")
    scenario = msgspec.structs.replace(
        scenario, execution=msgspec.structs.replace(scenario.execution, brackets=False)
    )
    report = run_scenario(scenario, out_dir=tmp_path)
    assert report.invariant_violations == [] and report.ok, report.expectation_failures
