"""Alpaca JSON shapes for the fake venue: orders, positions, account, activities, errors and timestamps.

One place renders venue state into the exact wire format alpaca-py parses strictly (alpaca-wire.md §2, §6),
and parses the few request values (decimals, times, booleans) the way the real API accepts them.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import msgspec

from core.model import NS_PER_S

if TYPE_CHECKING:
    from adapters.fake.accounts import (
        AccountConfiguration,
        AccountFigures,
        FillActivity,
        NonTradeActivity,
        PositionState,
    )
    from adapters.fake.matching import VenueOrder

ET = ZoneInfo("America/New_York")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
JSON_HEADERS: Mapping[str, str] = {"Content-Type": "application/json; charset=utf-8"}
ASSET_NAMESPACE = "6ba7b811-9dad-11d1-80b4-00c04fd430c8"  # uuid.NAMESPACE_URL: asset ids = uuid5(ns, symbol)


class ApiError(Exception):
    """An Alpaca-shaped error reply: HTTP status, 8-digit ``code``, ``message`` and optional extra fields."""

    def __init__(self, status: int, code: int, message: str, **extra: Any) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, **self.extra)


def error_body(code: int, message: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    body.update(extra)
    return body


def encode(obj: Any) -> bytes:
    """The one JSON encoder of the venue: msgspec keeps dict insertion order, so bytes are reproducible."""
    return msgspec.json.encode(obj)


def decode_body(body: bytes) -> Any:
    """Request JSON with floats parsed as Decimal (never through float). Raises ValueError."""
    try:
        return json.loads(body, parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(str(exc)) from exc


# --- time -------------------------------------------------------------------------------------------


def rfc3339_ns(ts_ns: int) -> str:
    """``2024-01-02T14:30:00.123456789Z`` (UTC, nanoseconds, like Alpaca's stream timestamps)."""
    seconds, frac_ns = divmod(ts_ns, NS_PER_S)
    return f"{_utc_seconds(seconds)}.{frac_ns:09d}Z"


@functools.lru_cache(maxsize=4096)
def _utc_seconds(seconds: int) -> str:
    return f"{_EPOCH + dt.timedelta(seconds=seconds):%Y-%m-%dT%H:%M:%S}"


def rfc3339_opt(ts_ns: int | None) -> str | None:
    return None if ts_ns is None else rfc3339_ns(ts_ns)


def to_datetime(ts_ns: int, tz: dt.tzinfo = dt.UTC) -> dt.datetime:
    return (_EPOCH + dt.timedelta(microseconds=ts_ns // 1000)).astimezone(tz)


def et_isoformat(ts_ns: int) -> str:
    """``2024-01-02T09:31:00.500000-05:00``: the clock endpoint speaks exchange time with an offset."""
    return to_datetime(ts_ns, ET).isoformat()


def et_date(ts_ns: int) -> str:
    return to_datetime(ts_ns, ET).strftime("%Y-%m-%d")


def et_hhmm(ts_ns: int) -> str:
    return to_datetime(ts_ns, ET).strftime("%H:%M")


def datetime_to_ns(value: dt.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)  # Alpaca reads naive times as UTC
    return (value - _EPOCH) // dt.timedelta(microseconds=1) * 1000


def parse_time_ns(text: str) -> int:
    """RFC3339 (``Z`` or offset, any fraction) or a bare date (midnight exchange time). Raises ValueError."""
    text = text.strip()
    if len(text) == 10:
        day = dt.date.fromisoformat(text)
        return datetime_to_ns(dt.datetime(day.year, day.month, day.day, tzinfo=ET))
    return datetime_to_ns(dt.datetime.fromisoformat(text))  # 3.11: "Z", offsets, >6 digits truncated


def activity_id(ts_ns: int, uid: str) -> str:
    """``YYYYMMDDHHMMSSmmm::<uuid>``: Alpaca activity ids sort by time first."""
    when = to_datetime(ts_ns)
    return f"{when:%Y%m%d%H%M%S}{when.microsecond // 1000:03d}::{uid}"


# --- values -----------------------------------------------------------------------------------------


_QUANTA = {places: Decimal(1).scaleb(-places) for places in range(19)}  # 1E-places, built once


def dec_str(value: Decimal, max_places: int = 9) -> str:
    """Plain decimal string without exponent or trailing zeros (``"100"``, ``"185.12"``, ``"-5"``)."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -max_places:
        value = value.quantize(_QUANTA.get(max_places) or Decimal(1).scaleb(-max_places))
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def dec_opt(value: Decimal | None) -> str | None:
    return None if value is None else dec_str(value)


def parse_decimal(value: Any, field: str) -> Decimal:
    """A JSON number (int or Decimal-parsed float) or numeric string; bools and junk raise ApiError 422."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise ApiError(422, 40010001, f"invalid {field}")
    try:
        parsed = Decimal(value)
    except (InvalidOperation, ValueError) as exc:
        raise ApiError(422, 40010001, f"invalid {field}") from exc
    if not parsed.is_finite():
        raise ApiError(422, 40010001, f"invalid {field}")
    return parsed


def parse_bool(text: str, field: str) -> bool:
    """Query booleans arrive as ``True``/``False`` from alpaca-py (requests renders Python bools)."""
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ApiError(400, 40010001, f"invalid {field}")


# --- resources --------------------------------------------------------------------------------------


def order_json(order: VenueOrder, legs: list[VenueOrder] | None = None) -> dict[str, Any]:
    """The full Order object (REST and trade_updates). ``legs`` None => ``"legs": null``."""
    return {
        "id": order.id,
        "client_order_id": order.client_order_id,
        "created_at": rfc3339_ns(order.created_at_ns),
        "updated_at": rfc3339_ns(order.updated_at_ns),
        "submitted_at": rfc3339_ns(order.submitted_at_ns),
        "filled_at": rfc3339_opt(order.filled_at_ns),
        "expired_at": rfc3339_opt(order.expired_at_ns),
        "canceled_at": rfc3339_opt(order.canceled_at_ns),
        "failed_at": rfc3339_opt(order.failed_at_ns),
        "replaced_at": rfc3339_opt(order.replaced_at_ns),
        "replaced_by": order.replaced_by,
        "replaces": order.replaces,
        "asset_id": order.asset_id,
        "symbol": order.symbol,
        "asset_class": "us_equity",
        "notional": dec_opt(order.notional),
        "qty": None if order.notional is not None else dec_str(order.qty),
        "filled_qty": dec_str(order.filled_qty),
        "filled_avg_price": dec_opt(order.filled_avg_price),
        "order_class": order.order_class,
        "order_type": order.type,
        "type": order.type,
        "side": order.side,
        "position_intent": order.position_intent,
        "time_in_force": order.time_in_force,
        "limit_price": dec_opt(order.limit_price),
        "stop_price": dec_opt(order.stop_price),
        "status": order.status,
        "extended_hours": order.extended_hours,
        "legs": None if legs is None else [order_json(leg) for leg in legs],
        "trail_percent": dec_opt(order.trail_percent),
        "trail_price": dec_opt(order.trail_price),
        "hwm": dec_opt(order.hwm),
        "subtag": None,
        "source": None,
        "expires_at": None,
    }


def position_json(
    position: PositionState,
    *,
    asset_id: str,
    current_price: Decimal,
    lastday_price: Decimal,
    qty_available: Decimal,
) -> dict[str, Any]:
    qty = position.qty
    market_value = qty * current_price
    cost_basis = qty * position.avg_entry_price
    unrealized = market_value - cost_basis
    intraday = market_value - qty * lastday_price
    return {
        "asset_id": asset_id,
        "symbol": position.symbol,
        "exchange": "NASDAQ",
        "asset_class": "us_equity",
        "asset_marginable": True,
        "avg_entry_price": dec_str(position.avg_entry_price, 6),
        "qty": dec_str(qty),
        "side": "long" if qty > 0 else "short",
        "market_value": dec_str(market_value, 4),
        "cost_basis": dec_str(cost_basis, 4),
        "unrealized_pl": dec_str(unrealized, 4),
        "unrealized_plpc": dec_str(_ratio(unrealized, abs(cost_basis)), 6),
        "unrealized_intraday_pl": dec_str(intraday, 4),
        "unrealized_intraday_plpc": dec_str(_ratio(intraday, abs(qty * lastday_price)), 6),
        "current_price": dec_str(current_price, 4),
        "lastday_price": dec_str(lastday_price, 4),
        "change_today": dec_str(_ratio(current_price - lastday_price, lastday_price), 6),
        "qty_available": dec_str(qty_available),
        "swap_rate": None,
        "avg_entry_swap_rate": None,
        "usd": None,
    }


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal:
    return Decimal(0) if denominator == 0 else numerator / denominator


def account_json(figures: AccountFigures) -> dict[str, Any]:
    """TradeAccount: every numeric as a string except the integer counters (alpaca-wire.md §2)."""
    m = _money
    return {
        "id": figures.account_id,
        "account_number": figures.account_number,
        "status": "ACTIVE",
        "crypto_status": "INACTIVE",
        "currency": "USD",
        "buying_power": m(figures.buying_power),
        "regt_buying_power": m(figures.regt_buying_power),
        "daytrading_buying_power": m(figures.daytrading_buying_power),
        "effective_buying_power": m(figures.buying_power),
        "non_marginable_buying_power": m(figures.non_marginable_buying_power),
        "options_buying_power": m(figures.non_marginable_buying_power),
        "bod_dtbp": m(figures.daytrading_buying_power),
        "cash": m(figures.cash),
        "accrued_fees": "0",
        "pending_transfer_out": "0",
        "pending_transfer_in": "0",
        "portfolio_value": m(figures.equity),
        "pattern_day_trader": figures.pattern_day_trader,
        "trading_blocked": figures.trading_blocked,
        "transfers_blocked": False,
        "account_blocked": False,
        "created_at": rfc3339_ns(figures.created_at_ns),
        "trade_suspended_by_user": figures.trading_blocked,
        "multiplier": dec_str(figures.multiplier),
        "shorting_enabled": figures.shorting_enabled,
        "equity": m(figures.equity),
        "last_equity": m(figures.last_equity),
        "long_market_value": m(figures.long_market_value),
        "short_market_value": m(-figures.short_market_value),
        "position_market_value": m(figures.long_market_value + figures.short_market_value),
        "initial_margin": m(figures.initial_margin),
        "maintenance_margin": m(figures.maintenance_margin),
        "last_maintenance_margin": m(figures.last_maintenance_margin),
        "sma": m(figures.sma),
        "daytrade_count": figures.daytrade_count,
        "balance_asof": figures.balance_asof,
        "crypto_tier": 0,
        "intraday_adjustments": "0",
        "pending_reg_taf_fees": "0",
        "options_approved_level": 0,
        "options_trading_level": 0,
    }


def _money(value: Decimal) -> str:
    return dec_str(value, 4)


def configuration_json(config: AccountConfiguration) -> dict[str, Any]:
    return {
        "dtbp_check": config.dtbp_check,
        "trade_confirm_email": config.trade_confirm_email,
        "suspend_trade": config.suspend_trade,
        "no_shorting": config.no_shorting,
        "fractional_trading": config.fractional_trading,
        "max_margin_multiplier": dec_str(config.max_margin_multiplier),
        "max_options_trading_level": config.max_options_trading_level,
        "pdt_check": config.pdt_check,
        "ptp_no_exception_entry": config.ptp_no_exception_entry,
    }


def activity_json(activity: FillActivity, account_id: str) -> dict[str, Any]:
    return {
        "id": activity.id,
        "account_id": account_id,
        "activity_type": "FILL",
        "transaction_time": rfc3339_ns(activity.ts_ns),
        "type": activity.type,
        "price": dec_str(activity.price),
        "qty": dec_str(activity.qty),
        "side": activity.side,
        "symbol": activity.symbol,
        "leaves_qty": dec_str(activity.leaves_qty),
        "order_id": activity.order_id,
        "cum_qty": dec_str(activity.cum_qty),
        "order_status": activity.order_status,
    }


def non_trade_activity_json(activity: NonTradeActivity, account_id: str) -> dict[str, Any]:
    """Alpaca's NonTradeActivity object (``date`` is the settlement date; net_amount signed)."""
    return {
        "id": activity.id,
        "account_id": account_id,
        "activity_type": activity.activity_type,
        "date": et_date(activity.ts_ns),
        "net_amount": dec_str(activity.net_amount),
        "description": activity.description,
        "symbol": activity.symbol,
        "qty": dec_opt(activity.qty),
        "per_share_amount": dec_opt(activity.per_share_amount),
        "status": "executed",
    }


def asset_json(symbol: str, asset_id: str, *, shortable: bool, fractionable: bool = True) -> dict[str, Any]:
    """Asset: the JSON key is ``class`` (not asset_class); margin requirement is a number (wire doc §2)."""
    return {
        "id": asset_id,
        "class": "us_equity",
        "exchange": "NASDAQ",
        "symbol": symbol,
        "name": f"{symbol} (ttlive fake venue)",
        "status": "active",
        "tradable": True,
        "marginable": True,
        "maintenance_margin_requirement": 30,
        "margin_requirement_long": "30",
        "margin_requirement_short": "100",
        "shortable": shortable,
        "easy_to_borrow": shortable,
        "fractionable": fractionable,
        "min_order_size": "0.000000001" if fractionable else "1",
        "min_trade_increment": "0.000000001" if fractionable else "1",
        "price_increment": "0.01",
        "attributes": ["fractional_eh_enabled"] if fractionable else [],
    }
