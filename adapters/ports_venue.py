"""The deterministic fake venue at the engine's ports: bulk backtests without the wire.

``sim.world`` normally runs the engine against the fake venue through the wire: the real Alpaca adapter over an
in-process httpx transport and in-memory WebSockets, every request and frame encoded and decoded, so chaos
scenarios test the code that trades live. A bulk backtest does not need that: this module plugs the same venue
core (``adapters.fake.venue.Venue``, driven by the same ``VenueDriver`` clock) into the same engine at its ports
(``core.ports``), handing it decoded events:

- ``PortsRest`` (``BrokerRest``): each call goes to the venue's REST router (``Venue.handle_decoded``: the same
  handlers and records as an HTTP request, no HTTP); replies are Python objects converted to the same wire models
  and core types the Alpaca adapter builds (``adapters.alpaca.models``). Paced by the same client token bucket.
- ``PortsTradingStream`` (``EventStream``): the venue's trade updates as ``TradeUpdate``s, straight from the
  venue (``Venue.trade_update_listeners``), one batch per venue step.
- ``PortsMarketStream`` (``EventStream``): the fake's market-data session (``DataStreamSession``: same
  subscriptions, same messages in the same order) with the frame encoding left out; each frame's messages become
  ``Bar``/``Quote`` through the adapter's own converters and bar gap filler, delivered as one batch.
- ``PortsHistory`` (``HistoricalBars``): the venue's market-data REST handler, called in-process.

Same scenario + seed => the same orders and fills as the wire path on a clean scenario (tests/backtest). Faults
that only exist on the wire (lost or failed answers, rate limits, stream closes, mutes, dropped or reordered
frames) cannot happen here: ``check_plan`` refuses a scenario that asks for them (``PortsPathError``).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final
from urllib.parse import quote as url_quote

import msgspec
import trio

from adapters.alpaca import models as wire
from adapters.alpaca.config import Credentials
from adapters.alpaca.errors import ResponseDecodeError, translate
from adapters.alpaca.gapfill import BarGapFiller
from adapters.alpaca.ratelimit import Priority, RateLimiter
from adapters.alpaca.rest import (
    ACTIVITIES_PAGE_MAX,
    BARS_PAGE_MAX,
    MAX_PAGES,
    NON_TRADE_ACTIVITY_TYPES,
    ORDERS_PAGE_MAX,
)
from adapters.alpaca.telemetry import LatencyTelemetry
from adapters.fake.data_stream import DataStreamSession
from adapters.fake.faults import FaultPlan
from adapters.fake.interfaces import Frame, RestRequest
from adapters.fake.wire import ApiError
from core import connection_fsm as fsm
from core.config import ConfigError
from core.model import (
    NS_PER_S,
    Account,
    AccountConfig,
    Activity,
    Bar,
    BrokerOrder,
    CashActivity,
    MarketClock,
    OrderRequest,
    Position,
    Quote,
    TradeUpdate,
)
from core.ports import Monitor, NullMonitor, OrderGateClosed, SendGate, gate_open

log = logging.getLogger("ttlive.ports_venue")

# Timed faults that act on the wire only (HTTP answers, WebSocket connections); the venue-side ones
# (quote_stale, position_drift, foreign_order) and the harness's (client_crash, manual_kill/reset) apply here.
WIRE_ONLY_EVENTS: Final = frozenset(
    {"ws_close", "ws_mute", "eviction_406", "rest_outage", "rest_slow", "rate_limit_storm", "venue_restart"}
)
PATHS: Final = ("wire", "ports")


class PortsPathError(ConfigError):
    """A scenario asks for something only the wire can do; run it on the wire path."""


def check_plan(plan: FaultPlan) -> None:
    """Refuse a fault plan that needs the wire: every per-request/per-frame probability and wire-only event."""
    problems = [f"faults.{key} = {getattr(plan, key)}" for key in
                ("rest_429_p", "rest_5xx_p", "rest_timeout_after_accept_p", "rest_read_timeout_p",
                 "trade_update_drop_p", "trade_update_duplicate_p", "trade_update_reorder_p", "market_data_drop_p")
                if getattr(plan, key) > 0]
    if plan.one_stream_per_key:
        problems.append("faults.one_stream_per_key = true")
    problems += [f"faults.events[{i}] kind = {event.kind!r}" for i, event in enumerate(plan.events)
                 if event.kind in WIRE_ONLY_EVENTS]
    if problems:
        raise PortsPathError(
            "the ports path has no wire, so these faults cannot happen there: " + "; ".join(problems)
            + " (run the scenario on the wire path: --path wire)"
        )


# --- connection state the connectivity loop reads (adapters.alpaca.connectivity) ------------------------------


@dataclass(frozen=True)
class _Live:
    """A connection machine that is always live: there is no connection to lose at the ports."""

    state: fsm.ConnState = fsm.ConnState.LIVE


class _Reachable:
    """REST reachability at the ports: the venue always answers."""

    def unreachable(self, *, evidence_window_s: float = 10.0) -> bool:
        return False

    def on_change(self, callback: Callable[[], None]) -> None:
        return None


class _AlwaysLive:
    machine = _Live()
    connects = 1  # one "connection" per engine life, as a wire stream that never dropped

    @property
    def live(self) -> bool:
        return True

    def on_change(self, callback: Callable[[], None]) -> None:
        return None


# --- REST ------------------------------------------------------------------------------------------------------


def _convert(obj: Any, type_: Any, *, endpoint: str) -> Any:
    return wire.convert(obj, type_, what=endpoint)


def _multi_status(reply: Any, *, endpoint: str) -> list[wire.WireMultiStatus]:
    """A 207 multi-status list: its items keep each body as raw JSON (``msgspec.Raw``), so this rare reply (the
    kill switch's cancel-all and close-all) is read from its JSON exactly as the Alpaca adapter reads it."""
    items: list[wire.WireMultiStatus] = wire.decode_json(msgspec.json.encode(reply), list[wire.WireMultiStatus],
                                                         what=endpoint)
    return items


class PortsRest:
    """``core.ports.BrokerRest`` straight into the venue's REST router; the client token bucket still paces it."""

    def __init__(self, front: Any, *, limiter: RateLimiter | None = None, monitor: Monitor | None = None) -> None:
        self.front = front
        self.limiter = limiter or RateLimiter()
        self.monitor: Monitor = monitor or NullMonitor()
        self.http = _Reachable()
        self.calls = 0

    async def aclose(self) -> None:
        return None

    async def _call(self, method: str, path: str, *, endpoint: str, query: dict[str, str] | None = None,
                    body: Any = None, priority: Priority = Priority.NORMAL, gate: SendGate | None = None) -> Any:
        await self.limiter.acquire(priority)
        if gate is not None and not gate():
            self.monitor.incr("alpaca.rest.gate_closed")
            raise OrderGateClosed(f"{endpoint}: the order gate closed before attempt 1", sent=False)
        request = RestRequest(method=method, path=path, query=query or {}, headers={},
                              body=b"" if body is None else msgspec.json.encode(body))
        front = self.front
        front.sync()
        self.calls += 1
        try:
            _status, reply = front.venue.handle_decoded(request)
        except ApiError as err:
            error = translate(err.status, msgspec.json.encode(err.body()), endpoint=endpoint)
            if err.status < 500:
                self.monitor.incr("alpaca.rest.client_error")
            raise error from None
        finally:
            front.requests_handled += 1
            front.sync()  # the call may have produced trade updates: hand them on now, as the wire would
        return reply

    # --- orders ----------------------------------------------------------------------------------------------

    async def submit_order(self, request: OrderRequest, *, gate: SendGate = gate_open) -> BrokerOrder:
        endpoint = "POST /v2/orders"
        reply = await self._call("POST", "/v2/orders", endpoint=endpoint, body=wire.order_request_body(request),
                                 gate=gate)
        return wire.order_from_wire(_convert(reply, wire.WireOrder, endpoint=endpoint))

    async def cancel_order(self, order_id: str) -> None:
        await self._call("DELETE", f"/v2/orders/{url_quote(order_id, safe='')}",
                         endpoint="DELETE /v2/orders/{id}", priority=Priority.KILL_SWITCH)

    async def cancel_all_orders(self) -> list[tuple[str, int]]:
        endpoint = "DELETE /v2/orders"
        reply = await self._call("DELETE", "/v2/orders", endpoint=endpoint, priority=Priority.KILL_SWITCH)
        items = _multi_status(reply, endpoint=endpoint)
        return [(item.id or "", item.status) for item in items]

    async def get_order(self, order_id: str) -> BrokerOrder:
        endpoint = "GET /v2/orders/{id}"
        reply = await self._call("GET", f"/v2/orders/{url_quote(order_id, safe='')}", endpoint=endpoint)
        return wire.order_from_wire(_convert(reply, wire.WireOrder, endpoint=endpoint))

    async def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder:
        endpoint = "GET /v2/orders:by_client_order_id"
        reply = await self._call("GET", "/v2/orders:by_client_order_id", endpoint=endpoint,
                                 query={"client_order_id": client_order_id})
        return wire.order_from_wire(_convert(reply, wire.WireOrder, endpoint=endpoint))

    async def list_orders(self, *, status: str = "open", after_ts_ns: int | None = None,
                          limit: int = ORDERS_PAGE_MAX) -> list[BrokerOrder]:
        """Newest first, paged backwards by ``until`` above 500, as ``AlpacaRest.list_orders``."""
        endpoint = "GET /v2/orders"
        assert limit >= 1, "list_orders needs limit >= 1"
        out: list[BrokerOrder] = []
        seen: set[str] = set()
        until_ts_ns: int | None = None
        for _page in range(MAX_PAGES):
            page_size = min(ORDERS_PAGE_MAX, limit - len(out))
            query = {"status": status, "limit": str(page_size), "direction": "desc", "nested": "true"}
            if after_ts_ns is not None:
                query["after"] = wire.ns_to_rfc3339(after_ts_ns)
            if until_ts_ns is not None:
                query["until"] = wire.ns_to_rfc3339(until_ts_ns)
            reply = await self._call("GET", "/v2/orders", endpoint=endpoint, query=query)
            page = _convert(reply, list[wire.WireOrder], endpoint=endpoint)
            orders = [wire.order_from_wire(w) for w in page]
            fresh = [o for o in orders if o.id not in seen]
            for order in fresh:
                seen.add(order.id)
                out.append(order)
                if len(out) >= limit:
                    return out
            if len(page) < page_size or not fresh:
                return out
            until_ts_ns = min(o.submitted_at_ns for o in orders) + 1
        log.warning("%s: stopped after %d pages", endpoint, MAX_PAGES)
        return out

    # --- positions, account ------------------------------------------------------------------------------------

    async def get_positions(self) -> list[Position]:
        endpoint = "GET /v2/positions"
        reply = await self._call("GET", "/v2/positions", endpoint=endpoint)
        return [wire.position_from_wire(w) for w in _convert(reply, list[wire.WirePosition], endpoint=endpoint)]

    async def close_all_positions(self, *, cancel_orders: bool = True) -> list[tuple[str, int]]:
        endpoint = "DELETE /v2/positions"
        reply = await self._call("DELETE", "/v2/positions", endpoint=endpoint, priority=Priority.KILL_SWITCH,
                                 query={"cancel_orders": "true" if cancel_orders else "false"})
        items = _multi_status(reply, endpoint=endpoint)
        return [(item.symbol or "", item.status) for item in items]

    async def get_account(self) -> Account:
        endpoint = "GET /v2/account"
        reply = await self._call("GET", "/v2/account", endpoint=endpoint)
        return wire.account_from_wire(_convert(reply, wire.WireAccount, endpoint=endpoint))

    async def get_configurations(self) -> AccountConfig:
        endpoint = "GET /v2/account/configurations"
        reply = await self._call("GET", "/v2/account/configurations", endpoint=endpoint)
        return wire.account_config_from_wire(_convert(reply, wire.WireAccountConfig, endpoint=endpoint))

    async def patch_configurations(self, **changes: Any) -> AccountConfig:
        endpoint = "PATCH /v2/account/configurations"
        reply = await self._call("PATCH", "/v2/account/configurations", endpoint=endpoint,
                                 body=wire.config_patch_body(changes))
        return wire.account_config_from_wire(_convert(reply, wire.WireAccountConfig, endpoint=endpoint))

    async def get_activities(self, *, after_ts_ns: int | None = None) -> list[Activity]:
        endpoint = "GET /v2/account/activities"
        out: list[Activity] = []
        page_token: str | None = None
        for _page in range(MAX_PAGES):
            query = {"activity_types": "FILL", "direction": "asc", "page_size": str(ACTIVITIES_PAGE_MAX)}
            if after_ts_ns is not None:
                query["after"] = wire.ns_to_rfc3339(after_ts_ns)
            if page_token is not None:
                query["page_token"] = page_token
            reply = await self._call("GET", "/v2/account/activities", endpoint=endpoint, query=query)
            page = _convert(reply, list[wire.WireActivity], endpoint=endpoint)
            out.extend(wire.activity_from_wire(w) for w in page if w.activity_type.upper() == "FILL")
            if len(page) < ACTIVITIES_PAGE_MAX or page[-1].id == page_token:
                return out
            page_token = page[-1].id
        log.warning("%s: stopped after %d pages", endpoint, MAX_PAGES)
        return out

    async def get_cash_activities(self, *, after_ts_ns: int | None = None) -> list[CashActivity]:
        """Non-trade activities, paged as over the wire (``adapters.alpaca.rest.AlpacaRest.get_cash_activities``)."""
        endpoint = "GET /v2/account/activities"
        out: list[CashActivity] = []
        page_token: str | None = None
        for _page in range(MAX_PAGES):
            query = {"activity_types": NON_TRADE_ACTIVITY_TYPES, "direction": "asc",
                     "page_size": str(ACTIVITIES_PAGE_MAX)}
            if after_ts_ns is not None:
                query["after"] = wire.ns_to_rfc3339(after_ts_ns)
            if page_token is not None:
                query["page_token"] = page_token
            reply = await self._call("GET", "/v2/account/activities", endpoint=endpoint, query=query)
            page = _convert(reply, list[wire.WireNonTradeActivity], endpoint=endpoint)
            out.extend(wire.non_trade_activity_from_wire(w) for w in page if w.activity_type.upper() != "FILL")
            if len(page) < ACTIVITIES_PAGE_MAX or page[-1].id == page_token:
                return out
            page_token = page[-1].id
        log.warning("%s: stopped after %d pages", endpoint, MAX_PAGES)
        return out

    async def get_portfolio_history(
        self, *, period: str | None = None, timeframe: str | None = None
    ) -> dict[str, Any]:
        endpoint = "GET /v2/account/portfolio/history"
        query = {k: v for k, v in (("period", period), ("timeframe", timeframe)) if v is not None}
        reply = await self._call("GET", "/v2/account/portfolio/history", endpoint=endpoint, query=query)
        # The same numbers the Alpaca adapter reads from JSON: money as Decimal, never float.
        history: dict[str, Any] = msgspec.json.Decoder(dict[str, Any], float_hook=Decimal).decode(
            msgspec.json.encode(reply))
        if not isinstance(history.get("timestamp"), list) or not isinstance(history.get("equity"), list):
            raise ResponseDecodeError(f"{endpoint}: missing timestamp/equity arrays")
        return history

    async def get_clock(self) -> MarketClock:
        endpoint = "GET /v2/clock"
        reply = await self._call("GET", "/v2/clock", endpoint=endpoint)
        return wire.clock_from_wire(_convert(reply, wire.WireClock, endpoint=endpoint))


# --- market-data REST -------------------------------------------------------------------------------------------


class PortsHistory:
    """``core.ports.HistoricalBars`` on the venue's market-data handler, called in-process (a few calls a day:
    the engine's warm-up). Its replies are the handler's JSON, read with the Alpaca adapter's models."""

    def __init__(self, front: Any, credentials: Credentials, *, feed: str = "iex") -> None:
        self.front = front
        self.feed = feed
        self._headers = {k.lower(): v for k, v in credentials.headers().items()}

    async def aclose(self) -> None:
        return None

    async def _get(self, path: str, query: dict[str, str], type_: Any) -> Any:
        await trio.lowlevel.checkpoint()
        front = self.front
        front.sync()
        response = front.venue.handle_rest(RestRequest("GET", path, query, self._headers))
        front.requests_handled += 1
        if not 200 <= response.status < 300:
            raise translate(response.status, response.body, endpoint=f"GET {path}")
        return wire.decode_json(response.body, type_, what=f"GET {path}")

    async def get_bars(self, symbols: Sequence[str], *, start_ts_ns: int, end_ts_ns: int,
                       timeframe: str = "1Min") -> dict[str, list[Bar]]:
        out: dict[str, list[Bar]] = {}
        page_token: str | None = None
        for _page in range(MAX_PAGES):
            query = {"symbols": ",".join(symbols), "timeframe": timeframe,
                     "start": wire.ns_to_rfc3339(start_ts_ns), "end": wire.ns_to_rfc3339(end_ts_ns),
                     "limit": str(BARS_PAGE_MAX), "adjustment": "raw", "feed": self.feed, "sort": "asc"}
            if page_token is not None:
                query["page_token"] = page_token
            page = await self._get("/v2/stocks/bars", query, wire.WireBarsPage)
            for symbol, bars in sorted((page.bars or {}).items()):
                out.setdefault(symbol, []).extend(wire.bar_from_wire(symbol, b) for b in bars)
            if not page.next_page_token or page.next_page_token == page_token:
                return out
            page_token = page.next_page_token
        return out

    async def get_latest_quotes(self, symbols: Sequence[str]) -> dict[str, Quote]:
        page = await self._get("/v2/stocks/quotes/latest", {"symbols": ",".join(symbols), "feed": self.feed},
                               wire.WireLatestQuotes)
        return {symbol: wire.quote_from_wire(symbol, q) for symbol, q in sorted(page.quotes.items())}


# --- streams ------------------------------------------------------------------------------------------------------


class _Inbox:
    """Items the venue hands over synchronously (inside its step), waiting for the delivering task."""

    def __init__(self) -> None:
        self.items: deque[Any] = deque()
        self._wakeup = trio.Event()

    def put(self, item: Any) -> None:
        self.items.append(item)
        self._wakeup.set()

    async def wait(self) -> None:
        """Until there is something to deliver. Always a cancellation point: a task that finds items waiting
        at every pass must still notice that its engine was stopped (crashed) before handing them on."""
        while not self.items:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
        await trio.lowlevel.checkpoint_if_cancelled()  # woken by the venue in the instant the engine was stopped

    async def drain(self, handle: Callable[[Any], Awaitable[None]]) -> None:
        """Forever: each waiting item to ``handle``, in order. A consumer that went away (its channel closed)
        while this engine is being stopped ends the task as cancelled, not as a crash."""
        while True:
            await self.wait()
            try:
                while self.items:
                    await handle(self.items.popleft())
            except trio.BrokenResourceError:
                await trio.lowlevel.checkpoint_if_cancelled()
                raise


class PortsTradingStream(_AlwaysLive):
    """``EventStream`` of the venue's trade updates, decoded: subscribed from construction (an update produced
    before ``serve`` is delivered when it starts; the ledger ignores an execution it has already booked)."""

    name = "trading"

    def __init__(self, front: Any) -> None:
        self.front = front
        self._inbox = _Inbox()
        self.delivered = 0
        front.venue.trade_update_listeners.append(self._inbox.put)

    def close(self) -> None:
        listeners = self.front.venue.trade_update_listeners
        if self._inbox.put in listeners:
            listeners.remove(self._inbox.put)

    async def serve(self, deliver: Callable[[TradeUpdate], Awaitable[None]], *,
                    task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()

        async def handle(data: dict[str, Any]) -> None:
            update = wire.trade_update_from_wire(_convert(data, wire.WireTradeUpdate, endpoint="trade_updates"))
            self.delivered += 1
            await deliver(update)

        await self._inbox.drain(handle)


@dataclass(frozen=True, slots=True)
class DecodedFrame(Frame):
    """A market-data frame whose messages are kept as objects (nothing to send over a socket)."""

    messages: tuple[dict[str, Any], ...] = ()


class DecodedDataSession(DataStreamSession):
    """The fake's market-data session without the codec: the same messages, subscriptions and order, its
    timestamps as the integer ns the adapter's msgpack decoder produces, each frame's messages kept as objects."""

    def __init__(self, venue: Any, inbox: _Inbox) -> None:
        super().__init__(venue, codec="msgpack", auth_timeout_ns=None)
        self._inbox = inbox

    def _time(self, ts_ns: int) -> Any:
        return ts_ns

    def _frame(self, messages: Sequence[dict[str, Any]]) -> Frame:
        return DecodedFrame(b"", tuple(messages))

    def _push(self, item: Any) -> None:
        if isinstance(item, DecodedFrame):
            self._inbox.put(item.messages)
        else:  # a Close (ws_close / venue_restart faults): refused on this path before the run starts
            raise AssertionError(f"the ports path has no connection to close: {item!r}")


class PortsMarketStream(_AlwaysLive):
    """``EventStream`` of bars and quotes from the venue's market-data session, converted by the Alpaca adapter's
    own models (``bar_from_wire``/``quote_from_wire``) and passed through the same ``BarGapFiller``."""

    name = "market_data"

    def __init__(self, front: Any, *, symbols: Sequence[str], bar_interval_s: int) -> None:
        self.front = front
        self.bars_symbols: set[str] = set(symbols)
        self.quote_symbols: set[str] = set(symbols)
        self.bar_gaps = BarGapFiller(bar_interval_ns=bar_interval_s * NS_PER_S)
        self._inbox = _Inbox()
        self._session: DecodedDataSession | None = None
        self.delivered = 0

    def close(self) -> None:
        if self._session is not None:
            self.front.venue.unregister_data_session(self._session)
            self._session.on_close()
            self._session = None

    async def serve(self, deliver: Callable[[Bar | Quote], Awaitable[None]], *,
                    task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        front = self.front
        front.sync()  # subscribed from now on, as a WebSocket session opened at this instant would be
        session = DecodedDataSession(front.venue, self._inbox)
        session.authenticated = True
        session.subscriptions["bars"] = set(self.bars_symbols)
        session.subscriptions["quotes"] = set(self.quote_symbols)
        front.venue.register_data_session(session)
        self._session = session
        async def handle(messages: tuple[dict[str, Any], ...]) -> None:  # one frame's messages, in order
            for message in messages:
                await self._deliver_one(message, deliver)

        try:
            task_status.started()
            await self._inbox.drain(handle)
        finally:
            self.close()

    async def _deliver_one(self, message: dict[str, Any], deliver: Callable[[Bar | Quote], Awaitable[None]]) -> None:
        kind = message["T"]
        if kind == "q":
            q = msgspec.convert(message, wire.StreamQuote)
            self.delivered += 1
            await deliver(wire.quote_from_wire(q.S, q))
        elif kind == "b":
            b = msgspec.convert(message, wire.StreamBar)
            for bar in self.bar_gaps.on_bar(wire.bar_from_wire(b.S, b)):
                self.delivered += 1
                await deliver(bar)


# --- the set ---------------------------------------------------------------------------------------------------


@dataclass
class PortAdapters:
    """The ports-level counterpart of ``adapters.bootstrap.Adapters`` (same attribute names)."""

    rest: PortsRest
    data: PortsHistory
    trading: PortsTradingStream
    market: PortsMarketStream
    telemetry: LatencyTelemetry

    async def aclose(self) -> None:
        self.trading.close()
        self.market.close()
