"""msgspec models of Alpaca's wire format and their mapping onto ``core.model`` types.

Numeric strings (and JSON numbers) decode straight to Decimal, never via float; RFC 3339 times become
integer nanoseconds. Anything that does not fit raises ``ResponseDecodeError`` at this edge.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import msgspec

from adapters.alpaca.errors import ResponseDecodeError
from core.model import (
    NS_PER_S,
    Account,
    AccountConfig,
    Activity,
    Bar,
    BrokerOrder,
    CashActivity,
    MarketClock,
    OrderClass,
    OrderRequest,
    OrderType,
    Position,
    Quote,
    Side,
    TimeInForce,
    TradeUpdate,
)

# --- time ------------------------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9})\d*)?([Zz]|[+-]\d{2}:?\d{2})?$"
)


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 (proleptic Gregorian), without datetime so nanoseconds survive."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


# Every REST list re-sends the same created/updated/submitted times: a parse is remembered (bounded, pure).
RFC3339_CACHE_MAX = 8_192


@functools.lru_cache(maxsize=RFC3339_CACHE_MAX)
def rfc3339_to_ns(text: str) -> int:
    """``2024-01-02T14:30:01.123456789Z`` or ``...-05:00`` -> epoch nanoseconds (naive = UTC)."""
    match = _RFC3339.match(text.strip())
    if match is None:
        raise ResponseDecodeError(f"not an RFC 3339 timestamp: {text[:40]!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 60):
        raise ResponseDecodeError(f"timestamp out of range: {text[:40]!r}")
    frac = match.group(7) or ""
    offset_s = 0
    zone = match.group(8)
    if zone and zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset_s = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset_s
    return seconds * NS_PER_S + int(frac.ljust(9, "0")) if frac else seconds * NS_PER_S


def ns_to_rfc3339(ts_ns: int) -> str:
    """Epoch nanoseconds -> ``YYYY-MM-DDTHH:MM:SS.fffffffffZ`` (UTC), for query parameters."""
    seconds, frac = divmod(ts_ns, NS_PER_S)
    days, rem = divmod(seconds, 86400)
    hour, rem = divmod(rem, 3600)
    minute, second = divmod(rem, 60)
    # civil_from_days (H. Hinnant), the inverse of _days_from_civil
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (month <= 2)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{frac:09d}Z"


def _opt_ns(text: str | None) -> int:
    return rfc3339_to_ns(text) if text else 0


def _finite(value: Decimal, name: str) -> Decimal:
    if not value.is_finite():
        raise ResponseDecodeError(f"{name} is not a finite number: {value}")
    return value


def _opt_finite(value: Decimal | None, name: str) -> Decimal | None:
    return None if value is None else _finite(value, name)


# --- trading REST / stream models ------------------------------------------------------------------


class WireOrder(msgspec.Struct, kw_only=True):
    id: str
    client_order_id: str
    status: str
    time_in_force: str
    symbol: str | None = None
    side: str | None = None
    type: str | None = None
    order_type: str | None = None
    order_class: str | None = ""
    qty: Decimal | None = None
    notional: Decimal | None = None
    filled_qty: Decimal | None = None
    filled_avg_price: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    hwm: Decimal | None = None
    created_at: str | None = None
    updated_at: str | None = None
    submitted_at: str | None = None
    legs: list[WireOrder] | None = None


class WirePosition(msgspec.Struct, kw_only=True):
    symbol: str
    qty: Decimal
    avg_entry_price: Decimal
    current_price: Decimal | None = None
    market_value: Decimal | None = None
    unrealized_pl: Decimal | None = None


class WireAccount(msgspec.Struct, kw_only=True):
    id: str
    cash: Decimal
    equity: Decimal
    buying_power: Decimal
    last_equity: Decimal | None = None
    multiplier: Decimal = Decimal(1)
    long_market_value: Decimal = Decimal(0)
    short_market_value: Decimal = Decimal(0)
    pattern_day_trader: bool | None = None  # removed from responses 2026-07-06 (alpaca-wire.md §2)
    daytrade_count: int | None = None
    trading_blocked: bool = False
    shorting_enabled: bool = True


class WireAccountConfig(msgspec.Struct, kw_only=True):
    max_margin_multiplier: Decimal
    pdt_check: str | None = None
    no_shorting: bool = False
    suspend_trade: bool = False
    fractional_trading: bool = False


class WireActivity(msgspec.Struct, kw_only=True):
    id: str
    activity_type: str = "FILL"
    order_id: str | None = None
    symbol: str | None = None
    side: str | None = None
    qty: Decimal | None = None
    price: Decimal | None = None
    cum_qty: Decimal | None = None
    leaves_qty: Decimal | None = None
    transaction_time: str | None = None
    type: str = "fill"


class WireClock(msgspec.Struct, kw_only=True):
    timestamp: str
    is_open: bool
    next_open: str
    next_close: str


class WireMultiStatus(msgspec.Struct, kw_only=True):
    """One element of a 207 answer (cancel-all: ``id``; close-all: ``symbol``)."""

    status: int
    id: str | None = None
    symbol: str | None = None
    body: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))


class WireTradeUpdate(msgspec.Struct, kw_only=True):
    event: str
    order: WireOrder
    timestamp: str | None = None
    execution_id: str | None = None
    price: Decimal | None = None
    qty: Decimal | None = None
    position_qty: Decimal | None = None


class WireStreamEnvelope(msgspec.Struct, kw_only=True):
    stream: str
    data: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))


class WireAuthorization(msgspec.Struct, kw_only=True):
    status: str
    action: str = "authenticate"


# --- market data models ------------------------------------------------------------------------------


class WireBar(msgspec.Struct, kw_only=True):
    t: str | int
    o: Decimal
    h: Decimal
    l: Decimal  # noqa: E741 - the wire's name
    c: Decimal
    v: Decimal
    n: int | None = None
    vw: Decimal | None = None


class WireQuote(msgspec.Struct, kw_only=True):
    t: str | int
    ap: Decimal
    bp: Decimal
    ask_size: Decimal = msgspec.field(name="as")
    bs: Decimal


class WireBarsPage(msgspec.Struct, kw_only=True):
    bars: dict[str, list[WireBar]] | None = None
    next_page_token: str | None = None


class WireLatestQuotes(msgspec.Struct, kw_only=True):
    quotes: dict[str, WireQuote] = msgspec.field(default_factory=dict)


class WireSnapshot(msgspec.Struct, kw_only=True):
    latestQuote: WireQuote | None = None  # the wire's camelCase names
    minuteBar: WireBar | None = None
    dailyBar: WireBar | None = None
    prevDailyBar: WireBar | None = None


class StreamBar(WireBar, kw_only=True):
    T: str
    S: str


class StreamQuote(WireQuote, kw_only=True):
    T: str
    S: str


class StreamControl(msgspec.Struct, kw_only=True):
    T: str
    msg: str = ""
    code: int = 0


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    """``/v2/stocks/snapshots`` mapped to the core's Bar/Quote types."""

    symbol: str
    latest_quote: Quote | None
    minute_bar: Bar | None
    daily_bar: Bar | None
    prev_daily_bar: Bar | None


# --- decode helpers ------------------------------------------------------------------------------------


def decode_json(body: bytes | str, type_: Any, *, what: str) -> Any:
    try:
        return msgspec.json.decode(body, type=type_)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ResponseDecodeError(f"{what}: {exc}") from None


def convert(obj: Any, type_: Any, *, what: str) -> Any:
    try:
        return msgspec.convert(obj, type_)
    except (msgspec.ValidationError, TypeError) as exc:
        raise ResponseDecodeError(f"{what}: {exc}") from None


def _enum(enum_type: Any, value: str | None, name: str) -> Any:
    try:
        return enum_type(value)
    except ValueError:
        raise ResponseDecodeError(f"unknown {name} {value!r}") from None


def _ts(value: str | int) -> int:
    return value if isinstance(value, int) else rfc3339_to_ns(value)


# --- wire -> core ---------------------------------------------------------------------------------------


def order_from_wire(w: WireOrder) -> BrokerOrder:
    if w.symbol is None or (w.qty is None and w.notional is None):
        raise ResponseDecodeError(f"order {w.id} has neither qty nor notional, or no symbol")
    order_type = w.type or w.order_type
    filled = _finite(w.filled_qty if w.filled_qty is not None else Decimal(0), "filled_qty")
    return BrokerOrder(
        id=w.id,
        client_order_id=w.client_order_id,
        symbol=w.symbol,
        side=_enum(Side, w.side, "side"),
        # A notional order (Alpaca's "buy $500 of NVDA") has qty null until it fills: what filled so far stands in,
        # so an account that holds one (placed by its owner) still lists, reconciles and halts (issue 17).
        qty=_finite(w.qty, "qty") if w.qty is not None else filled,
        notional=_opt_finite(w.notional, "notional"),
        filled_qty=filled,
        filled_avg_price=_opt_finite(w.filled_avg_price, "filled_avg_price"),
        status=w.status,
        type=_enum(OrderType, order_type, "order type"),
        time_in_force=_enum(TimeInForce, w.time_in_force, "time_in_force"),
        order_class=OrderClass.SIMPLE if not w.order_class else _enum(OrderClass, w.order_class, "class"),
        limit_price=_opt_finite(w.limit_price, "limit_price"),
        stop_price=_opt_finite(w.stop_price, "stop_price"),
        trail_price=_opt_finite(w.trail_price, "trail_price"),
        trail_percent=_opt_finite(w.trail_percent, "trail_percent"),
        hwm=_opt_finite(w.hwm, "hwm"),
        created_at_ns=_opt_ns(w.created_at),
        updated_at_ns=_opt_ns(w.updated_at),
        submitted_at_ns=_opt_ns(w.submitted_at),
        legs=tuple(order_from_wire(leg) for leg in (w.legs or ())),
    )


def trade_update_from_wire(w: WireTradeUpdate) -> TradeUpdate:
    order = order_from_wire(w.order)
    ts_ns = _opt_ns(w.timestamp) or order.updated_at_ns
    return TradeUpdate(
        event=w.event,
        order=order,
        ts_ns=ts_ns,
        execution_id=w.execution_id,
        price=_opt_finite(w.price, "price"),
        qty=_opt_finite(w.qty, "qty"),
        position_qty=_opt_finite(w.position_qty, "position_qty"),
    )


def position_from_wire(w: WirePosition) -> Position:
    return Position(
        symbol=w.symbol,
        qty=_finite(w.qty, "qty"),
        avg_entry_price=_finite(w.avg_entry_price, "avg_entry_price"),
        current_price=_opt_finite(w.current_price, "current_price"),
        market_value=_opt_finite(w.market_value, "market_value"),
        unrealized_pl=_opt_finite(w.unrealized_pl, "unrealized_pl"),
    )


def account_from_wire(w: WireAccount) -> Account:
    equity = _finite(w.equity, "equity")
    return Account(
        account_id=w.id,
        cash=_finite(w.cash, "cash"),
        equity=equity,
        last_equity=_finite(w.last_equity, "last_equity") if w.last_equity is not None else equity,
        buying_power=_finite(w.buying_power, "buying_power"),
        multiplier=_finite(w.multiplier, "multiplier"),
        long_market_value=_finite(w.long_market_value, "long_market_value"),
        short_market_value=_finite(w.short_market_value, "short_market_value"),
        pattern_day_trader=bool(w.pattern_day_trader),
        daytrade_count=w.daytrade_count or 0,
        trading_blocked=w.trading_blocked,
        shorting_enabled=w.shorting_enabled,
    )


def account_config_from_wire(w: WireAccountConfig) -> AccountConfig:
    return AccountConfig(
        max_margin_multiplier=_finite(w.max_margin_multiplier, "max_margin_multiplier"),
        pdt_check=w.pdt_check,
        no_shorting=w.no_shorting,
        suspend_trade=w.suspend_trade,
        fractional_trading=w.fractional_trading,
    )


def execution_id_from_activity(activity_id: str) -> str:
    """Alpaca FILL activity ids look like ``20240102143000123::<uuid>``; the uuid names the execution."""
    return activity_id.split("::", 1)[1] if "::" in activity_id else activity_id


def activity_from_wire(w: WireActivity) -> Activity:
    if None in (w.order_id, w.symbol, w.side, w.qty, w.price, w.cum_qty, w.leaves_qty, w.transaction_time):
        raise ResponseDecodeError(f"FILL activity {w.id} misses a required field")
    assert w.order_id and w.symbol and w.side and w.transaction_time  # narrowed by the check above
    assert w.qty is not None and w.price is not None and w.cum_qty is not None and w.leaves_qty is not None
    return Activity(
        id=w.id,
        execution_id=execution_id_from_activity(w.id),
        order_id=w.order_id,
        symbol=w.symbol,
        side=w.side,
        qty=_finite(w.qty, "qty"),
        price=_finite(w.price, "price"),
        cum_qty=_finite(w.cum_qty, "cum_qty"),
        leaves_qty=_finite(w.leaves_qty, "leaves_qty"),
        ts_ns=rfc3339_to_ns(w.transaction_time),
        type=w.type,
    )


class WireNonTradeActivity(msgspec.Struct, kw_only=True):
    """Alpaca's NonTradeActivity (NTA) object; every field but id and type may be absent or null."""

    id: str
    activity_type: str
    date: str | None = None
    net_amount: Decimal | None = None
    symbol: str | None = None
    qty: Decimal | None = None
    per_share_amount: Decimal | None = None
    description: str | None = None
    status: str | None = None


_ACTIVITY_ID_TIME = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{3})::")


def activity_ts_ns(activity_id: str, date: str | None) -> int:
    """An activity's instant: the id's ``YYYYMMDDHHMMSSmmm`` prefix (UTC) when it has one, else its date."""
    match = _ACTIVITY_ID_TIME.match(activity_id)
    if match:
        y, mo, d, h, mi, s, ms = match.groups()
        return rfc3339_to_ns(f"{y}-{mo}-{d}T{h}:{mi}:{s}.{ms}Z")
    if date:
        return rfc3339_to_ns(f"{date[:10]}T00:00:00Z")
    raise ResponseDecodeError(f"activity {activity_id} has neither a time in its id nor a date")


def non_trade_activity_from_wire(w: WireNonTradeActivity) -> CashActivity:
    return CashActivity(
        id=w.id,
        activity_type=w.activity_type.upper(),
        ts_ns=activity_ts_ns(w.id, w.date),
        net_amount=_finite(w.net_amount if w.net_amount is not None else Decimal(0), "net_amount"),
        symbol=w.symbol or None,
        qty=_opt_finite(w.qty, "qty"),
        per_share_amount=_opt_finite(w.per_share_amount, "per_share_amount"),
        description=w.description or "",
    )


def clock_from_wire(w: WireClock) -> MarketClock:
    return MarketClock(
        ts_ns=rfc3339_to_ns(w.timestamp),
        is_open=w.is_open,
        next_open_ts_ns=rfc3339_to_ns(w.next_open),
        next_close_ts_ns=rfc3339_to_ns(w.next_close),
    )


def bar_from_wire(symbol: str, w: WireBar) -> Bar:
    return Bar(
        symbol=symbol,
        open=_finite(w.o, "o"),
        high=_finite(w.h, "h"),
        low=_finite(w.l, "l"),
        close=_finite(w.c, "c"),
        volume=_finite(w.v, "v"),
        ts_ns=_ts(w.t),
    )


def quote_from_wire(symbol: str, w: WireQuote) -> Quote:
    return Quote(
        symbol=symbol,
        bid_price=_finite(w.bp, "bp"),
        ask_price=_finite(w.ap, "ap"),
        bid_size=_finite(w.bs, "bs"),
        ask_size=_finite(w.ask_size, "as"),
        ts_ns=_ts(w.t),
    )


def snapshot_from_wire(symbol: str, w: WireSnapshot) -> Snapshot:
    def bar(b: WireBar | None) -> Bar | None:
        return None if b is None else bar_from_wire(symbol, b)

    return Snapshot(
        symbol=symbol,
        latest_quote=None if w.latestQuote is None else quote_from_wire(symbol, w.latestQuote),
        minute_bar=bar(w.minuteBar),
        daily_bar=bar(w.dailyBar),
        prev_daily_bar=bar(w.prevDailyBar),
    )


# --- core -> wire ----------------------------------------------------------------------------------------


def order_request_body(request: OrderRequest) -> dict[str, Any]:
    """POST /v2/orders JSON. Decimals travel as strings (Alpaca accepts both; strings keep them exact)."""
    body: dict[str, Any] = {"client_order_id": request.client_order_id, "symbol": request.symbol}
    # qty xor notional (alpaca-py's OrderRequest validator): a dollar-amount order sends no qty at all.
    if request.notional is not None:
        body["notional"] = str(request.notional)
    else:
        body["qty"] = str(request.qty)
    body.update(side=request.side.value, type=request.type.value, time_in_force=request.time_in_force.value)
    if request.limit_price is not None:
        body["limit_price"] = str(request.limit_price)
    if request.stop_price is not None:
        body["stop_price"] = str(request.stop_price)
    if request.trail_price is not None:
        body["trail_price"] = str(request.trail_price)
    if request.trail_percent is not None:
        body["trail_percent"] = str(request.trail_percent)
    if request.extended_hours:
        body["extended_hours"] = True
    if request.order_class is not OrderClass.SIMPLE:
        body["order_class"] = request.order_class.value
    if request.bracket is not None:
        body["take_profit"] = {"limit_price": str(request.bracket.take_profit_limit_price)}
        stop_loss = {"stop_price": str(request.bracket.stop_loss_stop_price)}
        if request.bracket.stop_loss_limit_price is not None:
            stop_loss["limit_price"] = str(request.bracket.stop_loss_limit_price)
        body["stop_loss"] = stop_loss
    return body


def config_patch_body(changes: Mapping[str, Any]) -> dict[str, Any]:
    allowed = set(WireAccountConfig.__struct_fields__) | {"dtbp_check", "trade_confirm_email"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ValueError(f"unknown account configuration keys: {unknown}")
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in sorted(changes.items())}
