"""Account-side endpoints of the fake venue: account, configurations, positions, activities, history, clock,
calendar, assets, auth, routing and the data-API delegation — each checked against alpaca-py's models."""

from __future__ import annotations

import re
import sys
import types
import uuid
from decimal import Decimal
from typing import Any

import pytest
from alpaca.trading.models import (
    AccountConfiguration,
    Asset,
    Calendar,
    Clock,
    ClosePositionResponse,
    Order,
    PortfolioHistory,
    Position,
    TradeAccount,
    TradeActivity,
)

from adapters.fake.interfaces import RestResponse
from tests.fake.test_venue_support import (
    CLOSE_NS,
    MINUTE_NS,
    NEXT_OPEN_NS,
    START_NS,
    call,
    et_ns,
    make_venue,
    ok,
    request,
    submit,
)


def test_account_shape_and_money_identity() -> None:
    venue, _ = make_venue(cash_usd=Decimal(50_000))
    submit(venue, qty="100")  # long AAPL
    submit(venue, symbol="MSFT", side="sell", qty="40")  # short MSFT
    body = ok(venue, "GET", "/v2/account")
    account = TradeAccount(**body)
    assert account.status == "ACTIVE" and body["currency"] == "USD"
    numeric = {
        k: v
        for k, v in body.items()
        if k not in ("daytrade_count", "crypto_tier", "options_approved_level", "options_trading_level")
    }
    for key, value in numeric.items():
        assert not isinstance(value, (int, float)) or isinstance(value, bool), key
    cash, equity = Decimal(body["cash"]), Decimal(body["equity"])
    long_mv, short_mv = Decimal(body["long_market_value"]), Decimal(body["short_market_value"])
    assert long_mv == Decimal("100.01") * 100 and short_mv == Decimal("-50.005") * 40
    assert equity == cash + long_mv + short_mv  # short MV is negative on the wire
    assert body["portfolio_value"] == body["equity"] and body["last_equity"] == "50000"
    expected_bp = equity * 2 - (long_mv - short_mv)
    assert Decimal(body["buying_power"]) == expected_bp.quantize(Decimal("0.0001"))
    assert body["multiplier"] == "2"


def test_cash_account_buying_power_is_cash() -> None:
    venue, _ = make_venue(account_type="cash", cash_usd=Decimal(10_000))
    submit(venue, qty="10")
    body = ok(venue, "GET", "/v2/account")
    assert body["buying_power"] == body["cash"] and body["multiplier"] == "1" and not body["shorting_enabled"]


def test_last_equity_rolls_overnight_before_the_next_pre_open() -> None:
    venue, market = make_venue()
    submit(venue, qty="100")
    market.set_quote("AAPL", "110.00", "110.02", from_ns=START_NS + MINUTE_NS)
    venue.advance_to(CLOSE_NS + MINUTE_NS)
    closed_equity = Decimal(ok(venue, "GET", "/v2/account")["equity"])
    assert ok(venue, "GET", "/v2/account")["last_equity"] == "100000"  # the session just closed: still yesterday's
    venue.advance_to(NEXT_OPEN_NS - 5 * MINUTE_NS)  # an engine's pre-open start sees the close it is measured from
    assert Decimal(ok(venue, "GET", "/v2/account")["last_equity"]) == closed_equity
    venue.advance_to(NEXT_OPEN_NS)
    assert Decimal(ok(venue, "GET", "/v2/account")["last_equity"]) == closed_equity
    position = ok(venue, "GET", "/v2/positions/AAPL")
    assert position["lastday_price"] == "110.01" and position["change_today"] == "0"


def test_configurations_get_and_patch_with_full_alpaca_dump() -> None:
    venue, _ = make_venue()
    config = AccountConfiguration(**ok(venue, "GET", "/v2/account/configurations"))
    assert config.max_margin_multiplier == "4" and config.ptp_no_exception_entry is False
    dump = config.model_dump(mode="json")  # what alpaca-py PATCHes: every field, nulls included
    dump.update(max_margin_multiplier="1", no_shorting=True, max_options_trading_level=None, dtbp_check=None)
    patched = AccountConfiguration(**ok(venue, "PATCH", "/v2/account/configurations", body=dump))
    assert patched.max_margin_multiplier == "1" and patched.no_shorting
    assert patched.dtbp_check == "entry"  # null leaves it as is
    assert ok(venue, "GET", "/v2/account")["multiplier"] == "1"


@pytest.mark.parametrize(
    "body",
    [
        {"max_margin_multiplier": "8"},
        {"no_shorting": "yes"},
        {"pdt_check": "never"},
        {"trade_confirm_email": 1},
        {"max_options_trading_level": 9},
    ],
)
def test_configuration_patch_rejects_bad_values_atomically(body: dict[str, Any]) -> None:
    venue, _ = make_venue()
    before = ok(venue, "GET", "/v2/account/configurations")
    status, error = call(venue, "PATCH", "/v2/account/configurations", body={"suspend_trade": True, **body})
    assert (status, error["code"]) == (422, 40010001)
    assert ok(venue, "GET", "/v2/account/configurations") == before


def test_suspend_trade_blocks_orders() -> None:
    venue, _ = make_venue()
    ok(venue, "PATCH", "/v2/account/configurations", body={"suspend_trade": True})
    assert submit(venue)[0] == 403
    assert ok(venue, "GET", "/v2/account")["trading_blocked"] is True


def test_positions_by_symbol_and_asset_id() -> None:
    venue, _ = make_venue()
    submit(venue, qty="10")
    submit(venue, side="sell", qty="4", type="limit", limit_price="120", time_in_force="gtc")
    positions = ok(venue, "GET", "/v2/positions")
    assert len(positions) == 1
    position = Position(**positions[0])
    assert position.qty == "10" and position.side == "long" and position.qty_available == "6"
    by_id = ok(venue, "GET", f"/v2/positions/{positions[0]['asset_id']}")
    assert by_id == positions[0]
    assert Decimal(by_id["market_value"]) == Decimal("100.01") * 10
    assert Decimal(by_id["cost_basis"]) == venue.fills[0].price * 10
    assert call(venue, "GET", "/v2/positions/MSFT") == (404, {"code": 40410000, "message": "position does not exist"})


def test_close_position_returns_the_liquidating_order() -> None:
    venue, _ = make_venue()
    submit(venue, qty="10")
    closing = Order(**ok(venue, "DELETE", "/v2/positions/AAPL", query={"qty": "4"}))
    assert closing.side == "sell" and closing.qty == "4" and closing.type == "market"
    assert ok(venue, "GET", "/v2/positions/AAPL")["qty"] == "6"
    ok(venue, "DELETE", "/v2/positions/AAPL", query={"percentage": "50"})
    assert ok(venue, "GET", "/v2/positions/AAPL")["qty"] == "3"
    ok(venue, "DELETE", "/v2/positions/AAPL")
    assert ok(venue, "GET", "/v2/positions") == []
    assert call(venue, "DELETE", "/v2/positions/AAPL")[0] == 404
    submit(venue, qty="2")
    assert call(venue, "DELETE", "/v2/positions/AAPL", query={"qty": "5"})[0] == 422
    assert call(venue, "DELETE", "/v2/positions/AAPL", query={"qty": "1", "percentage": "5"})[0] == 422


def test_close_all_positions_207_and_cancel_orders_true() -> None:
    venue, _ = make_venue()
    submit(venue, qty="10")
    submit(venue, symbol="MSFT", side="sell", qty="5")
    submit(venue, side="sell", qty="10", type="limit", limit_price="130", time_in_force="gtc")  # holds AAPL
    status, body = call(venue, "DELETE", "/v2/positions")  # orders kept: AAPL is held
    assert status == 207
    parsed = {entry["symbol"]: ClosePositionResponse(**entry) for entry in body}
    assert parsed["AAPL"].status == 403 and parsed["AAPL"].body.code == 40310000
    assert parsed["MSFT"].status == 200 and isinstance(parsed["MSFT"].body, Order)
    status, body = call(venue, "DELETE", "/v2/positions", query={"cancel_orders": "True"})
    assert status == 207 and [(e["symbol"], e["status"]) for e in body] == [("AAPL", 200)]
    assert ok(venue, "GET", "/v2/positions") == [] and ok(venue, "GET", "/v2/orders") == []


def test_fill_activities_shape_paging_and_filters() -> None:
    venue, _ = make_venue()
    for minute in range(5):
        venue.advance_to(START_NS + minute * MINUTE_NS)
        submit(venue, qty="1")
    activities = ok(venue, "GET", "/v2/account/activities")
    assert len(activities) == 5
    for raw in activities:
        activity = TradeActivity(**raw)
        assert activity.activity_type == "FILL" and activity.type == "fill"
        assert re.fullmatch(r"\d{17}::[0-9a-f-]{36}", raw["id"])
    assert activities[0]["id"].startswith("20240102143400000::")  # newest first by default
    page1 = ok(venue, "GET", "/v2/account/activities/FILL", query={"page_size": "2", "direction": "asc"})
    page2 = ok(
        venue,
        "GET",
        "/v2/account/activities/FILL",
        query={"page_size": "2", "direction": "asc", "page_token": page1[-1]["id"]},
    )
    assert [a["id"] for a in page1 + page2] == [a["id"] for a in reversed(activities)][:4]
    after = ok(venue, "GET", "/v2/account/activities", query={"after": "2024-01-02T14:32:30Z"})
    assert len(after) == 2
    assert ok(venue, "GET", "/v2/account/activities", query={"activity_types": "DIV,FEE"}) == []
    assert len(ok(venue, "GET", "/v2/account/activities", query={"activity_types": "FILL,DIV"})) == 5
    assert len(ok(venue, "GET", "/v2/account/activities", query={"date": "2024-01-02"})) == 5
    assert call(venue, "GET", "/v2/account/activities", query={"page_size": "101"})[0] == 400
    assert call(venue, "GET", "/v2/account/activities", query={"page_token": "nope"})[0] == 400
    assert call(venue, "GET", "/v2/account/activities/fill!")[0] == 400


def test_portfolio_history_records_equity_each_bar() -> None:
    venue, market = make_venue()
    submit(venue, qty="100")
    market.set_quote("AAPL", "101.00", "101.02", from_ns=START_NS + 2 * MINUTE_NS)
    venue.advance_to(START_NS + 5 * MINUTE_NS)
    body = ok(venue, "GET", "/v2/account/portfolio/history", query={"period": "1D", "timeframe": "1Min"})
    history = PortfolioHistory(**body)
    assert history.timeframe == "1Min" and len(history.timestamp) == 5
    assert history.timestamp[0] == START_NS // 10**9 + 60
    assert len(history.equity) == len(history.profit_loss) == len(history.profit_loss_pct) == 5
    assert history.equity[-1] - history.equity[0] == pytest.approx(100.0)
    assert history.profit_loss[0] == 0.0 and history.base_value == history.equity[0]
    five = ok(venue, "GET", "/v2/account/portfolio/history", query={"period": "1D", "timeframe": "5Min"})
    assert five["timestamp"] == [START_NS // 10**9, START_NS // 10**9 + 300]
    assert call(venue, "GET", "/v2/account/portfolio/history", query={"timeframe": "2Min"})[0] == 400
    assert call(venue, "GET", "/v2/account/portfolio/history", query={"period": "1X"})[0] == 400


def test_clock_open_and_closed() -> None:
    venue, _ = make_venue()
    clock = Clock(**ok(venue, "GET", "/v2/clock"))
    assert clock.is_open and ok(venue, "GET", "/v2/clock")["timestamp"] == "2024-01-02T09:30:00-05:00"
    assert ok(venue, "GET", "/v2/clock")["next_close"] == "2024-01-02T16:00:00-05:00"
    venue.advance_to(CLOSE_NS + 30 * MINUTE_NS)
    closed = ok(venue, "GET", "/v2/clock")
    assert closed["is_open"] is False and closed["next_open"] == "2024-01-03T09:30:00-05:00"


def test_calendar_days_have_hhmm_times_and_settlement() -> None:
    venue, _ = make_venue()
    days = ok(venue, "GET", "/v2/calendar", query={"start": "2024-01-04", "end": "2024-01-08"})
    assert [(d["date"], d["open"], d["close"], d["settlement_date"]) for d in days] == [
        ("2024-01-04", "09:30", "16:00", "2024-01-05"),
        ("2024-01-05", "09:30", "16:00", "2024-01-08"),
        ("2024-01-08", "09:30", "16:00", "2024-01-09"),
    ]
    parsed = Calendar(**days[0])
    assert parsed.open.hour == 9 and parsed.close.hour == 16
    assert len(ok(venue, "GET", "/v2/calendar")) > 15
    assert call(venue, "GET", "/v2/calendar", query={"start": "junk"})[0] == 400


def test_assets_list_and_lookup() -> None:
    venue, _ = make_venue(non_shortable=frozenset({"MSFT"}))
    assets = ok(venue, "GET", "/v2/assets")
    assert [a["symbol"] for a in assets] == ["AAPL", "MSFT"]
    parsed = [Asset(**a) for a in assets]
    assert parsed[0].asset_class == "us_equity" and parsed[1].shortable is False and "class" in assets[0]
    assert ok(venue, "GET", f"/v2/assets/{assets[0]['id']}")["symbol"] == "AAPL"
    assert ok(venue, "GET", "/v2/assets/AAPL")["id"] == assets[0]["id"]
    assert call(venue, "GET", "/v2/assets/NOPE") == (404, {"code": 40410000, "message": "asset not found"})
    assert ok(venue, "GET", "/v2/assets", query={"status": "inactive"}) == []


def test_credentials_when_configured() -> None:
    venue, _ = make_venue(key_id="K1", secret_key="S1")
    unauthorized = (401, {"code": 40110000, "message": "request is not authorized"})
    assert call(venue, "GET", "/v2/account") == unauthorized  # helper sends KEY/SECRET
    assert call(venue, "GET", "/v2/account", headers={"apca-api-key-id": "K1"}) == unauthorized
    assert call(venue, "GET", "/v2/account", headers={"apca-api-key-id": "K1", "apca-api-secret-key": "S1"})[0] == 200
    anyone, _ = make_venue()
    bare = anyone.handle_rest(
        request("GET", "/v2/account", headers={"apca-api-key-id": "x", "apca-api-secret-key": ""})
    )
    assert bare.status == 401  # Alpaca refuses an empty secret, whatever the configured pair


def test_routing_404_405_and_no_redirect_on_trailing_slash() -> None:
    venue, _ = make_venue()
    assert call(venue, "GET", "/v2/nothing") == (404, {"code": 40410000, "message": "endpoint not found"})
    assert call(venue, "PUT", "/v2/orders") == (405, {"code": 40510000, "message": "method not allowed"})
    assert call(venue, "GET", "/v2/account/")[0] == 200
    assert [r.status for r in venue.request_log] == [404, 405, 200]
    response = venue.handle_rest(request("GET", "/v2/clock"))
    assert response.headers["Content-Type"].startswith("application/json")


def test_internal_error_becomes_recorded_500(monkeypatch: pytest.MonkeyPatch) -> None:
    venue, _ = make_venue()

    def boom() -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(venue, "account_figures", boom)
    assert call(venue, "GET", "/v2/account") == (500, {"code": 50010000, "message": "internal server error"})
    assert len(venue.internal_errors) == 1 and "RuntimeError('bug')" in venue.internal_errors[0]


def test_market_data_paths_are_delegated_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    venue, _ = make_venue(rate_limit_per_min=5)
    seen: list[str] = []
    fake = types.ModuleType("adapters.fake.data_rest")

    def handle_data(v: Any, req: Any) -> RestResponse:
        seen.append(req.path)
        assert v is venue
        return RestResponse(200, b'{"bars":{}}', {"Content-Type": "application/json"})

    fake.handle_data = handle_data  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "adapters.fake.data_rest", fake)
    response = venue.handle_rest(request("GET", "/v2/stocks/bars", query={"symbols": "AAPL"}))
    assert (response.status, response.body, seen) == (200, b'{"bars":{}}', ["/v2/stocks/bars"])
    assert response.headers["X-Ratelimit-Remaining"] == "4"
    trading = venue.handle_rest(request("GET", "/v2/clock"))
    assert trading.headers["X-Ratelimit-Remaining"] == "4"  # the data API has its own bucket


def test_market_data_paths_without_the_data_module_are_404(monkeypatch: pytest.MonkeyPatch) -> None:
    venue, _ = make_venue()
    monkeypatch.setitem(sys.modules, "adapters.fake.data_rest", None)
    status, body = call(venue, "GET", "/v2/stocks/bars")
    assert (status, body["code"]) == (404, 40410000) and venue.internal_errors == []


def test_uuid_ids_are_valid_and_asset_ids_stable() -> None:
    first, _ = make_venue(seed=1)
    second, _ = make_venue(seed=2)
    assert first.asset_id("AAPL") == second.asset_id("AAPL")
    assert uuid.UUID(first.account.account_id).version == 4
    assert first.account.account_id != second.account.account_id
    assert et_ns(2024, 1, 2, 9, 30) == START_NS


def test_portfolio_history_includes_the_live_point_before_any_bar_closes() -> None:
    venue, _ = make_venue()
    submit(venue, qty="10")
    venue.advance_to(START_NS + 20 * 10**9)
    body = ok(venue, "GET", "/v2/account/portfolio/history", query={"period": "1D", "timeframe": "1Min"})
    assert body["timestamp"] == [START_NS // 10**9]
    assert body["equity"] == [float(ok(venue, "GET", "/v2/account")["equity"])]


def test_a_starting_book_is_held_from_the_first_request() -> None:
    venue, _ = make_venue(positions=(("AAPL", Decimal(300), Decimal("90.00")), ("MSFT", Decimal(-100), Decimal("52"))))
    positions = {p["symbol"]: p for p in ok(venue, "GET", "/v2/positions")}
    assert positions["AAPL"]["qty"] == "300" and positions["AAPL"]["avg_entry_price"] == "90"
    assert positions["MSFT"]["qty"] == "-100" and positions["MSFT"]["side"] == "short"
    account = ok(venue, "GET", "/v2/account")
    marks = {"AAPL": Decimal("100.01"), "MSFT": Decimal("50.005")}
    expected = Decimal(100_000) + 300 * marks["AAPL"] - 100 * marks["MSFT"]
    assert Decimal(account["equity"]) == expected
    assert Decimal(account["last_equity"]) == expected  # held at the eve's close: no P&L on the first morning


def test_a_starting_position_must_be_priced_and_non_zero() -> None:
    with pytest.raises(ValueError, match="starting position"):
        make_venue(positions=(("TSLA", Decimal(1), Decimal(1)),))
    with pytest.raises(ValueError, match="starting position"):
        make_venue(positions=(("AAPL", Decimal(0), Decimal(1)),))
