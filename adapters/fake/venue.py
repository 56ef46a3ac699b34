"""The deterministic fake Alpaca venue: one sans-IO core that books orders, matches them and keeps the account.

Front-ends (in-process or loopback) hand it ``RestRequest``s and stream messages; virtual time enters only
through ``advance_to``. Same seed + same request sequence => byte-identical responses and frames.
This module holds the clock, the market view, REST entry, streams and the account; the orders live in
``venue_orders.OrderBook`` (``venue.book``), the pre-trade checks in ``venue_checks``, faults in ``venue_faults``.

Hooks for market-data stream sessions (``adapters.fake.data_stream``), registered with
``register_data_session``: the venue calls ``session.on_advance(prev_ns, now_ns)`` after every clock step,
``session.force_close(code, reason)`` on ws_close / venue_restart faults and ``session.evict()`` on
eviction_406 (each only if the session has it); sessions ask ``stream_refusal("data")``,
``stream_muted("data")``, ``draw_market_data_drop()`` and ``quote(symbol)`` (which honours quote_stale).
"""

from __future__ import annotations

import functools
import importlib
import json
import random
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Final

from adapters.fake import matching as m
from adapters.fake.accounts import (
    ACCOUNT_TYPES,
    Account,
    AccountFigures,
    PositionState,
    StartingOrder,
    default_multiplier,
)
from adapters.fake.faults import FaultEvent, FaultInjector, FaultPlan
from adapters.fake.interfaces import FakeQuote, MarketSource, RestRequest, RestResponse, SessionCalendar
from adapters.fake.ratelimit import RateLimiter
from adapters.fake.rest import dispatch
from adapters.fake.trading_stream import TradingStreamSession
from adapters.fake.venue_faults import apply_fault, place_starting_orders, resolve_fault_at, split_adjusted
from adapters.fake.venue_orders import AcceptedOrder, OrderBook
from adapters.fake.wire import (
    ASSET_NAMESPACE,
    JSON_HEADERS,
    ApiError,
    dec_str,
    encode,
    error_body,
    et_date,
    order_json,
    rfc3339_ns,
)
from core.limits import ALPACA_REQUESTS_PER_MIN, ORDER_SUBMIT_TIMEOUT_S, PDT_WINDOW_DAYS
from core.model import NS_PER_S, Fill

_ZERO: Final = Decimal(0)
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
    non_fractionable: frozenset[str] = frozenset()  # assets whose `fractionable` is false: whole shares only
    # Trading-stream frames: "binary" (JSON in binary frames, as Alpaca's paper stream sends them) or "text".
    trading_stream_frames: str = "binary"
    # trade_updates events: "basic" (new, fill, partial_fill, canceled, expired, replaced, rejected; cancels and
    # replaces apply at once) or "full" (also pending_new, pending_cancel, pending_replace, order_cancel_rejected,
    # order_replace_rejected, done_for_day, calculated, suspended, where Alpaca produces them)
    trade_events: str = "basic"
    request_timeout_s: float = ORDER_SUBMIT_TIMEOUT_S  # what a lost response costs the client
    # The book the account already holds when the venue starts: (symbol, signed qty, average entry price).
    positions: tuple[tuple[str, Decimal, Decimal], ...] = ()
    orders: tuple[StartingOrder, ...] = ()  # open at the account when the venue starts (venue_faults)

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
        if self.trade_events not in m.TRADE_EVENT_SETS:
            raise ValueError(f"trade_events must be one of {m.TRADE_EVENT_SETS}, got {self.trade_events!r}")
        if self.trading_stream_frames not in ("binary", "text"):
            raise ValueError(f"trading_stream_frames must be binary or text, got {self.trading_stream_frames!r}")
        if (self.key_id is None) != (self.secret_key is None):
            raise ValueError("give both key_id and secret_key, or neither")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    ts_ns: int
    method: str
    path: str
    status: int


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
        resolve_at_ns = functools.partial(resolve_fault_at, self)
        self.faults = FaultInjector(config.faults, seed=config.seed, resolve_at_ns=resolve_at_ns)
        self.market = split_adjusted(self, market)  # the market itself unless the plan holds split events
        self._limiter = RateLimiter(config.rate_limit_per_min, nominal_limit=ALPACA_REQUESTS_PER_MIN)
        self.book = OrderBook(self)
        self.replay_plan: Any = None  # a replayed capture's recorded answers (adapters.fake.replay_plan)
        self._marks: dict[str, Decimal] = {}
        self._quotes: dict[str, FakeQuote | None] = {}  # per clock instant; cleared on every step/request
        self._open_now: bool | None = None  # calendar.is_open(now), same lifetime
        self._lastday: dict[str, Decimal] = {}
        # (close ns, marks, equity, maintenance margin) of the last close, booked as "last day" overnight
        self._close_snapshot: tuple[int, dict[str, Decimal], Decimal, Decimal] | None = None
        self._session_dates: list[str] = [et_date(start_ns)] if calendar.is_open(start_ns) else []
        self._trading_sessions: list[TradingStreamSession] = []
        self._stream_keys: dict[int, str] = {}  # id(session) -> key it authenticated with
        self._data_sessions: list[Any] = []
        # Decoded trade updates for a client at the ports (adapters.ports_venue): each is called with the
        # update's data object, before (and whether or not) it is encoded for the WebSocket sessions.
        self.trade_update_listeners: list[Callable[[dict[str, Any]], None]] = []
        # Records: tests and the simulation's invariants read these ("fakes record what happened").
        self.order_log: list[AcceptedOrder] = []
        self.fills: list[Fill] = []  # every execution of an order placed through the API
        self.external_fills: list[Fill] = []  # position_drift trades made outside the engine
        self.request_log: list[RequestRecord] = []
        # request_log index -> the client order id a POST /v2/orders asked for (invariants tell a protective stop's
        # attempts from an entry's; kept apart from request_log, whose records the trace hash covers)
        self.request_coids: dict[int, str] = {}
        self.event_log: list[TradeUpdateRecord] = []
        self.internal_errors: list[str] = []
        self.skipped_faults: list[tuple[int, FaultEvent, str]] = []  # faults that could not be carried out
        if config.positions:  # the book was held at yesterday's close: that is the account's last_equity
            marks = self.current_marks(self.account.positions)
            self._lastday.update(marks)
            self.account.last_equity = self.account.equity(marks)
        # The eve's close: the last point of the account's history before the venue started (rest.py)
        self.opening_equity = self.account.last_equity
        self.starting_order_ids: list[str] = place_starting_orders(self, config.orders)

    # --- clock ---------------------------------------------------------------------------------------------

    @property
    def now_ns(self) -> int:
        return self._now_ns

    @property
    def start_ns(self) -> int:
        return self._start_ns

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
        cancel_ns = self.book.next_cancel_due_ns()
        if cancel_ns is not None:
            points.append(cancel_ns)
        later = [p for p in points if p > now_ns]
        return min(later) if later else None

    def _step(self, ts_ns: int) -> None:
        prev_ns, self._now_ns = self._now_ns, ts_ns
        self._forget_instant()
        if self._close_snapshot is not None and ts_ns >= self._close_snapshot[0] + LAST_DAY_ROLL_AFTER_CLOSE_NS:
            self._roll_last_day()
        for event in self.faults.pop_due(ts_ns):
            apply_fault(self, event)
        self._forget_instant()
        close_ns = self._next_close(prev_ns)
        if close_ns is not None and prev_ns < close_ns <= ts_ns:
            self._on_close(close_ns)
        open_ns = self._next_open(prev_ns)
        if open_ns is not None and prev_ns < open_ns <= ts_ns:
            self._on_open()
        self.book.match_all()
        self.book.settle_cancels()
        is_open = self.market_open()
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

    def market_open(self) -> bool:
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
        self.book.route_queued()

    def _roll_last_day(self) -> None:
        """Overnight, as Alpaca does: last_equity, last_maintenance_margin and lastday_price become the close's."""
        assert self._close_snapshot is not None
        _close_ns, marks, equity, maintenance = self._close_snapshot
        self._lastday.update(marks)
        self.account.last_equity = equity
        self.account.last_maintenance_margin = maintenance
        self._close_snapshot = None

    def _on_close(self, close_ns: int) -> None:
        """Day orders expire; the close's marks, equity and margin are kept to become "last day" overnight."""
        self.book.close_session(close_ns)
        marks = self.current_marks(self.market.symbols)
        self._close_snapshot = (close_ns, marks, self.account.equity(marks), self.account.maintenance_margin(marks))

    def _record_equity(self) -> None:
        points = self.account.equity_points
        if points and points[-1][0] >= self._now_ns:
            return
        marks = self.current_marks(self.account.positions)
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

    def split_prices(self, symbol: str, ratio: Decimal) -> None:
        """A split happened now: the last known prices of ``symbol`` follow it (the market view already does,
        ``venue_faults.split_adjusted``)."""
        for cache in (self._marks, self._lastday):
            if symbol in cache:
                cache[symbol] = cache[symbol] / ratio
        self._forget_instant()

    def current_marks(self, symbols: Any) -> dict[str, Decimal]:
        return {symbol: self.mark(symbol) for symbol in sorted(symbols)}

    def last_mid(self, symbol: str) -> Decimal | None:
        """The last two-sided quote's mid, if the venue has seen one."""
        return self._marks.get(symbol)

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

    def is_fractionable(self, symbol: str) -> bool:
        return symbol not in self.config.non_fractionable

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
        self._log_request(req, response.status)
        return response

    def handle_decoded(self, req: RestRequest) -> tuple[int, Any]:
        """A trading request from a client at the ports (adapters.ports_venue): the same router and records as
        ``handle_rest``, without the wire around it (no credentials, rate limiter, faults or reply encoding).
        Returns (status, reply object); a refusal raises ``ApiError``."""
        self._forget_instant()
        status = 500
        try:
            status, body = dispatch(self, req)
        except ApiError as err:
            status = err.status
            raise
        finally:
            self._log_request(req, status)
        return status, body

    def _log_request(self, req: RestRequest, status: int) -> None:
        if req.method == "POST" and req.path == "/v2/orders":
            try:
                coid = json.loads(req.body).get("client_order_id")
            except (ValueError, AttributeError):
                coid = None
            if isinstance(coid, str):
                self.request_coids[len(self.request_log)] = coid
        self.request_log.append(RequestRecord(self._now_ns, req.method, req.path, status))
        self._end_cycle()

    def _handle_rest(self, req: RestRequest) -> RestResponse:
        key = self._authenticate(req.headers)
        if key is None:  # Alpaca's bodies: the trading API carries a code, the data API only a message
            if req.path.startswith("/v2/stocks"):
                return _json_response(401, {"message": "unauthorized."})
            return _json_response(401, error_body(40110000, "request is not authorized"))
        family = "data" if req.path.startswith("/v2/stocks") else "trading"
        decision = self._limiter.take(key, family, self._now_ns)
        headers = decision.headers()
        if not decision.allowed:
            return _json_response(429, error_body(42910000, "rate limit exceeded"), headers)
        fault = self.faults.rest_fault(self._now_ns)
        if fault is not None:
            return _json_response(fault.status, error_body(fault.code, fault.message), headers)
        recorded = self.replay_plan.rest_answer(req, self.book) if self.replay_plan is not None else None
        if recorded is not None and recorded.status is not None:  # a recorded refusal: nothing is applied
            return _json_response(recorded.status, recorded.body if isinstance(recorded.body, dict) else {}, headers)
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
        if recorded is not None:
            lost = lost or recorded.lost
        drop_after = self.config.request_timeout_s if lost else None
        delay_s = max(self.faults.rest_delay_s(self._now_ns), recorded.delay_s if recorded is not None else 0.0)
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
        """The rate-limit key of an authorised request, None for Alpaca's 401: both key headers non-empty (and
        equal to the configured pair, if any), or an OAuth Bearer token when no pair is configured."""
        key = headers.get("apca-api-key-id")
        secret = headers.get("apca-api-secret-key")
        if key is None and secret is None and headers.get("authorization", "").startswith("Bearer "):
            return "oauth" if self.config.key_id is None else None
        if key is not None and secret is not None and self.check_credentials(key, secret):
            return key
        return None

    def check_credentials(self, key_id: str, secret_key: str) -> bool:
        """REST and both streams: an empty key or secret never passes; any other pair does unless configured."""
        if not key_id or not secret_key:
            return False
        if self.config.key_id is None:
            return True
        return key_id == self.config.key_id and secret_key == self.config.secret_key

    # --- streams ----------------------------------------------------------------------------------------------

    def open_trading_stream(self, *, binary: bool | None = None) -> TradingStreamSession:
        """A trading-stream session; its frames are binary unless ``binary=False`` or the venue is configured
        with ``trading_stream_frames = "text"``."""
        if binary is None:
            binary = self.config.trading_stream_frames == "binary"
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

    def trading_sessions(self) -> list[TradingStreamSession]:
        return list(self._trading_sessions)

    def data_sessions(self) -> list[Any]:
        return list(self._data_sessions)

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

    def emit_trade_update(
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
        data["order"] = order_json(order, self.book.legs_of(order) if order.leg_ids else None)
        data["timestamp"] = rfc3339_ns(self._now_ns)
        if execution_id is not None:
            assert price is not None and qty is not None and position_qty is not None
            data.update(price=dec_str(price), qty=dec_str(qty), position_qty=dec_str(position_qty))
        self.event_log.append(TradeUpdateRecord(self._now_ns, event, order.id, execution_id))
        unheard = self.replay_plan is not None and self.replay_plan.unheard(self.book, event, order)
        if not unheard:
            for listener in list(self.trade_update_listeners):
                listener(data)
        sessions = [session for session in self._trading_sessions if session.wants_trade_updates]
        if not sessions:
            return
        payload = encode({"stream": "trade_updates", "data": data})
        for session in sessions:
            fate = "deliver" if session.muted else self.faults.trade_update_fate()
            session.publish(payload, "drop" if unheard else fate)  # a replay: lost as it was when recorded

    # --- account ------------------------------------------------------------------------------------------------

    def account_figures(self) -> AccountFigures:
        marks = self.current_marks(self.account.positions)
        return self.account.figures(
            marks,
            reserved_usd=self.book.reserved_usd(),
            daytrade_count=self.daytrade_count(),
            balance_asof=self._session_dates[-2] if len(self._session_dates) > 1 else et_date(self._start_ns),
        )

    def buying_power(self) -> Decimal:
        marks = self.current_marks(self.account.positions)
        return self.account.buying_power(marks, self.book.reserved_usd())

    def daytrade_count(self) -> int:
        window = set(self._session_dates[-PDT_WINDOW_DAYS:])
        return sum(1 for session_date, _ in self.account.day_trades if session_date in window)

    def session_date(self) -> str:
        return self._session_dates[-1] if self._session_dates else et_date(self._now_ns)


def _json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> RestResponse:
    return RestResponse(status, encode(body), {**JSON_HEADERS, **(headers or {})})
