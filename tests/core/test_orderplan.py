"""Spec 1.2 action mapping, spread-aware pricing, depth cap and deterministic idempotency keys."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.model import Direction, ExecutionAction, OrderClass, OrderType, Quote, Side, TimeInForce
from core.orderplan import PlanConfig, PlanError, client_order_id, plan_order

D = Decimal
QUOTE = Quote(symbol="NVDA", bid_price=D("99.98"), ask_price=D("100.02"), bid_size=D(300), ask_size=D(200), ts_ns=0)


def plan(action: ExecutionAction, direction: Direction = Direction.LONG, qty: str = "10", pos: str = "0",
         **cfg: object) -> object:
    return plan_order(
        signal_id="s1", attempt=0, symbol="NVDA", direction=direction, qty=D(qty), action=action,
        quote=QUOTE, position_qty=D(pos), config=PlanConfig(**cfg),  # type: ignore[arg-type]
    )


def test_market_maps_to_market_day_with_bracket_on_entry() -> None:
    req = plan(ExecutionAction.MARKET)
    assert req.type is OrderType.MARKET and req.time_in_force is TimeInForce.DAY  # type: ignore[attr-defined]
    assert req.order_class is OrderClass.BRACKET  # type: ignore[attr-defined]
    assert req.bracket.stop_loss_stop_price < D("100.02") < req.bracket.take_profit_limit_price  # type: ignore


def test_aggressive_limit_crosses_the_spread_day() -> None:
    buy = plan(ExecutionAction.LIMIT_AGGRESSIVE)
    assert buy.time_in_force is TimeInForce.DAY and buy.limit_price > QUOTE.ask_price  # type: ignore
    sell = plan(ExecutionAction.LIMIT_AGGRESSIVE, Direction.SHORT)
    assert sell.limit_price < QUOTE.bid_price  # type: ignore[attr-defined]


def test_passive_limit_joins_our_side_gtc() -> None:
    buy = plan(ExecutionAction.LIMIT_PASSIVE)
    assert buy.time_in_force is TimeInForce.GTC and buy.limit_price == QUOTE.bid_price  # type: ignore
    sell = plan(ExecutionAction.LIMIT_PASSIVE, Direction.SHORT)
    assert sell.limit_price == QUOTE.ask_price  # type: ignore[attr-defined]


def test_reducing_order_has_no_bracket_and_never_flips() -> None:
    req = plan(ExecutionAction.MARKET, Direction.NEUTRAL, qty="50", pos="20")
    assert req.side is Side.SELL and req.qty == D(20)  # type: ignore[attr-defined]
    assert req.order_class is OrderClass.SIMPLE and req.bracket is None  # type: ignore[attr-defined]


def test_depth_cap_limits_large_orders_to_visible_size() -> None:
    req = plan(ExecutionAction.MARKET, qty="5000")
    assert req.qty == D(200)  # type: ignore[attr-defined]


def test_client_order_id_is_deterministic_per_attempt() -> None:
    assert client_order_id("abc", 0) == client_order_id("abc", 0) != client_order_id("abc", 1)
    assert plan(ExecutionAction.MARKET).client_order_id == "tt-s1-0"  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad", ["neutral-flat", "cancel", "zero", "crossed"])
def test_unplannable_signals_raise_plan_error(bad: str) -> None:
    with pytest.raises(PlanError):
        if bad == "neutral-flat":
            plan(ExecutionAction.MARKET, Direction.NEUTRAL)
        elif bad == "cancel":
            plan(ExecutionAction.CANCEL)
        elif bad == "zero":
            plan(ExecutionAction.MARKET, qty="0")
        else:
            plan_order(signal_id="s", attempt=0, symbol="NVDA", direction=Direction.LONG, qty=D(1),
                       action=ExecutionAction.MARKET, position_qty=D(0), config=PlanConfig(),
                       quote=Quote(symbol="NVDA", bid_price=D(2), ask_price=D(1), bid_size=D(1),
                                   ask_size=D(1), ts_ns=0))
