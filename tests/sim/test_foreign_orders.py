"""Orders the account's owner places outside ttlive: left alone by default, cancelled with foreign_orders = cancel."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from sim.scenario import load_scenario
from sim.world import World, WorldOptions, run_world

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "foreign_orders.toml"


def _run(tmp_path: Path, policy: str) -> tuple[World, list[str]]:
    scenario = load_scenario(SCENARIO)
    reconcile = msgspec.structs.replace(scenario.reconcile, foreign_orders=policy)
    world = World(msgspec.structs.replace(scenario, reconcile=reconcile), 1, tmp_path, WorldOptions())
    report = run_world(world)
    assert report.ok and not report.halted, report.invariant_violations + report.expectation_failures
    statuses = [o.status for o in world.venue.book.orders() if o.client_order_id.startswith("desk-")]
    return world, statuses


@pytest.mark.parametrize(("policy", "expected"), [("ignore", {"new"}), ("cancel", {"canceled"})])
def test_foreign_orders_are_left_alone_or_cancelled_as_configured(tmp_path: Path, policy: str,
                                                                  expected: set[str]) -> None:
    _world, statuses = _run(tmp_path, policy)
    assert len(statuses) == 2 and set(statuses) == expected, statuses
    health = (tmp_path / "audit").rglob("health/*.jsonl")
    text = "".join(p.read_text() for p in health)
    assert '"event":"foreign_orders"' in text
    assert ('"event":"foreign_order_cancelled"' in text) is (policy == "cancel")
