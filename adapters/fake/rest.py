"""The trading REST router of the fake venue: parse and validate Alpaca requests, call the venue, shape replies.

Request-shape errors become Alpaca's 400/422 bodies here; broker rules (buying power, wash trades, PDT,
uniqueness) live in the venue. Every handler returns ``(status, json_or_None)`` or raises ``ApiError``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from adapters.fake import matching as m
from adapters.fake.accounts import FillActivity, NonTradeActivity
from adapters.fake.calendar import ns_at
from adapters.fake.interfaces import RestRequest
from adapters.fake.wire import (
    ApiError,
    account_json,
    activity_json,
    asset_json,
    configuration_json,
    decode_body,
    et_date,
    et_hhmm,
    et_isoformat,
    non_trade_activity_json,
    parse_bool,
    parse_decimal,
    parse_time_ns,
    position_json,
)
from core.limits import CLIENT_ORDER_ID_MAX_CHARS
from core.model import NS_PER_S

if TYPE_CHECKING:
    from adapters.fake.venue import Venue

Handler = Callable[["Venue", RestRequest, dict[str, str]], tuple[int, Any]]

ORDERS_DEFAULT_LIMIT: Final = 50  # Alpaca docs: GET /v2/orders limit default 50, max 500
ORDERS_MAX_LIMIT: Final = 500
ACTIVITIES_MAX_PAGE_SIZE: Final = 100  # Alpaca docs: page_size max 100
CALENDAR_DEFAULT_DAYS: Final = 30
_DAY_NS: Final = 86_400 * NS_PER_S
PRE_START_HISTORY_DAYS: Final = 366  # how far the portfolio history reaches back before the venue started
_ZERO: Final = Decimal(0)
_TIMEFRAMES_NS: Final = {
    "1Min": 60 * NS_PER_S,
    "5Min": 300 * NS_PER_S,
    "15Min": 900 * NS_PER_S,
    "1H": 3600 * NS_PER_S,
    "1D": _DAY_NS,
}
_PERIOD_RE: Final = re.compile(r"^([1-9]\d{0,3})([DWMA])$")
_PERIOD_UNIT_DAYS: Final = {"D": 1, "W": 7, "M": 30, "A": 365}
_ACTIVITY_TYPE_RE: Final = re.compile(r"^[A-Z_]{2,16}$")
_REPLACEABLE: Final = ("qty", "time_in_force", "limit_price", "stop_price", "trail", "client_order_id")


def dispatch(venue: Venue, req: RestRequest) -> tuple[int, Any]:
    path = req.path[:-1] if len(req.path) > 1 and req.path.endswith("/") else req.path
    path_known = False
    for method, pattern, handler in _ROUTES:
        match = pattern.fullmatch(path)
        if match is None:
            continue
        path_known = True
        if method == req.method:
            return handler(venue, req, match.groupdict())
    if path_known:
        raise ApiError(405, 40510000, "method not allowed")
    raise ApiError(404, 40410000, "endpoint not found")


# --- request parsing helpers ---------------------------------------------------------------------------------


def _body(req: RestRequest) -> dict[str, Any]:
    try:
        body = decode_body(req.body)
    except ValueError as exc:
        raise ApiError(400, 40010000, "request body format is invalid") from exc
    if not isinstance(body, dict):
        raise ApiError(400, 40010000, "request body format is invalid")
    return body


def _q_bool(req: RestRequest, name: str, default: bool) -> bool:
    value = req.query.get(name)
    return default if value in (None, "") else parse_bool(value, name)


def _q_choice(req: RestRequest, name: str, choices: tuple[str, ...], default: str | None) -> str | None:
    value = req.query.get(name)
    if value in (None, ""):
        return default
    if value not in choices:
        raise ApiError(400, 40010001, f"invalid {name}")
    return value


def _q_int(req: RestRequest, name: str, default: int, *, minimum: int, maximum: int, clamp: bool) -> int:
    value = req.query.get(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise ApiError(400, 40010001, f"invalid {name}") from exc
    if clamp:
        number = min(number, maximum)
    if not minimum <= number <= maximum:
        raise ApiError(400, 40010001, f"{name} must be between {minimum} and {maximum}")
    return number


def _q_time(req: RestRequest, name: str) -> int | None:
    value = req.query.get(name)
    if value in (None, ""):
        return None
    try:
        return parse_time_ns(value)
    except ValueError as exc:
        raise ApiError(400, 40010001, f"invalid {name}") from exc


def _q_decimal(req: RestRequest, name: str) -> Decimal | None:
    value = req.query.get(name)
    return None if value in (None, "") else parse_decimal(value, name)


def _price(body: dict[str, Any], key: str, label: str | None = None) -> Decimal | None:
    value = body.get(key)
    if value is None:
        return None
    price = parse_decimal(value, label or key)
    if price <= 0:
        raise ApiError(422, 40010001, f"{label or key} must be > 0")
    if not m.is_on_tick(price):
        raise ApiError(422, 40010001, "sub-penny increment does not fulfill minimum pricing criteria")
    return price


def _leg_price(body: dict[str, Any], leg: str, key: str) -> Decimal | None:
    table = body.get(leg)
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ApiError(422, 40010001, f"invalid {leg}")
    return _price(table, key, f"{leg}.{key}")


# --- orders ----------------------------------------------------------------------------------------------------


def parse_order_spec(body: dict[str, Any]) -> m.OrderSpec:
    """Validate a POST /v2/orders body the way Alpaca does (422 40010001 with Alpaca's messages)."""
    symbol = body.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise ApiError(422, 40010001, "symbol is required")
    qty, notional = _quantity(body)
    side, order_type, tif = body.get("side"), body.get("type"), body.get("time_in_force")
    if side not in m.SIDES:
        raise ApiError(422, 40010001, "invalid side")
    if order_type not in m.ORDER_TYPES:
        raise ApiError(422, 40010001, "invalid order type")
    if tif not in m.TIMES_IN_FORCE:
        raise ApiError(422, 40010001, "invalid time_in_force")
    if tif in ("opg", "cls"):
        raise ApiError(422, 40010001, f"time_in_force {tif} is not supported by this venue")
    order_class = body.get("order_class") or ""
    if order_class not in m.ORDER_CLASSES:
        raise ApiError(422, 40010001, "invalid order_class")
    order_class = "" if order_class == "simple" else order_class
    fractional = notional is not None or qty != qty.to_integral_value()
    if fractional and not (order_type == "market" and tif == "day" and not order_class):
        # alpaca-docs trading/fractional-trading.md: fractional (qty or notional) only for market day orders
        what = "notional" if notional is not None else "fractional"
        raise ApiError(422, 40010001, f"{what} orders must be simple market orders with time_in_force day")
    limit_price, stop_price = _price(body, "limit_price"), _price(body, "stop_price")
    if order_type in ("limit", "stop_limit") and limit_price is None and order_class != "oco":
        raise ApiError(422, 40010001, "limit_price is required for limit orders")
    if order_type in ("market", "stop", "trailing_stop") and limit_price is not None:
        raise ApiError(422, 40010001, f"limit_price is not allowed for {order_type} orders")
    if order_type in ("stop", "stop_limit") and stop_price is None:
        raise ApiError(422, 40010001, "stop_price is required for stop orders")
    if order_type in ("market", "limit") and stop_price is not None:
        raise ApiError(422, 40010001, f"stop_price is not allowed for {order_type} orders")
    trail_price, trail_percent = _trail(body, order_type, tif)
    extended_hours = body.get("extended_hours", False)
    if not isinstance(extended_hours, bool):
        raise ApiError(422, 40010001, "invalid extended_hours")
    if extended_hours and (order_type != "limit" or tif != "day"):
        raise ApiError(422, 40010001, "extended hours order must be DAY limit orders")
    client_order_id = body.get("client_order_id")
    if client_order_id is not None:
        if not isinstance(client_order_id, str) or not client_order_id:
            raise ApiError(422, 40010001, "invalid client_order_id")
        if len(client_order_id) > CLIENT_ORDER_ID_MAX_CHARS:
            raise ApiError(422, 40010001, "client_order_id must be no more than 128 characters")
    take_profit = _leg_price(body, "take_profit", "limit_price")
    stop_loss_stop = _leg_price(body, "stop_loss", "stop_price")
    stop_loss_limit = _leg_price(body, "stop_loss", "limit_price")
    spec = m.OrderSpec(
        symbol=symbol,
        qty=qty,
        side=side,
        type=order_type,
        time_in_force=tif,
        limit_price=limit_price,
        stop_price=stop_price,
        trail_price=trail_price,
        trail_percent=trail_percent,
        extended_hours=extended_hours,
        client_order_id=client_order_id,
        order_class=order_class,
        take_profit_limit_price=take_profit,
        stop_loss_stop_price=stop_loss_stop,
        stop_loss_limit_price=stop_loss_limit,
        notional=notional,
    )
    if order_class:
        _check_complex(spec)
    elif take_profit is not None or stop_loss_stop is not None:
        raise ApiError(422, 40010001, "take_profit/stop_loss need order_class bracket, oco or oto")
    return spec


def _quantity(body: dict[str, Any]) -> tuple[Decimal, Decimal | None]:
    """(qty, notional): exactly one of the two (alpaca-docs fractional-trading.md: both is a 400), at most
    9 decimals each. A notional order's qty is 0 here: the venue learns it only as the order fills."""
    raw_qty, raw_notional = body.get("qty"), body.get("notional")
    if raw_qty is not None and raw_notional is not None:
        raise ApiError(400, 40010001, "qty and notional are mutually exclusive")
    if raw_qty is None and raw_notional is None:
        raise ApiError(422, 40010001, "qty or notional is required")
    name = "qty" if raw_qty is not None else "notional"
    value = parse_decimal(raw_qty if raw_qty is not None else raw_notional, name)
    if value <= 0:
        raise ApiError(422, 40010001, f"{name} must be > 0")
    if value != value.quantize(m.FRACTION_QUANTUM):
        raise ApiError(422, 40010001, f"{name} must have at most 9 decimal places")
    return (value, None) if name == "qty" else (Decimal(0), value)


def _trail(body: dict[str, Any], order_type: str, tif: str) -> tuple[Decimal | None, Decimal | None]:
    trail_price = body.get("trail_price")
    trail_percent = body.get("trail_percent")
    if order_type != "trailing_stop":
        if trail_price is not None or trail_percent is not None:
            raise ApiError(422, 40010001, "trail_price/trail_percent are only for trailing_stop orders")
        return None, None
    if (trail_price is None) == (trail_percent is None):
        raise ApiError(422, 40010001, "trailing_stop orders need exactly one of trail_price or trail_percent")
    if tif not in ("day", "gtc"):
        raise ApiError(422, 40010001, "trailing_stop orders must be day or gtc")
    if trail_price is not None:
        return _price(body, "trail_price"), None
    percent = parse_decimal(trail_percent, "trail_percent")
    if not 0 < percent < 100:
        raise ApiError(422, 40010001, "trail_percent must be > 0 and < 100")
    return None, percent


def _check_complex(spec: m.OrderSpec) -> None:
    """Bracket / OCO / OTO shape and price-ladder rules (alpaca-wire.md §2, Alpaca order docs)."""
    tp, sl_stop, sl_limit = spec.take_profit_limit_price, spec.stop_loss_stop_price, spec.stop_loss_limit_price
    if spec.time_in_force not in ("day", "gtc"):
        raise ApiError(422, 40010001, f"{spec.order_class} orders must be entered with time_in_force day or gtc")
    if spec.extended_hours:
        raise ApiError(422, 40010001, f"{spec.order_class} orders cannot be extended hours orders")
    if spec.order_class == "bracket":
        if spec.type not in ("market", "limit"):
            raise ApiError(422, 40010001, "bracket orders must be entered with a limit or market order")
        if tp is None or sl_stop is None:
            raise ApiError(422, 40010001, "bracket orders require take_profit and stop_loss")
    elif spec.order_class == "oto":
        if spec.type not in ("market", "limit"):
            raise ApiError(422, 40010001, "oto orders must be entered with a limit or market order")
        if (tp is None) == (sl_stop is None):
            raise ApiError(422, 40010001, "oto orders require exactly one of take_profit or stop_loss")
    else:  # oco: an exit pair, both legs on this order's side
        if spec.type != "limit":
            raise ApiError(422, 40010001, "oco orders must be limit orders")
        if tp is None or sl_stop is None:
            raise ApiError(422, 40010001, "oco orders require take_profit and stop_loss")
    # For a buy entry the exits sell: take-profit above, stop below (mirrored for a sell entry / a buy OCO).
    exits_sell = spec.side == "buy" if spec.order_class != "oco" else spec.side == "sell"
    sign = 1 if exits_sell else -1
    if tp is not None and sl_stop is not None and sign * (tp - sl_stop) <= 0:
        word = "greater" if exits_sell else "less"
        raise ApiError(422, 40010001, f"take_profit.limit_price must be {word} than stop_loss.stop_price")
    if sl_stop is not None and sl_limit is not None and sign * (sl_stop - sl_limit) < 0:
        word = "less" if exits_sell else "greater"
        raise ApiError(422, 40010001, f"stop_loss.limit_price must be {word} than or equal to stop_price")
    if spec.order_class != "oco" and spec.limit_price is not None:
        if tp is not None and sign * (tp - spec.limit_price) <= 0:
            raise ApiError(422, 40010001, "take_profit.limit_price must be beyond the entry limit_price")
        if sl_stop is not None and sign * (spec.limit_price - sl_stop) <= 0:
            raise ApiError(422, 40010001, "stop_loss.stop_price must be beyond the entry limit_price")


def _post_order(venue: Venue, req: RestRequest, _: dict[str, str]) -> tuple[int, Any]:
    return 200, venue.book.submit_order(parse_order_spec(_body(req)))


def _get_orders(venue: Venue, req: RestRequest, _: dict[str, str]) -> tuple[int, Any]:
    status = _q_choice(req, "status", ("open", "closed", "all"), "open")
    limit = _q_int(req, "limit", ORDERS_DEFAULT_LIMIT, minimum=1, maximum=ORDERS_MAX_LIMIT, clamp=True)
    after, until = _q_time(req, "after"), _q_time(req, "until")
    direction = _q_choice(req, "direction", ("asc", "desc"), "desc")
    nested = _q_bool(req, "nested", False)
    side = _q_choice(req, "side", ("buy", "sell"), None)
    symbols_text = req.query.get("symbols") or ""
    symbols = {s.strip() for s in symbols_text.split(",") if s.strip()}
    wanted = {"open": m.OPEN, "closed": m.TERMINAL, "all": m.ALL_STATUSES}[status or "open"]

    def matches(order: m.VenueOrder) -> bool:
        if order.status in wanted:
            return True
        return nested and any(leg.status in wanted for leg in venue.book.legs_of(order))

    candidates = venue.book.open_orders() if status == "open" and not nested else venue.book.orders_after(after)
    selected = [
        o
        for o in candidates
        if not (nested and o.parent_id is not None)
        and matches(o)
        and (after is None or o.submitted_at_ns > after)
        and (until is None or o.submitted_at_ns < until)
        and (side is None or o.side == side)
        and (not symbols or o.symbol in symbols)
    ]
    selected.sort(key=lambda o: (o.submitted_at_ns, o.seq), reverse=direction == "desc")
    return 200, [venue.book.order_view(o, nested=nested) for o in selected[:limit]]


def _get_order(venue: Venue, req: RestRequest, params: dict[str, str]) -> tuple[int, Any]:
    return 200, venue.book.order_view(venue.book.get_order(params["order_id"]))


def _get_order_by_client_id(venue: Venue, req: RestRequest, _: dict[str, str]) -> tuple[int, Any]:
    client_order_id = req.query.get("client_order_id")
    if not client_order_id:
        raise ApiError(400, 40010001, "client_order_id is required")
    return 200, venue.book.order_view(venue.book.get_order_by_client_id(client_order_id))


def _patch_order(venue: Venue, req: RestRequest, params: dict[str, str]) -> tuple[int, Any]:
    body = _body(req)
    old = venue.book.get_order(params["order_id"])
    changes: dict[str, Any] = {}
    if body.get("qty") is not None:
        qty = parse_decimal(body["qty"], "qty")
        if qty <= 0 or qty != qty.to_integral_value():
            raise ApiError(422, 40010001, "qty must be a whole number > 0")
        changes["qty"] = qty
    if body.get("time_in_force") is not None:
        if body["time_in_force"] not in ("day", "gtc", "ioc", "fok"):
            raise ApiError(422, 40010001, "invalid time_in_force")
        changes["time_in_force"] = body["time_in_force"]
    for key, types in (("limit_price", ("limit", "stop_limit")), ("stop_price", ("stop", "stop_limit"))):
        if body.get(key) is not None:
            if old.type not in types:
                raise ApiError(422, 40010001, f"{key} is not allowed for {old.type} orders")
            changes[key] = _price(body, key)
    if body.get("trail") is not None:
        if old.type != "trailing_stop":
            raise ApiError(422, 40010001, "trail is only for trailing_stop orders")
        trail = parse_decimal(body["trail"], "trail")
        if trail <= 0:
            raise ApiError(422, 40010001, "trail must be > 0")
        changes["trail"] = trail
    if body.get("client_order_id") is not None:
        client_order_id = body["client_order_id"]
        if not isinstance(client_order_id, str) or not 0 < len(client_order_id) <= CLIENT_ORDER_ID_MAX_CHARS:
            raise ApiError(422, 40010001, "invalid client_order_id")
        changes["client_order_id"] = client_order_id
    if not changes:
        raise ApiError(422, 40010001, f"nothing to replace: give one of {', '.join(_REPLACEABLE)}")
    return 200, venue.book.replace_order(old.id, changes)


def _delete_order(venue: Venue, req: RestRequest, params: dict[str, str]) -> tuple[int, Any]:
    venue.book.cancel_order(params["order_id"])
    return 204, None


def _delete_orders(venue: Venue, req: RestRequest, _: dict[str, str]) -> tuple[int, Any]:
    canceled = venue.book.cancel_all_orders()
    return 207, [{"id": o.id, "status": 200, "body": venue.book.order_view(o)} for o in canceled]


# --- positions -----------------------------------------------------------------------------------------------


def position_view(venue: Venue, symbol: str) -> dict[str, Any]:
    position = venue.account.positions[symbol]
    closing_side = "sell" if position.qty > 0 else "buy"
    available = abs(position.qty) - venue.book.held_for_orders(symbol, closing_side)
    return position_json(
        position,
        asset_id=venue.asset_id(symbol),
        current_price=venue.mark(symbol),
        lastday_price=venue.lastday_price(symbol),
        qty_available=available if position.qty > 0 else -available,
    )


def _get_positions(venue: Venue, req: RestRequest, _: dict[str, str]) -> tuple[int, Any]:
    return 200, [position_view(venue, symbol) for symbol in sorted(venue.account.positions)]


def _get_position(venue: Venue, req: RestRequest, params: dict[str, str]) -> tuple[int, Any]:
    symbol = venue.resolve_symbol(params["symbol"])
    if symbol is None or symbol not in venue.account.positions:
        raise ApiError(404, 40410000, "position does not exist")
    return 200, position_view(venue, symbol)


def _delete_position(venue: Venue, req: RestRequest, params: dict[str, str]) -> tuple[int, Any]:
    qty, percentage = _q_decimal(req, "qty"), _q_decimal(req, "percentage")
    if qty is not None and percentage is not None:
        raise ApiError(422, 40010001, "only one of qty or percentage may be given")
    return 200, venue.book.close_position(params["symbol"], qty=qty, percentage=percentage)


def _delete_positions(venue: Venue, req: RestRequest, _: dict[str, str]) -> tuple[int, Any]:
    return 207, venue.book.close_all_positions(cancel_orders=_q_bool(req, "cancel_orders", False))


# --- account -------------------------------------------------------------------------------------------------


def _get_account(venue: Venue, req: RestRequest, _: dict[str, str]) -> tuple[int, Any]:
    return 200, account_json(venue.account_figures())


def _get_configurations(venue: Venue, req: RestRequest, _: dict[str, str]) -> tuple[int, Any]:
    return 200, configuration_json(venue.account.config)


_CONFIG_CHOICES: Final = {
    "dtbp_check": ("both", "entry", "exit"),
    "pdt_check": ("both", "entry", "exit"),
    "trade_confirm_email": ("all", "none"),
}
_CONFIG_BOOLS: Final = ("suspend_trade", "no_shorting", "fractional_trading", "ptp_no_exception_entry")


def _patch_configurations(venue: Venue, req: RestRequest, _: dict[str, str]) -> tuple[int, Any]:
    """alpaca-py sends the whole model (nulls included); null means "leave as is". All-or-nothing."""
    body = _body(req)
    updates: dict[str, Any] = {}
    for key, choices in _CONFIG_CHOICES.items():
        if body.get(key) is not None:
            if body[key] not in choices:
                raise ApiError(422, 40010001, f"invalid {key}")
            updates[key] = body[key]
    for key in _CONFIG_BOOLS:
        if body.get(key) is not None:
            if not isinstance(body[key], bool):
                raise ApiError(422, 40010001, f"invalid {key}")
            updates[key] = body[key]
    if body.get("max_margin_multiplier") is not None:
        multiplier = parse_decimal(body["max_margin_multiplier"], "max_margin_multiplier")
        if not 1 <= multiplier <= 4:
            raise ApiError(422, 40010001, "max_margin_multiplier must be between 1 and 4")
        updates["max_margin_multiplier"] = multiplier
    if body.get("max_options_trading_level") is not None:
        level = body["max_options_trading_level"]
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 3:
            raise ApiError(422, 40010001, "invalid max_options_trading_level")
        updates["max_options_trading_level"] = level
    for key, value in updates.items():
        setattr(venue.account.config, key, value)
    return 200, configuration_json(venue.account.config)


def _get_activities(venue: Venue, req: RestRequest, params: dict[str, str]) -> tuple[int, Any]:
    path_type = params.get("activity_type")
    if path_type is not None:
        types = {path_type}
    else:
        types = {t.strip() for t in (req.query.get("activity_types") or "").split(",") if t.strip()}
    if any(not _ACTIVITY_TYPE_RE.match(t) for t in types):
        raise ApiError(400, 40010001, "invalid activity_types")
    after, until = _q_time(req, "after"), _q_time(req, "until")
    day = req.query.get("date")
    direction = _q_choice(req, "direction", ("asc", "desc"), "desc")
    size = _q_int(req, "page_size", ACTIVITIES_MAX_PAGE_SIZE, minimum=1, maximum=ACTIVITIES_MAX_PAGE_SIZE, clamp=False)
    fills = list(venue.account.activities) if (not types or "FILL" in types) else []
    items: list[FillActivity | NonTradeActivity] = list(fills)
    non_trade = [a for a in venue.account.non_trade if not types or a.activity_type in types]
    if non_trade:  # merged in time order (ids sort like their instant)
        items = sorted([*items, *non_trade], key=lambda a: (a.ts_ns, a.id))
    items = [
        a
        for a in items
        if (after is None or a.ts_ns > after)
        and (until is None or a.ts_ns < until)
        and (not day or et_date(a.ts_ns) == day[:10])
    ]
    if direction == "desc":
        items.reverse()
    token = req.query.get("page_token")
    if token:
        ids = [a.id for a in items]
        if token not in ids:
            raise ApiError(400, 40010001, "invalid page_token")
        items = items[ids.index(token) + 1 :]
    account_id = venue.account.account_id
    return 200, [
        non_trade_activity_json(a, account_id) if isinstance(a, NonTradeActivity) else activity_json(a, account_id)
        for a in items[:size]
    ]


def _pre_start_points(venue: Venue, start_ns: int, end_ns: int) -> list[tuple[int, Decimal]]:
    """The account's history before the venue started, as Alpaca would have it: the account held its starting
    book (``cash_usd`` and ``positions``) unchanged, so each earlier session closed at cash plus the positions at
    that day's close (the market's daily bars), the eve at ``last_equity``. One point per session, at its close,
    for closes in [start_ns, end_ns]; a session without a daily close for a held symbol is left out. Up to
    PRE_START_HISTORY_DAYS back; daily timeframes only (the fake has no intraday record from before it started)."""
    first = max(start_ns, venue.start_ns - PRE_START_HISTORY_DAYS * _DAY_NS)
    before = [s for s in venue.calendar.sessions_between(first - _DAY_NS, venue.start_ns) if s[2] < venue.start_ns]
    sessions = [s for s in before if first <= s[2] <= end_ns]
    if not sessions:
        return []
    eve_close = before[-1][2]
    closes: dict[str, dict[str, Decimal]] = {}
    lo, hi = ns_at(sessions[0][0]), ns_at(sessions[-1][0]) + _DAY_NS
    for symbol, _qty, _entry in venue.config.positions:
        closes[symbol] = {et_date(b.ts_ns): b.close for b in venue.market.daily_bars_between(symbol, lo, hi)}
    points = []
    for date, _open_ns, close_ns in sessions:
        if close_ns == eve_close:
            points.append((close_ns, venue.opening_equity))
            continue
        held = [(qty, closes[symbol].get(date)) for symbol, qty, _entry in venue.config.positions]
        if all(price is not None for _qty, price in held):
            value = sum((qty * price for qty, price in held if price is not None), _ZERO)
            points.append((close_ns, venue.config.cash_usd + value))
    return points


def _get_portfolio_history(venue: Venue, req: RestRequest, _: dict[str, str]) -> tuple[int, Any]:
    period = req.query.get("period") or "1M"
    if period != "all" and not _PERIOD_RE.match(period):
        raise ApiError(400, 40010001, "invalid period")
    period_days = 10**5 if period == "all" else int(period[:-1]) * _PERIOD_UNIT_DAYS[period[-1]]
    default_tf = "1Min" if period_days < 7 else "15Min" if period_days < 30 else "1D"
    timeframe = _q_choice(req, "timeframe", tuple(_TIMEFRAMES_NS), default_tf) or default_tf
    end = _q_time(req, "end") or venue.now_ns
    start = _q_time(req, "start")
    if start is None:
        start = end - period_days * _DAY_NS
    points = _pre_start_points(venue, start, end) if timeframe == "1D" else []  # no intraday record before it
    points += [(ts_ns, equity) for ts_ns, equity in venue.account.equity_points if start <= ts_ns <= end]
    if start <= venue.now_ns <= end:  # the live point: the current window's equity as of now
        points.append((venue.now_ns, venue.account_figures().equity))
    buckets: dict[int | str, tuple[int, Decimal]] = {}
    for ts_ns, equity in points:
        if timeframe == "1D":
            key: int | str = et_date(ts_ns)
            label = parse_time_ns(et_date(ts_ns))
        else:
            key = label = ts_ns // _TIMEFRAMES_NS[timeframe] * _TIMEFRAMES_NS[timeframe]
        buckets[key] = (label, equity)  # the last equity of each window, left-labelled
    series = list(buckets.values())
    base = series[0][1] if series else venue.account_figures().equity
    return 200, {
        "timestamp": [label // NS_PER_S for label, _ in series],
        "equity": [float(equity) for _, equity in series],
        "profit_loss": [float(equity - base) for _, equity in series],
        "profit_loss_pct": [float((equity - base) / base) if base else None for _, equity in series],
        "base_value": float(base),
        "base_value_asof": et_date(series[0][0]) if series else et_date(venue.now_ns),
        "timeframe": timeframe,
        "cashflow": {},
    }


# --- market calendar and assets --------------------------------------------------------------------------------


def _get_clock(venue: Venue, req: RestRequest, _: dict[str, str]) -> tuple[int, Any]:
    now, calendar = venue.now_ns, venue.calendar
    return 200, {
        "timestamp": et_isoformat(now),
        "is_open": calendar.is_open(now),
        "next_open": et_isoformat(calendar.next_open_ns(now)),
        "next_close": et_isoformat(calendar.next_close_ns(now)),
    }


def _date_param(req: RestRequest, name: str, default_ns: int) -> int:
    value = req.query.get(name)
    if value in (None, ""):
        return parse_time_ns(et_date(default_ns))
    try:
        return parse_time_ns(et_date(parse_time_ns(value)))  # accept dates and timestamps; keep the date
    except ValueError as exc:
        raise ApiError(400, 40010001, f"invalid {name}") from exc


def _get_calendar(venue: Venue, req: RestRequest, _: dict[str, str]) -> tuple[int, Any]:
    start = _date_param(req, "start", venue.now_ns)
    end = _date_param(req, "end", start + CALENDAR_DEFAULT_DAYS * _DAY_NS)
    if end < start:
        raise ApiError(400, 40010001, "end must not be before start")
    # One extra week gives every day in range its settlement (next session) date.
    sessions = venue.calendar.sessions_between(start, end + 8 * _DAY_NS)
    last_date = et_date(end)
    days = []
    for i, (date, open_ns, close_ns) in enumerate(sessions):
        if date > last_date:
            break
        if i + 1 < len(sessions):
            settlement = sessions[i + 1][0]
        else:
            settlement = et_date(venue.calendar.next_open_ns(close_ns))
        days.append(
            {
                "date": date,
                "open": et_hhmm(open_ns),
                "close": et_hhmm(close_ns),
                "session_open": "0400",
                "session_close": "2000",
                "settlement_date": settlement,
            }
        )
    return 200, days


def _get_assets(venue: Venue, req: RestRequest, _: dict[str, str]) -> tuple[int, Any]:
    status = req.query.get("status") or "active"
    asset_class = req.query.get("asset_class") or "us_equity"
    exchange = req.query.get("exchange")
    if status != "active" or asset_class != "us_equity" or exchange not in (None, "", "NASDAQ"):
        return 200, []
    return 200, [
        asset_json(
            symbol,
            venue.asset_id(symbol),
            shortable=venue.is_shortable(symbol),
            fractionable=venue.is_fractionable(symbol),
        )
        for symbol in sorted(venue.market.symbols)
    ]


def _get_asset(venue: Venue, req: RestRequest, params: dict[str, str]) -> tuple[int, Any]:
    symbol = venue.resolve_symbol(params["symbol"])
    if symbol is None:
        raise ApiError(404, 40410000, "asset not found")
    return 200, asset_json(
        symbol, venue.asset_id(symbol), shortable=venue.is_shortable(symbol),
        fractionable=venue.is_fractionable(symbol),
    )


def _route(method: str, path: str, handler: Handler) -> tuple[str, re.Pattern[str], Handler]:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", re.escape(path).replace(r"\{", "{").replace(r"\}", "}"))
    return method, re.compile(pattern), handler


_ROUTES: Final = (
    _route("POST", "/v2/orders", _post_order),
    _route("GET", "/v2/orders", _get_orders),
    _route("DELETE", "/v2/orders", _delete_orders),
    _route("GET", "/v2/orders:by_client_order_id", _get_order_by_client_id),
    _route("GET", "/v2/orders/{order_id}", _get_order),
    _route("PATCH", "/v2/orders/{order_id}", _patch_order),
    _route("DELETE", "/v2/orders/{order_id}", _delete_order),
    _route("GET", "/v2/positions", _get_positions),
    _route("DELETE", "/v2/positions", _delete_positions),
    _route("GET", "/v2/positions/{symbol}", _get_position),
    _route("DELETE", "/v2/positions/{symbol}", _delete_position),
    _route("GET", "/v2/account", _get_account),
    _route("GET", "/v2/account/configurations", _get_configurations),
    _route("PATCH", "/v2/account/configurations", _patch_configurations),
    _route("GET", "/v2/account/activities", _get_activities),
    _route("GET", "/v2/account/activities/{activity_type}", _get_activities),
    _route("GET", "/v2/account/portfolio/history", _get_portfolio_history),
    _route("GET", "/v2/clock", _get_clock),
    _route("GET", "/v2/calendar", _get_calendar),
    _route("GET", "/v2/assets", _get_assets),
    _route("GET", "/v2/assets/{symbol}", _get_asset),
)
