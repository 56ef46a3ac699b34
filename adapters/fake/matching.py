"""Order records and the fake venue's seeded execution rules: what fills, how much, and at what price.

Functions over one order and one quote; the venue owns the book and applies what they decide. Randomness
(slippage, passive fills) comes only from the ``random.Random`` the venue passes in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

from adapters.fake.interfaces import FakeQuote

ALL_STATUSES: Final = frozenset(
    {
        "new",
        "partially_filled",
        "filled",
        "done_for_day",
        "canceled",
        "expired",
        "replaced",
        "pending_cancel",
        "pending_replace",
        "pending_review",
        "accepted",
        "pending_new",
        "accepted_for_bidding",
        "stopped",
        "rejected",
        "suspended",
        "calculated",
        "held",
    }
)
WORKING: Final = frozenset({"new", "partially_filled"})  # routed; may execute now
QUEUED: Final = frozenset({"accepted"})  # received outside market hours; routed at the open
HELD: Final = frozenset({"held"})  # bracket/OTO legs waiting for the parent's fill
OPEN: Final = WORKING | QUEUED | HELD  # GET /v2/orders?status=open; cancel-all
TERMINAL: Final = frozenset({"filled", "canceled", "expired", "replaced", "rejected"})
NEVER_PRODUCED: Final = ALL_STATUSES - OPEN - TERMINAL  # the fake applies cancels/replaces at once

ORDER_TYPES: Final = frozenset({"market", "limit", "stop", "stop_limit", "trailing_stop"})
TIMES_IN_FORCE: Final = frozenset({"day", "gtc", "opg", "cls", "ioc", "fok"})
SIDES: Final = frozenset({"buy", "sell"})
ORDER_CLASSES: Final = frozenset({"", "simple", "bracket", "oco", "oto"})
_CENT: Final = Decimal("0.01")
_SUB_PENNY: Final = Decimal("0.0001")
_BPS: Final = Decimal(10_000)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderSpec:
    """A validated POST /v2/orders body (quantities and prices already Decimal)."""

    symbol: str
    qty: Decimal
    side: str
    type: str
    time_in_force: str
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    extended_hours: bool = False
    client_order_id: str | None = None
    order_class: str = ""  # "" = simple (the wire value Alpaca sends for simple orders)
    take_profit_limit_price: Decimal | None = None
    stop_loss_stop_price: Decimal | None = None
    stop_loss_limit_price: Decimal | None = None


@dataclass(slots=True, kw_only=True)
class VenueOrder:
    """One order as the venue keeps it; rendered to the wire by ``wire.order_json``."""

    seq: int  # acceptance order; the book iterates in this order
    id: str
    client_order_id: str
    symbol: str
    asset_id: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal
    order_class: str
    status: str
    created_at_ns: int
    submitted_at_ns: int
    updated_at_ns: int
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    hwm: Decimal | None = None
    extended_hours: bool = False
    position_intent: str | None = None
    filled_qty: Decimal = Decimal(0)
    filled_notional: Decimal = Decimal(0)
    notional: Decimal | None = None  # a dollar-amount order: listed with qty null (qty is the venue's sizing)
    filled_avg_price: Decimal | None = None
    filled_at_ns: int | None = None
    expired_at_ns: int | None = None
    canceled_at_ns: int | None = None
    failed_at_ns: int | None = None
    replaced_at_ns: int | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    parent_id: str | None = None
    leg_ids: list[str] = field(default_factory=list)
    oco_ids: list[str] = field(default_factory=list)  # canceled when this order executes (OCO)
    triggered: bool = False  # stop / trailing stop has triggered
    reserve_price: Decimal | None = None  # set when the order opens exposure: buying power it holds
    last_passive_quote_ns: int | None = None  # one passive-fill draw per quote (per bar)
    last_quote: FakeQuote | None = None  # the quote last matched against: the same quote cannot do more

    @property
    def leaves_qty(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN


@dataclass(frozen=True, slots=True)
class Execution:
    qty: Decimal
    price: Decimal
    passive: bool = False


def price_tick(price: Decimal) -> Decimal:
    """Reg NMS minimum increment: a cent at or above $1, a hundredth of a cent below."""
    return _CENT if price >= 1 else _SUB_PENNY


def is_on_tick(price: Decimal) -> bool:
    return price == price.quantize(price_tick(price))


def draw_slippage_bps(rng: random.Random, low_bps: Decimal, high_bps: Decimal) -> Decimal:
    """Uniform on a 0.01 bps grid; integers only, so no float touches the price."""
    low, high = int(low_bps * 100), int(high_bps * 100)
    return Decimal(rng.randint(low, high)) / 100


def slipped_price(touch: Decimal, side: str, slippage_bps: Decimal) -> Decimal:
    factor = 1 + slippage_bps / _BPS if side == "buy" else 1 - slippage_bps / _BPS
    raw = touch * factor
    return raw.quantize(price_tick(raw), rounding=ROUND_HALF_EVEN)


def observe_quote(order: VenueOrder, quote: FakeQuote) -> bool:
    """Track the trailing high-water mark and trigger stops on the quote; True once triggered.

    Buy stops trigger when the ask reaches the stop, sell stops when the bid falls to it.
    """
    if order.type not in ("stop", "stop_limit", "trailing_stop") or order.triggered:
        return True
    if order.type == "trailing_stop":
        reference = quote.ask_price if order.side == "buy" else quote.bid_price
        if order.hwm is None:
            order.hwm = reference
        order.hwm = min(order.hwm, reference) if order.side == "buy" else max(order.hwm, reference)
        order.stop_price = trailing_stop_price(order)
    assert order.stop_price is not None
    if order.side == "buy":
        order.triggered = quote.ask_price >= order.stop_price
    else:
        order.triggered = quote.bid_price <= order.stop_price
    return order.triggered


def trailing_stop_price(order: VenueOrder) -> Decimal:
    assert order.hwm is not None
    if order.trail_price is not None:
        offset = order.trail_price
    else:
        assert order.trail_percent is not None
        offset = order.hwm * order.trail_percent / 100
    raw = order.hwm + offset if order.side == "buy" else order.hwm - offset
    return raw.quantize(price_tick(raw), rounding=ROUND_HALF_EVEN)


class Liquidity:
    """Touch size a quote offers, shared by every order on that symbol until the next quote arrives.

    An order larger than the touch fills the touch now and the rest on later quotes (partial fills).
    """

    def __init__(self) -> None:
        self._consumed: dict[tuple[str, str], tuple[int, Decimal]] = {}

    def available(self, quote: FakeQuote, side: str) -> Decimal:
        touch = Decimal(quote.ask_size if side == "buy" else quote.bid_size)
        seen = self._consumed.get((quote.symbol, side))
        if seen is None or seen[0] != quote.ts_ns:
            return touch
        return max(Decimal(0), touch - seen[1])

    def consume(self, quote: FakeQuote, side: str, qty: Decimal) -> None:
        seen = self._consumed.get((quote.symbol, side))
        already = seen[1] if seen is not None and seen[0] == quote.ts_ns else Decimal(0)
        self._consumed[(quote.symbol, side)] = (quote.ts_ns, already + qty)


def decide_execution(
    order: VenueOrder,
    quote: FakeQuote,
    *,
    rng: random.Random,
    liquidity: Liquidity,
    slippage_bps: tuple[Decimal, Decimal],
    passive_fill_probability: float,
    all_or_none: bool = False,
) -> Execution | None:
    """What a working (and triggered) order gets from this quote, or None.

    Marketable orders take the touch plus seeded slippage (capped at the limit); a passive limit at or
    inside the touch fills at its limit with ``passive_fill_probability``, drawn once per quote.
    """
    leaves = order.leaves_qty
    assert leaves > 0, f"order {order.id} has nothing left to fill"
    buy = order.side == "buy"
    touch = quote.ask_price if buy else quote.bid_price
    if touch <= 0:
        return None
    limit = order.limit_price if order.type in ("limit", "stop_limit") else None
    if limit is not None and not (touch <= limit if buy else touch >= limit):
        if order.time_in_force in ("ioc", "fok"):
            return None
        at_or_inside_touch = limit >= quote.bid_price if buy else limit <= quote.ask_price
        if not at_or_inside_touch or order.last_passive_quote_ns == quote.ts_ns:
            return None
        order.last_passive_quote_ns = quote.ts_ns
        if rng.random() >= passive_fill_probability:
            return None
        qty = min(leaves, Decimal(quote.bid_size if buy else quote.ask_size))
        if qty <= 0 or (all_or_none and qty < leaves):
            return None
        return Execution(qty, limit, passive=True)
    qty = min(leaves, liquidity.available(quote, order.side))
    if qty <= 0 or (all_or_none and qty < leaves):
        return None
    price = slipped_price(touch, order.side, draw_slippage_bps(rng, *slippage_bps))
    if limit is not None:
        price = min(price, limit) if buy else max(price, limit)
    return Execution(qty, price)


def _crossing_price(order_type: str, side: str, limit: Decimal | None, stop: Decimal | None) -> Decimal | None:
    """Worst price an order could trade at; None = any price (market-like)."""
    if order_type in ("limit", "stop_limit"):
        return limit
    if order_type == "stop":
        return stop
    return None


def could_cross(side: str, order_type: str, limit: Decimal | None, stop: Decimal | None, other: VenueOrder) -> bool:
    """Alpaca's wash-trade guard: could a new order execute against ``other`` (opposite side, same symbol)?"""
    assert other.side != side
    mine = _crossing_price(order_type, side, limit, stop)
    theirs = _crossing_price(other.type, other.side, other.limit_price, other.stop_price)
    if mine is None or theirs is None:
        return True
    buy_price, sell_price = (mine, theirs) if side == "buy" else (theirs, mine)
    return buy_price >= sell_price
