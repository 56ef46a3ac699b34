"""Fractional and notional orders on the fake venue, by Alpaca's documented rules (alpaca-docs
trading/fractional-trading.md): market day only, fractionable assets only, no fractional shorts, $1 minimum,
qty and notional mutually exclusive; a notional order fills whole at qty = notional / price (9 decimals)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.fake.test_venue_support import call, events, listening_session, make_venue, ok, submit

Q = Decimal("0.000000001")


def test_fractional_qty_fills_exactly_and_the_position_keeps_every_decimal() -> None:
    venue, _ = make_venue()
    status, body = submit(venue, qty="0.123456789")
    assert status == 200, body
    assert body["qty"] == "0.123456789" and body["notional"] is None
    fill = venue.fills[-1]
    assert fill.qty == Decimal("0.123456789")
    position = ok(venue, "GET", "/v2/positions/AAPL")
    assert position["qty"] == "0.123456789"
    assert Decimal(position["avg_entry_price"]) == fill.price
    assert venue.account.cash == Decimal(100_000) - Decimal("0.123456789") * fill.price  # exact, no rounding


def test_notional_buy_fills_whole_at_notional_over_price() -> None:
    venue, market = make_venue()
    market.set_quote("AAPL", "100.00", "100.02", bid_size=1, ask_size=1)  # depth does not split a notional
    session = listening_session(venue)
    status, body = submit(venue, qty=None, notional="500.75")
    assert status == 200, body
    assert body["qty"] is None and body["notional"] == "500.75"
    fill = venue.fills[-1]
    assert fill.qty == (Decimal("500.75") / fill.price).quantize(Q, rounding="ROUND_DOWN")
    updates = events(session.drain())
    assert [u["event"] for u in updates][-1] == "fill"
    final = ok(venue, "GET", f"/v2/orders/{body['id']}")
    assert final["status"] == "filled" and final["qty"] is None and final["notional"] == "500.75"
    assert Decimal(final["filled_qty"]) == fill.qty
    assert venue.account.position_qty("AAPL") == fill.qty


def test_notional_sell_of_a_long_never_goes_short() -> None:
    venue, _ = make_venue()
    submit(venue, qty="2")
    status, body = submit(venue, side="sell", qty=None, notional="150")
    assert status == 200, body
    assert Decimal(0) < venue.account.position_qty("AAPL") < 2
    assert venue.fills[-1].qty == (Decimal(150) / venue.fills[-1].price).quantize(Q, rounding="ROUND_DOWN")


@pytest.mark.parametrize(
    ("order", "status", "message"),
    [
        ({"qty": "1", "notional": "100"}, 400, "qty and notional are mutually exclusive"),
        ({"qty": None, "notional": "0.99"}, 403, "cost basis must be >= minimal amount of order 1"),
        ({"qty": "0.001"}, 403, "cost basis must be >= minimal amount of order 1"),  # 0.001 x $100 = $0.10
        ({"qty": None, "notional": "100", "type": "limit", "limit_price": "100"}, 422, "notional orders must"),
        ({"qty": "0.5", "time_in_force": "gtc"}, 422, "fractional orders must"),
        ({"qty": "0.5", "side": "sell"}, 403, "fractional orders cannot be sold short"),
        ({"qty": None, "notional": "100", "side": "sell"}, 403, "fractional orders cannot be sold short"),
        ({"qty": "-0.5"}, 422, "qty must be > 0"),
        ({"qty": None, "notional": "-5"}, 422, "notional must be > 0"),
    ],
)
def test_fractional_and_notional_refusals_carry_alpacas_codes(order: dict[str, object], status: int,
                                                              message: str) -> None:
    venue, _ = make_venue()
    got, body = submit(venue, **order)
    assert got == status and message in body["message"], body
    assert body["code"] == {400: 40010001, 422: 40010001, 403: 40310000}[status]
    assert venue.fills == []


def test_a_non_fractionable_asset_takes_whole_shares_only() -> None:
    venue, _ = make_venue(non_fractionable=frozenset({"AAPL"}))
    assert submit(venue, qty="0.5") == (422, {"code": 40010001, "message": "requested asset is not fractionable"})
    assert submit(venue, qty=None, notional="50")[0] == 422
    assert submit(venue, qty="1")[0] == 200
    assert ok(venue, "GET", "/v2/assets/AAPL")["fractionable"] is False
    assert ok(venue, "GET", "/v2/assets/MSFT")["fractionable"] is True


def test_notional_order_reserves_its_dollars_and_is_refused_beyond_buying_power() -> None:
    venue, _ = make_venue(cash_usd=Decimal(1000), account_type="cash")
    status, body = submit(venue, qty=None, notional="1000.01")
    assert status == 403 and body["message"] == "insufficient buying power"


def test_notional_order_cannot_be_replaced() -> None:
    venue, _ = make_venue(start_ns=make_venue()[0].start_ns - 3600 * 10**9)  # before the open: it waits
    status, body = submit(venue, qty=None, notional="100")
    assert status == 200 and body["status"] == "accepted"
    got, error = call(venue, "PATCH", f"/v2/orders/{body['id']}", body={"qty": "2"})
    assert got == 422 and "notional" in error["message"]
