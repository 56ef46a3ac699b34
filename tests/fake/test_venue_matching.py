"""Matching on the fake venue: slippage, partial fills by depth, limits, stops, expiry, brackets, invariants."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.fake import matching as m
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


def test_status_sets_cover_every_alpaca_status_without_overlap() -> None:
    groups = [m.WORKING, m.QUEUED, m.HELD, m.IDLE, m.TERMINAL, m.NEVER_PRODUCED]
    assert sum(len(g) for g in groups) == len(m.ALL_STATUSES)
    assert frozenset().union(*groups) == m.ALL_STATUSES
    assert m.PASSING <= m.NEVER_PRODUCED


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_market_fill_price_is_touch_plus_seeded_slippage(side: str) -> None:
    for seed in range(20):
        venue, _ = make_venue(seed=seed, quotes={"AAPL": ("100.00", "100.02"), "MSFT": ("50.00", "50.01")})
        if side == "sell":
            submit(venue, qty="10")
        submit(venue, side=side, qty="10")
        price = venue.fills[-1].price
        if side == "buy":  # 0.5..2 bps over 100.02 = 100.025..100.04, on the cent grid
            assert Decimal("100.02") <= price <= Decimal("100.04")
        else:
            assert Decimal("99.98") <= price <= Decimal("100.00")
        assert price == price.quantize(Decimal("0.01"))


def test_slippage_draw_stays_in_range_and_is_seeded() -> None:
    import random

    low, high = Decimal("0.5"), Decimal("2")
    draws = [m.draw_slippage_bps(random.Random(1), low, high) for _ in range(3)]
    assert len(set(draws)) == 1  # same seed, same draw
    rng = random.Random(2)
    samples = [m.draw_slippage_bps(rng, low, high) for _ in range(500)]
    assert min(samples) >= low and max(samples) <= high and len(set(samples)) > 50


def test_order_larger_than_touch_fills_in_parts_on_later_quotes() -> None:
    venue, market = make_venue()
    market.set_quote("AAPL", "100.00", "100.02", bid_size=300, ask_size=300)
    session = listening_session(venue)
    _, order = submit(venue, qty="700")
    assert [(u["event"], u["qty"]) for u in events(session.drain())[1:]] == [("partial_fill", "300")]
    venue.advance_to(START_NS + 10 * NS)  # same bar, same quote: the touch is used up
    assert len(venue.fills) == 1
    venue.advance_to(START_NS + MINUTE_NS)
    venue.advance_to(START_NS + 2 * MINUTE_NS)
    updates = events(session.drain())
    assert [(u["event"], u["qty"], u["position_qty"]) for u in updates] == [
        ("partial_fill", "300", "600"),
        ("fill", "100", "700"),
    ]
    assert len({f.execution_id for f in venue.fills}) == 3
    final = ok(venue, "GET", f"/v2/orders/{order['id']}")
    notional = sum(f.qty * f.price for f in venue.fills)
    assert Decimal(final["filled_avg_price"]) == pytest.approx(notional / 700)
    assert [a.type for a in venue.account.activities] == ["partial_fill", "partial_fill", "fill"]
    assert [a.leaves_qty for a in venue.account.activities] == [400, 100, 0]


def test_orders_share_the_touch_of_one_quote() -> None:
    venue, market = make_venue()
    market.set_quote("AAPL", "100.00", "100.02", bid_size=500, ask_size=500)
    submit(venue, qty="400")
    submit(venue, qty="400")
    assert [f.qty for f in venue.fills] == [400, 100]


def test_marketable_limit_fills_at_limit_or_better() -> None:
    venue, _ = make_venue()
    submit(venue, type="limit", limit_price="100.02")
    assert venue.fills[0].price <= Decimal("100.02")


def test_passive_limit_fills_at_its_price_with_the_configured_probability() -> None:
    venue, _ = make_venue(passive_fill_probability=1.0)
    session = listening_session(venue)
    submit(venue, type="limit", limit_price="100.01", time_in_force="gtc")  # inside the touch
    submit(venue, type="limit", limit_price="99.50", time_in_force="gtc")  # below the bid: never
    assert [f.price for f in venue.fills] == [Decimal("100.01")]
    assert [u["event"] for u in events(session.drain())] == ["new", "fill", "new"]
    venue.advance_to(START_NS + 30 * MINUTE_NS)
    assert len(venue.fills) == 1
    never, _ = make_venue(passive_fill_probability=0.0)
    submit(never, type="limit", limit_price="100.00", time_in_force="gtc")
    never.advance_to(START_NS + 30 * MINUTE_NS)
    assert never.fills == []


def test_passive_fill_is_drawn_once_per_bar() -> None:
    venue, _ = make_venue(passive_fill_probability=0.0)  # never fills, but every draw still happens
    submit(venue, type="limit", limit_price="100.00", time_in_force="gtc")
    after_first_draw = venue.book._match_rng.getstate()
    for second in range(1, 60):
        venue.advance_to(START_NS + second * NS)  # same bar, same quote: no new draw
    assert venue.book._match_rng.getstate() == after_first_draw
    venue.advance_to(START_NS + MINUTE_NS)  # next bar: one more draw
    assert venue.book._match_rng.getstate() != after_first_draw


def test_sell_stop_triggers_when_the_bid_falls_to_it() -> None:
    venue, market = make_venue()
    submit(venue, qty="10")
    session = listening_session(venue)
    _, stop = submit(venue, side="sell", type="stop", stop_price="99.00", time_in_force="gtc")
    market.set_quote("AAPL", "99.50", "99.52", from_ns=START_NS + MINUTE_NS)
    venue.advance_to(START_NS + MINUTE_NS)
    assert ok(venue, "GET", f"/v2/orders/{stop['id']}")["status"] == "new"
    market.set_quote("AAPL", "98.90", "98.92", from_ns=START_NS + 2 * MINUTE_NS)
    venue.advance_to(START_NS + 2 * MINUTE_NS)
    assert ok(venue, "GET", f"/v2/orders/{stop['id']}")["status"] == "filled"
    assert venue.fills[-1].price <= Decimal("98.90")
    assert [u["event"] for u in events(session.drain())] == ["new", "fill"]


def test_buy_stop_limit_becomes_a_limit_once_triggered() -> None:
    venue, market = make_venue()
    _, order = submit(venue, type="stop_limit", stop_price="101", limit_price="101.05", time_in_force="gtc")
    market.set_quote("AAPL", "101.08", "101.10", from_ns=START_NS + MINUTE_NS)  # triggered, above the limit
    venue.advance_to(START_NS + MINUTE_NS)
    assert venue.fills == [] and venue.book.orders()[0].triggered
    market.set_quote("AAPL", "101.00", "101.03", from_ns=START_NS + 2 * MINUTE_NS)
    venue.advance_to(START_NS + 2 * MINUTE_NS)
    assert ok(venue, "GET", f"/v2/orders/{order['id']}")["status"] == "filled"
    assert venue.fills[0].price <= Decimal("101.05")


def test_trailing_stop_follows_the_high_water_mark() -> None:
    venue, market = make_venue()
    submit(venue, qty="10")
    _, trail = submit(venue, side="sell", type="trailing_stop", trail_price="1.00", time_in_force="gtc")
    assert trail["trail_price"] == "1"
    market.set_quote("AAPL", "105.00", "105.02", from_ns=START_NS + MINUTE_NS)
    venue.advance_to(START_NS + MINUTE_NS)
    live = ok(venue, "GET", f"/v2/orders/{trail['id']}")
    assert (live["hwm"], live["stop_price"], live["status"]) == ("105", "104", "new")
    market.set_quote("AAPL", "104.50", "104.52", from_ns=START_NS + 2 * MINUTE_NS)
    venue.advance_to(START_NS + 2 * MINUTE_NS)
    assert venue.book.orders()[1].status == "new"
    market.set_quote("AAPL", "103.90", "103.92", from_ns=START_NS + 3 * MINUTE_NS)
    venue.advance_to(START_NS + 3 * MINUTE_NS)
    assert venue.book.orders()[1].status == "filled"


def test_day_orders_expire_at_the_close_and_gtc_persist() -> None:
    venue, _ = make_venue()
    session = listening_session(venue)
    _, day = submit(venue, type="limit", limit_price="90", time_in_force="day")
    _, gtc = submit(venue, type="limit", limit_price="91", time_in_force="gtc")
    venue.advance_to(CLOSE_NS - 1)
    assert ok(venue, "GET", f"/v2/orders/{day['id']}")["status"] == "new"
    venue.advance_to(CLOSE_NS + MINUTE_NS)
    expired = ok(venue, "GET", f"/v2/orders/{day['id']}")
    assert expired["status"] == "expired" and expired["expired_at"] == "2024-01-02T21:00:00.000000000Z"
    assert ok(venue, "GET", f"/v2/orders/{gtc['id']}")["status"] == "new"
    assert [u["event"] for u in events(session.drain())] == ["new", "new", "expired"]


def test_no_fills_while_the_market_is_closed() -> None:
    venue, market = make_venue()
    _, gtc = submit(venue, type="limit", limit_price="90", time_in_force="gtc")
    market.set_quote("AAPL", "89.00", "89.02", from_ns=CLOSE_NS + MINUTE_NS)
    venue.advance_to(CLOSE_NS + 60 * MINUTE_NS)
    assert venue.fills == []
    venue.advance_to(CLOSE_NS + 18 * 60 * MINUTE_NS)  # next day 10:00 ET
    assert ok(venue, "GET", f"/v2/orders/{gtc['id']}")["status"] == "filled"


def test_bracket_take_profit_fills_and_cancels_the_stop_loss() -> None:
    venue, market = make_venue()
    session = listening_session(venue)
    _, parent = submit(
        venue,
        order_class="bracket",
        take_profit={"limit_price": "105"},
        stop_loss={"stop_price": "95", "limit_price": "94.5"},
    )
    assert parent["order_class"] == "bracket"
    assert [(leg["type"], leg["status"], leg["side"]) for leg in parent["legs"]] == [
        ("limit", "held", "sell"),
        ("stop_limit", "held", "sell"),
    ]
    first = events(session.drain())
    assert [u["event"] for u in first] == ["new", "fill", "new", "new"]
    market.set_quote("AAPL", "105.10", "105.12", from_ns=START_NS + MINUTE_NS)
    venue.advance_to(START_NS + MINUTE_NS)
    later = events(session.drain())
    assert [(u["event"], u["order"]["type"]) for u in later] == [("fill", "limit"), ("canceled", "stop_limit")]
    assert later[0]["position_qty"] == "0" and ok(venue, "GET", "/v2/positions") == []


def test_bracket_stop_loss_fills_and_cancels_the_take_profit() -> None:
    venue, market = make_venue()
    submit(
        venue, side="sell", order_class="bracket", take_profit={"limit_price": "95"}, stop_loss={"stop_price": "105"}
    )  # short entry: the exits buy
    market.set_quote("AAPL", "105.00", "105.02", from_ns=START_NS + MINUTE_NS)
    venue.advance_to(START_NS + MINUTE_NS)
    statuses = [(o.type, o.side, o.status) for o in venue.book.orders()]
    assert statuses == [("market", "sell", "filled"), ("limit", "buy", "canceled"), ("stop", "buy", "filled")]


def test_partially_filled_entry_arms_legs_for_the_filled_quantity() -> None:
    venue, market = make_venue()
    market.set_quote("AAPL", "100.00", "100.02", bid_size=300, ask_size=300)
    _, parent = submit(
        venue,
        qty="500",
        type="limit",
        limit_price="100.02",
        time_in_force="day",
        order_class="bracket",
        take_profit={"limit_price": "110"},
        stop_loss={"stop_price": "90"},
    )
    assert call(venue, "DELETE", f"/v2/orders/{parent['id']}")[0] == 204
    legs = venue.book.legs_of(venue.book.get_order(parent["id"]))
    assert [(leg.qty, leg.status) for leg in legs] == [(300, "new"), (300, "new")]


def test_ioc_cancels_the_rest_and_fok_fills_all_or_nothing() -> None:
    venue, market = make_venue()
    market.set_quote("AAPL", "100.00", "100.02", bid_size=300, ask_size=300)
    _, ioc = submit(venue, qty="500", time_in_force="ioc")
    ioc_now = ok(venue, "GET", f"/v2/orders/{ioc['id']}")
    assert (ioc_now["status"], ioc_now["filled_qty"]) == ("canceled", "300")
    venue.advance_to(START_NS + MINUTE_NS)
    _, fok = submit(venue, qty="500", time_in_force="fok")
    fok_now = ok(venue, "GET", f"/v2/orders/{fok['id']}")
    assert (fok_now["status"], fok_now["filled_qty"]) == ("canceled", "0")
    _, fok_small = submit(venue, qty="200", time_in_force="fok")
    assert ok(venue, "GET", f"/v2/orders/{fok_small['id']}")["status"] == "filled"


def test_oco_exit_pair_one_cancels_the_other() -> None:
    venue, market = make_venue()
    submit(venue, qty="10")
    _, oco = submit(
        venue,
        side="sell",
        type="limit",
        order_class="oco",
        take_profit={"limit_price": "105"},
        stop_loss={"stop_price": "95"},
    )
    assert oco["limit_price"] == "105" and oco["legs"][0]["type"] == "stop"
    assert [o.status for o in venue.book.orders()[1:]] == ["new", "new"]
    market.set_quote("AAPL", "94.90", "94.92", from_ns=START_NS + MINUTE_NS)
    venue.advance_to(START_NS + MINUTE_NS)
    assert [o.status for o in venue.book.orders()[1:]] == ["canceled", "filled"]


def test_fill_larger_than_leaves_is_a_programmer_error() -> None:
    venue, _ = make_venue()
    submit(venue, type="limit", limit_price="90", time_in_force="gtc")
    order = venue.book.orders()[0]
    with pytest.raises(AssertionError, match="exceeds leaves"):
        venue.book._execute(order, Decimal(11), Decimal("90"))


def test_clock_never_moves_backwards() -> None:
    venue, _ = make_venue()
    venue.advance_to(START_NS + MINUTE_NS)
    with pytest.raises(AssertionError, match="cannot go back"):
        venue.advance_to(START_NS)


def test_next_wakeup_is_the_next_bar_then_the_open() -> None:
    venue, _ = make_venue()
    assert venue.next_wakeup_ns() == START_NS + MINUTE_NS
    venue.advance_to(CLOSE_NS)
    assert venue.next_wakeup_ns() == START_NS + 24 * 60 * MINUTE_NS


_ACTIONS = st.lists(
    st.one_of(
        st.tuples(
            st.just("order"),
            st.sampled_from(["buy", "sell"]),
            st.integers(1, 400),
            st.sampled_from(["market", "limit"]),
            st.integers(-30, 30),
        ),
        st.tuples(st.just("move"), st.integers(-200, 200), st.integers(0, 600)),
        st.tuples(st.just("cancel_all")),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=_ACTIONS, seed=st.integers(0, 10_000))
def test_ledger_and_order_invariants_hold_for_any_script(actions: list[Any], seed: int) -> None:
    venue, market = make_venue(seed=seed, passive_fill_probability=0.5)
    now, mid_cents = START_NS, 10_000
    for action in actions:
        if action[0] == "order":
            _, side, qty, kind, offset = action
            extra = (
                {"limit_price": f"{(mid_cents + offset) / 100:.2f}", "time_in_force": "gtc"} if kind == "limit" else {}
            )
            submit(venue, side=side, qty=str(qty), type=kind, **extra)
        elif action[0] == "move":
            _, delta, size = action
            mid_cents = max(200, mid_cents + delta)
            now += MINUTE_NS
            market.set_quote(
                "AAPL",
                f"{(mid_cents - 1) / 100:.2f}",
                f"{(mid_cents + 1) / 100:.2f}",
                bid_size=size,
                ask_size=size,
                from_ns=now,
            )
            venue.advance_to(now)
        else:
            call(venue, "DELETE", "/v2/orders")
    assert venue.internal_errors == []
    signed = {"buy": 1, "sell": -1}
    position = sum((signed[f.side] * f.qty for f in venue.fills), Decimal(0))
    cash = Decimal(100_000) - sum((signed[f.side] * f.qty * f.price for f in venue.fills), Decimal(0))
    assert venue.account.position_qty("AAPL") == position
    assert venue.account.cash == cash
    for order in venue.book.orders():
        filled = sum((f.qty for f in venue.fills if f.order_id == order.id), Decimal(0))
        assert filled == order.filled_qty <= order.qty
        assert (order.status == "filled") == (order.filled_qty == order.qty)
    if venue.fills:
        assert [f.position_qty for f in venue.fills][-1] == position
