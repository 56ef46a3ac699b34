"""EngineState: settled orders leave the book at a new session (and nothing it still needs); a quote the bars
have overtaken is not a price."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from pathlib import Path

import pytest

from core.engine.state import EngineState, TrackedOrder
from core.ledger import Ledger
from core.model import NS_PER_S, Side
from core.order_fsm import OrderState

DAY_NS = 86_400 * NS_PER_S


def _order(coid: str, raised_at_ns: int, parent: str | None = None) -> TrackedOrder:
    return TrackedOrder(client_order_id=coid, signal_id=f"s-{coid}", symbol="NVDA", side=Side.BUY, qty=Decimal(10),
                        attempt=0, reference_price=Decimal(100), raised_at_ns=raised_at_ns,
                        venue_order_id=f"v-{coid}", parent_client_order_id=parent)


def _state(orders: dict[str, tuple[int, OrderState | None, str | None]]) -> EngineState:
    state = EngineState(ledger=Ledger(cash_usd=Decimal(100_000)), start_of_day_equity=Decimal(100_000),
                        start_of_week_equity=Decimal(100_000))
    for coid, (raised, machine, parent) in orders.items():
        state.orders[coid] = _order(coid, raised, parent)
        state.by_venue_id[f"v-{coid}"] = coid
        if machine is not None:
            state.order_states[coid] = {"state": machine.value, "filled_qty": "0", "venue_order_id": f"v-{coid}"}
    return state


def test_only_old_ended_orders_go_and_their_index_entries_with_them() -> None:
    window = 10 * DAY_NS
    old = window - DAY_NS
    state = _state({
        "old-filled": (old, OrderState.FILLED, None),
        "old-canceled": (old, OrderState.CANCELED, None),
        "old-working": (old, OrderState.ACCEPTED, None),  # a gtc order still working: kept
        "old-no-snapshot": (old, None, None),  # never known to have ended: kept
        "old-parent": (old, OrderState.FILLED, None),  # a filled entry whose leg still works: kept
        "old-leg": (old, OrderState.ACCEPTED, "old-parent"),
        "old-parent-done": (old, OrderState.FILLED, None),  # its leg ended too: both go
        "old-leg-done": (old, OrderState.CANCELED, "old-parent-done"),
        "recent-filled": (window + 1, OrderState.FILLED, None),  # inside the resync window: kept
    })
    state.order_states["odd"] = {"state": "no-such-state"}
    state.orders["odd"] = _order("odd", old)

    retired = state.retire_settled_orders(raised_before_ns=window)

    assert retired == ["old-canceled", "old-filled", "old-leg-done", "old-parent-done"]
    assert sorted(state.orders) == ["odd", "old-leg", "old-no-snapshot", "old-parent", "old-working",
                                    "recent-filled"]
    assert set(state.order_states) == set(state.orders) - {"old-no-snapshot"}
    assert sorted(state.by_venue_id.values()) == sorted(set(state.orders) - {"odd"})
    assert EngineState.from_dict(json.loads(json.dumps(state.to_dict()))).orders.keys() == state.orders.keys()


@pytest.mark.slow
def test_a_multi_day_run_keeps_two_sessions_of_settled_orders(tmp_path: Path) -> None:
    from sim.scenario import load_scenario
    from sim.world import run_scenario
    from tools.bench import simrun

    path = tmp_path / "days.toml"
    path.write_text(simrun.scenario_toml("days", 3, 4, seed=7), encoding="utf-8")
    logging.getLogger("ttlive").setLevel(logging.ERROR)
    report = run_scenario(load_scenario(path), seed=7, out_dir=tmp_path / "out")
    assert report.ok, report.invariant_violations
    saved = json.loads((tmp_path / "out" / "state.json").read_text(encoding="utf-8"))
    state = EngineState.from_dict(saved)
    days = sorted({o["raised_at_ns"] // DAY_NS for o in saved["orders"]})
    entries = [o for o in state.orders.values() if o.parent_client_order_id is None]  # legs are tracked too
    assert report.orders_submitted > len(entries) > 0  # the first sessions' settled orders are gone
    assert len(days) <= 2, days  # at most yesterday's (inside the 24 h resync window) and today's
    assert all(coid in state.orders for coid in state.by_venue_id.values())


def test_a_quote_older_than_the_newest_bar_is_stale() -> None:
    from core.model import Quote

    state = _state({})
    quote = Quote(symbol="NVDA", bid_price=Decimal("99.95"), ask_price=Decimal("100.05"), bid_size=Decimal(100),
                  ask_size=Decimal(100), ts_ns=1_000)
    state.quotes["NVDA"] = quote
    state.ledger.mark("NVDA", Decimal("98.70"))  # what the market actor marks from a bar once the quote is stale
    state.last_bar_start_ns["NVDA"] = 1_000  # a bar that started with the quote: the quote is current
    assert state.fresh_quote("NVDA") is quote and state.mark("NVDA") == Decimal("100.00")
    state.last_bar_start_ns["NVDA"] = 1_001  # the market traded after the quote
    assert state.fresh_quote("NVDA") is None and state.mark("NVDA") == Decimal("98.70")
