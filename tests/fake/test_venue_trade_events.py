"""trade_events = "full": every documented trade_updates event, where Alpaca produces it, with the order's
status in the frame; and the engine's order machine takes each sequence without an illegal transition."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from adapters.fake.faults import FaultPlan
from core.model import Side
from core.order_fsm import Order, OrderEvent, OrderState, trade_event
from tests.fake.test_venue_support import (
    CLOSE_NS,
    MINUTE_NS,
    NS,
    START_NS,
    call,
    events,
    listening_session,
    make_venue,
    ok,
    submit,
)

FULL = {"trade_events": "full"}


def _trail(session: Any, order_id: str) -> list[tuple[str, str]]:
    return [(u["event"], u["order"]["status"]) for u in events(session.drain()) if u["order"]["id"] == order_id]


def test_basic_is_the_default_and_unknown_sets_are_refused() -> None:
    venue, _ = make_venue()
    session = listening_session(venue)
    _, order = submit(venue)
    assert [e for e, _ in _trail(session, order["id"])] == ["new", "fill"]
    with pytest.raises(ValueError, match="trade_events"):
        make_venue(trade_events="everything")


def test_pending_new_comes_before_new() -> None:
    venue, _ = make_venue(**FULL)
    session = listening_session(venue)
    _, order = submit(venue)
    assert _trail(session, order["id"]) == [("pending_new", "pending_new"), ("new", "new"), ("fill", "filled")]


def test_cancel_goes_pending_cancel_then_canceled_a_moment_later() -> None:
    venue, _ = make_venue(**FULL)
    session = listening_session(venue)
    _, order = submit(venue, type="limit", limit_price="90", time_in_force="gtc")
    assert call(venue, "DELETE", f"/v2/orders/{order['id']}")[0] == 204
    assert ok(venue, "GET", f"/v2/orders/{order['id']}")["status"] == "pending_cancel"
    assert call(venue, "DELETE", f"/v2/orders/{order['id']}")[0] == 204  # idempotent while on its way
    assert venue.next_wakeup_ns() == START_NS + 50_000_000
    venue.advance_to(START_NS + NS)
    assert _trail(session, order["id"])[-2:] == [("pending_cancel", "pending_cancel"), ("canceled", "canceled")]


def test_cancel_that_loses_the_race_to_a_fill_is_order_cancel_rejected() -> None:
    venue, market = make_venue(**FULL)
    session = listening_session(venue)
    _, order = submit(venue, type="limit", limit_price="99.00", time_in_force="gtc")
    market.set_quote("AAPL", "98.00", "98.02", from_ns=START_NS + MINUTE_NS)  # marketable at the next bar
    venue.advance_to(START_NS + MINUTE_NS - 10_000_000)  # 10 ms before it
    assert call(venue, "DELETE", f"/v2/orders/{order['id']}")[0] == 204
    venue.advance_to(START_NS + MINUTE_NS + NS)
    assert [e for e, _ in _trail(session, order["id"])][-3:] == ["pending_cancel", "fill", "order_cancel_rejected"]
    assert ok(venue, "GET", f"/v2/orders/{order['id']}")["status"] == "filled"


def test_replace_goes_pending_replace_then_replaced_and_a_refusal_is_order_replace_rejected() -> None:
    venue, _ = make_venue(**FULL, cash_usd=Decimal(10_000), account_type="cash")
    session = listening_session(venue)
    _, order = submit(venue, type="limit", limit_price="90", time_in_force="gtc")
    _, new = call(venue, "PATCH", f"/v2/orders/{order['id']}", body={"limit_price": "91"})
    assert _trail(session, order["id"])[-2:] == [("pending_replace", "pending_replace"), ("replaced", "replaced")]
    status, _ = call(venue, "PATCH", f"/v2/orders/{new['id']}", body={"qty": "5000"})  # $455k > buying power
    assert status == 403
    assert _trail(session, new["id"])[-2:] == [("pending_replace", "pending_replace"),
                                                ("order_replace_rejected", "new")]
    assert ok(venue, "GET", f"/v2/orders/{new['id']}")["status"] == "new"


def test_gtc_is_done_for_day_at_the_close_and_new_again_at_the_open() -> None:
    venue, _ = make_venue(**FULL)
    session = listening_session(venue)
    _, order = submit(venue, type="limit", limit_price="90", time_in_force="gtc")
    venue.advance_to(CLOSE_NS + MINUTE_NS)
    assert ok(venue, "GET", f"/v2/orders/{order['id']}")["status"] == "done_for_day"
    assert len(ok(venue, "GET", "/v2/orders")) == 1  # still open
    venue.advance_to(CLOSE_NS + 18 * 60 * MINUTE_NS)
    assert [e for e, _ in _trail(session, order["id"])][-2:] == ["done_for_day", "new"]
    assert ok(venue, "GET", f"/v2/orders/{order['id']}")["status"] == "new"


def test_partly_filled_day_order_is_calculated_then_expired_at_the_close() -> None:
    venue, market = make_venue(**FULL)
    market.set_quote("AAPL", "100.00", "100.02", bid_size=100, ask_size=100)
    session = listening_session(venue)
    _, order = submit(venue, qty="300", type="limit", limit_price="100.02", time_in_force="day")
    market.set_quote("AAPL", "101.00", "101.02", from_ns=START_NS + MINUTE_NS)  # no longer marketable
    venue.advance_to(CLOSE_NS + MINUTE_NS)
    trail = _trail(session, order["id"])
    assert [e for e, _ in trail][-2:] == ["calculated", "expired"] and trail[-2][1] == "calculated"


def test_orders_are_suspended_while_quotes_are_frozen_and_work_again_after() -> None:
    plan = FaultPlan.from_toml_dict(
        {"events": [{"kind": "quote_stale", "at_ns": START_NS + MINUTE_NS, "symbol": "AAPL", "duration_s": 120}]}
    )
    venue, _ = make_venue(**FULL, faults=plan)
    session = listening_session(venue)
    _, order = submit(venue, type="limit", limit_price="90", time_in_force="gtc")
    venue.advance_to(START_NS + 2 * MINUTE_NS)
    assert ok(venue, "GET", f"/v2/orders/{order['id']}")["status"] == "suspended"
    venue.advance_to(START_NS + 4 * MINUTE_NS)
    assert [e for e, _ in _trail(session, order["id"])][-2:] == ["suspended", "new"]


@pytest.mark.parametrize(
    "sequence",
    [
        ["pending_new", "new", "fill"],
        ["pending_new", "new", "pending_cancel", "canceled"],
        ["pending_new", "new", "pending_cancel", "fill", "order_cancel_rejected"],
        ["pending_new", "new", "pending_cancel", "order_cancel_rejected", "fill"],
        ["pending_new", "new", "pending_replace", "replaced"],
        ["pending_new", "new", "pending_replace", "order_replace_rejected", "fill"],
        ["pending_new", "new", "done_for_day", "new", "fill"],
        ["pending_new", "new", "partial_fill", "calculated", "expired"],
        ["pending_new", "new", "suspended", "new", "fill"],
        ["accepted", "pending_new", "new", "restated", "fill"],
        ["accepted", "rejected"],
        ["rejected"],
    ],
)
def test_the_order_machine_takes_every_event_sequence(sequence: list[str]) -> None:
    order = Order(order_id="o", client_order_id="c", symbol="AAPL", side=Side.BUY, qty=Decimal(10))
    order.apply(OrderEvent.RISK_APPROVED)
    order.apply(OrderEvent.SUBMIT_SENT)
    for n, name in enumerate(sequence):
        event = trade_event(name)
        if event in (OrderEvent.FILL, OrderEvent.PARTIAL_FILL):
            order.apply_fill(f"x{n}", Decimal(10) - order.filled_qty if event is OrderEvent.FILL else Decimal(4),
                             Decimal(100))
        else:
            order.apply(event, venue_order_id="v")
    final = {"fill": OrderState.FILLED, "canceled": OrderState.CANCELED, "replaced": OrderState.REPLACED,
             "expired": OrderState.EXPIRED, "rejected": OrderState.REJECTED,
             "order_cancel_rejected": OrderState.FILLED}[sequence[-1]]
    assert order.state is final


def test_a_queued_market_order_the_open_gaps_beyond_buying_power_is_rejected_at_routing() -> None:
    venue, market = make_venue(**FULL, cash_usd=Decimal(10_000), account_type="cash",
                               start_ns=START_NS - 60 * MINUTE_NS)  # an hour before the open
    market.set_quote("AAPL", "120.00", "120.02", from_ns=START_NS)  # the open gaps up 20 %
    session = listening_session(venue)
    status, order = submit(venue, qty="95")  # $9.5k at the last price: accepted, queued for the open
    assert status == 200 and order["status"] == "accepted"
    _, small = submit(venue, symbol="MSFT", qty="1")
    venue.advance_to(START_NS + NS)
    rejected = ok(venue, "GET", f"/v2/orders/{order['id']}")
    assert rejected["status"] == "rejected" and rejected["failed_at"] is not None
    assert _trail(session, order["id"]) == [("rejected", "rejected")]
    assert ok(venue, "GET", f"/v2/orders/{small['id']}")["status"] == "filled"  # still covered: routed
    assert venue.fills and all(f.symbol == "MSFT" for f in venue.fills)
