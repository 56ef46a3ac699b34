"""The domain vocabulary: instruments, market data, signals, orders, fills, positions, account.

Frozen msgspec Structs, keyword-only. Money and quantities are Decimal (parsed from the wire's strings,
never through float); times are integer nanoseconds since the Unix epoch (``*_ts_ns``) on the session clock.
"""

from __future__ import annotations

import enum
from decimal import Decimal

import msgspec

NS_PER_S = 1_000_000_000  # timestamps are integer epoch nanoseconds everywhere (venue, wire, engine, audit)


class Direction(enum.StrEnum):
    LONG = "long"
    SHORT = "short"
    NEUTRAL = "neutral"


class ExecutionAction(enum.StrEnum):
    """TensorTrade action -> Alpaca order shape (spec 1.2)."""

    MARKET = "MARKET"  # POST /v2/orders type=market
    LIMIT_AGGRESSIVE = "LIMIT_AGGRESSIVE"  # type=limit, tif=day, priced to cross the spread
    LIMIT_PASSIVE = "LIMIT_PASSIVE"  # type=limit, tif=gtc, priced at our side of the book
    CANCEL = "CANCEL"  # DELETE /v2/orders/{id}


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(enum.StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"
    TRAILING_STOP = "trailing_stop"


class TimeInForce(enum.StrEnum):
    DAY = "day"
    GTC = "gtc"
    OPG = "opg"
    CLS = "cls"
    IOC = "ioc"
    FOK = "fok"


class OrderClass(enum.StrEnum):
    SIMPLE = "simple"
    BRACKET = "bracket"
    OCO = "oco"
    OTO = "oto"


class AccountType(enum.StrEnum):
    """Spec 2.4 account classes; decides the leverage cap."""

    CASH = "cash"
    MARGIN_INITIAL = "margin_initial"
    MARGIN_EXPERIENCED = "margin_experienced"


class Instrument(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    sector: str
    asset_id: str = ""
    shortable: bool = True


class Quote(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    bid_price: Decimal
    ask_price: Decimal
    bid_size: Decimal
    ask_size: Decimal
    ts_ns: int
    interpolated: bool = False  # True when filled by last-known-value across a data gap (spec 1.1)

    @property
    def mid(self) -> Decimal:
        return (self.bid_price + self.ask_price) / 2


class Bar(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    ts_ns: int  # bar start
    interpolated: bool = False


class Signal(msgspec.Struct, frozen=True, kw_only=True):
    """What a policy wants: a target change for one symbol, before risk."""

    signal_id: str
    model_id: str
    symbol: str
    direction: Direction
    quantity: Decimal  # shares >= 0 (whole, or fractional under execution.sizing); direction carries the sign
    action: ExecutionAction
    ts_ns: int
    cancel_order_id: str | None = None  # for ExecutionAction.CANCEL: the venue order id to cancel
    reduce_only: bool = False  # policy marks exits; risk never blocks a reducing order anyway


class Leg(msgspec.Struct, frozen=True, kw_only=True):
    """Bracket take-profit / stop-loss prices attached to an entry (spec 2.2)."""

    take_profit_limit_price: Decimal
    stop_loss_stop_price: Decimal
    stop_loss_limit_price: Decimal | None = None


class OrderRequest(msgspec.Struct, frozen=True, kw_only=True):
    """An order as we ask the broker for it. ``client_order_id`` is the idempotency key (spec 1.2)."""

    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    type: OrderType
    time_in_force: TimeInForce
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    order_class: OrderClass = OrderClass.SIMPLE
    bracket: Leg | None = None
    signal_id: str = ""
    extended_hours: bool = False
    # A dollar-amount order (Alpaca ``notional``): sent instead of ``qty``, which then only estimates the shares.
    notional: Decimal | None = None
    trail_price: Decimal | None = None  # trailing_stop: exactly one of the two
    trail_percent: Decimal | None = None


class BrokerOrder(msgspec.Struct, frozen=True, kw_only=True):
    """An order as the broker reports it (REST snapshot or inside a trade update)."""

    id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    filled_qty: Decimal
    filled_avg_price: Decimal | None
    status: str  # one of core.order_fsm.ALPACA_STATUSES (kept str: the wire may add new ones)
    type: OrderType
    time_in_force: TimeInForce
    order_class: OrderClass = OrderClass.SIMPLE
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    created_at_ns: int = 0
    updated_at_ns: int = 0
    submitted_at_ns: int = 0
    legs: tuple[BrokerOrder, ...] = ()
    notional: Decimal | None = None  # a dollar-amount order (qty unknown until it fills: qty is what filled so far)
    trail_price: Decimal | None = None  # trailing_stop orders: the trail, and the high-water mark it follows
    trail_percent: Decimal | None = None
    hwm: Decimal | None = None


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    execution_id: str
    order_id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal  # this execution's quantity
    price: Decimal
    ts_ns: int
    cum_qty: Decimal | None = None  # order's cumulative filled quantity after this execution
    position_qty: Decimal | None = None  # position after the fill, as the venue says


class TradeUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """One ``trade_updates`` stream event, decoded."""

    event: str  # new, fill, partial_fill, canceled, expired, rejected, ...
    order: BrokerOrder
    ts_ns: int
    execution_id: str | None = None
    price: Decimal | None = None
    qty: Decimal | None = None
    position_qty: Decimal | None = None


class Position(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    qty: Decimal  # negative for short
    avg_entry_price: Decimal
    current_price: Decimal | None = None
    market_value: Decimal | None = None
    unrealized_pl: Decimal | None = None


class Account(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    cash: Decimal
    equity: Decimal
    last_equity: Decimal
    buying_power: Decimal
    multiplier: Decimal
    long_market_value: Decimal = Decimal(0)
    short_market_value: Decimal = Decimal(0)
    pattern_day_trader: bool = False  # optional on the wire since 2026-07 (alpaca-wire.md §2)
    daytrade_count: int = 0
    trading_blocked: bool = False
    shorting_enabled: bool = True


class AccountConfig(msgspec.Struct, frozen=True, kw_only=True):
    max_margin_multiplier: Decimal
    pdt_check: str | None = None  # both | entry | exit
    no_shorting: bool = False
    suspend_trade: bool = False
    fractional_trading: bool = False


class Activity(msgspec.Struct, frozen=True, kw_only=True):
    """A FILL activity from ``/v2/account/activities`` (spec 4.4)."""

    id: str
    execution_id: str  # the execution the activity records (the adapter knows how the broker's ids encode it)
    order_id: str
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    cum_qty: Decimal
    leaves_qty: Decimal
    ts_ns: int
    type: str = "fill"


class CashActivity(msgspec.Struct, frozen=True, kw_only=True):
    """A non-trade activity from ``/v2/account/activities`` (Alpaca's NTA): a dividend (DIV...), a fee (FEE), interest
    (INT), a journal (JNLC), a deposit/withdrawal (CSD/CSW), a split (SPLIT: ``qty`` the change in shares)..."""

    id: str
    activity_type: str
    ts_ns: int  # from the id's time prefix when it has one, else the settlement date's midnight (UTC)
    net_amount: Decimal  # cash in (> 0) or out (< 0)
    symbol: str | None = None
    qty: Decimal | None = None
    per_share_amount: Decimal | None = None
    description: str = ""


class MarketClock(msgspec.Struct, frozen=True, kw_only=True):
    ts_ns: int
    is_open: bool
    next_open_ts_ns: int
    next_close_ts_ns: int
