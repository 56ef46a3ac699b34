"""Protective stops for a halted book (``risk.on_halt = "protect"``): pure planning, the supervisor places them.

The kill switch's DELETE /v2/orders (spec 2.3 step 1) also cancels the stop-loss legs of every bracket, so a
halted book would sit unprotected. In protect mode the supervisor re-places one plain GTC stop per open position
(ours or adopted): a sell stop below a long, a buy stop above a short. These are the ONE kind of order that may
reach the venue while the kill switch is latched, and only because they can only reduce a position:

* the quantity is at most the position (never flips it), the side is the closing side;
* the client order id ends in ``PROTECT_SUFFIX`` so the simulation's invariants (and an auditor) can tell them
  from entries; nothing else in the engine produces that suffix.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from core.model import BrokerOrder, OrderClass, OrderRequest, OrderType, Position, Side, TimeInForce
from core.orderplan import CLIENT_ORDER_ID_PREFIX

CENT = Decimal("0.01")
SUB_DOLLAR_TICK = Decimal("0.0001")  # Alpaca accepts 4 decimals below $1
PROTECT_SUFFIX = "-protect"


def is_protective(client_order_id: str) -> bool:
    return client_order_id.startswith(CLIENT_ORDER_ID_PREFIX) and client_order_id.endswith(PROTECT_SUFFIX)


def protective_client_order_id(key: str) -> str:
    """``key``: a UUID-shaped id derived from (symbol, halt, attempt time) by the caller; attempt 0 always."""
    return f"{CLIENT_ORDER_ID_PREFIX}{key}-0{PROTECT_SUFFIX}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtectionStatus:
    """One open position at a halt, and whether a stop of ours works for it at the venue."""

    symbol: str
    qty: Decimal  # signed position at the broker
    protected: bool
    stop_price: Decimal | None = None
    order_id: str | None = None
    note: str = ""  # why not protected (or "already protected")

    def to_dict(self) -> dict[str, object]:
        return {"symbol": self.symbol, "qty": str(self.qty), "protected": self.protected,
                "stop_price": None if self.stop_price is None else str(self.stop_price),
                "order_id": self.order_id, "note": self.note}

    def sentence(self) -> str:
        if self.protected:
            return f"{self.symbol} {self.qty} protected (stop {self.stop_price})"
        return f"{self.symbol} {self.qty} UNPROTECTED" + (f" ({self.note})" if self.note else "")


def stop_price(position: Position, fraction: Decimal) -> Decimal:
    """Beyond the worse of average entry and last price: below both for a long, above both for a short, so the
    stop never sits on the wrong side of the market (it would trigger at once)."""
    prices = [p for p in (position.avg_entry_price, position.current_price) if p is not None and p > 0]
    if not prices:
        raise ValueError(f"no price for {position.symbol}")
    if position.qty > 0:
        raw = min(prices) * (1 - fraction)
        tick = CENT if raw >= 1 else SUB_DOLLAR_TICK
        price = raw.quantize(tick, rounding=ROUND_DOWN)
    else:
        raw = max(prices) * (1 + fraction)
        tick = CENT if raw >= 1 else SUB_DOLLAR_TICK
        price = raw.quantize(tick, rounding=ROUND_HALF_UP)
        if price < raw:
            price += tick
    if price <= 0:
        raise ValueError(f"stop price for {position.symbol} would be {price}")
    return price


def protective_stop(position: Position, fraction: Decimal, key: str) -> OrderRequest:
    """The stop for one position: whole shares only (Alpaca takes no GTC stop on a fraction; the remainder is
    reported unprotected by the caller)."""
    qty = abs(position.qty).to_integral_value(rounding=ROUND_DOWN)
    if qty <= 0:
        raise ValueError(f"{position.symbol}: less than one share, no GTC stop possible")
    return OrderRequest(
        client_order_id=protective_client_order_id(key), symbol=position.symbol,
        side=Side.SELL if position.qty > 0 else Side.BUY, qty=qty, type=OrderType.STOP,
        time_in_force=TimeInForce.GTC, stop_price=stop_price(position, fraction), order_class=OrderClass.SIMPLE,
    )


def working_stops(orders: list[BrokerOrder]) -> dict[str, list[BrokerOrder]]:
    """Our protective stops still working, by symbol."""
    out: dict[str, list[BrokerOrder]] = {}
    for order in orders:
        if is_protective(order.client_order_id):
            out.setdefault(order.symbol, []).append(order)
    return out


def covers(position: Position, stops: list[BrokerOrder]) -> bool:
    """Do these stops close exactly the whole-share part of the position, from the closing side?"""
    closing = Side.SELL if position.qty > 0 else Side.BUY
    whole = abs(position.qty).to_integral_value(rounding=ROUND_DOWN)
    return all(o.side is closing for o in stops) and sum((o.qty - o.filled_qty for o in stops), Decimal(0)) == whole
