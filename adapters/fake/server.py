"""The loopback front-end of the fake venue: real HTTP and WebSockets on 127.0.0.1 for drills and alpaca-py.

A small raw-ASGI app on hypercorn's trio worker. REST at /v2/..., the trading stream at /stream, market
data at /v2/iex and /v2/sip; the venue clock follows wall time (see ``LoopbackServer``).
"""

from __future__ import annotations

import json
import os
import pickle
import signal
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import hypercorn.config
import hypercorn.trio
import trio

from adapters.fake.data_stream import AUTH_TIMEOUT_NS
from adapters.fake.inprocess import (
    HANDSHAKE_TIMEOUT_S,
    ClockMap,
    SocketClosed,
    VenueDriver,
    open_stream_session,
    rest_request,
)
from adapters.fake.interfaces import Close
from adapters.fake.wire import encode, error_body

MAX_BODY_BYTES = 1 << 20  # a request body larger than this is refused (413)
ABORT_CLOSE_CODE = 1011  # ASGI cannot drop a TCP connection: a 1006 abort becomes this close code
_GATEWAY_TIMEOUT = (504, encode(error_body(50410000, "gateway timeout")))
DRILL_PREFIX = "/_drill/"  # drill endpoints (only with drill_admin): not part of Alpaca's API
TICK_COALESCE_S = 0.05  # realistic ticks: the clock wakes at most this often (wall s); frames carry their own t

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class _AsgiSocket:
    """WireSocket over an accepted ASGI websocket."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive, self._send = receive, send

    async def send(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            await self._send({"type": "websocket.send", "bytes": data})
        else:
            await self._send({"type": "websocket.send", "text": data})

    async def receive(self) -> str | bytes:
        while True:
            message = await self._receive()
            if message["type"] == "websocket.receive":
                data: str | bytes | None = message.get("bytes")
                return data if data is not None else message.get("text") or ""
            if message["type"] == "websocket.disconnect":
                raise SocketClosed

    async def close(self, code: int, reason: str) -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason})

    async def abort(self) -> None:
        await self.close(ABORT_CLOSE_CODE, "connection aborted")


class LoopbackServer(VenueDriver):
    """The venue served over real sockets, its clock mapped from elapsed wall time by ``clock``.

    Default mapping (calendar.TradingTimeClock): the clock starts at a real NYSE open of a replay date and
    runs ``speed`` session-seconds per wall second through trading hours only, jumping from each close
    to the next open, so the market is open whenever someone tries it. ``--clock wall`` uses
    calendar.LinearClock(now) instead: real NYSE hours at wall time.

    Differences from the in-process front-end, both forced by ASGI: a venue Close(1006) (abort) closes
    with code 1011, and a response the venue drops (``drop_response_after_s``) becomes a 504 gateway
    timeout after that delay — what a client of the real API sees when a gateway gives up.
    """

    def __init__(
        self,
        venue: Any,
        clock: ClockMap,
        *,
        handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S,
        drill_admin: bool = False,
        snapshot_path: str | None = None,
    ) -> None:
        super().__init__(venue, clock, handshake_timeout_s=handshake_timeout_s)
        self.drill_admin = drill_admin
        self.snapshot_path = snapshot_path
        # Alpaca's 10 s to authenticate are wall seconds for a real client, whatever the clock speed.
        speed = float(getattr(clock, "speed", 1.0))
        self.data_options = {"auth_timeout_ns": round(AUTH_TIMEOUT_NS * speed)}
        self.tick_coalesce_s = TICK_COALESCE_S

    async def serve(
        self,
        host: str,
        port: int,
        *,
        shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
        task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve until shutdown_trigger returns (or cancellation); reports the bound URLs when listening."""
        config = hypercorn.config.Config()
        config.bind = [f"{host}:{port}"]
        config.accesslog = None
        config.errorlog = None
        config.graceful_timeout = 1.0
        config.websocket_ping_interval = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.run_clock)

            async def _hypercorn(
                *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
            ) -> None:
                await hypercorn.trio.serve(
                    self.app,  # type: ignore[arg-type]  # raw ASGI with plain dicts
                    config,
                    shutdown_trigger=shutdown_trigger,
                    task_status=task_status,
                )
                nursery.cancel_scope.cancel()

            binds: list[str] = await nursery.start(_hypercorn)
            task_status.started(binds)

    # --- ASGI ---------------------------------------------------------------------------------------------
    async def app(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > MAX_BODY_BYTES:
                await _respond(send, 413, encode(error_body(41310000, "request entity too large")), {})
                return
            if not message.get("more_body", False):
                break
        if self.drill_admin and scope["path"].startswith(DRILL_PREFIX):
            status, payload = self.drill_request(scope["method"], scope["path"])
            await _respond(send, status, payload, {})
            return
        req = rest_request(
            scope["method"],
            scope["path"],
            parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True),
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
            bytes(body),
        )
        response = self.handle_rest(req)
        if response.drop_response_after_s is not None:
            await trio.sleep(response.drop_response_after_s)
            self.responses_dropped += 1
            await _respond(send, _GATEWAY_TIMEOUT[0], _GATEWAY_TIMEOUT[1], {})
            return
        if response.delay_s > 0:
            await trio.sleep(response.delay_s)
        await _respond(send, response.status, response.body, response.headers)

    # --- drills (tools/drill.py) ------------------------------------------------------------------------
    def drill_request(self, method: str, path: str) -> tuple[int, bytes]:
        """The drill endpoints: what the venue recorded, dropping every stream, a crash with a snapshot."""
        route = (method.upper(), path.removeprefix(DRILL_PREFIX))
        if route == ("GET", "records"):
            self.sync()
            records = {**venue_records(self.venue), "connections_opened": len(self.connections_opened)}
            return 200, json.dumps(records, sort_keys=True).encode()
        if route == ("POST", "drop_streams"):
            dropped = 0
            for conn in list(self._connections):
                conn.replies.append(Close(1006, "drill: connection dropped"))
                conn.wake()
                dropped += 1
            return 200, json.dumps({"dropped": dropped}).encode()
        if route == ("POST", "crash"):
            if self.snapshot_path is None:
                return 409, encode(error_body(40910000, "started without --snapshot"))
            self.sync()
            forget_connections(self.venue)  # sockets do not survive a restart; the books do
            tmp = f"{self.snapshot_path}.tmp"
            with open(tmp, "wb") as fh:
                pickle.dump(self.venue, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.snapshot_path)
            os.kill(os.getpid(), signal.SIGKILL)  # no request is served between the snapshot and the death
        return 404, encode(error_body(40410000, "no such drill endpoint"))

    async def _websocket(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self.sync()
        session = open_stream_session(self.venue, scope["path"], headers, **self.data_options)
        if session is None:
            await send({"type": "websocket.close", "code": 1008})  # before accept: hypercorn answers 403
            return
        await send({"type": "websocket.accept"})
        await self.run_session(session, _AsgiSocket(receive, send), scope["path"])


async def _respond(send: Send, status: int, body: bytes, headers: dict[str, str]) -> None:
    raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    if not any(k == b"content-type" for k, _ in raw_headers) and body:
        raw_headers.append((b"content-type", b"application/json; charset=utf-8"))
    raw_headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def forget_connections(venue: Any) -> None:
    """Detach a venue from its stream sessions (before it is pickled, or after it is restored)."""
    for name in ("_trading_sessions", "_data_sessions"):
        if isinstance(getattr(venue, name, None), list):
            setattr(venue, name, [])
    if isinstance(getattr(venue, "_stream_keys", None), dict):
        venue._stream_keys = {}


def venue_records(venue: Any) -> dict[str, Any]:
    """The venue's records as JSON-able data (strings for Decimals), for drills in another process."""

    def fill(f: Any) -> dict[str, Any]:
        return {
            "execution_id": str(f.execution_id),
            "order_id": f.order_id,
            "client_order_id": f.client_order_id,
            "symbol": f.symbol,
            "side": str(f.side),
            "qty": str(f.qty),
            "price": str(f.price),
            "ts_ns": f.ts_ns,
        }

    orders = [
        {
            "ts_ns": o.ts_ns,
            "order_id": o.order_id,
            "client_order_id": o.client_order_id,
            "symbol": o.symbol,
            "side": o.side,
            "qty": str(o.qty),
            "parent_id": o.parent_id,
            "replaces": o.replaces,
        }
        for o in venue.order_log
    ]
    positions = {
        symbol: str(p.qty)
        for symbol, p in sorted(venue.account.positions.items())
        if Decimal(p.qty) != 0
    }
    return {
        "now_ns": venue.now_ns,
        "orders": orders,
        "fills": [fill(f) for f in venue.fills],
        "external_fills": [fill(f) for f in venue.external_fills],
        "positions": positions,
        "internal_errors": list(venue.internal_errors),
    }
