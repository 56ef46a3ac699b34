"""Alpaca's two WebSocket streams on trio-websocket, each driven by ``core.connection_fsm``.

``TradingStream`` (trade_updates) and ``MarketDataStream`` (bars, quotes) share one shell that carries out
the machine's commands: connect, auth, subscribe, REST resync before live, heartbeats, backoff timers and
REST polling while degraded. Frames are decoded on arrival; data goes through a bounded drop-oldest buffer.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

import trio
import trio_websocket
from trio_websocket import WebSocketConnection

from adapters.alpaca import decoders
from adapters.alpaca.config import Credentials
from adapters.alpaca.gapfill import MARKET_ORDER_SILENCE_S, BarGapFiller, QuoteCarry, TradeGapTracker
from core import connection_fsm as fsm
from core.engine.alarm import GridAlarm
from core.fsm_errors import IllegalTransition
from core.limits import (
    HEARTBEAT_INTERVAL_S,
    HEARTBEAT_MISSED_TOLERANCE,
    STREAM_BUFFER_MAX_MESSAGES,
    WS_HANDSHAKE_TIMEOUT_S,
)
from core.model import NS_PER_S, Bar, BrokerOrder, Quote, TradeUpdate
from core.ports import AlertSink, BrokerError, BrokerRest, Clock, HistoricalBars, Monitor, NullMonitor

log = logging.getLogger("ttlive.alpaca.streams")

T = TypeVar("T")

EVENT_QUEUE_CAPACITY = 256  # machine events (not data): a handful per connection attempt
ALERT_TIMEOUT_S = 5.0  # an alert sink that hangs must not stall the connection machine
SEND_TIMEOUT_S = WS_HANDSHAKE_TIMEOUT_S  # auth/subscribe sends on a congested socket
RESYNC_LOOKBACK_S = 60.0  # our choice: re-read orders from a minute before the stream was last heard
RESYNC_ORDERS_MAX = 500  # one page of GET /v2/orders per resync (alpaca-wire.md §2)
OPEN_ORDER_REFRESH_MAX = 100  # open orders older than the resync window, fetched one by one
DROP_LOG_EVERY = 1_000  # after the first drop of an overflow, log every Nth
RECORD_LOG_MAX = 1_000  # commands/states kept for inspection; older entries are trimmed

_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    trio_websocket.ConnectionClosed,
    trio_websocket.HandshakeError,
    OSError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    trio.TooSlowError,
)


# ValueError: trio-websocket refuses a ping whose payload is still outstanding (no pong yet).
_PING_ERRORS: tuple[type[BaseException], ...] = (*_NETWORK_ERRORS, ValueError)


class WsConnect(Protocol):
    """``trio_websocket.open_websocket_url`` or the fake venue's ``InProcessVenue.open_websocket``."""

    def __call__(
        self, url: str, *, extra_headers: list[tuple[bytes, bytes]] | None = None
    ) -> AbstractAsyncContextManager[WebSocketConnection]: ...


def default_ws_connect() -> WsConnect:
    connect: WsConnect = partial(
        trio_websocket.open_websocket_url,
        connect_timeout=WS_HANDSHAKE_TIMEOUT_S,
        disconnect_timeout=WS_HANDSHAKE_TIMEOUT_S,
    )
    return connect


class StreamFailed(Exception):
    """The connection machine reached FAILED (fatal: e.g. insufficient subscription, keys refused)."""


class DropOldestBuffer(Generic[T]):
    """Bounded FIFO between the socket reader and the consumer (spec 3.3): ``put`` never blocks;
    when full the OLDEST item is dropped, with a warning and a counter.
    """

    def __init__(
        self, capacity: int = STREAM_BUFFER_MAX_MESSAGES, *, name: str = "stream", monitor: Monitor | None = None
    ) -> None:
        assert capacity >= 1, "buffer capacity must be >= 1"
        self.capacity = capacity
        self.name = name
        self.dropped = 0
        self.high_water = 0
        self._items: deque[T] = deque()
        self._lot = trio.lowlevel.ParkingLot()
        self._monitor: Monitor = monitor or NullMonitor()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> None:
        if len(self._items) >= self.capacity:
            self._items.popleft()
            self.dropped += 1
            self._monitor.incr(f"alpaca.stream.{self.name}.dropped")
            if self.dropped % DROP_LOG_EVERY == 1:
                log.warning("%s buffer full (%d): dropped the oldest message (%d so far)",
                            self.name, self.capacity, self.dropped)
        self._items.append(item)
        self.high_water = max(self.high_water, len(self._items))
        self._lot.unpark()

    def get_nowait(self) -> T:
        """The oldest item; the caller checked ``len``. (IndexError when empty.)"""
        return self._items.popleft()

    async def get(self) -> T:
        while not self._items:
            await self._lot.park()
        return self._items.popleft()


def _record(log_: list[str], entry: str) -> None:
    log_.append(entry)
    if len(log_) > RECORD_LOG_MAX:
        del log_[: len(log_) - RECORD_LOG_MAX]


class _StreamShell(Generic[T]):
    """Carries out one ``ConnectionMachine``'s commands over WebSocket connections.

    Subclasses say how to authenticate, subscribe, decode, resync and poll; the shell owns the tasks.
    """

    name = "stream"

    def __init__(
        self,
        *,
        url: str,
        credentials: Credentials,
        clock: Clock,
        ws_connect: WsConnect | None = None,
        monitor: Monitor | None = None,
        alerts: AlertSink | None = None,
        buffer_capacity: int = STREAM_BUFFER_MAX_MESSAGES,
    ) -> None:
        self.url = url
        self.credentials = credentials
        self.clock = clock
        self.machine = fsm.ConnectionMachine(self.name)
        self.monitor: Monitor = monitor or NullMonitor()
        self.buffer: DropOldestBuffer[T] = DropOldestBuffer(buffer_capacity, name=self.name, monitor=self.monitor)
        self._ws_connect = ws_connect or default_ws_connect()
        self._alerts = alerts
        self._deliver: Callable[[T], Awaitable[None]] | None = None
        self._nursery: trio.Nursery | None = None
        self._events_send, self._events_recv = trio.open_memory_channel[tuple[int, fsm.ConnEvent]](
            EVENT_QUEUE_CAPACITY
        )
        self._conn_id = 0
        self._ws: WebSocketConnection | None = None
        self._conn_scope: trio.CancelScope | None = None
        self._closing = 0  # id of the connection our Close command ended
        self._pings = 0
        self._deadline_s: float | None = None
        self._timer_changed = trio.Event()
        self._heard_s: float | None = None  # last frame or pong, not yet reported to the machine
        self._poll_running = False
        self._ready = trio.Event()
        self.process_lock = trio.Lock()  # consumer vs resync/poll: updates are delivered one unit at a time
        self._state_listeners: list[Callable[[], None]] = []
        # records, for tests and metrics
        self.connects = 0
        self.decode_errors = 0
        self.commands_log: list[str] = []  # command class names in execution order (last RECORD_LOG_MAX)
        self.states_log: list[str] = []  # machine state after each change (last RECORD_LOG_MAX)

    @property
    def live(self) -> bool:
        return self.machine.state is fsm.ConnState.LIVE

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (synchronously, no await) whenever the connection machine changes state."""
        self._state_listeners.append(callback)

    # --- hooks -------------------------------------------------------------------------------------

    def extra_headers(self) -> list[tuple[bytes, bytes]] | None:
        return None

    def auth_message(self) -> str | bytes:
        raise NotImplementedError

    def subscribe_messages(self) -> list[str | bytes]:
        raise NotImplementedError

    def on_frame(self, data: str | bytes) -> list[fsm.ConnEvent]:
        """Decode one frame: put data into ``self.buffer``, return machine events for control messages."""
        raise NotImplementedError

    async def process(self, item: T, deliver: Callable[[T], Awaitable[None]]) -> None:
        await deliver(item)

    async def resync(self, deliver: Callable[[T], Awaitable[None]]) -> None:
        """REST catch-up before the stream counts as live again."""

    async def poll(self, deliver: Callable[[T], Awaitable[None]]) -> None:
        """One REST poll while degraded."""

    async def background(self, deliver: Callable[[T], Awaitable[None]]) -> None:
        """Extra long-running work next to the connection (e.g. watching for silent orders)."""

    # --- serving -----------------------------------------------------------------------------------

    def _now_s(self) -> float:
        return trio.current_time()

    async def serve(
        self, deliver: Callable[[T], Awaitable[None]], *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run until cancelled. Reports started once live (or degraded to polling); raises StreamFailed."""
        self._deliver = deliver
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._consumer, deliver)
            nursery.start_soon(self._timer)
            nursery.start_soon(self._heartbeat)
            nursery.start_soon(self.background, deliver)
            await self._post(0, fsm.Start(now_s=self._now_s()))
            nursery.start_soon(self._machine_loop)
            await self._ready.wait()
            task_status.started()

    async def _post(self, conn_id: int, event: fsm.ConnEvent) -> None:
        try:  # no scheduler pass per machine event while the queue has room (heartbeats: two per tick)
            self._events_send.send_nowait((conn_id, event))
        except trio.WouldBlock:
            await self._events_send.send((conn_id, event))

    async def _machine_loop(self) -> None:
        async for conn_id, event in self._events_recv:
            await self._on_event(conn_id, event)
            while True:  # what is already queued, in order, without a scheduler pass per event
                try:
                    conn_id, event = self._events_recv.receive_nowait()
                except trio.WouldBlock:
                    break
                except trio.EndOfChannel:
                    return
                await self._on_event(conn_id, event)

    async def _on_event(self, conn_id: int, event: fsm.ConnEvent) -> None:
        if conn_id and conn_id != self._conn_id:
            return  # a late report from a connection we already left
        if isinstance(event, fsm.MessageReceived) and (self.machine.state, fsm.MessageReceived) not in (
            fsm.TRANSITIONS
        ):
            return  # proof of life from a socket the machine has already given up on
        if isinstance(event, fsm.Resynced | fsm.ResyncFailed) and self.machine.state is not fsm.ConnState.RESYNCING:
            return  # a resync that outlived its connection: the next connection resyncs again
        before = self.machine.state
        try:
            commands = self.machine.handle(event)
        except IllegalTransition as exc:
            log.error("%s: %s", self.name, exc)
            self.monitor.incr(f"alpaca.stream.{self.name}.illegal_event")
            return
        if self.machine.state is not before:
            _record(self.states_log, self.machine.state.value)
            for listener in self._state_listeners:
                listener()
            log.info("%s: %s -> %s on %s", self.name, before.value, self.machine.state.value,
                     type(event).__name__)
        for command in commands:
            await self._execute(command)
        if self.machine.state is fsm.ConnState.FAILED:
            raise StreamFailed(f"{self.name}: connection failed for good (see alerts)")

    async def _execute(self, command: fsm.ConnCommand) -> None:
        assert self._nursery is not None
        _record(self.commands_log, type(command).__name__)
        if isinstance(command, fsm.Connect):
            self._conn_id += 1
            self.connects += 1
            self._nursery.start_soon(self._connection, self._conn_id)
        elif isinstance(command, fsm.SendAuth):
            await self._send([self.auth_message()], step="auth")
        elif isinstance(command, fsm.SendSubscribe):
            await self._send(self.subscribe_messages(), step="subscribe")
        elif isinstance(command, fsm.Resync):
            self._nursery.start_soon(self._resync_task, self._conn_id)
        elif isinstance(command, fsm.SleepUntil):
            self._deadline_s = command.deadline_s
            self._timer_changed.set()
        elif isinstance(command, fsm.SwitchToPolling):
            self.monitor.incr(f"alpaca.stream.{self.name}.degraded")
            self._ready.set()
        elif isinstance(command, fsm.PollRest):
            if not self._poll_running:
                self._poll_running = True
                self._nursery.start_soon(self._poll_task)
        elif isinstance(command, fsm.RaiseAlert):
            await self._alert(command)
        elif isinstance(command, fsm.MarkLive):
            self._ready.set()
            self.monitor.incr(f"alpaca.stream.{self.name}.live")
        elif isinstance(command, fsm.Close):
            self._closing = self._conn_id
            if self._conn_scope is not None:
                self._conn_scope.cancel()
        else:  # pragma: no cover - the machine's command union is closed
            raise AssertionError(f"unknown command {command!r}")

    async def _send(self, messages: Iterable[str | bytes], *, step: str) -> None:
        ws, scope = self._ws, self._conn_scope
        if ws is None or scope is None:
            return  # the socket is already gone; its Disconnected report is on the way
        # The reply must come within the handshake timeout, or the connection is abandoned.
        scope.deadline = self._now_s() + WS_HANDSHAKE_TIMEOUT_S
        try:
            with trio.fail_after(SEND_TIMEOUT_S):
                for message in messages:
                    await ws.send_message(message)
        except _NETWORK_ERRORS as exc:
            log.warning("%s: %s send failed: %s", self.name, step, exc.__class__.__name__)

    def handshake_step_done(self) -> None:
        """Auth or subscribe was acknowledged: the connection no longer runs against a deadline."""
        if self._conn_scope is not None:
            self._conn_scope.deadline = math.inf

    async def _connection(self, conn_id: int) -> None:
        connected = False
        code, reason = 1006, ""
        scope = trio.CancelScope(deadline=self._now_s() + WS_HANDSHAKE_TIMEOUT_S)
        self._conn_scope = scope
        try:
            with scope:
                async with self._ws_connect(self.url, extra_headers=self.extra_headers()) as ws:
                    scope.deadline = math.inf
                    connected = True
                    self._ws = ws
                    await self._post(conn_id, fsm.Connected(now_s=self._now_s()))
                    code, reason = await self._read_loop(conn_id, ws)
        except* _NETWORK_ERRORS as group:
            reason = "; ".join(sorted({type(e).__name__ for e in group.exceptions}))
        finally:
            if self._conn_id == conn_id:
                self._ws = None
                self._conn_scope = None
        if scope.cancelled_caught and not reason:
            reason = "closed by us" if self._closing == conn_id else "handshake timeout"
        now_s = self._now_s()
        if connected:
            log.info("%s: disconnected (code %s %s)", self.name, code, reason)
            await self._post(conn_id, fsm.Disconnected(now_s=now_s, code=code, reason=reason))
        else:
            log.warning("%s: connect failed: %s", self.name, reason or "unknown")
            await self._post(conn_id, fsm.ConnectFailed(now_s=now_s, reason=reason))

    async def _read_loop(self, conn_id: int, ws: WebSocketConnection) -> tuple[int, str]:
        while True:
            try:
                data = await ws.get_message()
            except trio_websocket.ConnectionClosed as exc:
                if exc.reason is None:
                    return 1006, ""
                return exc.reason.code, exc.reason.reason or ""
            self._heard_s = self._now_s()
            for event in self.on_frame(data):
                await self._post(conn_id, event)

    async def _timer(self) -> None:
        while True:
            changed = self._timer_changed = trio.Event()
            deadline = self._deadline_s if self._deadline_s is not None else math.inf
            with trio.move_on_at(deadline):
                await changed.wait()
                continue
            self._deadline_s = None
            await self._post(0, fsm.Wake(now_s=self._now_s()))

    async def _heartbeat(self) -> None:
        """Ping every HEARTBEAT_INTERVAL_S; pongs and frames count as life; the machine judges staleness."""
        while True:
            await trio.sleep(HEARTBEAT_INTERVAL_S)
            ws, nursery = self._ws, self._nursery
            if ws is not None and nursery is not None:
                nursery.start_soon(self._ping, ws)
            if self._heard_s is not None:
                heard, self._heard_s = self._heard_s, None
                await self._post(self._conn_id, fsm.MessageReceived(now_s=heard))
            await self._post(0, fsm.HeartbeatTick(now_s=self._now_s()))

    async def _ping(self, ws: WebSocketConnection) -> None:
        with trio.move_on_after(HEARTBEAT_INTERVAL_S * HEARTBEAT_MISSED_TOLERANCE):
            self._pings += 1
            try:
                # an explicit payload: trio-websocket would otherwise draw one from the global `random`
                await ws.ping(b"ttlive-%d" % self._pings)
            except _PING_ERRORS:
                return
            self._heard_s = self._now_s()

    async def _consumer(self, deliver: Callable[[T], Awaitable[None]]) -> None:
        while True:
            item = await self.buffer.get()
            async with self.process_lock:
                await self.process(item, deliver)
                # What was already buffered (a frame carries many), under the same hold of the lock: each item
                # is still processed whole and in order, a resync waits at most for this batch.
                for _ in range(len(self.buffer)):
                    await self.process(self.buffer.get_nowait(), deliver)

    async def _resync_task(self, conn_id: int) -> None:
        assert self._deliver is not None
        try:
            async with self.process_lock:
                await self.resync(self._deliver)
        except BrokerError as exc:
            log.warning("%s: resync failed: %s", self.name, exc)
            await self._post(conn_id, fsm.ResyncFailed(now_s=self._now_s(), reason=str(exc)))
            return
        await self._post(conn_id, fsm.Resynced(now_s=self._now_s()))

    async def _poll_task(self) -> None:
        assert self._deliver is not None
        try:
            async with self.process_lock:
                await self.poll(self._deliver)
            self.monitor.incr(f"alpaca.stream.{self.name}.polls")
        except BrokerError as exc:
            log.warning("%s: REST poll failed: %s", self.name, exc)
        finally:
            self._poll_running = False

    async def _alert(self, command: fsm.RaiseAlert) -> None:
        level = {"critical": logging.CRITICAL, "warning": logging.WARNING}.get(command.severity, logging.INFO)
        log.log(level, "%s alert %s: %s", self.name, command.key, command.message)
        if self._alerts is None:
            return
        with trio.move_on_after(ALERT_TIMEOUT_S):
            await self._alerts.send(
                severity=command.severity, key=command.key, message=command.message, ts_ns=self.clock.now_ns()
            )

    def count_decode_error(self, exc: Exception) -> None:
        self.decode_errors += 1
        self.monitor.incr(f"alpaca.stream.{self.name}.decode_error")
        log.warning("%s: skipped an undecodable frame: %s", self.name, exc)


class TradingStream(_StreamShell[TradeUpdate]):
    """``core.ports.EventStream`` for: trade_updates, each execution delivered exactly once.

    Gaps (no sequence numbers) are detected by ``gapfill.TradeGapTracker`` and filled from REST orders and
    FILL activities; every reconnect resyncs from REST before the stream counts as live.
    """

    name = "trading"

    def __init__(
        self,
        *,
        rest: BrokerRest,
        url: str,
        credentials: Credentials,
        clock: Clock,
        on_resync: Callable[[], Awaitable[None]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(url=url, credentials=credentials, clock=clock, **kwargs)
        self.rest = rest
        self.tracker = TradeGapTracker()
        self._silence_alarm = GridAlarm()
        self.tracker.on_change = self._silence_alarm.ring
        self._on_resync = on_resync
        self._heard_ns = clock.now_ns()  # the stream is trusted up to here; resyncs re-read from before it
        self.resyncs = 0

    def track_order(self, order: BrokerOrder) -> None:
        """The execution layer registers what it submitted, so a lost first update is noticed."""
        self.tracker.track(order, now_ns=self.clock.now_ns())

    def auth_message(self) -> str:
        return decoders.encode_trading_auth(self.credentials.key_id, self.credentials.secret_key)

    def subscribe_messages(self) -> list[str | bytes]:
        return [decoders.encode_trading_listen()]

    def on_frame(self, data: str | bytes) -> list[fsm.ConnEvent]:
        try:
            message = decoders.decode_trading_frame(data)
        except decoders.FrameDecodeError as exc:
            self.count_decode_error(exc)
            return []
        now_s = self._now_s()
        state = self.machine.state
        if isinstance(message, TradeUpdate):
            self.buffer.put(message)
            return []
        if isinstance(message, decoders.Authorized) and state is fsm.ConnState.AUTHENTICATING:
            self.handshake_step_done()
            if message.ok:
                return [fsm.Authenticated(now_s=now_s)]
            return [fsm.AuthFailed(now_s=now_s, reason=f"trading stream auth: {message.status}")]
        if isinstance(message, decoders.Listening) and state is fsm.ConnState.SUBSCRIBING:
            self.handshake_step_done()
            if "trade_updates" in message.streams:
                return [fsm.Subscribed(now_s=now_s)]
            log.error("%s: listen acknowledged without trade_updates: %s", self.name, message.streams)
        elif isinstance(message, decoders.StreamError):
            log.warning("%s: server error frame: %s", self.name, message.message)
        return []

    async def process(self, item: TradeUpdate, deliver: Callable[[TradeUpdate], Awaitable[None]]) -> None:
        self._heard_ns = max(self._heard_ns, item.ts_ns)
        verdict = self.tracker.observe(item)
        if verdict.gap:
            log.warning("%s: gap on order %s (%s); filling from REST", self.name, item.order.id, verdict.reason)
            self.monitor.incr("alpaca.stream.trading.gap")
            try:
                await self._fill_orders([item.order.id], deliver, after_ns=item.order.submitted_at_ns)
            except BrokerError as exc:
                log.warning("%s: gap fill for %s failed (%s); will retry on resync", self.name, item.order.id, exc)
        if verdict.deliver:
            await deliver(item)
        else:
            self.monitor.incr("alpaca.stream.trading.duplicate")

    async def _fill_orders(
        self, order_ids: Sequence[str], deliver: Callable[[TradeUpdate], Awaitable[None]], *, after_ns: int
    ) -> None:
        orders = [await self.rest.get_order(oid) for oid in order_ids]
        await self._merge(orders, deliver, after_ns=after_ns)

    async def _merge(
        self, orders: Sequence[BrokerOrder], deliver: Callable[[TradeUpdate], Awaitable[None]], *, after_ns: int
    ) -> None:
        needing = [o for o in orders if self.tracker.needs_fills(o)]
        activities = []
        if needing:
            since_ns = min([after_ns, *(o.submitted_at_ns for o in needing if o.submitted_at_ns)])
            activities = await self.rest.get_activities(after_ts_ns=max(0, since_ns - NS_PER_S))
        for order in sorted(orders, key=lambda o: (o.submitted_at_ns, o.id)):
            for update in self.tracker.synthesize(order, activities):
                self.monitor.incr("alpaca.stream.trading.synthesized")
                await deliver(update)

    async def _refresh(self, deliver: Callable[[TradeUpdate], Awaitable[None]]) -> None:
        after_ns = self._heard_ns - int(RESYNC_LOOKBACK_S * 1e9)
        recent = await self.rest.list_orders(status="all", after_ts_ns=after_ns, limit=RESYNC_ORDERS_MAX)
        seen = {o.id for o in recent}
        older = [o.id for o in self.tracker.open_orders() if o.id not in seen][:OPEN_ORDER_REFRESH_MAX]
        orders = list(recent) + [await self.rest.get_order(oid) for oid in older]
        await self._merge(orders, deliver, after_ns=after_ns)
        self._heard_ns = max(self._heard_ns, self.clock.now_ns())

    async def resync(self, deliver: Callable[[TradeUpdate], Awaitable[None]]) -> None:
        self.resyncs += 1
        await self._refresh(deliver)
        if self._on_resync is not None:
            await self._on_resync()

    async def poll(self, deliver: Callable[[TradeUpdate], Awaitable[None]]) -> None:
        await self._refresh(deliver)

    async def background(self, deliver: Callable[[TradeUpdate], Awaitable[None]]) -> None:
        """Open market orders that stay silent are checked over REST (their updates may be lost).

        Checked every MARKET_ORDER_SILENCE_S while an open market order is tracked; with none, the check could
        only come back empty, so it sleeps until the tracker changes (then resumes on the same 10 s grid)."""
        alarm = self._silence_alarm
        rung = alarm.rings - 1  # the first check is on time
        while True:
            await alarm.sleep(MARKET_ORDER_SILENCE_S,
                              due=alarm.rings != rung or self.tracker.has_open_market_orders())
            rung = alarm.rings
            silent = self.tracker.silent_orders(self.clock.now_ns())
            if not silent:
                continue
            log.info("%s: %d silent market order(s); checking REST", self.name, len(silent))
            batch = silent[:OPEN_ORDER_REFRESH_MAX]
            now_ns = self.clock.now_ns()
            for oid in batch:
                self.tracker.note_checked(oid, now_ns)
            try:
                async with self.process_lock:
                    await self._fill_orders(batch, deliver, after_ns=self._heard_ns)
            except BrokerError as exc:
                log.warning("%s: silent-order check failed: %s", self.name, exc)


MarketItem = Bar | Quote


class MarketDataStream(_StreamShell[MarketItem]):
    """``core.ports.MarketDataStream``: bars and quotes (msgpack by default), gaps carried forward.

    After a reconnect, bars missed while down are backfilled from REST (if ``history`` is given) and any
    still-missing intervals are interpolated; last-known quotes are re-issued marked interpolated.
    """

    name = "market_data"

    def __init__(
        self,
        *,
        url: str,
        credentials: Credentials,
        clock: Clock,
        history: HistoricalBars | None = None,
        codec: str = "msgpack",
        bar_interval_ns: int = 60_000_000_000,
        timeframe: str = "1Min",
        **kwargs: Any,
    ) -> None:
        super().__init__(url=url, credentials=credentials, clock=clock, **kwargs)
        assert codec in ("msgpack", "json"), f"unknown codec {codec!r}"
        self.codec = codec
        self.history = history
        self.timeframe = timeframe
        self.bars_symbols: set[str] = set()
        self.quote_symbols: set[str] = set()
        self.bar_gaps = BarGapFiller(bar_interval_ns=bar_interval_ns)
        self.quotes = QuoteCarry()
        self._was_live = False
        self.skipped_elements = 0

    def extra_headers(self) -> list[tuple[bytes, bytes]] | None:
        content_type = b"application/msgpack" if self.codec == "msgpack" else b"application/json"
        return [(b"Content-Type", content_type)]

    def auth_message(self) -> str | bytes:
        return decoders.encode_market_auth(self.credentials.key_id, self.credentials.secret_key, codec=self.codec)

    def subscribe_messages(self) -> list[str | bytes]:
        # Everything, every time: a reconnect resubscribes to all streams (spec 3.3 session recovery).
        return [decoders.encode_market_subscribe(
            bars=sorted(self.bars_symbols), quotes=sorted(self.quote_symbols), codec=self.codec
        )]

    async def subscribe(self, *, bars: Sequence[str] = (), quotes: Sequence[str] = ()) -> None:
        new_bars, new_quotes = set(bars) - self.bars_symbols, set(quotes) - self.quote_symbols
        self.bars_symbols |= set(bars)
        self.quote_symbols |= set(quotes)
        ws = self._ws
        if ws is None or not (new_bars or new_quotes) or self.machine.state is not fsm.ConnState.LIVE:
            return  # the next (re)subscribe carries them
        message = decoders.encode_market_subscribe(bars=sorted(new_bars), quotes=sorted(new_quotes), codec=self.codec)
        try:
            with trio.fail_after(SEND_TIMEOUT_S):
                await ws.send_message(message)
        except _NETWORK_ERRORS as exc:
            log.warning("%s: subscribe send failed (%s); resubscribed on reconnect", self.name, exc)

    def on_frame(self, data: str | bytes) -> list[fsm.ConnEvent]:
        try:
            messages, skipped = decoders.decode_market_frame(data)
        except decoders.FrameDecodeError as exc:
            self.count_decode_error(exc)
            return []
        if skipped:
            self.skipped_elements += skipped
            self.monitor.incr("alpaca.stream.market_data.decode_error", skipped)
            log.warning("%s: skipped %d undecodable message(s) in a frame", self.name, skipped)
        events: list[fsm.ConnEvent] = []
        now_s = self._now_s()
        for message in messages:
            if isinstance(message, decoders.Control):
                events.extend(self._on_control(message, now_s))
            else:
                self.buffer.put(message)
        return events

    def _on_control(self, message: decoders.Control, now_s: float) -> list[fsm.ConnEvent]:
        state = self.machine.state
        if message.kind == "success" and message.msg == "authenticated" and state is fsm.ConnState.AUTHENTICATING:
            self.handshake_step_done()
            return [fsm.Authenticated(now_s=now_s)]
        if message.kind == "subscription" and state is fsm.ConnState.SUBSCRIBING:
            self.handshake_step_done()
            return [fsm.Subscribed(now_s=now_s)]
        if message.kind == "error":
            log.warning("%s: server error %d %s", self.name, message.code, message.msg)
            if message.code == 409:  # insufficient subscription: no retry can fix it
                return [fsm.Fatal(now_s=now_s, reason=f"market data: {message.msg} ({message.code})")]
            if message.code in (401, 402, 404) and state is fsm.ConnState.AUTHENTICATING:
                self.handshake_step_done()
                return [fsm.AuthFailed(now_s=now_s, reason=f"market data auth: {message.msg} ({message.code})")]
        return []

    async def process(self, item: MarketItem, deliver: Callable[[MarketItem], Awaitable[None]]) -> None:
        if isinstance(item, Quote):
            self.quotes.on_quote(item)
            await deliver(item)
            return
        for bar in self.bar_gaps.on_bar(item):
            await deliver(bar)

    async def _backfill_bars(self, deliver: Callable[[MarketItem], Awaitable[None]]) -> None:
        if self.history is None or not self.bars_symbols:
            return
        last = self.bar_gaps.last_bar_ns()
        known = [last[s] for s in sorted(self.bars_symbols) if s in last]
        if not known:
            return
        end_ns = self.clock.now_ns()
        bars = await self.history.get_bars(
            sorted(self.bars_symbols), start_ts_ns=min(known) + 1, end_ts_ns=end_ns, timeframe=self.timeframe
        )
        for symbol in sorted(bars):
            for bar in bars[symbol]:
                if bar.ts_ns <= last.get(symbol, -1):
                    continue  # already delivered from the stream
                for out in self.bar_gaps.on_bar(bar):
                    await deliver(out)

    async def resync(self, deliver: Callable[[MarketItem], Awaitable[None]]) -> None:
        if self._was_live:
            await self._backfill_bars(deliver)
            for quote in self.quotes.carried(self.clock.now_ns(), self.quote_symbols):
                await deliver(quote)
        self._was_live = True

    async def poll(self, deliver: Callable[[MarketItem], Awaitable[None]]) -> None:
        await self._backfill_bars(deliver)
        if self.history is not None and self.quote_symbols:
            latest = await self.history.get_latest_quotes(sorted(self.quote_symbols))
            for symbol in sorted(latest):
                self.quotes.on_quote(latest[symbol])
                await deliver(latest[symbol])
