"""The Alpaca adapter against the real Alpaca PAPER API (marked ``live``; skipped without credentials).

Run: APCA_API_KEY_ID=... APCA_API_SECRET_KEY=... .venv/bin/pytest tests/live -m live -q
Only paper endpoints are used; the one order placed is a 1-share limit far below the market, then canceled.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import trio

from adapters.alpaca.clock import WallClock
from adapters.alpaca.config import AlpacaConfig, Credentials
from adapters.alpaca.rest import AlpacaData, AlpacaRest
from adapters.alpaca.streams import MarketDataStream, TradingStream
from core.model import OrderRequest, OrderType, Side, TimeInForce

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.environ.get("APCA_API_KEY_ID"), reason="needs APCA_API_KEY_ID (paper account)"),
]

CALL_BUDGET_S = 30.0
SYMBOL = "AAPL"


@pytest.fixture
def config() -> AlpacaConfig:
    return AlpacaConfig.for_account(Credentials.from_env(), paper=True)


@pytest.fixture
async def rest(config: AlpacaConfig) -> AsyncIterator[AlpacaRest]:
    client = AlpacaRest.from_config(config, clock=WallClock())
    yield client
    await client.aclose()


async def test_read_only_calls(rest: AlpacaRest) -> None:
    with trio.fail_after(CALL_BUDGET_S):
        account = await rest.get_account()
        assert account.equity >= 0 and isinstance(account.cash, Decimal)
        clock = await rest.get_clock()
        assert clock.next_open_ts_ns > 0 and clock.next_close_ts_ns > 0
        config = await rest.get_configurations()
        assert config.max_margin_multiplier >= 1
        await rest.get_positions()
        await rest.list_orders(status="all", limit=10)
        await rest.get_activities(after_ts_ns=clock.ts_ns - 7 * 86_400 * 10**9)
        history = await rest.get_portfolio_history()
        assert "equity" in history


async def test_submit_then_cancel_a_far_limit_order(rest: AlpacaRest) -> None:
    coid = f"ttlive-live-test-{uuid.uuid4()}"  # live: uuid4 is the right id source (never in simulation)
    request = OrderRequest(client_order_id=coid, symbol=SYMBOL, side=Side.BUY, qty=Decimal(1),
                           type=OrderType.LIMIT, time_in_force=TimeInForce.DAY, limit_price=Decimal("1.00"))
    with trio.fail_after(CALL_BUDGET_S):
        order = await rest.submit_order(request)
        try:
            assert order.client_order_id == coid
            assert (await rest.get_order_by_client_id(coid)).id == order.id
        finally:
            await rest.cancel_order(order.id)
        await trio.sleep(1)
        assert (await rest.get_order(order.id)).status in ("canceled", "pending_cancel")


async def test_market_data_rest(config: AlpacaConfig) -> None:
    data = AlpacaData.from_config(config, clock=WallClock())
    try:
        with trio.fail_after(CALL_BUDGET_S):
            quotes = await data.get_latest_quotes([SYMBOL])
            assert SYMBOL in quotes
            end_ns = WallClock().now_ns() - 20 * 60 * 10**9  # free feeds lag 15 minutes
            bars = await data.get_bars([SYMBOL], start_ts_ns=end_ns - 5 * 86_400 * 10**9, end_ts_ns=end_ns,
                                       timeframe="1Hour")
            assert bars.get(SYMBOL)
    finally:
        await data.aclose()


async def test_trading_stream_reaches_live(config: AlpacaConfig, rest: AlpacaRest) -> None:
    stream = TradingStream(rest=rest, url=config.trading_stream_url, credentials=config.credentials,
                           clock=WallClock())

    async def ignore(_update: Any) -> None:
        return None

    with trio.fail_after(CALL_BUDGET_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(stream.serve, ignore)
            assert stream.live
            nursery.cancel_scope.cancel()


async def test_market_data_stream_reaches_live(config: AlpacaConfig) -> None:
    stream = MarketDataStream(url=config.data_stream_url, credentials=config.credentials, clock=WallClock())
    await stream.subscribe(bars=[SYMBOL])

    async def ignore(_item: Any) -> None:
        return None

    with trio.fail_after(CALL_BUDGET_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(stream.serve, ignore)
            assert stream.live
            nursery.cancel_scope.cancel()
