"""A recorded incident seeds the swarm: `ttlive swarm --incident FILE` runs worlds that are the incident plus
fault probabilities from the swarm's own stream (same seed => same world), judged by the invariants."""

from __future__ import annotations

import tomllib
from pathlib import Path

from sim.scenario import load_scenario
from sim.swarm import SwarmSpec, incident_world, run_swarm
from tools.runner import REPO_ROOT

INCIDENT = REPO_ROOT / "scenarios" / "regressions" / "paper_drill_capture_faults.toml"


def test_incident_worlds_are_the_incident_plus_seeded_faults() -> None:
    incident = tomllib.loads(INCIDENT.read_text())
    worlds = [incident_world(incident, seed) for seed in range(1, 30)]
    assert incident_world(incident, 7) == worlds[6]  # a pure function of the seed
    for world in worlds:
        assert world["market"] == incident["market"] and world["replay"] == incident["replay"]
        assert world["faults"]["events"] == incident["faults"]["events"]  # the incident's own faults, kept
    assert any(len(w["faults"]) > len(incident["faults"]) for w in worlds)  # and some worlds get more


def test_a_swarm_seeded_by_an_incident_runs_its_worlds(tmp_path: Path) -> None:
    summary = run_swarm(SwarmSpec(out=tmp_path, runs=2, workers=1, incident=INCIDENT, shrink=False))
    assert summary["runs"] == 2 and summary["failed"] == 0, summary["results"]
    assert "--incident" in summary["command"]
    assert all(result["fills"] >= 1 for result in summary["results"])  # the incident's trading, replayed
    for result in summary["results"]:
        assert load_scenario(result["world"]).market.source == "recorded"  # its data files beside it
