"""alpaca-py 0.44, unchanged, against the loopback fake (``url_override``): the SDK is the conformance oracle.

The server runs on a free 127.0.0.1 port in a trio thread; the SDK (sync requests, asyncio streams) runs in
this thread and in its own stream threads. The fake's clock runs 60 session-seconds per wall second.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
import requests
import trio
from alpaca.common.exceptions import APIError
from alpaca.data.enums import DataFeed
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.live import StockDataStream
from alpaca.data.models import Bar, Quote
from alpaca.data.requests import (
    StockBarsRequest,
    StockLatestBarRequest,
    StockLatestQuoteRequest,
    StockLatestTradeRequest,
    StockQuotesRequest,
    StockSnapshotRequest,
    StockTradesRequest,
)
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass, OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.models import TradeUpdate
from alpaca.trading.requests import (
    ClosePositionRequest,
    GetCalendarRequest,
    GetOrdersRequest,
    GetPortfolioHistoryRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
)
from alpaca.trading.stream import TradingStream

from adapters.fake.calendar import ns_at
from tools.cmd_fake_alpaca import FakeAlpacaOptions, build_server

KEY, SECRET = "conformance-key", "conformance-secret"
UTC = dt.UTC
WAIT_S = 20.0  # wall seconds to wait for something the fake does on its next tick (ticks ~1 s apart)


class RunningFake:
    """A LoopbackServer in a trio thread; ``url`` is http://127.0.0.1:PORT."""

    def __init__(self, opts: FakeAlpacaOptions) -> None:
        self.server = build_server(opts)
        self._ready = threading.Event()
        self._box: dict[str, Any] = {}
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True, name="fake-alpaca")

    async def _main(self) -> None:
        stop = trio.Event()
        self._box.update(stop=stop, token=trio.lowlevel.current_trio_token())
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                partial(self.server.serve, "127.0.0.1", 0, shutdown_trigger=stop.wait)
            )
            self._box["url"] = binds[0]
            self._ready.set()

    def __enter__(self) -> RunningFake:
        self._thread.start()
        assert self._ready.wait(60), "fake-alpaca did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        trio.from_thread.run_sync(self._box["stop"].set, trio_token=self._box["token"])
        self._thread.join(15)
        assert not self._thread.is_alive(), "fake-alpaca did not stop"

    @property
    def url(self) -> str:
        return str(self._box["url"])

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)

    @property
    def venue(self) -> Any:
        return self.server.venue


@pytest.fixture(scope="module")
def fake() -> Iterator[RunningFake]:
    opts = FakeAlpacaOptions(
        seed=3,
        symbols=("NVDA", "ORCL", "YHOO"),
        speed=60.0,
        rate_limit_per_min=0,
        key_id=KEY,
        secret_key=SECRET,
    )
    with RunningFake(opts) as running:
        yield running


@pytest.fixture(scope="module")
def trading(fake: RunningFake) -> TradingClient:
    return TradingClient(KEY, SECRET, url_override=fake.url)


@pytest.fixture(scope="module")
def data(fake: RunningFake) -> StockHistoricalDataClient:
    return StockHistoricalDataClient(KEY, SECRET, url_override=fake.url)


def wait_until(check: Callable[[], Any], timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {check}")
        time.sleep(0.05)


def filled(trading: TradingClient, order_id: Any) -> Any:
    return wait_until(lambda: (o := trading.get_order_by_id(order_id)).status == OrderStatus.FILLED and o)


def test_account_clock_calendar_assets_and_configurations(trading: TradingClient) -> None:
    account = trading.get_account()
    assert account.status.value == "ACTIVE" and Decimal(account.cash) == Decimal(100_000)
    clock = trading.get_clock()
    assert clock.is_open and clock.timestamp.date() == dt.date(2014, 6, 2)
    assert clock.next_close == dt.datetime(2014, 6, 2, 16, 0, tzinfo=clock.next_close.tzinfo)
    days = trading.get_calendar(GetCalendarRequest(start=dt.date(2014, 6, 30), end=dt.date(2014, 7, 7)))
    assert [d.date for d in days] == [
        dt.date(2014, 6, 30),
        dt.date(2014, 7, 1),
        dt.date(2014, 7, 2),
        dt.date(2014, 7, 3),
        dt.date(2014, 7, 7),
    ]  # July 4th is a holiday
    assert days[3].close.hour == 13  # the early close before it
    assets = trading.get_all_assets()
    assert {a.symbol for a in assets} >= {"NVDA", "ORCL", "YHOO"}
    nvda = trading.get_asset("NVDA")
    assert nvda.symbol == "NVDA" and nvda.tradable
    config = trading.get_account_configurations()
    assert config.no_shorting is False
    config.no_shorting = True
    updated = trading.set_account_configurations(config)
    assert updated.no_shorting is True and trading.get_account_configurations().no_shorting is True
    updated.no_shorting = False
    trading.set_account_configurations(updated)


def test_market_limit_stop_and_bracket_orders(trading: TradingClient) -> None:
    market = trading.submit_order(
        MarketOrderRequest(symbol="ORCL", qty=5, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    assert market.status in (
        OrderStatus.ACCEPTED,
        OrderStatus.NEW,
        OrderStatus.PENDING_NEW,
        OrderStatus.FILLED,
    )
    done = filled(trading, market.id)
    assert Decimal(str(done.filled_qty)) == 5 and done.filled_avg_price is not None
    limit = trading.submit_order(
        LimitOrderRequest(
            symbol="ORCL",
            qty=3,
            side=OrderSide.BUY,
            limit_price=1.00,
            time_in_force=TimeInForce.GTC,
            client_order_id="conf-limit",
        )
    )
    assert limit.type.value == "limit" and limit.client_order_id == "conf-limit"
    stop = trading.submit_order(
        StopOrderRequest(
            symbol="NVDA", qty=2, side=OrderSide.BUY, stop_price=99.00, time_in_force=TimeInForce.DAY
        )
    )
    assert stop.type.value == "stop"
    bracket = trading.submit_order(
        LimitOrderRequest(
            symbol="YHOO",
            qty=4,
            side=OrderSide.BUY,
            limit_price=10.00,
            time_in_force=TimeInForce.GTC,
            order_class=OrderClass.BRACKET,
            take_profit=TakeProfitRequest(limit_price=90.00),
            stop_loss=StopLossRequest(stop_price=5.00),
        )
    )
    assert bracket.order_class == OrderClass.BRACKET
    assert bracket.legs is not None and len(bracket.legs) == 2
    assert {leg.status for leg in bracket.legs} == {OrderStatus.HELD}
    open_orcl = trading.get_orders(
        GetOrdersRequest(status=QueryOrderStatus.OPEN, symbols=["ORCL"], side=OrderSide.BUY)
    )
    assert [o.id for o in open_orcl] == [limit.id]
    everything = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, limit=500, nested=True))
    assert {market.id, limit.id, stop.id, bracket.id} <= {o.id for o in everything}
    assert trading.get_order_by_client_id("conf-limit").id == limit.id
    assert trading.get_order_by_id(stop.id).symbol == "NVDA"


def test_replace_and_cancel(trading: TradingClient) -> None:
    resting = trading.submit_order(
        LimitOrderRequest(
            symbol="NVDA", qty=1, side=OrderSide.BUY, limit_price=1.50, time_in_force=TimeInForce.GTC
        )
    )
    replacement = trading.replace_order_by_id(resting.id, ReplaceOrderRequest(limit_price=1.75, qty=2))
    assert replacement.id != resting.id and replacement.replaces == resting.id
    assert float(replacement.limit_price) == 1.75
    old = wait_until(lambda: (o := trading.get_order_by_id(resting.id)).status == OrderStatus.REPLACED and o)
    assert old.replaced_by == replacement.id
    assert trading.cancel_order_by_id(replacement.id) is None
    canceled = wait_until(
        lambda: (
            (o := trading.get_order_by_id(replacement.id)).status
            in (OrderStatus.CANCELED, OrderStatus.PENDING_CANCEL)
            and o
        )
    )
    assert canceled.symbol == "NVDA"
    trading.submit_order(
        LimitOrderRequest(
            symbol="NVDA", qty=1, side=OrderSide.BUY, limit_price=1.10, time_in_force=TimeInForce.GTC
        )
    )
    responses = trading.cancel_orders()
    assert responses and all(r.status == 200 for r in responses)
    assert trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN)) == []


def test_positions_close_and_portfolio_history(trading: TradingClient) -> None:
    for symbol, qty in (("NVDA", 10), ("YHOO", 6)):
        order = trading.submit_order(
            MarketOrderRequest(symbol=symbol, qty=qty, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
        )
        filled(trading, order.id)
    positions = {p.symbol: p for p in trading.get_all_positions()}
    assert {"NVDA", "YHOO"} <= set(positions) and Decimal(positions["NVDA"].qty) >= 10
    nvda = trading.get_open_position("NVDA")
    assert nvda.side.value == "long" and Decimal(nvda.avg_entry_price) > 0
    closing = trading.close_position("NVDA", ClosePositionRequest(qty="4"))
    assert closing.side == OrderSide.SELL and Decimal(str(closing.qty)) == 4
    filled(trading, closing.id)
    results = trading.close_all_positions(cancel_orders=True)
    assert {r.symbol for r in results} >= {"NVDA", "YHOO"} and all(r.status == 200 for r in results)
    wait_until(lambda: trading.get_all_positions() == [])
    history = trading.get_portfolio_history(GetPortfolioHistoryRequest(period="1D", timeframe="1Min"))
    assert history.timeframe and len(history.timestamp) == len(history.equity) > 0


def test_api_errors_carry_alpaca_codes(trading: TradingClient) -> None:
    trading.submit_order(
        LimitOrderRequest(
            symbol="NVDA",
            qty=1,
            side=OrderSide.BUY,
            limit_price=1.00,
            time_in_force=TimeInForce.DAY,
            client_order_id="conf-dup",
        )
    )
    with pytest.raises(APIError) as dup:
        trading.submit_order(
            LimitOrderRequest(
                symbol="NVDA",
                qty=1,
                side=OrderSide.BUY,
                limit_price=1.00,
                time_in_force=TimeInForce.DAY,
                client_order_id="conf-dup",
            )
        )
    assert dup.value.status_code == 422 and dup.value.code == 40010001
    with pytest.raises(APIError) as missing:
        trading.get_order_by_id(uuid.UUID(int=7))
    assert missing.value.status_code == 404 and missing.value.code == 40410000
    with pytest.raises(APIError) as poor:
        trading.submit_order(
            MarketOrderRequest(
                symbol="NVDA", qty=1_000_000, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
            )
        )
    assert poor.value.status_code == 403 and poor.value.code == 40310000
    with pytest.raises(APIError) as nobody:
        TradingClient("wrong", "keys", url_override=trading._base_url).get_account()
    assert nobody.value.status_code == 401
    trading.cancel_orders()


def test_http_details_no_redirects_and_rate_limit_headers(fake: RunningFake) -> None:
    headers = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
    r = requests.get(f"{fake.url}/v2/account/", headers=headers, allow_redirects=False, timeout=10)
    assert not r.is_redirect and r.status_code in (200, 404)  # never a trailing-slash redirect
    r = requests.get(f"{fake.url}/v2/clock", headers=headers, timeout=10)
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= {
        k.lower() for k in r.headers
    }


def test_historical_data(data: StockHistoricalDataClient, fake: RunningFake) -> None:
    wait_until(lambda: fake.venue.now_ns >= ns_at("2014-06-02", "09:32"))  # today has completed bars
    before = sum(1 for r in list(fake.venue.request_log) if r.path == "/v2/stocks/bars")
    bars = data.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols=["NVDA", "ORCL", "YHOO"],
            timeframe=TimeFrame.Minute,
            start=dt.datetime(2014, 5, 19, tzinfo=UTC),
            end=dt.datetime(2014, 5, 31, tzinfo=UTC),
            feed=DataFeed.IEX,
        )
    )
    pages = sum(1 for r in list(fake.venue.request_log) if r.path == "/v2/stocks/bars") - before
    assert {s: len(v) for s, v in bars.data.items()} == {
        "NVDA": 3510,
        "ORCL": 3510,
        "YHOO": 3510,
    }  # 9 sessions
    assert pages == 2  # 10530 bars, 10000 per SDK page: it followed next_page_token once
    first = bars.data["NVDA"][0]
    assert isinstance(first, Bar) and first.timestamp == dt.datetime(2014, 5, 19, 13, 30, tzinfo=UTC)
    assert bars.data["YHOO"][-1].timestamp == dt.datetime(2014, 5, 30, 19, 59, tzinfo=UTC)
    assert first.vwap is not None and first.trade_count is not None
    limited = data.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols=["NVDA", "ORCL"],
            timeframe=TimeFrame.Day,
            start=dt.datetime(2014, 5, 1, tzinfo=UTC),
            limit=5,
        )
    )
    assert sum(len(v) for v in limited.data.values()) == 5
    quotes = data.get_stock_quotes(
        StockQuotesRequest(
            symbol_or_symbols="ORCL", start=dt.datetime(2014, 5, 30, 14, 0, tzinfo=UTC), limit=7
        )
    )
    assert len(quotes.data["ORCL"]) == 7 and all(isinstance(q, Quote) for q in quotes.data["ORCL"])
    trades = data.get_stock_trades(
        StockTradesRequest(
            symbol_or_symbols="YHOO", start=dt.datetime(2014, 5, 30, 14, 0, tzinfo=UTC), limit=3
        )
    )
    assert len(trades.data["YHOO"]) == 3
    latest = data.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols=["NVDA", "ORCL"]))
    assert set(latest) == {"NVDA", "ORCL"} and latest["NVDA"].bid_price < latest["NVDA"].ask_price
    assert latest["NVDA"].timestamp.date() == dt.date(2014, 6, 2)  # the fake's "now", never its future
    assert data.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols="NVDA"))["NVDA"].price > 0
    assert data.get_stock_latest_bar(StockLatestBarRequest(symbol_or_symbols="NVDA"))["NVDA"].volume > 0
    snapshot = data.get_stock_snapshot(StockSnapshotRequest(symbol_or_symbols=["NVDA", "YHOO"]))
    assert set(snapshot) == {"NVDA", "YHOO"}
    snap = snapshot["YHOO"]
    assert (
        snap.latest_quote is not None and snap.daily_bar is not None and snap.previous_daily_bar is not None
    )
    assert snap.daily_bar.timestamp.date() == dt.date(2014, 6, 2)  # today's running bar
    assert snap.previous_daily_bar.timestamp.date() == dt.date(2014, 5, 30)


def _run_in_thread(stream: Any) -> threading.Thread:
    thread = threading.Thread(target=stream.run, daemon=True, name=type(stream).__name__)
    thread.start()
    return thread


def test_trading_stream_streams_new_and_fill(trading: TradingClient, fake: RunningFake) -> None:
    updates: list[TradeUpdate] = []

    async def on_update(update: TradeUpdate) -> None:
        updates.append(update)

    stream = TradingStream(KEY, SECRET, url_override=f"{fake.ws_url}/stream")
    stream.subscribe_trade_updates(on_update)
    thread = _run_in_thread(stream)
    try:
        wait_until(lambda: any(p == "/stream" for p in fake.server.connections_opened) and _listening(fake))
        order = trading.submit_order(
            MarketOrderRequest(symbol="ORCL", qty=7, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
        )
        wait_until(lambda: any(_event(u) == "fill" and u.order.id == order.id for u in list(updates)))
        events = [_event(u) for u in list(updates) if u.order.id == order.id]
        assert events[0] == "new" and events[-1] == "fill"
        fill = next(u for u in updates if u.order.id == order.id and _event(u) == "fill")
        assert fill.price and fill.qty == 7 and fill.execution_id is not None and fill.timestamp is not None
    finally:
        stream.stop()
        thread.join(15)
    assert not thread.is_alive(), "TradingStream did not stop"
    trading.close_all_positions(cancel_orders=True)


def _event(update: TradeUpdate) -> str:
    return str(getattr(update.event, "value", update.event))  # TradeEvent, or a plain str for rarer events


def _listening(fake: RunningFake) -> bool:
    return any(getattr(s, "listening", False) for s in list(getattr(fake.venue, "_trading_sessions", [])))


def test_stock_data_stream_delivers_typed_bars_and_quotes(fake: RunningFake) -> None:
    bars: list[Bar] = []
    quotes: list[Quote] = []

    async def on_bar(bar: Bar) -> None:
        bars.append(bar)

    async def on_quote(quote: Quote) -> None:
        quotes.append(quote)

    stream = StockDataStream(KEY, SECRET, url_override=f"{fake.ws_url}/v2/iex")
    stream.subscribe_bars(on_bar, "NVDA")
    stream.subscribe_quotes(on_quote, "ORCL", "YHOO")
    thread = _run_in_thread(stream)
    try:
        wait_until(lambda: len(bars) >= 2 and len(quotes) >= 4)
    finally:
        stream.stop()
        thread.join(15)
    assert not thread.is_alive(), "StockDataStream did not stop"
    assert all(isinstance(b, Bar) and b.symbol == "NVDA" for b in bars)
    assert {q.symbol for q in quotes} == {"ORCL", "YHOO"} and all(isinstance(q, Quote) for q in quotes)
    assert bars[1].timestamp - bars[0].timestamp == dt.timedelta(minutes=1)
    assert bars[0].timestamp.tzinfo is not None and bars[0].vwap and bars[0].trade_count
    assert quotes[0].bid_price < quotes[0].ask_price


def test_account_activities_page_and_parse_as_alpaca_py_models(trading: TradingClient, fake: RunningFake) -> None:
    """GET /v2/account/activities with non-trade activities (the fake's dividend / fee / journal / split events),
    paged by page_token = the last id, each item parsed by alpaca-py's own NonTradeActivity / TradeActivity."""
    from alpaca.trading.models import NonTradeActivity, TradeActivity

    from adapters.fake.faults import FaultEvent
    from adapters.fake.venue_faults import apply_account_activity

    order = trading.submit_order(MarketOrderRequest(symbol="NVDA", qty=3, side=OrderSide.BUY,
                                                    time_in_force=TimeInForce.DAY))
    filled(trading, order.id)  # a long to pay a dividend on and to split, and a FILL among the activities
    events = [FaultEvent(kind="dividend", symbol="NVDA", amount=Decimal("0.5")),
              FaultEvent(kind="fee", amount=Decimal("1.25")),
              FaultEvent(kind="journal", amount=Decimal("-20")),
              FaultEvent(kind="split", symbol="NVDA", ratio=Decimal(2))]
    for event in events:
        trio.from_thread.run_sync(apply_account_activity, fake.venue, event, trio_token=fake._box["token"])
    headers = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
    seen: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(20):
        params = {"direction": "asc", "page_size": "2", **({"page_token": token} if token else {})}
        page = requests.get(f"{fake.url}/v2/account/activities", params=params, headers=headers, timeout=10).json()
        seen.extend(page)
        if len(page) < 2:
            break
        token = page[-1]["id"]
    ids = [item["id"] for item in seen]
    assert len(ids) == len(set(ids)) and ids == sorted(ids)  # no item twice, oldest first across pages
    parsed = [NonTradeActivity(**i) if i["activity_type"] != "FILL" else TradeActivity(**i) for i in seen]
    by_kind = {p.activity_type.value: p for p in parsed if isinstance(p, NonTradeActivity)}
    assert {"DIV", "FEE", "JNLC", "SPLIT"} <= set(by_kind)  # one instant: their order is the ids'
    div, fee, journal, split = (by_kind[k] for k in ("DIV", "FEE", "JNLC", "SPLIT"))
    held = Decimal(str(div.qty))
    assert Decimal(str(div.net_amount)) == held * Decimal("0.5") and Decimal(str(fee.net_amount)) == Decimal("-1.25")
    assert Decimal(str(journal.net_amount)) == Decimal(-20) and Decimal(str(split.qty)) == held  # 2:1 adds as many
    only = requests.get(f"{fake.url}/v2/account/activities", headers=headers, timeout=10,
                        params={"activity_types": "DIV,SPLIT", "direction": "desc"}).json()
    assert {i["activity_type"] for i in only} == {"SPLIT", "DIV"}
    position = trading.get_open_position("NVDA")
    assert Decimal(str(position.qty)) == 2 * held  # the split doubled it
