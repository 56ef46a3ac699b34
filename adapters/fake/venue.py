"""The deterministic fake Alpaca venue: one sans-IO core that books orders, matches them and keeps the account.

Front-ends (in-process or loopback) hand it ``RestRequest``s and stream messages; virtual time enters only
through ``advance_to``. Same seed + same request sequence => byte-identical responses and frames.

Hooks for market-data stream sessions (``adapters.fake.data_stream``), registered with
``register_data_session``: the venue calls ``session.on_advance(prev_ns, now_ns)`` after every clock step,
``session.force_close(code, reason)`` on ws_close / venue_restart faults and ``session.evict()`` on
eviction_406 (each only if the session has it); sessions ask ``stream_refusal("data")``,
``stream_muted("data")``, ``draw_market_data_drop()`` and ``quote(symbol)`` (which honours quote_stale).
"""

from __future__ import annotations

import importlib
import random
import traceback
import uuid
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, Decimal
from typing import Any, Final

from adapters.fake import matching as m
from adapters.fake.accounts import (
    ACCOUNT_TYPES,
    Account,
    AccountFigures,
    FillActivity,
    PositionState,
    default_multiplier,
)
from adapters.fake.faults import FaultEvent, FaultInjector, FaultPlan
from adapters.fake.interfaces import FakeQuote, MarketSource, RestRequest, RestResponse, SessionCalendar
from adapters.fake.ratelimit import RateLimiter
from adapters.fake.rest import dispatch
from adapters.fake.trading_stream import TradingStreamSession
from adapters.fake.wire import (
    ASSET_NAMESPACE,
    JSON_HEADERS,
    ApiError,
    activity_id,
    dec_str,
    encode,
    error_body,
    et_date,
    order_json,
    parse_time_ns,
    rfc3339_ns,
)
from core.limits import (
    ALPACA_REQUESTS_PER_MIN,
    ORDER_SUBMIT_TIMEOUT_S,
    PDT_EQUITY_THRESHOLD_USD,
    PDT_MAX_DAY_TRADES,
    PDT_WINDOW_DAYS,
)
from core.model import NS_PER_S, Fill, Side

_ZERO: Final = Decimal(0)
_FRACTION_QUANTUM: Final = Decimal("0.000000001")
FAULT_RESOLVE_HORIZON_DAYS: Final = 400  # how far ahead `day = N` fault events may point
_DAY_NS: Final = 86_400 * NS_PER_S
LAST_DAY_ROLL_AFTER_CLOSE_NS: Final = 4 * 3600 * NS_PER_S  # last_equity rolls overnight (after extended hours)


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueConfig:
    seed: int = 0
    account_type: str = "margin_initial"  # cash | margin_initial | margin_experienced
    cash_usd: Decimal = Decimal(100_000)
    pattern_day_trader: bool = False
    multiplier: Decimal | None = None  # None: Alpaca's rule (see accounts.default_multiplier)
    key_id: str | None = None  # None = accept any credentials
    secret_key: str | None = None
    rate_limit_per_min: int = ALPACA_REQUESTS_PER_MIN  # 0 disables the limiter (headers stay)
    faults: FaultPlan = field(default_factory=FaultPlan)
    slippage_bps: tuple[Decimal, Decimal] = (Decimal("0.5"), Decimal("2"))
    passive_fill_probability: float = 0.3  # per bar, for a passive limit at or inside the touch
    non_shortable: frozenset[str] = frozenset()
    request_timeout_s: float = ORDER_SUBMIT_TIMEOUT_S  # what a lost response costs the client
    # The book the account already holds when the venue starts: (symbol, signed qty, average entry price).
    positions: tuple[tuple[str, Decimal, Decimal], ...] = ()

    def __post_init__(self) -> None:
        if self.account_type not in ACCOUNT_TYPES:
            raise ValueError(f"account_type must be one of {ACCOUNT_TYPES}, got {self.account_type!r}")
        if self.cash_usd < 0:
            raise ValueError("cash_usd must be >= 0")
        low, high = self.slippage_bps
        if not _ZERO <= low <= high:
            raise ValueError(f"slippage_bps must be an ordered (low, high) range, got {self.slippage_bps}")
        if not 0.0 <= self.passive_fill_probability <= 1.0:
            raise ValueError("passive_fill_probability must be within [0, 1]")
        if self.rate_limit_per_min < 0:
            raise ValueError("rate_limit_per_min must be >= 0")
        if (self.key_id is None) != (self.secret_key is None):
            raise ValueError("give both key_id and secret_key, or neither")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    ts_ns: int
    method: str
    path: str
    status: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptedOrder:
    """One order the venue accepted (entries, bracket legs, replacements, liquidations)."""

    ts_ns: int
    order_id: str
    client_order_id: str
    symbol: str
    side: str
    qty: Decimal
    type: str
    time_in_force: str
    order_class: str
    parent_id: str | None = None
    replaces: str | None = None


@dataclass(frozen=True, slots=True)
class TradeUpdateRecord:
    ts_ns: int
    event: str
    order_id: str
    execution_id: str | None = None


class Venue:
    """The venue core. Never awaits; every method runs to completion on the venue clock."""

    def __init__(self, config: VenueConfig, market: MarketSource, calendar: SessionCalendar, start_ns: int) -> None:
        self.config = config
        self.market = market
        self.calendar = calendar
        self._start_ns = start_ns
        self._now_ns = start_ns
        self._id_rng = random.Random(f"ttlive-fake-venue-ids:{config.seed}")
        self._match_rng = random.Random(f"ttlive-fake-venue-matching:{config.seed}")
        multiplier = config.multiplier or default_multiplier(
            config.account_type, config.cash_usd, config.pattern_day_trader
        )
        self.account = Account(
            account_id=self.new_uuid(),
            account_number=f"PA{self._id_rng.randrange(10**9, 10**10)}",
            created_at_ns=start_ns,
            account_type=config.account_type,
            cash=config.cash_usd,
            multiplier=multiplier,
            pattern_day_trader=config.pattern_day_trader,
            last_equity=config.cash_usd,
        )
        for symbol, qty, entry in config.positions:
            if symbol not in market.symbols or qty == 0 or entry <= 0:
                raise ValueError(f"starting position {symbol} {qty} @ {entry}: a market symbol, qty != 0, price > 0")
            self.account.positions[symbol] = PositionState(symbol=symbol, qty=qty, avg_entry_price=entry)
        unknown = sorted({e.symbol for e in config.faults.events if e.symbol} - set(market.symbols))
        if unknown:
            raise ValueError(f"fault plan names symbols the market does not have: {', '.join(unknown)}")
        self.faults = FaultInjector(config.faults, seed=config.seed, resolve_at_ns=self._resolve_fault_at)
        self._limiter = RateLimiter(config.rate_limit_per_min, nominal_limit=ALPACA_REQUESTS_PER_MIN)
        self._orders: dict[str, m.VenueOrder] = {}  # insertion order == acceptance order
        self._open: dict[str, m.VenueOrder] = {}  # the open subset, same order (terminal is absorbing)
        self._by_client_id: dict[str, str] = {}  # every client_order_id ever used -> order id
        self._seq = 0
        self._liquidity = m.Liquidity()
        self._marks: dict[str, Decimal] = {}
        self._quotes: dict[str, FakeQuote | None] = {}  # per clock instant; cleared on every step/request
        self._open_now: bool | None = None  # calendar.is_open(now), same lifetime
        self._lastday: dict[str, Decimal] = {}
        # (close ns, marks, equity, maintenance margin) of the last close, booked as "last day" overnight
        self._close_snapshot: tuple[int, dict[str, Decimal], Decimal, Decimal] | None = None
        self._session_dates: list[str] = [et_date(start_ns)] if calendar.is_open(start_ns) else []
        self._day_trade_orders: set[str] = set()
        self._trading_sessions: list[TradingStreamSession] = []
        self._stream_keys: dict[int, str] = {}  # id(session) -> key it authenticated with
        self._data_sessions: list[Any] = []
        # Records: tests and the simulation's invariants read these ("fakes record what happened").
        self.order_log: list[AcceptedOrder] = []
        self.fills: list[Fill] = []  # every execution of an order placed through the API
        self.external_fills: list[Fill] = []  # position_drift trades made outside the engine
        self.request_log: list[RequestRecord] = []
        self.event_log: list[TradeUpdateRecord] = []
        self.internal_errors: list[str] = []
        self.skipped_faults: list[tuple[int, FaultEvent, str]] = []  # faults that could not be carried out
        if config.positions:  # the book was held at yesterday's close: that is the account's last_equity
            marks = self._current_marks(self.account.positions)
            self._lastday.update(marks)
            self.account.last_equity = self.account.equity(marks)

    # --- clock ---------------------------------------------------------------------------------------------

    @property
    def now_ns(self) -> int:
        return self._now_ns

    def advance_to(self, ts_ns: int) -> None:
        """Move the clock forward, stepping through every bar boundary, open, close and fault on the way."""
        assert ts_ns >= self._now_ns, f"venue clock cannot go back from {self._now_ns} to {ts_ns}"
        while (point := self._next_point_after(self._now_ns)) is not None and point < ts_ns:
            self._step(point)
        self._step(ts_ns)
        self._end_cycle()

    def next_wakeup_ns(self) -> int | None:
        """The next instant at which the venue has something to do on its own (bar, open, close, fault)."""
        return self._next_point_after(self._now_ns)

    def _next_point_after(self, now_ns: int) -> int | None:
        points = [p for p in (self._next_close(now_ns), self._next_open(now_ns)) if p is not None]
        if self.calendar.is_open(now_ns):
            interval = self.market.bar_interval_ns()
            points.append((now_ns // interval + 1) * interval)
        fault_ns = self.faults.next_event_ns()
        if fault_ns is not None:
            points.append(fault_ns)
        later = [p for p in points if p > now_ns]
        return min(later) if later else None

    def _step(self, ts_ns: int) -> None:
        prev_ns, self._now_ns = self._now_ns, ts_ns
        self._forget_instant()
        if self._close_snapshot is not None and ts_ns >= self._close_snapshot[0] + LAST_DAY_ROLL_AFTER_CLOSE_NS:
            self._roll_last_day()
        for event in self.faults.pop_due(ts_ns):
            self._apply_fault(event)
        self._forget_instant()
        close_ns = self._next_close(prev_ns)
        if close_ns is not None and prev_ns < close_ns <= ts_ns:
            self._on_close(close_ns)
        open_ns = self._next_open(prev_ns)
        if open_ns is not None and prev_ns < open_ns <= ts_ns:
            self._on_open()
        self._match_all()
        is_open = self._is_open()
        on_bar = ts_ns % self.market.bar_interval_ns() == 0
        if (is_open and on_bar) or close_ns == ts_ns:
            self._record_equity()
        for session in list(self._data_sessions):
            hook = getattr(session, "on_advance", None)
            if hook is not None:
                hook(prev_ns, ts_ns)

    def _next_close(self, ts_ns: int) -> int | None:
        try:
            return self.calendar.next_close_ns(ts_ns)
        except ValueError:  # a calendar restricted to a date range has no sessions beyond it
            return None

    def _next_open(self, ts_ns: int) -> int | None:
        try:
            return self.calendar.next_open_ns(ts_ns)
        except ValueError:
            return None

    def _forget_instant(self) -> None:
        self._quotes.clear()
        self._open_now = None

    def _is_open(self) -> bool:
        if self._open_now is None:
            self._open_now = self.calendar.is_open(self._now_ns)
        return self._open_now

    def _end_cycle(self) -> None:
        for session in list(self._trading_sessions):
            session.end_cycle()

    def _on_open(self) -> None:
        session_date = et_date(self._now_ns)
        if not self._session_dates or self._session_dates[-1] != session_date:
            self._session_dates.append(session_date)
        if self._close_snapshot is not None:
            self._roll_last_day()
        for order in [o for o in self._open.values() if o.status in m.QUEUED]:
            if order.status in m.QUEUED:  # an earlier routing may have canceled it (OCO)
                self._route(order)

    def _roll_last_day(self) -> None:
        """Overnight, as Alpaca does: last_equity, last_maintenance_margin and lastday_price become the close's."""
        assert self._close_snapshot is not None
        _close_ns, marks, equity, maintenance = self._close_snapshot
        self._lastday.update(marks)
        self.account.last_equity = equity
        self.account.last_maintenance_margin = maintenance
        self._close_snapshot = None

    def _on_close(self, close_ns: int) -> None:
        """Day orders live for the session they were submitted for: expire them at its close."""
        for _ in range(len(self._orders) + 1):  # expiring a parent may activate day legs: repeat
            batch = [
                o
                for o in self._open.values()
                if o.time_in_force == "day" and o.status in (m.WORKING | m.QUEUED) and o.submitted_at_ns < close_ns
            ]
            if not batch:
                break
            for order in batch:
                if order.status in (m.WORKING | m.QUEUED):
                    self._finish(order, "expired")
        marks = self._current_marks(self.market.symbols)
        self._close_snapshot = (close_ns, marks, self.account.equity(marks), self.account.maintenance_margin(marks))

    def _record_equity(self) -> None:
        points = self.account.equity_points
        if points and points[-1][0] >= self._now_ns:
            return
        marks = self._current_marks(self.account.positions)
        points.append((self._now_ns, self.account.equity(marks)))

    # --- market -----------------------------------------------------------------------------------------

    def quote(self, symbol: str) -> FakeQuote | None:
        """The venue's view of the touch; frozen at the fault's start during a quote_stale window."""
        if symbol in self._quotes:
            return self._quotes[symbol]
        stale_ns = self.faults.stale_since_ns(symbol, self._now_ns)
        quote = self.market.quote_at(symbol, self._now_ns if stale_ns is None else stale_ns)
        if quote is not None and quote.bid_price > 0 and quote.ask_price > 0:
            self._marks[symbol] = (quote.bid_price + quote.ask_price) / 2
        self._quotes[symbol] = quote
        return quote

    def mark(self, symbol: str) -> Decimal:
        """Mid of the current quote, else the last known mid, else the average entry price."""
        self.quote(symbol)
        if symbol in self._marks:
            return self._marks[symbol]
        position = self.account.positions.get(symbol)
        return _ZERO if position is None else position.avg_entry_price

    def _current_marks(self, symbols: Any) -> dict[str, Decimal]:
        return {symbol: self.mark(symbol) for symbol in sorted(symbols)}

    def lastday_price(self, symbol: str) -> Decimal:
        return self._lastday.get(symbol) or self.mark(symbol)

    def asset_id(self, symbol: str) -> str:
        return str(uuid.uuid5(uuid.UUID(ASSET_NAMESPACE), f"ttlive-asset:{symbol}"))

    def resolve_symbol(self, symbol_or_asset_id: str) -> str | None:
        for symbol in self.market.symbols:
            if symbol_or_asset_id in (symbol, self.asset_id(symbol)):
                return symbol
        return None

    def is_shortable(self, symbol: str) -> bool:
        return symbol not in self.config.non_shortable

    # --- ids -------------------------------------------------------------------------------------------------

    def new_uuid(self) -> str:
        return str(uuid.UUID(int=self._id_rng.getrandbits(128), version=4))

    # --- REST entry ------------------------------------------------------------------------------------------

    def handle_rest(self, req: RestRequest) -> RestResponse:
        """Answer one request. Never raises: an internal bug becomes a recorded 500."""
        self._forget_instant()  # the market may have changed since the last request at this instant
        try:
            response = self._handle_rest(req)
        except Exception as exc:  # the venue must answer; the bug is recorded for tests
            self.internal_errors.append(f"{req.method} {req.path}: {exc!r}\n{traceback.format_exc()}")
            response = _json_response(500, error_body(50010000, "internal server error"))
        self.request_log.append(RequestRecord(self._now_ns, req.method, req.path, response.status))
        self._end_cycle()
        return response

    def _handle_rest(self, req: RestRequest) -> RestResponse:
        key = self._authenticate(req.headers)
        if key is None:
            return _json_response(401, error_body(40110000, "unauthorized."))
        family = "data" if req.path.startswith("/v2/stocks") else "trading"
        decision = self._limiter.take(key, family, self._now_ns)
        headers = decision.headers()
        if not decision.allowed:
            return _json_response(429, error_body(42910000, "rate limit exceeded"), headers)
        fault = self.faults.rest_fault(self._now_ns)
        if fault is not None:
            return _json_response(fault.status, error_body(fault.code, fault.message), headers)
        if family == "data":
            response = self._handle_data(req)
        else:
            try:
                status, body = dispatch(self, req)
            except ApiError as err:
                status, body = err.status, err.body()
            response = RestResponse(status, b"" if body is None else encode(body), dict(JSON_HEADERS))
        merged = {**response.headers, **headers}
        # A lost answer is ambiguous only for a request that changed something (submit, replace, cancel):
        # the venue applied it and the client cannot tell. Lost reads are their own fault.
        if family == "trading" and req.method in ("POST", "PATCH", "DELETE"):
            lost = self.faults.drop_response_after_accept()
        else:
            lost = self.faults.drop_read_response()
        drop_after = self.config.request_timeout_s if lost else None
        delay_s = self.faults.rest_delay_s(self._now_ns)
        return replace(response, headers=merged, drop_response_after_s=drop_after, delay_s=delay_s)

    def _handle_data(self, req: RestRequest) -> RestResponse:
        try:  # lazily: the market-data side is another module and may be absent
            data_rest = importlib.import_module("adapters.fake.data_rest")
        except ModuleNotFoundError as exc:
            if exc.name != "adapters.fake.data_rest":
                raise
            return _json_response(404, error_body(40410000, "market data endpoints are not available"))
        response: RestResponse = data_rest.handle_data(self, req)
        return response

    def _authenticate(self, headers: dict[str, str]) -> str | None:
        key = headers.get("apca-api-key-id")
        secret = headers.get("apca-api-secret-key")
        if key is None and secret is None and headers.get("authorization", "").startswith("Bearer "):
            return "oauth" if self.config.key_id is None else None
        if self.check_credentials(key or "", secret or ""):
            return key or "anonymous"
        return None

    def check_credentials(self, key_id: str, secret_key: str) -> bool:
        if self.config.key_id is None:
            return True
        return key_id == self.config.key_id and secret_key == self.config.secret_key

    # --- streams ----------------------------------------------------------------------------------------------

    def open_trading_stream(self, *, binary: bool = False) -> TradingStreamSession:
        session = TradingStreamSession(self, binary=binary)
        self._trading_sessions.append(session)
        return session

    def claim_stream_key(self, session: TradingStreamSession, key_id: str) -> bool:
        if self.config.faults.one_stream_per_key and key_id in self._stream_keys.values():
            return False
        self._stream_keys[id(session)] = key_id
        return True

    def release_stream(self, session: TradingStreamSession) -> None:
        self._stream_keys.pop(id(session), None)
        if session in self._trading_sessions:
            self._trading_sessions.remove(session)

    def register_data_session(self, session: Any) -> None:
        self._data_sessions.append(session)

    def unregister_data_session(self, session: Any) -> None:
        if session in self._data_sessions:
            self._data_sessions.remove(session)

    def stream_refusal(self, stream: str) -> int | None:
        return self.faults.stream_refusal(stream, self._now_ns)

    def stream_muted(self, stream: str) -> bool:
        return self.faults.stream_muted(stream, self._now_ns)

    def draw_market_data_drop(self) -> bool:
        return self.faults.market_data_drop()

    def _emit(
        self,
        event: str,
        order: m.VenueOrder,
        *,
        execution_id: str | None = None,
        price: Decimal | None = None,
        qty: Decimal | None = None,
        position_qty: Decimal | None = None,
    ) -> None:
        data: dict[str, Any] = {"event": event}
        if execution_id is not None:
            data["execution_id"] = execution_id
        data["order"] = order_json(order, self.legs_of(order) if order.leg_ids else None)
        data["timestamp"] = rfc3339_ns(self._now_ns)
        if execution_id is not None:
            assert price is not None and qty is not None and position_qty is not None
            data.update(price=dec_str(price), qty=dec_str(qty), position_qty=dec_str(position_qty))
        payload = encode({"stream": "trade_updates", "data": data})
        self.event_log.append(TradeUpdateRecord(self._now_ns, event, order.id, execution_id))
        for session in list(self._trading_sessions):
            if session.wants_trade_updates:
                session.publish(payload, "deliver" if session.muted else self.faults.trade_update_fate())

    # --- faults ------------------------------------------------------------------------------------------------

    def _resolve_fault_at(self, event: FaultEvent) -> int:
        """``at`` = exchange wall time on the ``day``-th trading session counted from the start date."""
        if event.at_ns is not None:
            return event.at_ns
        day_start_ns = parse_time_ns(et_date(self._start_ns))  # midnight, exchange time
        horizon_ns = day_start_ns + FAULT_RESOLVE_HORIZON_DAYS * _DAY_NS
        sessions = self.calendar.sessions_between(day_start_ns, horizon_ns)
        if event.day >= len(sessions):
            raise ValueError(f"fault {event.kind!r} on day {event.day}: only {len(sessions)} sessions ahead")
        return parse_time_ns(sessions[event.day][0]) + event.seconds_of_day() * NS_PER_S

    def _apply_fault(self, event: FaultEvent) -> None:
        kind = event.kind
        if kind in ("ws_close", "eviction_406"):
            targets: list[Any] = self._trading_sessions if event.stream == "trading" else self._data_sessions
            for target in list(targets):
                if kind == "ws_close":
                    _call_hook(target, "force_close", event.code, "fault: ws_close")
                else:
                    _call_hook(target, "evict")
        elif kind == "venue_restart":
            for session in list(self._trading_sessions):
                session.force_close(1006, "venue restart")
            for data_session in list(self._data_sessions):
                _call_hook(data_session, "force_close", 1006, "venue restart")
        elif kind == "quote_stale":
            symbols = [event.symbol] if event.symbol else list(self.market.symbols)
            for symbol in symbols:
                _call_hook(self.market, "set_stale", symbol, self._now_ns + event.duration_ns)
        elif kind == "position_drift":
            assert event.symbol is not None and event.qty is not None
            self._drift_position(event.symbol, event.qty)
        # ws_mute, rest_outage, rest_slow, rate_limit_storm: windows the injector answers for.
        # client_crash, manual_kill, manual_reset: carried out by the simulation harness.

    def _drift_position(self, symbol: str, qty: Decimal) -> None:
        """A trade made outside the engine: the venue position and cash change, a FILL activity appears."""
        price = self.mark(symbol)
        if price <= 0:
            self.skipped_faults.append(
                (
                    self._now_ns,
                    FaultEvent(kind="position_drift", symbol=symbol, qty=qty),
                    "no price known for the symbol yet",
                )
            )
            return
        side = "buy" if qty > 0 else "sell"
        before = self.account.position_qty(symbol)
        self.account.apply_fill(symbol, side, abs(qty), price, self._session_date())
        after = self.account.position_qty(symbol)
        order_id, execution_id = self.new_uuid(), self.new_uuid()
        self.external_fills.append(
            Fill(
                execution_id=execution_id,
                order_id=order_id,
                client_order_id="",
                symbol=symbol,
                side=Side(side),
                qty=abs(qty),
                price=price,
                ts_ns=self._now_ns,
                cum_qty=abs(qty),
                position_qty=after,
            )
        )
        self.account.activities.append(
            FillActivity(
                id=activity_id(self._now_ns, execution_id),
                ts_ns=self._now_ns,
                type="fill",
                price=price,
                qty=abs(qty),
                side=_activity_side(side, before, after),
                symbol=symbol,
                leaves_qty=_ZERO,
                order_id=order_id,
                cum_qty=abs(qty),
                order_status="filled",
            )
        )

    # --- queries ------------------------------------------------------------------------------------------------

    def orders(self) -> list[m.VenueOrder]:
        return list(self._orders.values())

    def open_orders(self) -> list[m.VenueOrder]:
        return list(self._open.values())

    def get_order(self, order_id: str) -> m.VenueOrder:
        order = self._orders.get(order_id)
        if order is None:
            raise ApiError(404, 40410000, "order not found")
        return order

    def get_order_by_client_id(self, client_order_id: str) -> m.VenueOrder:
        order_id = self._by_client_id.get(client_order_id)
        if order_id is None:
            raise ApiError(404, 40410000, "order not found")
        return self._orders[order_id]

    def legs_of(self, order: m.VenueOrder) -> list[m.VenueOrder]:
        return [self._orders[leg_id] for leg_id in order.leg_ids]

    def order_view(self, order: m.VenueOrder, *, nested: bool = True) -> dict[str, Any]:
        return order_json(order, self.legs_of(order) if nested and order.leg_ids else None)

    def account_figures(self) -> AccountFigures:
        marks = self._current_marks(self.account.positions)
        return self.account.figures(
            marks,
            reserved_usd=self._reserved_usd(),
            daytrade_count=self.daytrade_count(),
            balance_asof=self._session_dates[-2] if len(self._session_dates) > 1 else et_date(self._start_ns),
        )

    def buying_power(self) -> Decimal:
        marks = self._current_marks(self.account.positions)
        return self.account.buying_power(marks, self._reserved_usd())

    def daytrade_count(self) -> int:
        window = set(self._session_dates[-PDT_WINDOW_DAYS:])
        return sum(1 for session_date, _ in self.account.day_trades if session_date in window)

    def held_for_orders(self, symbol: str, side: str) -> Decimal:
        """Quantity open routed-or-queued orders on this side already claim (held legs excluded).

        The two live exits of an OCO pair claim the same shares, so a pair counts once.
        """
        held, counted = _ZERO, set[str]()
        for o in self._open.values():
            if o.symbol != symbol or o.side != side or o.status not in (m.WORKING | m.QUEUED):
                continue
            if counted.isdisjoint(o.oco_ids):
                held += o.leaves_qty
            counted.add(o.id)
        return held

    def _reserved_usd(self) -> Decimal:
        return sum(
            (
                o.leaves_qty * o.reserve_price
                for o in self._open.values()
                if o.reserve_price is not None and o.status in (m.WORKING | m.QUEUED)
            ),
            _ZERO,
        )

    def _session_date(self) -> str:
        return self._session_dates[-1] if self._session_dates else et_date(self._now_ns)

    # --- order entry --------------------------------------------------------------------------------------------

    def submit_order(self, spec: m.OrderSpec) -> dict[str, Any]:
        """POST /v2/orders after body validation: broker checks, then accept and route. Returns the reply."""
        client_order_id = self._check_client_order_id(spec.client_order_id)
        if self.account.config.suspend_trade:
            raise ApiError(403, 40310000, "account is suspended from trading")
        if self.resolve_symbol(spec.symbol) != spec.symbol:
            raise ApiError(422, 40010001, f'asset "{spec.symbol}" not found')
        opening = self._check_quantity(spec.symbol, spec.side, spec.qty)
        self._check_wash_trade(spec)
        self._check_pattern_day_trading(spec.symbol, spec.side)
        reserve_price = self._reference_price(spec) if opening else None
        if reserve_price is not None:
            cost = spec.qty * reserve_price
            buying_power = self.buying_power()
            if cost > buying_power:
                raise ApiError(
                    403,
                    40310000,
                    "insufficient buying power",
                    buying_power=dec_str(buying_power, 4),
                    cost_basis=dec_str(cost, 4),
                )
        return self._accept(spec, client_order_id, reserve_price)

    def _check_client_order_id(self, client_order_id: str | None) -> str:
        if client_order_id is None:
            client_order_id = self.new_uuid()
        if client_order_id in self._by_client_id:
            raise ApiError(422, 40010001, "client_order_id must be unique")
        return client_order_id

    def _check_quantity(self, symbol: str, side: str, qty: Decimal) -> bool:
        """Reject sells of shares we do not have (or flips through zero); True if the order opens exposure."""
        position = self.account.position_qty(symbol)
        reducing = (position > 0 and side == "sell") or (position < 0 and side == "buy")
        if reducing:
            held = self.held_for_orders(symbol, side)
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
                    related_orders=self._related_order_ids(symbol, side),
                    symbol=symbol,
                )
            return False
        if side == "sell":
            if not self.account.shorting_enabled:
                raise ApiError(403, 40310000, "account is not allowed to short")
            if not self.is_shortable(symbol):
                raise ApiError(403, 40310000, f"asset {symbol} is not shortable")
            if qty != qty.to_integral_value():
                raise ApiError(403, 40310000, "fractional orders cannot be sold short")
        return True

    def _related_order_ids(self, symbol: str, side: str) -> list[str]:
        return [
            o.id
            for o in self._open.values()
            if o.symbol == symbol and o.side == side and o.status in (m.WORKING | m.QUEUED)
        ]

    def _check_wash_trade(self, spec: m.OrderSpec) -> None:
        limit = spec.limit_price
        if spec.order_class == "oco":
            limit = spec.take_profit_limit_price
        for other in self._open.values():
            if other.symbol != spec.symbol or other.side == spec.side or other.status not in (m.WORKING | m.QUEUED):
                continue
            if m.could_cross(spec.side, spec.type, limit, spec.stop_price, other):
                raise ApiError(422, 42210000, "potential wash trade detected. use complex orders")

    def _check_pattern_day_trading(self, symbol: str, side: str) -> None:
        """PDT protection (spec 2.2): a margin account under $25k may not make a 4th day trade in 5 days."""
        account = self.account
        if not account.is_margin or account.config.pdt_check is None:
            return
        position = account.positions.get(symbol)
        if position is None or position.opened_session != self._session_date():
            return
        if not ((position.qty > 0 and side == "sell") or (position.qty < 0 and side == "buy")):
            return
        marks = self._current_marks(account.positions)
        if account.equity(marks) >= PDT_EQUITY_THRESHOLD_USD:
            return
        if account.pattern_day_trader or self.daytrade_count() >= PDT_MAX_DAY_TRADES:
            raise ApiError(403, 40310100, "trade denied due to pattern day trading protection")

    def _reference_price(self, spec: m.OrderSpec) -> Decimal | None:
        """The price an opening order reserves buying power at (Alpaca: limit, else stop, else the touch)."""
        if spec.type in ("limit", "stop_limit") and spec.limit_price is not None:
            return spec.limit_price
        if spec.order_class == "oco" and spec.take_profit_limit_price is not None:
            return spec.take_profit_limit_price
        if spec.type == "stop" and spec.stop_price is not None:
            return spec.stop_price
        quote = self.quote(spec.symbol)
        if quote is not None:
            touch = quote.ask_price if spec.side == "buy" else quote.bid_price
            if touch > 0:
                return touch
        return self._marks.get(spec.symbol)

    def _accept(self, spec: m.OrderSpec, client_order_id: str, reserve_price: Decimal | None) -> dict[str, Any]:
        if spec.order_class == "oco":  # the order itself is the take-profit limit
            spec = replace(spec, type="limit", limit_price=spec.take_profit_limit_price, stop_price=None)
        parent = self._new_order(spec, client_order_id, reserve_price=reserve_price)
        exit_side = "sell" if spec.side == "buy" else "buy"
        legs: list[m.VenueOrder] = []
        if spec.order_class in ("bracket", "oto"):
            if spec.take_profit_limit_price is not None:
                legs.append(self._new_leg(parent, exit_side, "limit", spec.take_profit_limit_price, None))
            if spec.stop_loss_stop_price is not None:
                stop_type = "stop" if spec.stop_loss_limit_price is None else "stop_limit"
                legs.append(
                    self._new_leg(parent, exit_side, stop_type, spec.stop_loss_limit_price, spec.stop_loss_stop_price)
                )
        elif spec.order_class == "oco":  # the parent is the take-profit limit; its leg the stop; both live
            stop_type = "stop" if spec.stop_loss_limit_price is None else "stop_limit"
            legs.append(
                self._new_leg(
                    parent,
                    spec.side,
                    stop_type,
                    spec.stop_loss_limit_price,
                    spec.stop_loss_stop_price,
                    status="accepted",
                )
            )
            parent.oco_ids.append(legs[0].id)
            legs[0].oco_ids.append(parent.id)
        if len(legs) == 2:
            legs[0].oco_ids.append(legs[1].id)
            legs[1].oco_ids.append(legs[0].id)
        parent.leg_ids.extend(leg.id for leg in legs)
        reply = self.order_view(parent)
        self._route(parent)
        return reply

    def _new_order(
        self,
        spec: m.OrderSpec,
        client_order_id: str,
        *,
        reserve_price: Decimal | None,
        status: str = "accepted",
        parent_id: str | None = None,
        replaces: str | None = None,
    ) -> m.VenueOrder:
        self._seq += 1
        now = self._now_ns
        position = self.account.position_qty(spec.symbol)
        intent = _position_intent(spec.side, position)
        order = m.VenueOrder(
            seq=self._seq,
            id=self.new_uuid(),
            client_order_id=client_order_id,
            symbol=spec.symbol,
            asset_id=self.asset_id(spec.symbol),
            side=spec.side,
            type=spec.type,
            time_in_force=spec.time_in_force,
            qty=spec.qty,
            order_class=spec.order_class,
            status=status,
            created_at_ns=now,
            submitted_at_ns=now,
            updated_at_ns=now,
            limit_price=spec.limit_price,
            stop_price=spec.stop_price,
            trail_price=spec.trail_price,
            trail_percent=spec.trail_percent,
            extended_hours=spec.extended_hours,
            position_intent=intent,
            parent_id=parent_id,
            replaces=replaces,
            reserve_price=reserve_price,
        )
        self._orders[order.id] = order
        self._open[order.id] = order
        self._by_client_id[client_order_id] = order.id
        self.order_log.append(
            AcceptedOrder(
                ts_ns=now,
                order_id=order.id,
                client_order_id=client_order_id,
                symbol=order.symbol,
                side=order.side,
                qty=order.qty,
                type=order.type,
                time_in_force=order.time_in_force,
                order_class=order.order_class,
                parent_id=parent_id,
                replaces=replaces,
            )
        )
        return order

    def _new_leg(
        self,
        parent: m.VenueOrder,
        side: str,
        order_type: str,
        limit_price: Decimal | None,
        stop_price: Decimal | None,
        *,
        status: str = "held",
    ) -> m.VenueOrder:
        spec = m.OrderSpec(
            symbol=parent.symbol,
            qty=parent.qty,
            side=side,
            type=order_type,
            time_in_force=parent.time_in_force,
            limit_price=limit_price,
            stop_price=stop_price,
            order_class=parent.order_class,
        )
        return self._new_order(spec, self.new_uuid(), reserve_price=None, status=status, parent_id=parent.id)

    # --- routing, matching, execution -----------------------------------------------------------------------------

    def _set_status(self, order: m.VenueOrder, status: str) -> None:
        assert order.status not in m.TERMINAL, f"order {order.id} is {order.status}: terminal states are absorbing"
        order.status = status
        if status not in m.OPEN:
            self._open.pop(order.id, None)

    def _tradable(self, order: m.VenueOrder) -> bool:
        if self._is_open():
            return True
        return order.extended_hours and self.quote(order.symbol) is not None

    def _route(self, order: m.VenueOrder, *, match: bool = True) -> None:
        """accepted -> new once the market can take it (now, or at the next open)."""
        if order.status not in m.QUEUED or not self._tradable(order):
            return
        self._set_status(order, "new")
        order.updated_at_ns = self._now_ns
        self._emit("new", order)
        for leg in self.legs_of(order):
            if leg.status in m.QUEUED:  # OCO: the stop leg goes live with its parent
                self._route(leg, match=match)
        if not match:
            return
        self._match(order)
        if order.time_in_force in ("ioc", "fok") and order.status in m.WORKING:
            self._finish(order, "canceled")

    def _match_all(self) -> None:
        for order in list(self._open.values()):
            if order.status in m.WORKING and self._tradable(order):
                self._match(order)

    def _match(self, order: m.VenueOrder) -> None:
        if order.status not in m.WORKING:
            return
        quote = self.quote(order.symbol)
        if quote is None or quote == order.last_quote:  # liquidity used, draw made, trigger checked
            return
        order.last_quote = quote
        if not m.observe_quote(order, quote):
            return
        execution = m.decide_execution(
            order,
            quote,
            rng=self._match_rng,
            liquidity=self._liquidity,
            slippage_bps=self.config.slippage_bps,
            passive_fill_probability=self.config.passive_fill_probability,
            all_or_none=order.time_in_force == "fok",
        )
        if execution is None:
            return
        if not execution.passive:
            self._liquidity.consume(quote, order.side, execution.qty)
        self._execute(order, execution.qty, execution.price)

    def _execute(self, order: m.VenueOrder, qty: Decimal, price: Decimal) -> None:
        leaves = order.leaves_qty
        assert 0 < qty <= leaves, f"fill {qty} exceeds leaves {leaves} of order {order.id}"  # pair assertion
        session_date = self._session_date()
        before = self.account.position_qty(order.symbol)
        day_trade = self.account.apply_fill(order.symbol, order.side, qty, price, session_date)
        if day_trade and order.id not in self._day_trade_orders:  # one day trade per closing order
            self._day_trade_orders.add(order.id)
            self.account.day_trades.append((session_date, order.id))
        after = self.account.position_qty(order.symbol)
        order.filled_qty += qty
        order.filled_notional += qty * price
        order.filled_avg_price = order.filled_notional / order.filled_qty
        order.updated_at_ns = self._now_ns
        complete = order.filled_qty == order.qty
        self._set_status(order, "filled" if complete else "partially_filled")
        if complete:
            order.filled_at_ns = self._now_ns
        execution_id = self.new_uuid()
        event = "fill" if complete else "partial_fill"
        self.fills.append(
            Fill(
                execution_id=execution_id,
                order_id=order.id,
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                side=Side(order.side),
                qty=qty,
                price=price,
                ts_ns=self._now_ns,
                cum_qty=order.filled_qty,
                position_qty=after,
            )
        )
        self.account.activities.append(
            FillActivity(
                id=activity_id(self._now_ns, execution_id),
                ts_ns=self._now_ns,
                type=event,
                price=price,
                qty=qty,
                side=_activity_side(order.side, before, after),
                symbol=order.symbol,
                leaves_qty=order.leaves_qty,
                order_id=order.id,
                cum_qty=order.filled_qty,
                order_status=order.status,
            )
        )
        self._emit(event, order, execution_id=execution_id, price=price, qty=qty, position_qty=after)
        for sibling_id in order.oco_ids:  # one-cancels-other: the first execution of a leg ends its sibling
            sibling = self._orders[sibling_id]
            if sibling.status in m.OPEN:
                self._finish(sibling, "canceled")
        if complete:
            self._activate_legs(order)

    def _activate_legs(self, parent: m.VenueOrder) -> None:
        """Held exit legs go live once the entry is done (filled, or ended with a partial fill)."""
        for leg in self.legs_of(parent):
            if leg.status not in m.HELD:
                continue
            if parent.filled_qty == 0:
                self._finish(leg, "canceled")
                continue
            leg.qty = parent.filled_qty
            self._set_status(leg, "accepted")
            leg.updated_at_ns = self._now_ns
            self._route(leg, match=False)

    def _finish(self, order: m.VenueOrder, status: str) -> None:
        """End an open order as canceled or expired; an entry's held legs follow it."""
        assert status in ("canceled", "expired") and order.status in m.OPEN, (status, order.status)
        self._set_status(order, status)
        order.updated_at_ns = self._now_ns
        if status == "canceled":
            order.canceled_at_ns = self._now_ns
        else:
            order.expired_at_ns = self._now_ns
        self._emit(status, order)
        self._activate_legs(order)

    # --- cancel, replace, close -------------------------------------------------------------------------------------

    def cancel_order(self, order_id: str) -> list[m.VenueOrder]:
        """DELETE /v2/orders/{id}; returns every order this canceled (a bracket cancels as a unit)."""
        order = self.get_order(order_id)
        if order.status in m.TERMINAL:
            raise ApiError(422, 42210000, f'order is already in "{order.status}" state')
        was_open = list(self._open.values())
        if order.status in m.HELD and order.parent_id is not None:
            parent = self._orders[order.parent_id]
            if parent.status in m.OPEN:
                self._finish(parent, "canceled")
        if order.status in m.OPEN:
            self._finish(order, "canceled")
        for sibling_id in order.oco_ids:
            sibling = self._orders[sibling_id]
            if sibling.status in m.OPEN:
                self._finish(sibling, "canceled")
        return [o for o in was_open if o.status == "canceled"]

    def cancel_all_orders(self) -> list[m.VenueOrder]:
        canceled: list[m.VenueOrder] = []
        for _ in range(len(self._orders) + 1):  # canceling a partly filled entry activates its legs: repeat
            open_orders = self.open_orders()
            if not open_orders:
                break
            for order in open_orders:
                if order.status in m.OPEN:
                    canceled.extend(self.cancel_order(order.id))
        return canceled

    def replace_order(self, order_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """PATCH /v2/orders/{id}: a new order replaces the old one (old -> replaced, ``replaced_by``)."""
        old = self.get_order(order_id)
        if old.status not in (m.WORKING | m.QUEUED):
            raise ApiError(422, 42210000, f'order is already in "{old.status}" state')
        if old.filled_qty > 0:
            raise ApiError(422, 42210000, "cannot replace a partially filled order")
        client_order_id = self._check_client_order_id(changes.get("client_order_id"))
        qty = changes.get("qty", old.qty)
        if qty < old.filled_qty or qty <= 0:
            raise ApiError(422, 40010001, "qty must be > 0")
        new_spec = m.OrderSpec(
            symbol=old.symbol,
            qty=qty,
            side=old.side,
            type=old.type,
            time_in_force=changes.get("time_in_force", old.time_in_force),
            limit_price=changes.get("limit_price", old.limit_price),
            stop_price=changes.get("stop_price", old.stop_price),
            trail_price=changes.get("trail", old.trail_price) if old.trail_price is not None else None,
            trail_percent=changes.get("trail", old.trail_percent) if old.trail_percent is not None else None,
            extended_hours=old.extended_hours,
            order_class=old.order_class,
        )
        if new_spec.type == "trailing_stop" and "stop_price" in changes:
            raise ApiError(422, 40010001, "stop_price cannot be replaced on a trailing_stop order; use trail")
        reserve = old.reserve_price
        if reserve is not None:
            reserve = self._reference_price(new_spec)
            if reserve is not None:
                extra = qty * reserve - old.leaves_qty * (old.reserve_price or _ZERO)
                buying_power = self.buying_power()
                if extra > buying_power:
                    raise ApiError(
                        403,
                        40310000,
                        "insufficient buying power",
                        buying_power=dec_str(buying_power, 4),
                        cost_basis=dec_str(extra, 4),
                    )
        new = self._new_order(
            new_spec, client_order_id, reserve_price=reserve, parent_id=old.parent_id, replaces=old.id
        )
        new.leg_ids = list(old.leg_ids)
        new.oco_ids = list(old.oco_ids)
        new.hwm = old.hwm if new.type == "trailing_stop" else None
        for leg in self.legs_of(new):
            leg.parent_id = new.id
        for sibling_id in new.oco_ids:
            sibling = self._orders[sibling_id]
            sibling.oco_ids = [new.id if i == old.id else i for i in sibling.oco_ids]
        if old.parent_id is not None:
            parent = self._orders[old.parent_id]
            parent.leg_ids = [new.id if i == old.id else i for i in parent.leg_ids]
        self._set_status(old, "replaced")
        old.replaced_at_ns = old.updated_at_ns = self._now_ns
        old.replaced_by = new.id
        self._emit("replaced", old)
        reply = self.order_view(new)
        self._route(new)
        return reply

    def close_position(
        self, symbol_or_asset_id: str, *, qty: Decimal | None = None, percentage: Decimal | None = None
    ) -> dict[str, Any]:
        """DELETE /v2/positions/{symbol}: a market order for all (or ``qty`` / ``percentage``) of it."""
        symbol = self.resolve_symbol(symbol_or_asset_id)
        position = self.account.positions.get(symbol) if symbol is not None else None
        if symbol is None or position is None:
            raise ApiError(404, 40410000, "position does not exist")
        size = abs(position.qty)
        amount = size
        if qty is not None:
            if qty <= 0 or qty > size:
                raise ApiError(422, 40010001, f"qty must be > 0 and <= {dec_str(size)}")
            amount = qty
        elif percentage is not None:
            if not _ZERO < percentage <= 100:
                raise ApiError(422, 40010001, "percentage must be > 0 and <= 100")
            amount = (size * percentage / 100).quantize(_FRACTION_QUANTUM, rounding=ROUND_DOWN)
            if amount <= 0:
                raise ApiError(422, 40010001, "percentage is too small for this position")
        side = "sell" if position.qty > 0 else "buy"
        self._check_quantity(symbol, side, amount)
        spec = m.OrderSpec(symbol=symbol, qty=amount, side=side, type="market", time_in_force="day")
        return self._accept(spec, self._check_client_order_id(None), None)

    def close_all_positions(self, *, cancel_orders: bool) -> list[dict[str, Any]]:
        if cancel_orders:
            self.cancel_all_orders()
        results: list[dict[str, Any]] = []
        for symbol in sorted(self.account.positions):
            try:
                results.append({"symbol": symbol, "status": 200, "body": self.close_position(symbol)})
            except ApiError as err:
                results.append({"symbol": symbol, "status": err.status, "body": err.body()})
        return results


def _call_hook(target: Any, name: str, *args: Any) -> None:
    hook = getattr(target, name, None)
    if hook is not None:
        hook(*args)


def _json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> RestResponse:
    return RestResponse(status, encode(body), {**JSON_HEADERS, **(headers or {})})


def _position_intent(side: str, position: Decimal) -> str:
    if side == "buy":
        return "buy_to_close" if position < 0 else "buy_to_open"
    return "sell_to_close" if position > 0 else "sell_to_open"


def _activity_side(side: str, before: Decimal, after: Decimal) -> str:
    """FILL activities say ``sell_short`` for a sell that opens or extends a short."""
    if side == "sell" and after < 0 and after < before:
        return "sell_short" if before <= 0 else "sell"
    return side
