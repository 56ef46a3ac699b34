"""The adapter sends fractional, notional and trailing-stop orders the way alpaca-py shapes them, and decodes
what the fake venue answers: quantities stay exact Decimals (no float anywhere on the way)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import trio

from adapters.alpaca.models import order_request_body
from core.model import OrderRequest, OrderType, Side, TimeInForce
from tests.alpaca.world import running_world


def _request(coid: str, **fields: Any) -> OrderRequest:
    base: dict[str, Any] = dict(client_order_id=coid, symbol="NVDA", side=Side.BUY, qty=Decimal(1),
                                type=OrderType.MARKET, time_in_force=TimeInForce.DAY)
    return OrderRequest(**{**base, **fields})


def test_request_bodies_match_alpaca_py_shapes() -> None:
    notional = order_request_body(_request("n", notional=Decimal("500.75"), qty=Decimal("3.1")))
    assert "qty" not in notional and notional["notional"] == "500.75"  # alpaca-py: qty xor notional
    trailing = order_request_body(_request("t", side=Side.SELL, type=OrderType.TRAILING_STOP,
                                           time_in_force=TimeInForce.GTC, trail_percent=Decimal("1.5")))
    assert trailing["trail_percent"] == "1.5" and "trail_price" not in trailing and "stop_price" not in trailing
    fractional = order_request_body(_request("f", qty=Decimal("0.123456789")))
    assert fractional["qty"] == "0.123456789"


async def test_fractional_notional_and_trailing_orders_round_trip(autojump_clock: Any) -> None:
    async with running_world() as w:
        fractional = await w.rest.submit_order(_request("frac", qty=Decimal("0.123456789")))
        assert fractional.qty == Decimal("0.123456789") and fractional.notional is None
        notional = await w.rest.submit_order(_request("notl", notional=Decimal("250.50")))
        assert notional.notional == Decimal("250.50")
        await trio.sleep(120)
        done = await w.rest.get_order(notional.id)
        assert done.status == "filled" and done.filled_qty > 0
        assert done.qty == done.filled_qty  # qty null on the wire: what filled stands in
        assert done.filled_avg_price is not None
        assert Decimal(0) <= Decimal("250.50") - done.filled_qty * done.filled_avg_price < done.filled_avg_price / 10**9
        held = {p.symbol: p.qty for p in await w.rest.get_positions()}
        assert held["NVDA"] == Decimal("0.123456789") + done.filled_qty
        assert held["NVDA"] > 1
        trailing = await w.rest.submit_order(
            _request("trail", side=Side.SELL, qty=Decimal(1), type=OrderType.TRAILING_STOP,
                     time_in_force=TimeInForce.GTC, trail_percent=Decimal("50"))
        )
        assert trailing.type is OrderType.TRAILING_STOP and trailing.trail_percent == Decimal("50")
        await trio.sleep(120)
        watched = await w.rest.get_order(trailing.id)
        assert watched.hwm is not None and watched.stop_price is not None
        assert watched.stop_price < watched.hwm
