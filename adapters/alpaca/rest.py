"""Alpaca trading and market-data REST over httpx under trio: ``AlpacaRest`` and ``AlpacaData``.

Every call is paced by the client token bucket, bounded by a timeout, retried per the spec 3.2 matrix,
timed into per-endpoint histograms, and its errors translated into ``core.ports`` exceptions.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec
import trio

from adapters.alpaca import models as wire
from adapters.alpaca.config import DATA_URL, PAPER_TRADING_URL, AlpacaConfig, Credentials
from adapters.alpaca.errors import ResponseDecodeError, translate
from adapters.alpaca.ratelimit import Priority, RateLimiter
from adapters.alpaca.retry import Failure, RetryBudget
from core.limits import ORDER_SUBMIT_TIMEOUT_S
from core.model import (
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
)
from core.ports import (
    BrokerError,
    BrokerUnavailable,
    Clock,
    DuplicateClientOrderId,
    Monitor,
    NullMonitor,
    OrderGateClosed,
    OrderNotFound,
    SendGate,
    gate_open,
)

log = logging.getLogger("ttlive.alpaca.rest")

T = TypeVar("T")

ORDERS_PAGE_MAX = 500  # alpaca-wire.md §2: GET /v2/orders limit max 500
ACTIVITIES_PAGE_MAX = 100  # alpaca-wire.md §2: page_size max 100
BARS_PAGE_MAX = 10_000  # alpaca-wire.md §3: limit per page
# Our bounds on pagination loops (style rule 6): far above any session's volume, low enough to stop a
# venue that keeps answering with the same page.
MAX_PAGES = 1_000
# Non-trade activity types asked for by get_cash_activities: alpaca-py 0.44's ActivityType without FILL (its own
# call) and the options/crypto trading kinds; cash moves by net_amount, SPLIT also changes a position.
NON_TRADE_ACTIVITY_TYPES = ",".join((
    "ACATC", "ACATS", "CFEE", "CIL", "CSD", "CSW", "DIV", "DIVCGL", "DIVCGS", "DIVNRA", "DIVROC", "DIVTXEX", "DIVWH",
    "FEE", "INT", "INTPNL", "JNLC", "JNLS", "MA", "NC", "PTC", "REORG", "SPIN", "SPLIT", "SWP", "WH",
))
USER_AGENT = "ttlive/0.1 (trio; httpx)"

URL_CACHE_MAX = 256  # distinct (path, query) URLs kept parsed; the polled ones (account, positions, open orders)

ResendCheck = Callable[[Failure], Awaitable[bool]]


class _SetCookieOnlyJar(httpx.Cookies):
    """httpx's cookie jar, minus the per-response urllib round trip when a response sets no cookie.

    Alpaca's API sets none; a response that does is still stored exactly as httpx would store it.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


class _Client(httpx.AsyncClient):
    """``httpx.AsyncClient`` with the jar above (httpx builds a plain one and offers no hook for it)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._jar = _SetCookieOnlyJar()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._jar = _SetCookieOnlyJar(cookies)


def _ns_param(ts_ns: int) -> str:
    return wire.ns_to_rfc3339(ts_ns)


def _bool_param(value: bool) -> str:
    return "true" if value else "false"


class AlpacaHttp:
    """One Alpaca host: pacing, timeouts, the retry matrix, telemetry and error translation.

    ``call`` returns the 2xx response; it raises a ``core.ports.BrokerError`` subclass otherwise.
    """

    def __init__(
        self,
        *,
        base_url: str,
        credentials: Credentials,
        clock: Clock,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: RateLimiter | None = None,
        monitor: Monitor | None = None,
        timeout_s: float = ORDER_SUBMIT_TIMEOUT_S,
        metric_prefix: str = "alpaca.rest",
    ) -> None:
        self.clock = clock
        self.limiter = limiter or RateLimiter()
        self.monitor: Monitor = monitor or NullMonitor()
        self.timeout_s = timeout_s
        self._prefix = metric_prefix
        self._client = _Client(
            base_url=base_url,
            transport=transport,
            headers={**credentials.headers(), "User-Agent": USER_AGENT},
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
        )
        self._urls: dict[tuple[str, tuple[tuple[str, str], ...]], httpx.URL] = {}
        self.attempts = 0  # every HTTP attempt, for tests and metrics
        # Reachability, for the connectivity kill switch: trio time of the first failure since the last
        # answer from the API (None while it answers). 4xx/429 count as answers: the API is there.
        self.unreachable_since_s: float | None = None
        self.last_failure_s: float | None = None
        self._reachability_listeners: list[Callable[[], None]] = []

    async def aclose(self) -> None:
        await self._client.aclose()

    def _request(self, method: str, path: str, params: dict[str, str] | None, json: Any) -> httpx.Request:
        """``AsyncClient.build_request`` with the merged URL remembered: the polled calls (account, positions,
        open orders) skip httpx's URL parsing and merging, which cost more than the rest of the request."""
        key = (path, tuple(params.items()) if params else ())
        url = self._urls.get(key)
        if url is None:
            request = self._client.build_request(method, path, params=params, json=json)
            if len(self._urls) >= URL_CACHE_MAX:
                self._urls.clear()
            self._urls[key] = request.url
            return request
        client = self._client
        # What build_request would build from this URL: the client's headers, no cookies (the jar is empty
        # unless the API set one: then let httpx merge it), the client's timeout.
        if client.cookies:
            return client.build_request(method, url, json=json)
        return httpx.Request(method, url, headers=client.headers, json=json,
                             extensions={"timeout": client.timeout.as_dict()})

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (synchronously) whenever a failure or a first answer after failures may have
        changed what ``unreachable`` says (the connectivity loop sleeps until then)."""
        self._reachability_listeners.append(callback)

    def unreachable(self, *, evidence_window_s: float = 10.0) -> bool:
        """Is the API failing now? Only on fresh evidence: a failure followed by silence (no call made)
        is not proof of an outage, so it stops counting after ``evidence_window_s``."""
        return (
            self.unreachable_since_s is not None
            and self.last_failure_s is not None
            and trio.current_time() - self.last_failure_s < evidence_window_s
        )

    def _reset_in_s(self, response: httpx.Response) -> float | None:
        raw = response.headers.get("x-ratelimit-reset")
        try:
            reset_epoch_s = float(raw) if raw is not None else math.nan
        except ValueError:
            return None
        if not math.isfinite(reset_epoch_s):
            return None
        return max(0.0, reset_epoch_s - self.clock.now_ns() / 1e9)

    def _observe_rate_headers(self, response: httpx.Response) -> None:
        """Header-driven pacing: when the venue says 0 remaining, hold everyone until its reset."""
        if response.headers.get("x-ratelimit-remaining") == "0":
            reset_in_s = self._reset_in_s(response)
            if reset_in_s:
                self.limiter.pause_until(trio.current_time() + reset_in_s)

    async def call(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        params: dict[str, str] | None = None,
        json: Any = None,
        priority: Priority = Priority.NORMAL,
        before_resend: ResendCheck | None = None,
        gate: SendGate | None = None,
    ) -> httpx.Response | None:
        """Send with retries. ``before_resend`` may return False to stop (the result was adopted): None.

        ``gate`` (order-creating requests): asked right before every attempt goes on the wire, after the
        rate limiter let it through; closed, nothing more is sent and ``OrderGateClosed`` says whether an
        earlier attempt went out.
        """
        budget = RetryBudget()
        ticket: int | None = None
        metric = f"{self._prefix} {endpoint}"
        sent = 0
        while True:
            ticket = await self.limiter.acquire(priority, ticket=ticket)
            if gate is not None and not gate():
                self.monitor.incr(f"{self._prefix}.gate_closed")
                raise OrderGateClosed(f"{endpoint}: the order gate closed before attempt {sent + 1}", sent=sent > 0)
            sent += 1
            self.attempts += 1
            response: httpx.Response | None = None
            start_s = trio.current_time()
            try:
                with trio.fail_after(self.timeout_s):
                    response = await self._client.send(self._request(method, path, params, json))
            except (trio.TooSlowError, httpx.TimeoutException):
                failure: Failure = Failure.TIMEOUT
                error: BrokerError = BrokerUnavailable(
                    f"{endpoint}: no answer within {self.timeout_s:g}s", retryable=True
                )
            except httpx.TransportError as exc:
                failure = Failure.TIMEOUT  # spec 3.2 "network" row: the request may or may not have landed
                error = BrokerUnavailable(f"{endpoint}: network error {exc.__class__.__name__}", retryable=True)
            finally:
                self.monitor.observe_latency(metric, trio.current_time() - start_s)
            reset_in_s: float | None = None
            if response is None or response.status_code >= 500:
                if self.unreachable_since_s is None:
                    self.unreachable_since_s = start_s
                self.last_failure_s = trio.current_time()
                for listener in self._reachability_listeners:
                    listener()
            elif self.unreachable_since_s is not None:
                self.unreachable_since_s = None
                for listener in self._reachability_listeners:
                    listener()
            if response is not None:
                self._observe_rate_headers(response)
                if 200 <= response.status_code < 300:
                    return response
                error = translate(response.status_code, response.content, endpoint=endpoint)
                if response.status_code == 429:
                    failure, reset_in_s = Failure.RATE_LIMITED, self._reset_in_s(response)
                elif response.status_code >= 500:
                    failure = Failure.SERVER_ERROR
                else:
                    log.warning("%s failed, not retried (4xx): %s", endpoint, error)
                    self.monitor.incr(f"{self._prefix}.client_error")
                    raise error
            delay_s = budget.next_delay_s(failure, reset_in_s=reset_in_s)
            self.monitor.incr(f"{self._prefix}.{failure.value}")
            if delay_s is None:
                log.error("%s: giving up after %d retries: %s", endpoint, budget.total_retries - 1, error)
                raise error
            log.warning("%s: %s (%s), retry in %.3fs", endpoint, failure.value, error, delay_s)
            if failure is Failure.RATE_LIMITED:
                # The window is shared: pause every caller; this request keeps its place in the queue.
                self.limiter.pause_until(trio.current_time() + delay_s)
            else:
                await trio.sleep(delay_s)
            if before_resend is not None and not await before_resend(failure):
                return None

    def decode(self, response: httpx.Response, type_: Any, *, endpoint: str) -> Any:
        try:
            return wire.decode_json(response.content, type_, what=endpoint)
        except ResponseDecodeError as exc:
            log.error("undecodable response from %s: %s", endpoint, exc)
            self.monitor.incr(f"{self._prefix}.decode_error")
            raise

    def mapped(self, fn: Callable[..., T], *args: Any, endpoint: str) -> T:
        """Run a wire->core mapper; its decode errors are logged and counted like decoder errors."""
        try:
            return fn(*args)
        except ResponseDecodeError as exc:
            log.error("unmappable response from %s: %s", endpoint, exc)
            self.monitor.incr(f"{self._prefix}.decode_error")
            raise

    async def get(self, path: str, type_: Any, *, endpoint: str, params: dict[str, str] | None = None) -> Any:
        response = await self.call("GET", path, endpoint=endpoint, params=params)
        assert response is not None, "call() only returns None when before_resend stops it"
        return self.decode(response, type_, endpoint=endpoint)


class AlpacaRest:
    """``core.ports.BrokerRest`` for Alpaca's trading API (paper, live, or the fake venue's transport)."""

    def __init__(
        self,
        *,
        credentials: Credentials,
        clock: Clock,
        base_url: str = PAPER_TRADING_URL,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: RateLimiter | None = None,
        monitor: Monitor | None = None,
        timeout_s: float = ORDER_SUBMIT_TIMEOUT_S,
    ) -> None:
        self.http = AlpacaHttp(
            base_url=base_url,
            credentials=credentials,
            clock=clock,
            transport=transport,
            limiter=limiter,
            monitor=monitor,
            timeout_s=timeout_s,
        )

    @classmethod
    def from_config(cls, config: AlpacaConfig, *, clock: Clock, **kwargs: Any) -> AlpacaRest:
        return cls(credentials=config.credentials, clock=clock, base_url=config.trading_url, **kwargs)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AlpacaRest:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- orders -------------------------------------------------------------------------------------

    def _order(self, response: httpx.Response, endpoint: str) -> BrokerOrder:
        w = self.http.decode(response, wire.WireOrder, endpoint=endpoint)
        return self.http.mapped(wire.order_from_wire, w, endpoint=endpoint)

    async def submit_order(self, request: OrderRequest, *, gate: SendGate = gate_open) -> BrokerOrder:
        """POST /v2/orders, idempotent by ``client_order_id`` across every retry (spec 1.2 / 3.2).

        After an ambiguous failure (timeout, 5xx) we ask the venue whether the order landed before
        resending; a resend answered "client_order_id must be unique" means it did: adopt that order.
        ``gate`` is asked before every attempt: once it closes (the kill switch latched) nothing more is sent
        (``OrderGateClosed``); an order that landed before is still adopted by the landed-check.
        """
        endpoint = "POST /v2/orders"
        adopted: list[BrokerOrder] = []
        resent: list[Failure] = []

        async def landed_check(failure: Failure) -> bool:
            if failure is not Failure.RATE_LIMITED:  # a 429 was not processed: resend as is
                try:
                    adopted.append(await self.get_order_by_client_id(request.client_order_id))
                except OrderNotFound:
                    pass
                except BrokerError as exc:
                    log.warning("landed-check for %s failed (%s); resending", request.client_order_id, exc)
                else:
                    log.info("order %s had landed before the lost answer; adopted", request.client_order_id)
                    return False
            resent.append(failure)
            return True

        try:
            response = await self.http.call(
                "POST",
                "/v2/orders",
                endpoint=endpoint,
                json=wire.order_request_body(request),
                before_resend=landed_check,
                gate=gate,
            )
        except DuplicateClientOrderId:
            if not resent:
                raise  # our first attempt: the caller reused an id, which is a bug to surface
            log.info("resend of %s was a duplicate: the first attempt landed; adopting", request.client_order_id)
            return await self.get_order_by_client_id(request.client_order_id)
        if response is None:
            return adopted[-1]
        return self._order(response, endpoint)

    async def cancel_order(self, order_id: str) -> None:
        await self.http.call(
            "DELETE", f"/v2/orders/{quote(order_id, safe='')}", endpoint="DELETE /v2/orders/{id}",
            priority=Priority.KILL_SWITCH,
        )

    async def cancel_all_orders(self) -> list[tuple[str, int]]:
        endpoint = "DELETE /v2/orders"
        response = await self.http.call("DELETE", "/v2/orders", endpoint=endpoint, priority=Priority.KILL_SWITCH)
        assert response is not None
        items = self.http.decode(response, list[wire.WireMultiStatus], endpoint=endpoint)
        return [(item.id or "", item.status) for item in items]

    async def get_order(self, order_id: str) -> BrokerOrder:
        endpoint = "GET /v2/orders/{id}"
        w = await self.http.get(f"/v2/orders/{quote(order_id, safe='')}", wire.WireOrder, endpoint=endpoint)
        return self.http.mapped(wire.order_from_wire, w, endpoint=endpoint)

    async def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder:
        endpoint = "GET /v2/orders:by_client_order_id"
        w = await self.http.get(
            "/v2/orders:by_client_order_id",
            wire.WireOrder,
            endpoint=endpoint,
            params={"client_order_id": client_order_id},
        )
        return self.http.mapped(wire.order_from_wire, w, endpoint=endpoint)

    async def list_orders(
        self, *, status: str = "open", after_ts_ns: int | None = None, limit: int = ORDERS_PAGE_MAX
    ) -> list[BrokerOrder]:
        """Newest first. Above one page (500) it pages backwards by moving ``until`` (no page token)."""
        endpoint = "GET /v2/orders"
        assert limit >= 1, "list_orders needs limit >= 1"
        out: list[BrokerOrder] = []
        seen: set[str] = set()
        until_ts_ns: int | None = None
        for _page in range(MAX_PAGES):
            page_size = min(ORDERS_PAGE_MAX, limit - len(out))
            params = {"status": status, "limit": str(page_size), "direction": "desc", "nested": "true"}
            if after_ts_ns is not None:
                params["after"] = _ns_param(after_ts_ns)
            if until_ts_ns is not None:
                params["until"] = _ns_param(until_ts_ns)
            page = await self.http.get("/v2/orders", list[wire.WireOrder], endpoint=endpoint, params=params)
            orders = [self.http.mapped(wire.order_from_wire, w, endpoint=endpoint) for w in page]
            fresh = [o for o in orders if o.id not in seen]
            for order in fresh:
                seen.add(order.id)
                out.append(order)
                if len(out) >= limit:
                    return out
            if len(page) < page_size or not fresh:
                return out
            # why +1 ns: `until` may be exclusive; orders sharing the oldest timestamp come back and are
            # de-duplicated by id instead of being skipped.
            until_ts_ns = min(o.submitted_at_ns for o in orders) + 1
        log.warning("%s: stopped after %d pages", endpoint, MAX_PAGES)
        return out

    # --- positions, account ------------------------------------------------------------------------

    async def get_positions(self) -> list[Position]:
        endpoint = "GET /v2/positions"
        items = await self.http.get("/v2/positions", list[wire.WirePosition], endpoint=endpoint)
        return [self.http.mapped(wire.position_from_wire, w, endpoint=endpoint) for w in items]

    async def close_all_positions(self, *, cancel_orders: bool = True) -> list[tuple[str, int]]:
        endpoint = "DELETE /v2/positions"
        response = await self.http.call(
            "DELETE",
            "/v2/positions",
            endpoint=endpoint,
            params={"cancel_orders": _bool_param(cancel_orders)},
            priority=Priority.KILL_SWITCH,
        )
        assert response is not None
        items = self.http.decode(response, list[wire.WireMultiStatus], endpoint=endpoint)
        return [(item.symbol or "", item.status) for item in items]

    async def get_account(self) -> Account:
        endpoint = "GET /v2/account"
        w = await self.http.get("/v2/account", wire.WireAccount, endpoint=endpoint)
        return self.http.mapped(wire.account_from_wire, w, endpoint=endpoint)

    async def get_configurations(self) -> AccountConfig:
        endpoint = "GET /v2/account/configurations"
        w = await self.http.get("/v2/account/configurations", wire.WireAccountConfig, endpoint=endpoint)
        return self.http.mapped(wire.account_config_from_wire, w, endpoint=endpoint)

    async def patch_configurations(self, **changes: Any) -> AccountConfig:
        endpoint = "PATCH /v2/account/configurations"
        response = await self.http.call(
            "PATCH", "/v2/account/configurations", endpoint=endpoint, json=wire.config_patch_body(changes)
        )
        assert response is not None
        w = self.http.decode(response, wire.WireAccountConfig, endpoint=endpoint)
        return self.http.mapped(wire.account_config_from_wire, w, endpoint=endpoint)

    async def get_activities(self, *, after_ts_ns: int | None = None) -> list[Activity]:
        """FILL activities, oldest first, paged with ``page_token`` = the last id (alpaca-wire.md §2)."""
        endpoint = "GET /v2/account/activities"
        out: list[Activity] = []
        page_token: str | None = None
        for _page in range(MAX_PAGES):
            params = {"activity_types": "FILL", "direction": "asc", "page_size": str(ACTIVITIES_PAGE_MAX)}
            if after_ts_ns is not None:
                params["after"] = _ns_param(after_ts_ns)
            if page_token is not None:
                params["page_token"] = page_token
            page = await self.http.get(
                "/v2/account/activities", list[wire.WireActivity], endpoint=endpoint, params=params
            )
            out.extend(
                self.http.mapped(wire.activity_from_wire, w, endpoint=endpoint)
                for w in page
                if w.activity_type.upper() == "FILL"
            )
            if len(page) < ACTIVITIES_PAGE_MAX or page[-1].id == page_token:
                return out
            page_token = page[-1].id
        log.warning("%s: stopped after %d pages", endpoint, MAX_PAGES)
        return out

    async def get_cash_activities(self, *, after_ts_ns: int | None = None) -> list[CashActivity]:
        """Non-trade activities (dividends, fees, interest, journals, transfers, splits), oldest first, paged like
        the FILL activities (``page_token`` = the last id)."""
        endpoint = "GET /v2/account/activities"
        out: list[CashActivity] = []
        page_token: str | None = None
        for _page in range(MAX_PAGES):
            params = {"activity_types": NON_TRADE_ACTIVITY_TYPES, "direction": "asc",
                      "page_size": str(ACTIVITIES_PAGE_MAX)}
            if after_ts_ns is not None:
                params["after"] = _ns_param(after_ts_ns)
            if page_token is not None:
                params["page_token"] = page_token
            page = await self.http.get(
                "/v2/account/activities", list[wire.WireNonTradeActivity], endpoint=endpoint, params=params
            )
            out.extend(self.http.mapped(wire.non_trade_activity_from_wire, w, endpoint=endpoint)
                       for w in page if w.activity_type.upper() != "FILL")
            if len(page) < ACTIVITIES_PAGE_MAX or page[-1].id == page_token:
                return out
            page_token = page[-1].id
        log.warning("%s: stopped after %d pages", endpoint, MAX_PAGES)
        return out

    async def get_portfolio_history(
        self, *, period: str | None = None, timeframe: str | None = None
    ) -> dict[str, Any]:
        endpoint = "GET /v2/account/portfolio/history"
        params = {k: v for k, v in (("period", period), ("timeframe", timeframe)) if v is not None}
        response = await self.http.call("GET", "/v2/account/portfolio/history", endpoint=endpoint,
                                        params=params or None)
        assert response is not None
        try:
            # why float_hook: the history's money arrives as JSON numbers; keep them Decimal, not float.
            history = msgspec.json.Decoder(dict[str, Any], float_hook=Decimal).decode(response.content)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.http.monitor.incr("alpaca.rest.decode_error")
            raise ResponseDecodeError(f"{endpoint}: {exc}") from None
        if not isinstance(history.get("timestamp"), list) or not isinstance(history.get("equity"), list):
            raise ResponseDecodeError(f"{endpoint}: missing timestamp/equity arrays")
        return history

    async def get_clock(self) -> MarketClock:
        endpoint = "GET /v2/clock"
        w = await self.http.get("/v2/clock", wire.WireClock, endpoint=endpoint)
        return self.http.mapped(wire.clock_from_wire, w, endpoint=endpoint)


class AlpacaData:
    """``core.ports.HistoricalBars`` for Alpaca's market-data REST (separate host and rate limit)."""

    def __init__(
        self,
        *,
        credentials: Credentials,
        clock: Clock,
        base_url: str = DATA_URL,
        feed: str = "iex",
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: RateLimiter | None = None,
        monitor: Monitor | None = None,
        timeout_s: float = ORDER_SUBMIT_TIMEOUT_S,
        bars_page_size: int = BARS_PAGE_MAX,
    ) -> None:
        assert 1 <= bars_page_size <= BARS_PAGE_MAX, f"bars_page_size must be within 1..{BARS_PAGE_MAX}"
        self.feed = feed
        self.bars_page_size = bars_page_size
        self.http = AlpacaHttp(
            base_url=base_url,
            credentials=credentials,
            clock=clock,
            transport=transport,
            limiter=limiter,
            monitor=monitor,
            timeout_s=timeout_s,
            metric_prefix="alpaca.data",
        )

    @classmethod
    def from_config(cls, config: AlpacaConfig, *, clock: Clock, **kwargs: Any) -> AlpacaData:
        return cls(credentials=config.credentials, clock=clock, base_url=config.data_url, **kwargs)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def get_bars(
        self, symbols: Sequence[str], *, start_ts_ns: int, end_ts_ns: int, timeframe: str = "1Min"
    ) -> dict[str, list[Bar]]:
        endpoint = "GET /v2/stocks/bars"
        out: dict[str, list[Bar]] = {}
        page_token: str | None = None
        for _page in range(MAX_PAGES):
            params = {
                "symbols": ",".join(symbols),
                "timeframe": timeframe,
                "start": _ns_param(start_ts_ns),
                "end": _ns_param(end_ts_ns),
                "limit": str(self.bars_page_size),
                "adjustment": "raw",
                "feed": self.feed,
                "sort": "asc",
            }
            if page_token is not None:
                params["page_token"] = page_token
            page = await self.http.get("/v2/stocks/bars", wire.WireBarsPage, endpoint=endpoint, params=params)
            for symbol, bars in sorted((page.bars or {}).items()):
                out.setdefault(symbol, []).extend(
                    self.http.mapped(wire.bar_from_wire, symbol, b, endpoint=endpoint) for b in bars
                )
            if not page.next_page_token or page.next_page_token == page_token:
                return out
            page_token = page.next_page_token
        log.warning("%s: stopped after %d pages", endpoint, MAX_PAGES)
        return out

    async def get_latest_quotes(self, symbols: Sequence[str]) -> dict[str, Quote]:
        endpoint = "GET /v2/stocks/quotes/latest"
        page = await self.http.get(
            "/v2/stocks/quotes/latest",
            wire.WireLatestQuotes,
            endpoint=endpoint,
            params={"symbols": ",".join(symbols), "feed": self.feed},
        )
        return {
            symbol: self.http.mapped(wire.quote_from_wire, symbol, q, endpoint=endpoint)
            for symbol, q in sorted(page.quotes.items())
        }

    async def get_snapshots(self, symbols: Sequence[str]) -> dict[str, wire.Snapshot]:
        endpoint = "GET /v2/stocks/snapshots"
        page = await self.http.get(
            "/v2/stocks/snapshots",
            dict[str, wire.WireSnapshot],
            endpoint=endpoint,
            params={"symbols": ",".join(symbols), "feed": self.feed},
        )
        return {
            symbol: self.http.mapped(wire.snapshot_from_wire, symbol, s, endpoint=endpoint)
            for symbol, s in sorted(page.items())
        }
