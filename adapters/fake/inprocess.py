"""The in-process front-end of the fake venue: an httpx transport and in-memory WebSockets in virtual time.

The simulation and the adapter tests talk to the venue through the real wire formats without sockets;
``serve`` drives the venue clock from trio's clock (MockClock in simulation). ``VenueDriver`` — the clock
and the per-connection session pump — is shared with the loopback server (adapters/fake/server.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import trio
import trio_websocket
from trio_websocket import WebSocketConnection
from wsproto.utilities import LocalProtocolError

from adapters.fake.calendar import LinearClock
from adapters.fake.data_stream import DataStreamSession
from adapters.fake.interfaces import Close, Frame, Outgoing, RestRequest, RestResponse, StreamSession
from adapters.fake.memory_socket import memory_socket_pair

HANDSHAKE_TIMEOUT_S = 10.0  # every WebSocket handshake and close handshake is bounded (style rule 8)
DATA_STREAM_PATHS = ("/v2/iex", "/v2/sip", "/v2/delayed_sip", "/v2/test")
TRADING_STREAM_PATH = "/stream"
_CONNECTION_ERRORS = (
    trio_websocket.ConnectionClosed,
    trio_websocket.HandshakeError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    trio.TooSlowError,
    LocalProtocolError,  # a client ping racing our close: "Pong cannot be sent in state LOCAL_CLOSING"
)


class ClockMap(Protocol):
    """Elapsed front-end seconds <-> venue session ns (calendar.LinearClock, calendar.TradingTimeClock)."""

    def session_ns(self, elapsed_s: float) -> int: ...
    def elapsed_s(self, session_ns: int) -> float: ...


class SocketClosed(Exception):
    """The client side of a WebSocket went away."""


class WireSocket(Protocol):
    """The four things a session pump needs from a WebSocket, whatever carries it."""

    async def send(self, data: str | bytes) -> None: ...
    async def receive(self) -> str | bytes: ...  # raises SocketClosed
    async def close(self, code: int, reason: str) -> None: ...
    async def abort(self) -> None: ...  # drop the transport without a close handshake (1006)


def rest_request(method: str, path: str, query_pairs: Any, headers: Any, body: bytes) -> RestRequest:
    """The venue's view of a request: path without query, last value wins, lower-case header names."""
    query: dict[str, str] = {}
    for key, value in query_pairs:
        query[key] = value
    return RestRequest(
        method=method.upper(), path=path, query=query, headers={k.lower(): v for k, v in headers}, body=body
    )


def open_stream_session(
    venue: Any, path: str, headers: dict[str, str], **data_options: Any
) -> StreamSession | None:
    """Route a WebSocket path to a new session: /stream => trading, /v2/{feed} => market data, else None."""
    if path == TRADING_STREAM_PATH:
        session: StreamSession = venue.open_trading_stream()
        return session
    if path in DATA_STREAM_PATHS:
        data = DataStreamSession.for_headers(venue, path.rsplit("/", 1)[-1], headers, **data_options)
        register = getattr(venue, "register_data_session", None)
        if register is not None:
            register(data)  # the venue pushes market data and ws_close/restart faults into it
        return data
    return None


def close_stream_session(venue: Any, session: StreamSession) -> None:
    session.on_close()
    unregister = getattr(venue, "unregister_data_session", None)
    if unregister is not None and isinstance(session, DataStreamSession):
        unregister(session)


class _Connection:
    """One server-side WebSocket: the session, its socket, replies waiting for the writer, a wake-up."""

    def __init__(self, session: StreamSession, socket: WireSocket, path: str) -> None:
        self.session = session
        self.socket = socket
        self.path = path
        self.replies: deque[Outgoing] = deque()
        self.wakeup = trio.Event()
        self.withheld = 0  # items not sent because the session was muted (lost, like the real thing)

    def wake(self) -> None:
        self.wakeup.set()


class VenueDriver:
    """Keeps a venue's clock in step with trio's clock and pumps its stream sessions to their sockets.

    Venue ns = ``clock.session_ns(trio.current_time() - t0)``, t0 taken at the first use. The clock task
    ticks at every bar boundary while the market is open and at the next open (or the venue's next
    wake-up: fault, close) while it is closed; with realistic ticks (``market.realistic_ticks``) also at the
    market's next quote or trade while open, at most one wake per ``tick_coalesce_s`` front-end seconds (0: each
    tick at its own instant; the loopback server batches them). Every request and every client message first
    brings the venue up to now, so REST and streams always see the current instant.
    """

    def __init__(
        self, venue: Any, clock: ClockMap, *, handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S
    ) -> None:
        self.venue = venue
        self.clock = clock
        self.handshake_timeout_s = handshake_timeout_s
        self.data_options: dict[str, Any] = {}  # extra DataStreamSession arguments for new connections
        self.tick_coalesce_s = 0.0
        market = venue.market
        self._next_market_tick = market.next_tick_ns if getattr(market, "realistic_ticks", False) else None
        self._t0: float | None = None
        self._connections: list[_Connection] = []
        # records ("fakes record what happened")
        self.requests_handled = 0
        self.responses_dropped = 0
        self.connections_opened: list[str] = []  # path of every accepted WebSocket, in order

    # --- clock ----------------------------------------------------------------------------------------
    def _elapsed_s(self) -> float:
        if self._t0 is None:
            self._t0 = trio.current_time()
        return trio.current_time() - self._t0

    def session_ns(self) -> int:
        """The venue time that corresponds to trio's clock now."""
        return self.clock.session_ns(self._elapsed_s())

    def sync(self, *, at_least_ns: int | None = None) -> None:
        """Advance the venue to now, let data sessions publish, wake every connection's writer."""
        target = self.session_ns()
        if at_least_ns is not None:
            target = max(target, at_least_ns)
        self.advance_to(target)

    def advance_to(self, ts_ns: int) -> None:
        """Move the venue clock (never backwards) and push what happened to the connections."""
        prev = self.venue.now_ns
        if ts_ns > prev:
            self.venue.advance_to(ts_ns)
        now = self.venue.now_ns
        for conn in self._connections:
            if isinstance(conn.session, DataStreamSession):
                conn.session.on_advance(prev, now)  # idempotent: the venue may have called it already
            conn.wake()

    def next_tick_ns(self) -> int:
        """The next instant worth waking for: a bar boundary, or across a closed market the next open."""
        now: int = self.venue.now_ns
        step: int = self.venue.market.bar_interval_ns()
        candidates = [(now // step + 1) * step]
        calendar = getattr(self.venue, "calendar", None)
        if calendar is not None and not calendar.is_open(now):
            with suppress(ValueError):
                candidates = [calendar.next_open_ns(now)]
        elif self._next_market_tick is not None:
            tick: int | None = self._next_market_tick(now)
            if tick is not None:
                if self.tick_coalesce_s > 0:
                    tick = max(tick, self.clock.session_ns(self.clock.elapsed_s(now) + self.tick_coalesce_s))
                candidates.append(tick)
        wakeup = getattr(self.venue, "next_wakeup_ns", None)
        extra: int | None = wakeup() if wakeup is not None else None
        if extra is not None and extra > now:
            candidates.append(extra)
        return min(candidates)

    async def run_clock(self) -> None:
        """Tick the venue until cancelled."""
        target: int | None = None
        while True:
            self.sync(at_least_ns=target)
            target = self.next_tick_ns()
            self._elapsed_s()  # anchor
            assert self._t0 is not None
            wake_at = self._t0 + self.clock.elapsed_s(target)
            await trio.sleep_until(max(trio.current_time(), wake_at))

    # --- REST -----------------------------------------------------------------------------------------
    def handle_rest(self, req: RestRequest) -> RestResponse:
        self.sync()
        response: RestResponse = self.venue.handle_rest(req)
        self.requests_handled += 1
        self.sync()  # a REST call can produce stream events (new, canceled...): wake the writers
        return response

    # --- streams --------------------------------------------------------------------------------------
    async def run_session(self, session: StreamSession, socket: WireSocket, path: str) -> None:
        """Pump one session over one socket until either side closes. Closes the session at the end."""
        conn = _Connection(session, socket, path)
        self.connections_opened.append(path)
        self._connections.append(conn)
        try:
            self.sync()  # refusals (ws_close with a duration, 406, venue restart) are judged on the current clock
            if await self._send(conn, session.on_open()):
                return
            self.sync()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._reader, conn, nursery.cancel_scope)
                await self._writer(conn)
                nursery.cancel_scope.cancel()
        finally:
            self._connections.remove(conn)
            close_stream_session(self.venue, session)

    async def _reader(self, conn: _Connection, scope: trio.CancelScope) -> None:
        try:
            while True:
                message = await conn.socket.receive()
                self.sync()
                replies = conn.session.receive(message)
                if conn.session.muted:
                    conn.withheld += len(replies)
                    continue
                conn.replies.extend(replies)
                conn.wake()
        except SocketClosed:
            scope.cancel()  # the client closed: stop the writer too

    async def _writer(self, conn: _Connection) -> None:
        while True:
            await conn.wakeup.wait()
            conn.wakeup = trio.Event()
            if conn.session.muted:
                conn.withheld += len(conn.session.drain()) + len(conn.replies)
                conn.replies.clear()
                continue
            items = [*conn.replies, *conn.session.drain()]
            conn.replies.clear()
            if await self._send(conn, items):
                return

    async def _send(self, conn: _Connection, items: list[Outgoing]) -> bool:
        """Send items in order; True once a Close item has ended the connection."""
        for item in items:
            if isinstance(item, Frame):
                await conn.socket.send(item.data)
            elif isinstance(item, Close):
                if item.code == 1006:
                    await conn.socket.abort()
                else:
                    await conn.socket.close(item.code, item.reason)
                return True
        return False


# --- the in-process front-end -------------------------------------------------------------------------


class _TrioSocket:
    """WireSocket over a server-side trio-websocket connection on a memory stream."""

    def __init__(self, ws: WebSocketConnection, raw: trio.abc.Stream, timeout_s: float) -> None:
        self._ws, self._raw, self._timeout_s = ws, raw, timeout_s

    async def send(self, data: str | bytes) -> None:
        await self._ws.send_message(data)

    async def receive(self) -> str | bytes:
        try:
            return await self._ws.get_message()
        except trio_websocket.ConnectionClosed:
            raise SocketClosed from None

    async def close(self, code: int, reason: str) -> None:
        with trio.move_on_after(self._timeout_s):
            await self._ws.aclose(code, reason or None)
        await self._raw.aclose()

    async def abort(self) -> None:
        await self._raw.aclose()  # no close frame: the client sees 1006 after what was already sent


class _VenueTransport(httpx.AsyncBaseTransport):
    """httpx -> venue.handle_rest, applying the venue's delay/drop hooks and the request's own timeout
    (httpx does not enforce timeouts for a custom transport)."""

    def __init__(self, driver: VenueDriver) -> None:
        self._driver = driver

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        timeout = request.extensions.get("timeout") or {}
        read_timeout_s: float | None = timeout.get("read")
        req = rest_request(
            request.method, request.url.path, request.url.params.multi_items(), request.headers.items(), body
        )
        response = self._driver.handle_rest(req)
        if response.drop_response_after_s is not None:
            # The venue has applied the request; the client never hears back (ambiguous outcome).
            wait_s = response.drop_response_after_s
            if read_timeout_s is not None:
                wait_s = min(wait_s, read_timeout_s)
            await trio.sleep(wait_s)
            self._driver.responses_dropped += 1
            raise httpx.ReadTimeout("fake venue dropped the response", request=request)
        if response.delay_s > 0:
            if read_timeout_s is not None and response.delay_s > read_timeout_s:
                await trio.sleep(read_timeout_s)
                raise httpx.ReadTimeout("fake venue answered too slowly", request=request)
            await trio.sleep(response.delay_s)
        return httpx.Response(
            status_code=response.status, headers=response.headers, content=response.body, request=request
        )


class InProcessVenue(VenueDriver):
    """A Venue behind an httpx transport and in-memory WebSockets, on trio's (mock) clock.

    Clock mapping: venue ns = the venue's ns at first use + (trio.current_time() - trio time at first
    use) * 1e9. Connection tasks live in the nursery of ``serve``, which also ticks the clock.
    """

    def __init__(self, venue: Any, *, handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S) -> None:
        super().__init__(venue, LinearClock(venue.now_ns), handshake_timeout_s=handshake_timeout_s)
        self._nursery: trio.Nursery | None = None

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the connection tasks and drive the venue clock until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._elapsed_s()
            task_status.started()
            try:
                await self.run_clock()
            finally:
                self._nursery = None

    def http_transport(self) -> httpx.AsyncBaseTransport:
        return _VenueTransport(self)

    def open_websocket(
        self, url: str, *, extra_headers: list[tuple[bytes, bytes]] | None = None
    ) -> AbstractAsyncContextManager[WebSocketConnection]:
        """Connect a trio-websocket client to the venue over an in-memory stream pair (needs ``serve``)."""
        return self._open_websocket(url, extra_headers)

    @asynccontextmanager
    async def _open_websocket(
        self, url: str, extra_headers: list[tuple[bytes, bytes]] | None
    ) -> AsyncIterator[WebSocketConnection]:
        if self._nursery is None:
            raise RuntimeError("InProcessVenue.serve() must be running before open_websocket()")
        parts = urlsplit(url)
        resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        client_stream, server_stream = memory_socket_pair()
        self._nursery.start_soon(self._serve_connection, server_stream)
        try:
            async with trio.open_nursery() as client_nursery:
                with trio.fail_after(self.handshake_timeout_s):
                    ws = await trio_websocket.wrap_client_stream(
                        client_nursery,
                        client_stream,  # type: ignore[arg-type]  # any trio Stream works; its hint is narrow
                        parts.hostname or "fake-alpaca",
                        resource,
                        extra_headers=extra_headers,
                    )
                try:
                    yield ws
                finally:
                    with trio.move_on_after(self.handshake_timeout_s) as scope:
                        scope.shield = True
                        await ws.aclose()
                        await client_stream.aclose()
        except BaseExceptionGroup as group:
            # Like trio_websocket.open_websocket: the caller sees the one real error (a rejected
            # handshake, or their own exception), not the nursery's group.
            real = [e for e in group.exceptions if not isinstance(e, trio.Cancelled)]
            if len(real) == 1:
                raise real[0] from None
            if not real:
                raise group.exceptions[0] from None
            raise

    async def _serve_connection(self, raw: trio.abc.Stream) -> None:
        try:
            async with trio.open_nursery() as nursery:  # one per connection: a rejection stays here
                with trio.fail_after(self.handshake_timeout_s):
                    request = await trio_websocket.wrap_server_stream(nursery, raw)
                    headers = {k.decode().lower(): v.decode() for k, v in request.headers}
                    session = open_stream_session(self.venue, request.path, headers, **self.data_options)
                    if session is None:
                        await request.reject(404, body=b'{"code":40410000,"message":"endpoint not found"}')
                        return
                    ws = await request.accept()
                await self.run_session(session, _TrioSocket(ws, raw, self.handshake_timeout_s), request.path)
                nursery.cancel_scope.cancel()
        except* _CONNECTION_ERRORS:
            pass  # the client went away or broke the protocol: this connection ends, the venue does not


__all__ = ["InProcessVenue", "VenueDriver", "open_stream_session", "rest_request"]
