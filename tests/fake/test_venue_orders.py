"""Order entry on the fake venue: submit/get/list/replace/cancel, every rejection, alpaca-py model conformance."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from alpaca.trading.models import Order, TradeUpdate
from alpaca.trading.requests import CancelOrderResponse

from tests.fake.test_venue_support import (
    CLOSE_NS,
    MINUTE_NS,
    NEXT_OPEN_NS,
    START_NS,
    call,
    et_ns,
    events,
    listening_session,
    make_venue,
    ok,
    submit,
)


def test_market_order_accepted_then_new_and_fill_on_the_stream() -> None:
    venue, _ = make_venue()
    session = listening_session(venue)
    status, body = submit(venue, client_order_id="c-1")
    assert status == 200
    order = Order(**body)  # alpaca-py's strict model is the oracle
    assert order.status == "accepted" and body["order_class"] == "" and body["filled_qty"] == "0"
    assert order.client_order_id == "c-1" and body["qty"] == "10"
    updates = events(session.drain())
    assert [u["event"] for u in updates] == ["new", "fill"]
    for update in updates:
        TradeUpdate(**update)
    fill = updates[1]
    assert fill["order"]["status"] == "filled" and fill["qty"] == "10" and fill["position_qty"] == "10"
    assert uuid.UUID(fill["execution_id"])
    again = ok(venue, "GET", f"/v2/orders/{body['id']}")
    assert again["status"] == "filled" and again["filled_avg_price"] == fill["price"]
    assert [(o.client_order_id, o.qty) for o in venue.order_log] == [("c-1", Decimal(10))]
    assert len(venue.fills) == 1 and venue.fills[0].order_id == body["id"]


@pytest.mark.parametrize("qty", [10, 10.0, "10", "10.0"])
def test_qty_as_json_number_or_string(qty: Any) -> None:
    venue, _ = make_venue()
    status, body = submit(venue, qty=qty)
    assert status == 200 and body["qty"] == "10"


def test_generated_client_order_id_is_a_uuid() -> None:
    venue, _ = make_venue()
    _, body = submit(venue)
    assert str(uuid.UUID(body["client_order_id"])) == body["client_order_id"]


def test_client_order_id_is_unique_forever_even_after_cancel() -> None:
    venue, _ = make_venue()
    _, body = submit(venue, type="limit", limit_price="90", time_in_force="gtc", client_order_id="dup")
    assert call(venue, "DELETE", f"/v2/orders/{body['id']}")[0] == 204
    status, error = submit(venue, type="limit", limit_price="90", client_order_id="dup")
    assert (status, error) == (422, {"code": 40010001, "message": "client_order_id must be unique"})
    assert len(venue.order_log) == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"qty": "0"}, "qty must be > 0"),
        ({"qty": "-1"}, "qty must be > 0"),
        ({"qty": True}, "invalid qty"),
        ({"qty": "abc"}, "invalid qty"),
        ({"qty": None}, "qty or notional is required"),
        ({"side": "hold"}, "invalid side"),
        ({"type": "iceberg"}, "invalid order type"),
        ({"time_in_force": "forever"}, "invalid time_in_force"),
        ({"time_in_force": "opg"}, "not supported"),
        ({"symbol": ""}, "symbol is required"),
        ({"symbol": "ZZZZ"}, 'asset "ZZZZ" not found'),
        ({"notional": "100", "qty": None, "type": "limit", "limit_price": "100"}, "notional orders must be"),
        ({"notional": "100", "qty": None, "time_in_force": "gtc"}, "notional orders must be"),
        ({"qty": "0.1234567891"}, "at most 9 decimal places"),
        ({"type": "limit"}, "limit_price is required"),
        ({"limit_price": "100"}, "limit_price is not allowed for market"),
        ({"type": "stop"}, "stop_price is required"),
        ({"type": "limit", "limit_price": "100.001"}, "sub-penny"),
        ({"type": "limit", "limit_price": "-1"}, "limit_price must be > 0"),
        ({"qty": "1.5", "type": "limit", "limit_price": "100"}, "fractional"),
        ({"extended_hours": True}, "extended hours order must be DAY limit orders"),
        ({"client_order_id": "x" * 129}, "no more than 128"),
        ({"order_class": "bracket"}, "require take_profit and stop_loss"),
        (
            {
                "order_class": "bracket",
                "type": "stop",
                "stop_price": "101",
                "take_profit": {"limit_price": "110"},
                "stop_loss": {"stop_price": "90"},
            },
            "limit or market",
        ),
        (
            {
                "order_class": "bracket",
                "time_in_force": "ioc",
                "take_profit": {"limit_price": "110"},
                "stop_loss": {"stop_price": "90"},
            },
            "day or gtc",
        ),
        (
            {"order_class": "bracket", "take_profit": {"limit_price": "90"}, "stop_loss": {"stop_price": "95"}},
            "take_profit.limit_price must be greater",
        ),
        (
            {
                "order_class": "bracket",
                "type": "limit",
                "limit_price": "100",
                "take_profit": {"limit_price": "99"},
                "stop_loss": {"stop_price": "95"},
            },
            "beyond the entry",
        ),
        (
            {"order_class": "oto", "take_profit": {"limit_price": "110"}, "stop_loss": {"stop_price": "90"}},
            "exactly one",
        ),
        (
            {"order_class": "oco", "take_profit": {"limit_price": "110"}, "stop_loss": {"stop_price": "90"}},
            "oco orders must be limit orders",
        ),
        ({"take_profit": {"limit_price": "110"}}, "need order_class"),
        ({"type": "trailing_stop"}, "exactly one of trail_price or trail_percent"),
        ({"type": "trailing_stop", "trail_percent": "150"}, "trail_percent must be"),
        ({"trail_price": "1"}, "only for trailing_stop"),
    ],
)
def test_validation_errors_are_422_40010001(overrides: dict[str, Any], message: str) -> None:
    venue, _ = make_venue()
    status, body = submit(venue, **overrides)
    assert status == 422, body
    assert body["code"] == 40010001 and message in body["message"]
    assert venue.order_log == [] and venue.internal_errors == []


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"", b"\xff\xfe"])
def test_malformed_body_is_400_40010000(raw: bytes) -> None:
    venue, _ = make_venue()
    status, body = call(venue, "POST", "/v2/orders", raw=raw)
    assert (status, body["code"]) == (400, 40010000)


def test_insufficient_buying_power_403_with_amounts() -> None:
    venue, _ = make_venue(account_type="cash", cash_usd=Decimal(1000))
    status, body = submit(venue, qty="11")
    assert status == 403
    assert body == {
        "code": 40310000,
        "message": "insufficient buying power",
        "buying_power": "1000",
        "cost_basis": "1100.22",
    }
    assert submit(venue, qty="9")[0] == 200


def test_open_orders_hold_buying_power() -> None:
    venue, _ = make_venue(account_type="cash", cash_usd=Decimal(1000))
    assert submit(venue, qty="6", type="limit", limit_price="90", time_in_force="gtc")[0] == 200  # holds 540
    status, body = submit(venue, qty="5", type="limit", limit_price="95", time_in_force="gtc")  # needs 475
    assert status == 403 and body["buying_power"] == "460"


def test_margin_buying_power_honours_max_margin_multiplier() -> None:
    venue, _ = make_venue(account_type="margin_experienced", cash_usd=Decimal(10_000))
    assert ok(venue, "GET", "/v2/account")["buying_power"] == "20000"
    assert submit(venue, qty="150")[0] == 200  # 15k > cash: needs margin
    ok(venue, "PATCH", "/v2/account/configurations", body={"max_margin_multiplier": "1"})
    status, body = submit(venue, qty="1", type="limit", limit_price="100", time_in_force="gtc")
    assert status == 403 and body["message"] == "insufficient buying power"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"account_type": "cash"}, "account is not allowed to short"),
        ({"non_shortable": frozenset({"AAPL"})}, "asset AAPL is not shortable"),
    ],
)
def test_short_sale_refused(config: dict[str, Any], message: str) -> None:
    venue, _ = make_venue(**config)
    status, body = submit(venue, side="sell")
    assert (status, body) == (403, {"code": 40310000, "message": message})


def test_no_shorting_configuration_refuses_short_sales() -> None:
    venue, _ = make_venue()
    ok(venue, "PATCH", "/v2/account/configurations", body={"no_shorting": True})
    assert submit(venue, side="sell")[1]["message"] == "account is not allowed to short"


def test_margin_account_may_short() -> None:
    venue, _ = make_venue()
    status, body = submit(venue, side="sell", qty="5")
    assert status == 200 and body["position_intent"] == "sell_to_open"
    position = ok(venue, "GET", "/v2/positions/AAPL")
    assert position["qty"] == "-5" and position["side"] == "short"
    assert venue.account.activities[-1].side == "sell_short"


def test_selling_more_than_held_is_403_with_quantities() -> None:
    venue, _ = make_venue()
    submit(venue, qty="10")
    submit(venue, side="sell", qty="4", type="limit", limit_price="120", time_in_force="gtc")
    status, body = submit(venue, side="sell", qty="7", type="limit", limit_price="121", time_in_force="gtc")
    assert status == 403 and body["code"] == 40310000
    assert body["message"] == "insufficient qty available for order (requested: 7, available: 6)"
    assert (body["available"], body["existing_qty"], body["held_for_orders"], body["symbol"]) == (
        "6",
        "10",
        "4",
        "AAPL",
    )
    assert len(body["related_orders"]) == 1


def test_wash_trade_detected_against_crossing_opposite_order() -> None:
    venue, _ = make_venue()
    submit(venue, qty="10")
    submit(venue, type="limit", limit_price="99", time_in_force="gtc")  # resting buy at 99
    wash = (422, {"code": 42210000, "message": "potential wash trade detected. use complex orders"})
    assert submit(venue, side="sell", type="limit", limit_price="98.5", time_in_force="gtc") == wash
    assert submit(venue, side="sell") == wash  # a market order could cross anything
    assert submit(venue, side="sell", type="limit", limit_price="101", time_in_force="gtc")[0] == 200


def test_bracket_legs_do_not_trip_the_wash_check_but_block_a_new_opposite_order() -> None:
    venue, _ = make_venue()
    status, _ = submit(venue, order_class="bracket", take_profit={"limit_price": "110"}, stop_loss={"stop_price": "95"})
    assert status == 200
    # The active stop-loss leg (sell stop 95) could cross a new buy at the market: Alpaca rejects it.
    assert submit(venue)[1]["code"] == 42210000


def _day_trade(venue: Any, qty: str = "1") -> tuple[int, Any]:
    assert submit(venue, qty=qty)[0] == 200
    return submit(venue, side="sell", qty=qty)


def test_pattern_day_trading_protection_blocks_the_fourth_day_trade() -> None:
    venue, _ = make_venue(cash_usd=Decimal(20_000))
    for _ in range(3):
        assert _day_trade(venue)[0] == 200
    assert ok(venue, "GET", "/v2/account")["daytrade_count"] == 3
    status, body = _day_trade(venue)
    assert (status, body) == (403, {"code": 40310100, "message": "trade denied due to pattern day trading protection"})
    # Holding overnight is not a day trade: the next session may close it.
    venue.advance_to(NEXT_OPEN_NS + MINUTE_NS)
    assert submit(venue, side="sell", qty="1")[0] == 200


def test_pattern_day_trading_protection_spares_large_and_cash_accounts() -> None:
    for config in ({"cash_usd": Decimal(30_000)}, {"cash_usd": Decimal(20_000), "account_type": "cash"}):
        venue, _ = make_venue(**config)
        for _ in range(4):
            assert _day_trade(venue)[0] == 200


def test_flagged_pattern_day_trader_under_25k_cannot_day_trade() -> None:
    venue, _ = make_venue(cash_usd=Decimal(20_000), pattern_day_trader=True)
    assert _day_trade(venue)[1]["code"] == 40310100


def test_day_orders_outside_hours_are_accepted_and_routed_at_the_open() -> None:
    venue, _ = make_venue(start_ns=et_ns(2024, 1, 2, 8, 0))
    session = listening_session(venue)
    status, body = submit(venue)
    assert status == 200 and body["status"] == "accepted"
    assert events(session.drain()) == []
    venue.advance_to(START_NS - 1)
    assert ok(venue, "GET", f"/v2/orders/{body['id']}")["status"] == "accepted"
    venue.advance_to(START_NS)
    assert [u["event"] for u in events(session.drain())] == ["new", "fill"]
    assert venue.fills[0].ts_ns == START_NS


def test_get_orders_filters_and_ordering() -> None:
    venue, _ = make_venue()
    submit(venue, client_order_id="a")  # filled
    venue.advance_to(START_NS + MINUTE_NS)
    submit(venue, client_order_id="b", type="limit", limit_price="90", time_in_force="gtc")
    venue.advance_to(START_NS + 2 * MINUTE_NS)
    submit(venue, client_order_id="c", symbol="MSFT", side="sell", type="limit", limit_price="60", time_in_force="gtc")

    def ids(**query: str) -> list[str]:
        return [o["client_order_id"] for o in ok(venue, "GET", "/v2/orders", query=query)]

    assert ids() == ["c", "b"]
    assert ids(status="closed") == ["a"]
    assert ids(status="all", direction="asc") == ["a", "b", "c"]
    assert ids(status="all", limit="1") == ["c"]
    assert ids(status="all", symbols="AAPL") == ["b", "a"]
    assert ids(status="all", side="sell") == ["c"]
    assert ids(status="all", after="2024-01-02T14:30:30Z") == ["c", "b"]
    assert ids(status="all", until="2024-01-02T14:31:00Z") == ["a"]
    for raw in ok(venue, "GET", "/v2/orders", query={"status": "all"}):
        Order(**raw)
    status, body = call(venue, "GET", "/v2/orders", query={"status": "pending"})
    assert (status, body["code"]) == (400, 40010001)


def test_nested_rolls_bracket_legs_under_their_parent() -> None:
    venue, _ = make_venue()
    submit(
        venue,
        client_order_id="p",
        order_class="bracket",
        take_profit={"limit_price": "110"},
        stop_loss={"stop_price": "95"},
    )
    flat = ok(venue, "GET", "/v2/orders", query={"status": "all"})
    assert len(flat) == 3 and all(o["legs"] is None for o in flat)
    nested = ok(venue, "GET", "/v2/orders", query={"status": "open", "nested": "True"})
    assert [o["client_order_id"] for o in nested] == ["p"]  # filled parent listed for its open legs
    legs = Order(**nested[0]).legs
    assert legs is not None and [leg.status for leg in legs] == ["new", "new"]
    assert {leg.type for leg in legs} == {"limit", "stop"}


def test_get_order_by_client_order_id_literal_path() -> None:
    venue, _ = make_venue()
    _, body = submit(venue, client_order_id="mine")
    found = ok(venue, "GET", "/v2/orders:by_client_order_id", query={"client_order_id": "mine"})
    assert found["id"] == body["id"]
    missing = call(venue, "GET", "/v2/orders:by_client_order_id", query={"client_order_id": "nope"})
    assert missing == (404, {"code": 40410000, "message": "order not found"})
    assert call(venue, "GET", "/v2/orders:by_client_order_id")[0] == 400
    assert call(venue, "GET", f"/v2/orders/{uuid.UUID(int=1)}") == (
        404,
        {"code": 40410000, "message": "order not found"},
    )


def test_cancel_order_204_then_422_and_404() -> None:
    venue, _ = make_venue()
    session = listening_session(venue)
    _, body = submit(venue, type="limit", limit_price="90", time_in_force="gtc")
    response = venue.handle_rest(_delete(f"/v2/orders/{body['id']}"))
    assert response.status == 204 and response.body == b""
    assert [u["event"] for u in events(session.drain())] == ["new", "canceled"]
    canceled = ok(venue, "GET", f"/v2/orders/{body['id']}")
    assert canceled["status"] == "canceled" and canceled["canceled_at"] is not None
    again = call(venue, "DELETE", f"/v2/orders/{body['id']}")
    assert again == (422, {"code": 42210000, "message": 'order is already in "canceled" state'})
    _, filled = submit(venue)
    assert call(venue, "DELETE", f"/v2/orders/{filled['id']}")[1]["message"] == 'order is already in "filled" state'
    assert call(venue, "DELETE", f"/v2/orders/{uuid.UUID(int=7)}")[0] == 404


def _delete(path: str) -> Any:
    from tests.fake.test_venue_support import request

    return request("DELETE", path)


def test_cancel_all_is_207_with_one_entry_per_canceled_order() -> None:
    venue, _ = make_venue()
    submit(venue, client_order_id="x", type="limit", limit_price="90", time_in_force="gtc")
    submit(venue, client_order_id="y", symbol="MSFT", type="limit", limit_price="40", time_in_force="day")
    submit(venue, client_order_id="done")
    status, body = call(venue, "DELETE", "/v2/orders")
    assert status == 207
    parsed = [CancelOrderResponse(**entry) for entry in body]
    assert [p.status for p in parsed] == [200, 200]
    assert [entry["body"]["client_order_id"] for entry in body] == ["x", "y"]
    assert all(entry["body"]["status"] == "canceled" for entry in body)
    assert call(venue, "DELETE", "/v2/orders") == (207, [])


def test_cancel_bracket_entry_cancels_its_held_legs() -> None:
    venue, _ = make_venue()
    _, parent = submit(
        venue,
        type="limit",
        limit_price="95",
        time_in_force="gtc",
        order_class="bracket",
        take_profit={"limit_price": "110"},
        stop_loss={"stop_price": "90"},
    )
    assert [leg["status"] for leg in parent["legs"]] == ["held", "held"]
    status, body = call(venue, "DELETE", "/v2/orders")
    assert status == 207 and len(body) == 3
    assert {o.status for o in venue.book.orders()} == {"canceled"}


def test_replace_creates_new_order_and_marks_old_replaced() -> None:
    venue, _ = make_venue()
    session = listening_session(venue)
    _, old = submit(venue, type="limit", limit_price="90", time_in_force="gtc", client_order_id="v1")
    status, new = call(
        venue, "PATCH", f"/v2/orders/{old['id']}", body={"limit_price": 91.5, "qty": 12, "client_order_id": "v2"}
    )
    assert status == 200
    Order(**new)
    assert (new["replaces"], new["limit_price"], new["qty"], new["client_order_id"]) == (old["id"], "91.5", "12", "v2")
    previous = ok(venue, "GET", f"/v2/orders/{old['id']}")
    assert previous["status"] == "replaced" and previous["replaced_by"] == new["id"]
    assert [u["event"] for u in events(session.drain())] == ["new", "replaced", "new"]
    assert call(venue, "PATCH", f"/v2/orders/{old['id']}", body={"limit_price": 92})[1]["code"] == 42210000
    reuse = call(venue, "PATCH", f"/v2/orders/{new['id']}", body={"limit_price": 92, "client_order_id": "v1"})
    assert reuse == (422, {"code": 40010001, "message": "client_order_id must be unique"})
    assert call(venue, "PATCH", f"/v2/orders/{new['id']}", body={})[0] == 422
    assert call(venue, "PATCH", f"/v2/orders/{new['id']}", body={"stop_price": 80})[0] == 422


def test_replace_bracket_stop_leg_keeps_the_oco_link() -> None:
    venue, market = make_venue()
    _, parent = submit(venue, order_class="bracket", take_profit={"limit_price": "110"}, stop_loss={"stop_price": "95"})
    stop_leg = next(leg for leg in parent["legs"] if leg["type"] == "stop")
    status, new_stop = call(venue, "PATCH", f"/v2/orders/{stop_leg['id']}", body={"stop_price": "97"})
    assert status == 200
    refreshed = ok(venue, "GET", f"/v2/orders/{parent['id']}")
    assert new_stop["id"] in [leg["id"] for leg in refreshed["legs"]]
    market.set_quote("AAPL", "96.90", "96.92", from_ns=START_NS + MINUTE_NS)
    venue.advance_to(START_NS + MINUTE_NS)
    statuses = {leg["type"]: leg["status"] for leg in ok(venue, "GET", f"/v2/orders/{parent['id']}")["legs"]}
    assert statuses == {"limit": "canceled", "stop": "filled"}
    assert ok(venue, "GET", "/v2/positions") == []


def test_day_order_submitted_after_close_lives_for_the_next_session() -> None:
    venue, _ = make_venue(start_ns=CLOSE_NS + MINUTE_NS)
    _, body = submit(venue, type="limit", limit_price="90")
    venue.advance_to(NEXT_OPEN_NS + MINUTE_NS)
    assert ok(venue, "GET", f"/v2/orders/{body['id']}")["status"] == "new"
    venue.advance_to(et_ns(2024, 1, 3, 16, 0))
    assert ok(venue, "GET", f"/v2/orders/{body['id']}")["status"] == "expired"


def test_live_bracket_exits_hold_the_position_once() -> None:
    venue, _ = make_venue()
    submit(venue, order_class="bracket", take_profit={"limit_price": "110"}, stop_loss={"stop_price": "95"})
    assert ok(venue, "GET", "/v2/positions/AAPL")["qty_available"] == "0"
    status, body = submit(venue, side="sell", qty="1", type="limit", limit_price="120", time_in_force="gtc")
    assert status == 403 and (body["available"], body["held_for_orders"]) == ("0", "10")
