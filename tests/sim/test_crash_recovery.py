"""Crash recovery: the runner is killed at seeded random moments mid-session and restarted from its persisted
state plus the venue. No client order id is used twice at the venue, no fill is lost or double-counted, and the
engine's positions converge to the venue's."""

from __future__ import annotations

import random
from pathlib import Path

import msgspec
import pytest

from sim.scenario import load_scenario
from sim.world import run_scenario

ROOT = Path(__file__).resolve().parents[2]


def crash_times(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    seconds = sorted(rng.sample(range(10 * 3600 + 60, 15 * 3600 + 50 * 60), n))  # 10:01 .. 15:50 ET
    return [f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}" for s in seconds]


@pytest.mark.parametrize("seed", [101, 202])
def test_random_hard_kills_lose_nothing_and_duplicate_nothing(tmp_path: Path, seed: int) -> None:
    base = load_scenario(ROOT / "scenarios" / "dropped_updates.toml")  # crashes on top of message loss
    events = [{"at": at, "kind": "client_crash", "duration_s": 1 + seed % 7} for at in crash_times(seed, 3)]
    scenario = msgspec.structs.replace(base, faults={**base.faults, "events": events})
    report = run_scenario(scenario, seed=seed, out_dir=tmp_path)
    assert report.crashes == 3
    assert report.invariant_violations == []
    assert report.duplicate_client_order_ids == 0
    assert report.positions == report.venue_positions
    assert report.fills >= 1
    assert report.counters["fills"] == report.fills
