"""Turns an approved signal into the Alpaca order that expresses it (spec 1.2 action mapping, 5.2 microstructure).

MARKET -> market order; LIMIT_AGGRESSIVE -> day limit priced through the far touch; LIMIT_PASSIVE -> gtc limit at our
side of the book; entries carry bracket legs. The client order id is derived from the signal and the attempt number,
so a restart re-derives the same key and the venue's uniqueness rule makes a second submission impossible.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

import msgspec

from core.model import (
    Direction,
    ExecutionAction,
    Leg,
    OrderClass,
    OrderRequest,
    OrderType,
    Quote,
    Side,
    TimeInForce,
)

CENT = Decimal("0.01")
BPS = Decimal("0.0001")


class PlanConfig(msgspec.Struct, frozen=True, kw_only=True):
    brackets: bool = True
    stop_loss_fraction: Decimal = Decimal("0.02")
    take_profit_fraction: Decimal = Decimal("0.04")
    aggressive_cross_bps: Decimal = Decimal(5)
    depth_check_fraction: Decimal = Decimal(1)  # visible touch size x this = the most one order takes


class PlanError(ValueError):
    """The signal cannot be expressed as an order (no quote, zero quantity): an operating event, not a bug."""


CLIENT_ORDER_ID_PREFIX = "tt-"  # every order ttlive places; anything else at the account is foreign


def is_ours(client_order_id: str) -> bool:
    """An order ttlive placed (its entries; bracket legs carry the venue's ids and are matched by parent)."""
    return client_order_id.startswith(CLIENT_ORDER_ID_PREFIX)


def client_order_id(signal_id: str, attempt: int) -> str:
    """Idempotency key per order attempt (spec 1.2 step 2): stable across restarts, <= 128 chars."""
    assert attempt >= 0
    key = f"{CLIENT_ORDER_ID_PREFIX}{signal_id}-{attempt}"
    assert len(key) <= 128, key
    return key


def order_side(direction: Direction, position_qty: Decimal) -> Side:
    """LONG buys, SHORT sells; NEUTRAL (flatten) trades against the current position."""
    if direction is Direction.LONG:
        return Side.BUY
    if direction is Direction.SHORT:
        return Side.SELL
    if position_qty == 0:
        raise PlanError("neutral signal with no position: nothing to flatten")
    return Side.SELL if position_qty > 0 else Side.BUY


def is_entry(side: Side, position_qty: Decimal) -> bool:
    """An order that opens or adds risk (gets bracket legs); a reducing order does not."""
    return position_qty == 0 or (position_qty > 0) == (side is Side.BUY)


def cap_to_depth(qty: Decimal, side: Side, quote: Quote, config: PlanConfig) -> Decimal:
    """Liquidity detection (spec 5.2): never ask for more than the visible depth x fraction at once."""
    touch = quote.ask_size if side is Side.BUY else quote.bid_size
    if touch <= 0:
        return qty
    cap = (touch * config.depth_check_fraction).to_integral_value(rounding=ROUND_DOWN)
    return max(Decimal(1), min(qty, cap))


def limit_price(action: ExecutionAction, side: Side, quote: Quote, config: PlanConfig) -> Decimal:
    """Aggressive crosses the spread by a few bps; passive joins our side of the book."""
    if action is ExecutionAction.LIMIT_AGGRESSIVE:
        far = quote.ask_price if side is Side.BUY else quote.bid_price
        shift = far * config.aggressive_cross_bps * BPS
        price = far + shift if side is Side.BUY else far - shift
    elif action is ExecutionAction.LIMIT_PASSIVE:
        price = quote.bid_price if side is Side.BUY else quote.ask_price
    else:
        raise PlanError(f"{action} has no limit price")
    return price.quantize(CENT, rounding=ROUND_HALF_UP)


def bracket_for(side: Side, reference_price: Decimal, config: PlanConfig) -> Leg:
    if side is Side.BUY:
        take = reference_price * (1 + config.take_profit_fraction)
        stop = reference_price * (1 - config.stop_loss_fraction)
    else:
        take = reference_price * (1 - config.take_profit_fraction)
        stop = reference_price * (1 + config.stop_loss_fraction)
    return Leg(
        take_profit_limit_price=take.quantize(CENT, rounding=ROUND_HALF_UP),
        stop_loss_stop_price=stop.quantize(CENT, rounding=ROUND_HALF_UP),
    )


def plan_order(
    *,
    signal_id: str,
    attempt: int,
    symbol: str,
    direction: Direction,
    qty: Decimal,
    action: ExecutionAction,
    quote: Quote,
    position_qty: Decimal,
    config: PlanConfig,
) -> OrderRequest:
    if action is ExecutionAction.CANCEL:
        raise PlanError("CANCEL is not an order submission")
    if qty <= 0:
        raise PlanError(f"quantity must be positive, got {qty}")
    if quote.bid_price <= 0 or quote.ask_price <= 0 or quote.ask_price < quote.bid_price:
        raise PlanError(f"unusable quote for {symbol}: bid {quote.bid_price} ask {quote.ask_price}")
    side = order_side(direction, position_qty)
    qty = cap_to_depth(qty.to_integral_value(rounding=ROUND_DOWN), side, quote, config)
    if not is_entry(side, position_qty):
        qty = min(qty, abs(position_qty))  # a reducing order never flips the position by itself
    entry = is_entry(side, position_qty)
    if action is ExecutionAction.MARKET:
        order_type, tif, price = OrderType.MARKET, TimeInForce.DAY, None
        reference = quote.ask_price if side is Side.BUY else quote.bid_price
    else:
        order_type = OrderType.LIMIT
        tif = TimeInForce.DAY if action is ExecutionAction.LIMIT_AGGRESSIVE else TimeInForce.GTC
        price = limit_price(action, side, quote, config)
        reference = price
    bracket = bracket_for(side, reference, config) if (config.brackets and entry) else None
    return OrderRequest(
        client_order_id=client_order_id(signal_id, attempt),
        symbol=symbol,
        side=side,
        qty=qty,
        type=order_type,
        time_in_force=tif,
        limit_price=price,
        order_class=OrderClass.BRACKET if bracket is not None else OrderClass.SIMPLE,
        bracket=bracket,
        signal_id=signal_id,
    )
