"""Issue 20 acceptance worlds, inspected beyond their [expect]: fractional shares through the whole engine
(exact, reconciled), and trailing stops as the protective exit firing on the generator's flash crash."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

from sim.scenario import load_scenario
from sim.world import World, WorldOptions, run_world
from tests.sim.conftest import ROOT

SCENARIOS = ROOT / "scenarios"


def _audit(world: World, stream: str) -> list[dict[str, object]]:
    return [json.loads(line) for path in sorted((world.audit_dir / stream).glob("*.jsonl"))
            for line in path.read_text().splitlines()]


def test_fractional_world_trades_books_and_reconciles_exact_fractions(tmp_path: Path) -> None:
    world = World(load_scenario(SCENARIOS / "fractional_shares.toml"), 1, tmp_path, WorldOptions())
    report = run_world(world)
    assert report.ok, (report.invariant_violations, report.expectation_failures)
    fractional = [f for f in world.venue.fills if f.qty != f.qty.to_integral_value()]
    assert fractional, "no fractional execution"
    assert all(f.symbol != "YHOO" for f in fractional)  # not fractionable: whole shares only
    assert all(f.qty == f.qty.quantize(Decimal("0.000000001")) for f in world.venue.fills)
    audited = {str(r["extra"]["execution_id"]): r["quantity"] for r in _audit(world, "fills")}  # type: ignore[index]
    for fill in world.venue.fills:  # the audit carries each execution's quantity exactly (str when fractional)
        assert Decimal(audited[fill.execution_id]) == fill.qty  # type: ignore[arg-type]
    assert any(isinstance(q, str) for q in audited.values())
    assert report.positions == report.venue_positions
    assert report.counters.get("reconcile_mismatches", 0) == 0
    held = [Decimal(q) for q in report.venue_positions.values()]
    assert held and any(q != q.to_integral_value() for q in held)


def test_trailing_stops_sell_the_book_in_the_flash_crash(tmp_path: Path) -> None:
    world = World(load_scenario(SCENARIOS / "trailing_stop_flash_crash.toml"), 1, tmp_path, WorldOptions())
    report = run_world(world)
    assert report.ok, (report.invariant_violations, report.expectation_failures)
    book = world.venue.book
    trailing = [o for o in book.orders() if o.type == "trailing_stop"]
    assert trailing and all(o.client_order_id.endswith("-ts") and o.time_in_force == "gtc" for o in trailing)
    fired = [o for o in trailing if o.status == "filled"]
    assert len(fired) >= 5
    crash_ns = int(dt.datetime(2014, 6, 2, 17, 0, tzinfo=dt.UTC).timestamp()) * 10**9  # 13:00 ET
    for order in fired:
        assert order.filled_at_ns is not None and crash_ns <= order.filled_at_ns <= crash_ns + 900 * 10**9
        assert order.hwm is not None and order.stop_price is not None and order.stop_price < order.hwm
    assert report.kill_trigger != "daily_loss"  # the stops got out before the -3% switch could


def test_the_engine_handles_the_full_trade_event_set(tmp_path: Path, monkeypatch: object) -> None:
    """The venue with trade_events = "full" (pending_new before new, cancels acknowledged as pending_cancel and
    landing a moment later): a manual kill's cancel-all still settles, and every invariant holds."""
    import functools

    import pytest

    import sim.world as world_module
    from adapters.fake.venue import VenueConfig

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setattr(world_module, "VenueConfig", functools.partial(VenueConfig, trade_events="full"))
    world = World(load_scenario(SCENARIOS / "manual_kill_reset.toml"), 1, tmp_path, WorldOptions())
    report = run_world(world)
    assert report.ok, (report.invariant_violations, report.expectation_failures)
    seen = {e.event for e in world.venue.event_log}
    assert {"pending_new", "pending_cancel", "canceled"} <= seen
    assert report.positions == report.venue_positions
