"""Proof the harness can fail: an engine whose retries use a fresh client order id is caught."""

from __future__ import annotations

from pathlib import Path

from sim.scenario import load_scenario
from sim.world import WorldOptions, run_scenario

ROOT = Path(__file__).resolve().parents[2]


def test_switching_off_idempotent_retries_is_caught(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "scenarios" / "ambiguous_submits.toml")
    report = run_scenario(scenario, out_dir=tmp_path, options=WorldOptions(break_idempotency=True))
    duplicates = [v for v in report.invariant_violations if "duplicate submission" in v]
    assert duplicates, report.invariant_violations
    assert not report.ok
    assert report.replay_command.startswith("ttlive sim ")
