"""``Engine.snapshot()``: what the dashboard, the bridge, the world and the runner read instead of the actors."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import trio
import trio.testing

from core.engine.system import Engine
from core.halt_fsm import HaltState
from sim.scenario import load_scenario
from sim.world import World, WorldOptions, run_world

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


class _Checked(World):
    """Takes each engine's snapshot where the world collects (on the engine's trio thread) and checks it there
    against the actors it must not be read from."""

    checked: list[Engine]

    def collect(self, engine: Engine, adapters: Any) -> None:
        super().collect(engine, adapters)
        _check(engine)
        self.checked = [*getattr(self, "checked", []), engine]


def _check(engine: Engine) -> None:
    snap = engine.snapshot()
    assert engine.ctx is not None and engine.supervisor is not None and engine.execution is not None
    ledger, state = engine.ctx.state.ledger, engine.ctx.state
    assert snap.has_book and snap.ready and snap.running
    assert snap.equity_usd == ledger.equity_usd() and snap.cash_usd == ledger.cash_usd
    assert snap.holdings == tuple(ledger.positions().items())
    assert snap.positions == tuple(ledger.snapshot())
    assert snap.counters == state.counters and snap.counters is not state.counters
    assert snap.counters.fills > 0
    assert snap.equity_curve == tuple(state.equity_curve)
    assert snap.day_pl_usd == ledger.equity_usd() - state.start_of_day_equity
    assert snap.open_orders == len(engine.execution.open_orders())
    assert snap.halt is not None and snap.halt.state is engine.supervisor.halt.state
    assert snap.trip_log == tuple(engine.supervisor.trip_log)
    assert snap.halted is engine.is_halted
    before = snap.counters.fills
    engine.ctx.state.counters.fills += 1000  # a copy: the snapshot does not move with the engine
    assert snap.counters.fills == before
    engine.ctx.state.counters.fills -= 1000
    assert dataclasses.is_dataclass(snap)


def test_snapshot_is_a_copy_of_the_book_and_the_latch_and_sees_a_kill_and_reset(tmp_path: Path) -> None:
    world = _Checked(load_scenario(SCENARIOS / "manual_kill_reset.toml"), 1, tmp_path, WorldOptions())
    report = run_world(world)
    assert report.ok and world.checked
    assert any(trigger == "manual" for _, trigger, _ in world.record.trips)  # from the snapshots
    assert world.record.resets, "the scenario resets the latch"
    assert world.record.equity_points


def test_an_engine_that_never_started_has_no_book(tmp_path: Path) -> None:
    from sim.world import World

    world = World(load_scenario(SCENARIOS / "clean_day.toml"), 1, tmp_path, WorldOptions())
    audit = world.layout.audit_dir
    snaps = []

    async def take() -> None:
        engine, _ = world.build_engine(audit=_NullAudit(), alerts=_NullAlerts(), store=None)  # type: ignore[arg-type]
        snaps.append(engine.snapshot())

    trio.run(take, clock=trio.testing.MockClock())
    snap = snaps[0]
    assert not snap.has_book and not snap.ready and not snap.running and snap.halt is None
    assert snap.halted is False and snap.counters.fills == 0
    assert not audit.exists()


class _NullAudit:
    def write(self, record: object) -> None:
        raise AssertionError("nothing is audited before start")


class _NullAlerts:
    async def deliver(self, alert: object) -> None:
        raise AssertionError("nothing is alerted before start")


def test_halt_view_halted_follows_the_state() -> None:
    from core.engine.snapshot import HaltView

    assert not HaltView(state=HaltState.ACTIVE, first_trip=None, last_reset=None).halted
    assert HaltView(state=HaltState.HALTING, first_trip=None, last_reset=None).halted
    assert HaltView(state=HaltState.HALTED, first_trip=None, last_reset=None).halted
