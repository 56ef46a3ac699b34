"""Section 5's task timer: a simulated day's time booked to named tasks (the engine's actors by name)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sim.scenario import load_scenario
from sim.world import WorldOptions, run_scenario
from tools.bench import simrun
from tools.bench.profile import TaskTimer


@pytest.mark.slow
def test_the_timer_books_a_day_to_the_engines_actors_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "day.toml"
    path.write_text(simrun.scenario_toml("day", 1, 1, seed=7), encoding="utf-8")
    scenario = load_scenario(path)
    logging.getLogger("ttlive").setLevel(logging.ERROR)
    timer = TaskTimer()
    timed = run_scenario(scenario, seed=7, out_dir=tmp_path / "timed", options=WorldOptions(instruments=(timer,)))
    plain = run_scenario(scenario, seed=7, out_dir=tmp_path / "plain")
    assert (timed.trace_sha256, timed.audit_sha256) == (plain.trace_sha256, plain.audit_sha256)  # an observer
    for actor in ("reconciler", "execution", "policy", "supervisor", "monitor"):
        assert timer.steps[f"engine actor `{actor}`"] > 0, actor
    assert timer.steps["engine actor `reconciler`"] >= 300  # a check every 60 s of a 6.5 h session
    assert any(label.startswith("trio-websocket reader task, engine (client)") for label in timer.steps)
    assert all(seconds >= 0 for seconds in timer.seconds.values())
