"""alpaca-py 0.44 as the oracle for issue 20's order shapes and stream events.

REST: alpaca-py's own request models (fractional qty, notional, trailing stop, replace of a trail) sent to the
loopback fake and its answers parsed by alpaca-py's Order model. Stream: every trade_updates payload the fake
produces with trade_events = "full" (pending_new ... suspended) parsed by alpaca-py's TradeUpdate model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, OrderType, TimeInForce
from alpaca.trading.models import Order, TradeUpdate
from alpaca.trading.requests import MarketOrderRequest, ReplaceOrderRequest, TrailingStopOrderRequest

from adapters.fake.faults import FaultPlan
from tests.conformance.test_alpaca_py import KEY, SECRET, RunningFake, filled, wait_until
from tests.fake.test_venue_support import (
    CLOSE_NS,
    MINUTE_NS,
    NS,
    START_NS,
    call,
    events,
    listening_session,
    make_venue,
    submit,
)
from tools.cmd_fake_alpaca import FakeAlpacaOptions


@pytest.fixture(scope="module")
def trading() -> Iterator[TradingClient]:
    opts = FakeAlpacaOptions(seed=5, symbols=("NVDA", "ORCL"), speed=60.0, rate_limit_per_min=0, key_id=KEY,
                             secret_key=SECRET)
    with RunningFake(opts) as running:
        yield TradingClient(KEY, SECRET, url_override=running.url)


def test_fractional_and_notional_market_orders(trading: TradingClient) -> None:
    fractional = trading.submit_order(
        MarketOrderRequest(symbol="NVDA", qty=0.123456789, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    assert isinstance(fractional, Order) and fractional.qty is not None
    done = filled(trading, fractional.id)
    assert Decimal(str(done.filled_qty)) == Decimal("0.123456789")
    notional = trading.submit_order(
        MarketOrderRequest(symbol="NVDA", notional=250.5, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    assert notional.notional is not None and float(notional.notional) == 250.5 and notional.qty is None
    bought = filled(trading, notional.id)
    assert float(bought.filled_qty) > 0 and bought.filled_avg_price is not None
    with pytest.raises(APIError) as refused:  # Alpaca: notional only for market day orders
        trading.submit_order(
            MarketOrderRequest(symbol="NVDA", notional=250.5, side=OrderSide.BUY, time_in_force=TimeInForce.GTC)
        )
    assert refused.value.status_code == 422
    with pytest.raises(APIError) as tiny:
        trading.submit_order(
            MarketOrderRequest(symbol="NVDA", notional=0.5, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
        )
    assert tiny.value.status_code == 403 and "minimal amount of order 1" in str(tiny.value)


def test_trailing_stop_submit_watch_and_replace(trading: TradingClient) -> None:
    entry = trading.submit_order(
        MarketOrderRequest(symbol="ORCL", qty=3, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    filled(trading, entry.id)
    trail = trading.submit_order(
        TrailingStopOrderRequest(symbol="ORCL", qty=3, side=OrderSide.SELL, time_in_force=TimeInForce.GTC,
                                 trail_percent=40.0)
    )
    assert trail.type == OrderType.TRAILING_STOP and float(trail.trail_percent) == 40.0
    watched = wait_until(lambda: (o := trading.get_order_by_id(trail.id)).hwm is not None and o)
    assert float(watched.stop_price) < float(watched.hwm)
    replaced = trading.replace_order_by_id(trail.id, ReplaceOrderRequest(trail=45.0))
    assert replaced.replaces == trail.id and float(replaced.trail_percent) == 45.0
    old = wait_until(lambda: (o := trading.get_order_by_id(trail.id)).status == OrderStatus.REPLACED and o)
    assert old.replaced_by == replaced.id
    trading.cancel_orders()


def _full_event_payloads() -> list[dict[str, Any]]:
    """Every event the fake produces with trade_events = "full", as trade_updates data objects."""
    plan = FaultPlan.from_toml_dict(
        {"events": [{"kind": "quote_stale", "at_ns": START_NS + 5 * MINUTE_NS, "symbol": "MSFT", "duration_s": 120}]}
    )
    venue, market = make_venue(trade_events="full", faults=plan)
    session = listening_session(venue)
    submit(venue, qty="0.5")  # pending_new, new, fill (fractional)
    submit(venue, qty=None, notional="100")  # notional
    _, resting = submit(venue, type="limit", limit_price="90", time_in_force="gtc")
    _, replacement = call(venue, "PATCH", f"/v2/orders/{resting['id']}", body={"limit_price": "91"})
    call(venue, "PATCH", f"/v2/orders/{replacement['id']}", body={"qty": "100000"})  # order_replace_rejected
    call(venue, "DELETE", f"/v2/orders/{replacement['id']}")  # pending_cancel, canceled at the next step
    _, racing = submit(venue, type="limit", limit_price="99.00", time_in_force="gtc")
    market.set_quote("AAPL", "98.00", "98.02", from_ns=START_NS + MINUTE_NS)
    venue.advance_to(START_NS + MINUTE_NS - 10_000_000)
    call(venue, "DELETE", f"/v2/orders/{racing['id']}")  # loses the race: fill, order_cancel_rejected
    submit(venue, symbol="MSFT", type="limit", limit_price="40", time_in_force="gtc")  # suspended, new
    market.set_quote("AAPL", "100.00", "100.02", bid_size=10, ask_size=10, from_ns=START_NS + 2 * MINUTE_NS)
    venue.advance_to(START_NS + 2 * MINUTE_NS)
    submit(venue, qty="30", type="limit", limit_price="100.02", time_in_force="day")  # partial, calculated, expired
    market.set_quote("AAPL", "101.00", "101.02", from_ns=START_NS + 3 * MINUTE_NS)  # the rest stops being marketable
    submit(venue, type="trailing_stop", side="sell", trail_percent="5", qty="1", time_in_force="gtc")
    venue.advance_to(CLOSE_NS + MINUTE_NS)  # done_for_day
    venue.advance_to(CLOSE_NS + 18 * 60 * MINUTE_NS + NS)  # new again the next morning
    gapped, gap_market = make_venue(trade_events="full", cash_usd=Decimal(10_000), account_type="cash",
                                    start_ns=START_NS - 60 * MINUTE_NS)
    gap_market.set_quote("AAPL", "120.00", "120.02", from_ns=START_NS)
    gap_session = listening_session(gapped)
    submit(gapped, qty="95")  # queued before the open, rejected when the open gaps beyond buying power
    gapped.advance_to(START_NS + NS)
    return events(session.drain()) + events(gap_session.drain())


def test_every_full_trade_event_payload_parses_as_an_alpaca_py_trade_update() -> None:
    payloads = _full_event_payloads()
    names = {p["event"] for p in payloads}
    assert names >= {"pending_new", "new", "fill", "partial_fill", "pending_replace", "replaced",
                     "order_replace_rejected", "pending_cancel", "canceled", "order_cancel_rejected",
                     "suspended", "calculated", "expired", "done_for_day", "rejected"}
    for payload in payloads:
        update = TradeUpdate(**json.loads(json.dumps(payload)))
        assert update.order.id is not None and update.timestamp is not None
        event = str(getattr(update.event, "value", update.event))
        assert event == payload["event"]
        if payload["order"]["notional"] is not None:
            assert update.order.qty is None and update.order.notional is not None
