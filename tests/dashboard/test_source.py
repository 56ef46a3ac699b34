"""StaticDashboardSource: the snapshot contract and real kill/reset semantics (the engine's must match)."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import pytest

from adapters.dashboard.source import (
    EQUITY_CURVE_MAX_POINTS,
    SNAPSHOT_KEYS,
    CommandRejected,
    DashboardSource,
    StaticDashboardSource,
)
from tests.dashboard.conftest import ManualClock


def make_source(clock: ManualClock) -> StaticDashboardSource:
    source = StaticDashboardSource(clock=clock, mode="paper")
    source.set_position("NVDA", Decimal(20), Decimal("100"))
    source.add_open_order("ORCL", Decimal(10), Decimal("25.50"))
    source.set_connection("trade_updates", "LIVE")
    return source


def test_snapshot_has_the_contract_keys_and_is_json(clock: ManualClock) -> None:
    source: DashboardSource = make_source(clock)
    snap = source.snapshot()
    assert set(snap) == SNAPSHOT_KEYS
    assert json.loads(json.dumps(snap)) == snap  # plain JSON, no Decimal or float surprises
    assert snap["open_orders"] == {"count": 1, "value_usd": "255.00"}
    assert snap["positions"][0] == {"symbol": "NVDA", "qty": "20", "avg_entry_price": "100.00",
                                    "current_price": "100.00", "market_value": "2000.00",
                                    "unrealized_pl": "0.00"}


def test_risk_utilisation_is_computed_from_limits(clock: ManualClock) -> None:
    source = StaticDashboardSource(clock=clock, cash_usd=Decimal("98000"))
    source.set_position("NVDA", Decimal(20), Decimal("100"))  # 2000 of 100000 equity = 2% of a 5% cap
    source.daily_realized_pl = Decimal("-1500")  # 1.5% of a 3% daily-loss halt
    risk = source.snapshot()["risk_utilisation"]
    assert risk == {"position_size": "40.00", "daily_loss": "50.00"}


def test_prices_move_deterministically_per_seed(clock: ManualClock) -> None:
    a, b = make_source(clock), make_source(clock)
    for _ in range(5):
        a.step(random.Random(7))
        b.step(random.Random(7))
    assert a.snapshot() == b.snapshot()
    c = make_source(clock)
    c.step(random.Random(8))
    c.step(random.Random(8))
    assert c.snapshot()["positions"] != make_source(clock).snapshot()["positions"]


def test_equity_curve_is_bounded(clock: ManualClock) -> None:
    source = make_source(clock)
    for _ in range(EQUITY_CURVE_MAX_POINTS + 10):
        clock.advance(1)
        source.record_equity()
    assert len(source.snapshot()["equity_curve"]) == EQUITY_CURVE_MAX_POINTS


async def test_kill_halts_cancels_orders_and_alerts(clock: ManualClock) -> None:
    source = make_source(clock)
    await source.kill("drill", "dashboard")
    snap = source.snapshot()
    assert source.halted
    assert snap["halt"]["state"] == "HALTED" and snap["halt"]["reason"] == "drill"
    assert snap["open_orders"]["count"] == 0
    assert snap["alerts"][-1]["severity"] == "critical"
    since = snap["halt"]["since"]
    clock.advance(60)
    await source.kill("again", "dashboard")  # latched: the second kill changes nothing
    assert source.snapshot()["halt"]["since"] == since
    assert [c.kind for c in source.commands] == ["kill", "kill"]


async def test_reset_requires_operator_reason_and_a_halt(clock: ManualClock) -> None:
    source = make_source(clock)
    with pytest.raises(CommandRejected):
        await source.reset("alice", "nothing to reset")
    await source.kill("drill", "dashboard")
    for operator, reason in (("", "why"), ("alice", "  "), ("x" * 101, "why")):
        with pytest.raises(ValueError):
            await source.reset(operator, reason)
    assert source.halted
    await source.reset(" alice ", "drill over")
    assert not source.halted
    assert source.commands[-1].actor == "alice" and source.commands[-1].reason == "drill over"
    assert source.snapshot()["halt"]["state"] == "ACTIVE"
