"""Turns an approved signal into the Alpaca order that expresses it (spec 1.2 action mapping, 5.2 microstructure).

MARKET -> market order; LIMIT_AGGRESSIVE -> day limit priced through the far touch; LIMIT_PASSIVE -> gtc limit at our
side of the book; entries carry bracket legs. The client order id is derived from the signal and the attempt number,
so a restart re-derives the same key and the venue's uniqueness rule makes a second submission impossible.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_UP, Decimal

import msgspec

from core.config import EngineConfig
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
WHOLE_SHARE = Decimal(1)
FRACTION_QUANTUM = Decimal("0.000000001")  # Alpaca: qty and notional carry at most 9 decimals
MIN_FRACTIONAL_ORDER_USD = Decimal(1)  # Alpaca refuses fractional / notional orders worth less than $1


class PlanConfig(msgspec.Struct, frozen=True, kw_only=True):
    brackets: bool = True
    stop_loss_fraction: Decimal = Decimal("0.02")
    take_profit_fraction: Decimal = Decimal("0.04")
    aggressive_cross_bps: Decimal = Decimal(5)
    depth_check_fraction: Decimal = Decimal(1)  # visible touch size x this = the most one order takes
    sizing: str = "whole"  # whole | fractional | notional (core.config.ExecutionSection)
    quantity_steps: dict[str, Decimal] = {}  # symbol -> smallest quantity step; absent = whole shares
    protective_exit: str = "stop"  # stop | trailing_stop
    trail_percent: Decimal = Decimal("2.0")

    def step(self, symbol: str) -> Decimal:
        return self.quantity_steps.get(symbol, WHOLE_SHARE)

    @classmethod
    def from_engine_config(cls, config: EngineConfig) -> PlanConfig:
        e = config.execution
        return cls(
            brackets=e.brackets,
            stop_loss_fraction=Decimal(e.stop_loss_pct) / 100,
            take_profit_fraction=Decimal(e.take_profit_pct) / 100,
            aggressive_cross_bps=Decimal(e.aggressive_cross_bps),
            depth_check_fraction=Decimal(e.depth_check_fraction),
            sizing=e.sizing,
            quantity_steps=quantity_steps(config),
            protective_exit=e.protective_exit,
            trail_percent=Decimal(e.trail_percent),
        )


def quantity_steps(config: EngineConfig) -> dict[str, Decimal]:
    """The one place that decides how finely each instrument is sized: 1e-9 shares where ``execution.sizing``
    is fractional or notional and the asset is fractionable; whole shares (absent) everywhere else."""
    if config.execution.sizing == "whole":
        return {}
    return {i.symbol: FRACTION_QUANTUM for i in config.instruments if i.fractionable}


def floor_to_step(qty: Decimal, step: Decimal) -> Decimal:
    """``qty`` rounded down to a multiple of ``step`` (whole shares: the integer part), exactly."""
    if step == WHOLE_SHARE:
        return qty.to_integral_value(rounding=ROUND_FLOOR)
    return (qty / step).to_integral_value(rounding=ROUND_FLOOR) * step


def size_for_value(value_usd: Decimal, price: Decimal, step: Decimal) -> Decimal:
    """Shares worth ``value_usd`` at ``price``, rounded down to ``step``: a policy's target weight as a quantity."""
    assert price > 0, f"price must be positive, got {price}"
    return floor_to_step(value_usd / price, step)


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
    return max(min(Decimal(1), qty), min(qty, cap))


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
    step = config.step(symbol)
    if side is Side.SELL and position_qty <= 0:
        step = WHOLE_SHARE  # Alpaca refuses fractional (and notional) short sales: a short opens in whole shares
    qty = cap_to_depth(floor_to_step(qty, step), side, quote, config)
    if not is_entry(side, position_qty):
        qty = min(qty, abs(position_qty))  # a reducing order never flips the position by itself
    if qty <= 0:
        raise PlanError(f"quantity rounds to nothing at step {step}")
    entry = is_entry(side, position_qty)
    touch = quote.ask_price if side is Side.BUY else quote.bid_price
    notional = None
    if step != WHOLE_SHARE and config.sizing == "notional" and entry:
        # Entries go as dollars: what the risk-approved shares cost at the touch, to the cent (down).
        notional = (qty * touch).quantize(CENT, rounding=ROUND_DOWN)
    # Under whole-share sizing a fractional exit (of a fractional position held before) goes as planned.
    fractional = step != WHOLE_SHARE and (notional is not None or qty != qty.to_integral_value())
    if fractional and (notional if notional is not None else qty * touch) < MIN_FRACTIONAL_ORDER_USD:
        raise PlanError(f"a fractional order for {symbol} worth under ${MIN_FRACTIONAL_ORDER_USD} is refused")
    if action is ExecutionAction.MARKET or fractional:
        # Alpaca takes fractional and notional orders as simple market day orders only.
        order_type, tif, price = OrderType.MARKET, TimeInForce.DAY, None
        reference = touch
    else:
        order_type = OrderType.LIMIT
        tif = TimeInForce.DAY if action is ExecutionAction.LIMIT_AGGRESSIVE else TimeInForce.GTC
        price = limit_price(action, side, quote, config)
        reference = price
    wants_bracket = config.brackets and entry and not fractional and config.protective_exit == "stop"
    bracket = bracket_for(side, reference, config) if wants_bracket else None
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
        notional=notional,
    )


def trailing_exit(*, entry_client_order_id: str, symbol: str, entry_side: Side, qty: Decimal,
                  config: PlanConfig) -> OrderRequest:
    """The protective exit of a filled entry under ``protective_exit = "trailing_stop"``: a gtc trailing stop
    on the other side for what filled, ``trail_percent`` off the high-water mark. Its client order id is
    derived from the entry's, so a restart re-derives it and the venue's uniqueness rule stops a second one."""
    if qty <= 0 or qty != qty.to_integral_value():
        raise PlanError(f"a trailing stop needs whole shares (Alpaca: no fractional stops), got {qty}")
    key = f"{entry_client_order_id}-ts"
    assert len(key) <= 128, key
    return OrderRequest(
        client_order_id=key,
        symbol=symbol,
        side=Side.SELL if entry_side is Side.BUY else Side.BUY,
        qty=qty,
        type=OrderType.TRAILING_STOP,
        time_in_force=TimeInForce.GTC,
        trail_percent=config.trail_percent,
    )
