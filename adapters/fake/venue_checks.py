"""The fake venue's pre-trade broker checks: what Alpaca refuses before it accepts an order.

A chain of checks over the venue's state (account, open orders, touch); each raises the ``ApiError`` Alpaca
answers with, and none changes anything except drawing an id for an order that came without a client id.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Final

from adapters.fake import matching as m
from adapters.fake.wire import ApiError, dec_str
from core.limits import PDT_EQUITY_THRESHOLD_USD, PDT_MAX_DAY_TRADES

if TYPE_CHECKING:
    from adapters.fake.venue import Venue

_ZERO: Final = Decimal(0)
MIN_FRACTIONAL_ORDER_USD: Final = Decimal(1)


def check_new_order(venue: Venue, spec: m.OrderSpec) -> tuple[str, Decimal | None]:
    """POST /v2/orders after body validation: (client order id, price it reserves buying power at)."""
    client_order_id = check_client_order_id(venue, spec.client_order_id)
    if venue.account.config.suspend_trade:
        raise ApiError(403, 40310000, "account is suspended from trading")
    if venue.resolve_symbol(spec.symbol) != spec.symbol:
        raise ApiError(422, 40010001, f'asset "{spec.symbol}" not found')
    fractional = spec.notional is not None or spec.qty != spec.qty.to_integral_value()
    if fractional and not venue.is_fractionable(spec.symbol):
        raise ApiError(422, 40010001, "requested asset is not fractionable")  # alpaca-docs fractional-trading.md
    qty = estimated_qty(venue, spec)
    opening = check_quantity(venue, spec.symbol, spec.side, qty, fractional=fractional)
    if fractional:
        check_minimum_cost(venue, spec)
    check_wash_trade(venue, spec)
    check_pattern_day_trading(venue, spec.symbol, spec.side)
    reserve_price = reference_price(venue, spec) if opening else None
    if reserve_price is not None:
        check_buying_power(venue, spec.notional if spec.notional is not None else spec.qty * reserve_price)
    return client_order_id, reserve_price


def estimated_qty(venue: Venue, spec: m.OrderSpec) -> Decimal:
    """The order's share quantity; a notional order's estimate is its dollars at the touch (9 decimals)."""
    if spec.notional is None:
        return spec.qty
    price = reference_price(venue, spec)
    if price is None or price <= 0:
        return _ZERO
    return (spec.notional / price).quantize(m.FRACTION_QUANTUM, rounding=ROUND_DOWN)


def check_minimum_cost(venue: Venue, spec: m.OrderSpec) -> None:
    """Fractional and notional orders must be worth at least $1 (the cost basis Alpaca estimates: the
    notional, else qty x the touch); Alpaca's own wording, a 403 (forum.alpaca.markets/t/13116)."""
    cost = spec.notional
    if cost is None:
        price = reference_price(venue, spec)
        cost = None if price is None else spec.qty * price
    if cost is not None and cost < MIN_FRACTIONAL_ORDER_USD:
        raise ApiError(403, 40310000, "cost basis must be >= minimal amount of order 1")


def check_client_order_id(venue: Venue, client_order_id: str | None) -> str:
    if client_order_id is None:
        client_order_id = venue.new_uuid()
    if venue.book.knows_client_order_id(client_order_id):
        raise ApiError(422, 40010001, "client_order_id must be unique")
    return client_order_id


def check_quantity(venue: Venue, symbol: str, side: str, qty: Decimal, *, fractional: bool | None = None) -> bool:
    """Reject sells of shares we do not have (or flips through zero); True if the order opens exposure."""
    position = venue.account.position_qty(symbol)
    reducing = (position > 0 and side == "sell") or (position < 0 and side == "buy")
    if reducing:
        held = venue.book.held_for_orders(symbol, side)
        available = abs(position) - held
        if qty > available:
            raise ApiError(
                403,
                40310000,
                f"insufficient qty available for order (requested: {dec_str(qty)}, available: "
                f"{dec_str(max(available, _ZERO))})",
                available=dec_str(max(available, _ZERO)),
                existing_qty=dec_str(abs(position)),
                held_for_orders=dec_str(held),
                related_orders=_related_order_ids(venue, symbol, side),
                symbol=symbol,
            )
        return False
    if side == "sell":
        if not venue.account.shorting_enabled:
            raise ApiError(403, 40310000, "account is not allowed to short")
        if not venue.is_shortable(symbol):
            raise ApiError(403, 40310000, f"asset {symbol} is not shortable")
        if fractional or (fractional is None and qty != qty.to_integral_value()):
            raise ApiError(403, 40310000, "fractional orders cannot be sold short")
    return True


def _related_order_ids(venue: Venue, symbol: str, side: str) -> list[str]:
    return [
        o.id
        for o in venue.book.open_orders()
        if o.symbol == symbol and o.side == side and o.status in m.CLAIMING
    ]


def check_wash_trade(venue: Venue, spec: m.OrderSpec) -> None:
    limit = spec.limit_price
    if spec.order_class == "oco":
        limit = spec.take_profit_limit_price
    for other in venue.book.open_orders():
        if other.symbol != spec.symbol or other.side == spec.side or other.status not in m.CLAIMING:
            continue
        if m.could_cross(spec.side, spec.type, limit, spec.stop_price, other):
            raise ApiError(422, 42210000, "potential wash trade detected. use complex orders")


def check_pattern_day_trading(venue: Venue, symbol: str, side: str) -> None:
    """PDT protection (spec 2.2): a margin account under $25k may not make a 4th day trade in 5 days."""
    account = venue.account
    if not account.is_margin or account.config.pdt_check is None:
        return
    position = account.positions.get(symbol)
    if position is None or position.opened_session != venue.session_date():
        return
    if not ((position.qty > 0 and side == "sell") or (position.qty < 0 and side == "buy")):
        return
    marks = venue.current_marks(account.positions)
    if account.equity(marks) >= PDT_EQUITY_THRESHOLD_USD:
        return
    if account.pattern_day_trader or venue.daytrade_count() >= PDT_MAX_DAY_TRADES:
        raise ApiError(403, 40310100, "trade denied due to pattern day trading protection")


def reference_price(venue: Venue, spec: m.OrderSpec) -> Decimal | None:
    """The price an opening order reserves buying power at (Alpaca: limit, else stop, else the touch)."""
    if spec.type in ("limit", "stop_limit") and spec.limit_price is not None:
        return spec.limit_price
    if spec.order_class == "oco" and spec.take_profit_limit_price is not None:
        return spec.take_profit_limit_price
    if spec.type == "stop" and spec.stop_price is not None:
        return spec.stop_price
    quote = venue.quote(spec.symbol)
    if quote is not None:
        touch = quote.ask_price if spec.side == "buy" else quote.bid_price
        if touch > 0:
            return touch
    return venue.last_mid(spec.symbol)


def check_buying_power(venue: Venue, cost_usd: Decimal) -> None:
    buying_power = venue.buying_power()
    if cost_usd > buying_power:
        raise ApiError(
            403,
            40310000,
            "insufficient buying power",
            buying_power=dec_str(buying_power, 4),
            cost_basis=dec_str(cost_usd, 4),
        )
