"""AlpacaRest / AlpacaData against the in-process fake venue: every BrokerRest call decodes to core types."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import trio

from adapters.alpaca.rest import AlpacaData
from adapters.fake.faults import FaultPlan
from core.model import Account, MarketClock, OrderType, Side
from core.ports import BrokerRest, InsufficientBuyingPower, NotCancelable, OrderNotFound
from tests.alpaca.world import BASE_URL, CREDS, NS, OPEN_NS, event, market_order, running_world


async def test_every_broker_rest_call_round_trips(autojump_clock: Any) -> None:
    async with running_world() as w:
        assert isinstance(w.rest, BrokerRest)
        order = await w.rest.submit_order(market_order("coid-1"))
        assert order.client_order_id == "coid-1" and order.side is Side.BUY and order.type is OrderType.MARKET
        assert isinstance(order.qty, Decimal)
        await trio.sleep(120)
        fetched = await w.rest.get_order(order.id)
        assert fetched.status == "filled" and fetched.filled_qty == Decimal(10)
        assert (await w.rest.get_order_by_client_id("coid-1")).id == order.id
        assert [o.id for o in await w.rest.list_orders(status="all")] == [order.id]
        positions = await w.rest.get_positions()
        assert [(p.symbol, p.qty) for p in positions] == [("NVDA", Decimal(10))]
        account = await w.rest.get_account()
        assert isinstance(account, Account) and account.cash < Decimal(1_000_000)
        activities = await w.rest.get_activities(after_ts_ns=OPEN_NS)
        assert sum(a.qty for a in activities) == Decimal(10) and {a.order_id for a in activities} == {order.id}
        config = await w.rest.get_configurations()
        patched = await w.rest.patch_configurations(max_margin_multiplier=Decimal(1), no_shorting=True)
        assert patched.max_margin_multiplier == Decimal(1) and patched.no_shorting and config is not patched
        clock = await w.rest.get_clock()
        assert isinstance(clock, MarketClock) and clock.is_open
        history = await w.rest.get_portfolio_history()
        assert isinstance(history["equity"], list)
        assert all(isinstance(e, Decimal) for e in history["equity"] if e is not None)
        limit = await w.rest.submit_order(
            market_order("coid-2").__class__(
                client_order_id="coid-2", symbol="ORCL", side=Side.BUY, qty=Decimal(5), type=OrderType.LIMIT,
                time_in_force=market_order("x").time_in_force, limit_price=Decimal("1.00"),
            )
        )
        results = await w.rest.cancel_all_orders()
        assert results == [(limit.id, 200)]
        closed = await w.rest.close_all_positions(cancel_orders=True)
        assert [symbol for symbol, _status in closed] == ["NVDA"]
        assert w.telemetry.summary("alpaca.rest POST /v2/orders") is not None


async def test_4xx_is_typed_and_never_retried(autojump_clock: Any) -> None:
    async with running_world() as w:
        with pytest.raises(OrderNotFound):
            await w.rest.get_order("00000000-0000-4000-8000-000000000000")
        with pytest.raises(InsufficientBuyingPower):
            await w.rest.submit_order(market_order("huge", qty=10_000_000))
        assert len(w.venue.request_log) == 2  # one attempt each
        placed = await w.rest.submit_order(market_order("filled-1"))
        await trio.sleep(120)
        with pytest.raises(NotCancelable):
            await w.rest.cancel_order(placed.id)
        assert len(w.requests("DELETE", f"/v2/orders/{placed.id}")) == 1


async def test_bars_paginate_and_latest_quotes(autojump_clock: Any) -> None:
    async with running_world() as w:
        await trio.sleep(3 * 3600)
        bars = await w.data.get_bars(["NVDA", "ORCL"], start_ts_ns=OPEN_NS, end_ts_ns=OPEN_NS + 3 * 3600 * NS)
        assert sorted(bars) == ["NVDA", "ORCL"]
        assert len(bars["NVDA"]) >= 150
        ts = [b.ts_ns for b in bars["NVDA"]]
        assert ts == sorted(ts) and len(set(ts)) == len(ts)
        quotes = await w.data.get_latest_quotes(["NVDA"])
        assert quotes["NVDA"].ask_price >= quotes["NVDA"].bid_price > 0
        snaps = await w.data.get_snapshots(["NVDA"])
        assert snaps["NVDA"].latest_quote is not None


async def test_orders_and_activities_paginate_beyond_one_page(autojump_clock: Any) -> None:
    async with running_world() as w:
        placed = []
        for i in range(520):
            placed.append((await w.rest.submit_order(market_order(f"page-{i}", qty=1))).id)
            await trio.sleep(0.01)  # distinct submitted_at: Alpaca's order pages move by time, not by token
        listed = await w.rest.list_orders(status="all", limit=1_000)
        assert sorted(o.id for o in listed) == sorted(placed)
        assert [o.submitted_at_ns for o in listed] == sorted((o.submitted_at_ns for o in listed), reverse=True)
        assert len(await w.rest.list_orders(status="all", limit=510)) == 510
        assert len(w.requests("GET", "/v2/orders")) == 2 + 2  # two pages for each listing above 500
        activities = await w.rest.get_activities(after_ts_ns=OPEN_NS)
        assert len(activities) == len({a.id for a in activities}) >= 520  # > 5 pages of 100, no repeats
        assert {a.order_id for a in activities} == set(placed)


async def test_bars_follow_next_page_token(autojump_clock: Any) -> None:
    async with running_world() as w:
        await trio.sleep(2 * 3600)
        small = AlpacaData(credentials=CREDS, clock=w.clock, base_url=BASE_URL,
                           transport=w.front.http_transport(), bars_page_size=50)
        try:
            paged = await small.get_bars(["NVDA", "ORCL"], start_ts_ns=OPEN_NS, end_ts_ns=OPEN_NS + 2 * 3600 * NS)
        finally:
            await small.aclose()
        whole = await w.data.get_bars(["NVDA", "ORCL"], start_ts_ns=OPEN_NS, end_ts_ns=OPEN_NS + 2 * 3600 * NS)
    assert paged == whole and sum(len(v) for v in whole.values()) > 150
    assert len(w.requests("GET", "/v2/stocks/bars")) >= 4


async def test_latency_histograms_use_virtual_time(autojump_clock: Any) -> None:
    faults = FaultPlan(events=(event("rest_slow", 0.5, duration_s=120.0, latency_ms=300),))
    async with running_world(faults=faults) as w:
        await trio.sleep(1)
        for _ in range(20):
            await w.rest.get_account()
    summary = w.telemetry.summary("alpaca.rest GET /v2/account")
    assert summary is not None and summary.count == 20
    assert summary.p50_s == pytest.approx(0.3, rel=0.01) and summary.p99_s == pytest.approx(0.3, rel=0.01)
