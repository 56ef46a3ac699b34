"""risk.on_halt = "protect": after a halt every position keeps a working stop at the venue (ours and adopted), the
halt record and the engine's snapshot say so, and invariant 5e notices a bare book (the cancel_all default)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from core.protect import is_protective
from sim.invariants import check_protected
from sim.scenario import load_scenario
from sim.world import World, WorldOptions, run_world

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "halt_protect.toml"


def _run(tmp_path: Path, on_halt: str) -> World:
    scenario = load_scenario(SCENARIO)
    risk = msgspec.structs.replace(scenario.risk, on_halt=on_halt)
    world = World(msgspec.structs.replace(scenario, risk=risk), 1, tmp_path, WorldOptions())
    report = run_world(world)
    assert report.halted and report.kill_trigger == "manual"
    assert report.invariant_violations == [], report.invariant_violations
    return world


def test_protect_leaves_a_working_stop_for_every_position(tmp_path: Path) -> None:
    world = _run(tmp_path, "protect")
    venue = world.venue
    stops = [o for o in venue.book.open_orders() if is_protective(o.client_order_id)]
    assert {o.symbol for o in stops} == set(venue.account.positions)
    for order in stops:
        held = venue.account.position_qty(order.symbol)
        assert order.side == ("sell" if held > 0 else "buy") and order.qty == abs(held) and order.type == "stop"
    assert check_protected(world) == []
    text = "".join(p.read_text() for p in (tmp_path / "audit").rglob("health/*.jsonl"))
    assert '"event":"protect_placed"' in text and '"on_halt":"protect"' in text and '"unprotected":0' in text
    supervisor = world.record.engines[0].supervisor  # what Engine.snapshot() hands the dashboard as HaltView
    assert supervisor is not None and supervisor.on_halt == "protect"
    assert supervisor.protection and all(p.protected for p in supervisor.protection), supervisor.protection


def test_the_default_leaves_the_book_bare_and_the_invariant_says_so(tmp_path: Path) -> None:
    world = _run(tmp_path, "cancel_all")
    assert not [o for o in world.venue.book.open_orders() if is_protective(o.client_order_id)]
    bare = check_protected(world)
    assert bare and all("has 0 shares of working stops" in v for v in bare), bare
    text = "".join(p.read_text() for p in (tmp_path / "audit").rglob("health/*.jsonl"))
    assert '"on_halt":"cancel_all"' in text and "UNPROTECTED" in text
