"""The stream shell's own duties: heartbeat staleness, handshake timeouts, refused credentials, the
drop-oldest buffer, and frames that never raise out of the stream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
import trio_websocket
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.alpaca.streams import DropOldestBuffer, MarketDataStream, StreamFailed, TradingStream
from core.limits import HEARTBEAT_INTERVAL_S, HEARTBEAT_MISSED_TOLERANCE, WS_HANDSHAKE_TIMEOUT_S
from tests.alpaca.wire_samples import bar_msg, market_frame, trade_update_frame
from tests.alpaca.world import CREDS, running_world


class _StallableStream(trio.abc.Stream):
    """A server-side byte stream that can go deaf: after ``stall()`` it never reads again (no pongs)."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self._inner = inner
        self._stalled = False

    def stall(self) -> None:
        self._stalled = True

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self._stalled:
            await trio.sleep_forever()
        return await self._inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self._inner.aclose()


class HalfDeadServer:
    """The first ``dead`` connections answer the trading handshake, then stop reading the socket, so pings
    get no pong and nothing ever arrives; later connections go to the real fake venue.
    ``answer_auth=False`` stops before even answering auth (a handshake that hangs)."""

    def __init__(self, nursery: trio.Nursery, fallback: Any, *, dead: int = 1, answer_auth: bool = True) -> None:
        self._nursery, self._fallback, self._dead, self._answer_auth = nursery, fallback, dead, answer_auth
        self.connections = 0

    def connect(self, url: str, *, extra_headers: Any = None) -> Any:
        self.connections += 1
        if self.connections > self._dead:
            return self._fallback(url, extra_headers=extra_headers)
        return self._connect()

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[trio_websocket.WebSocketConnection]:
        client_stream, server_stream = trio.testing.memory_stream_pair()
        self._nursery.start_soon(self._serve, _StallableStream(server_stream))
        async with trio.open_nursery() as nursery:
            ws = await trio_websocket.wrap_client_stream(nursery, client_stream, "half-dead", "/stream")
            try:
                yield ws
            finally:
                with trio.move_on_after(1) as scope:
                    scope.shield = True
                    await ws.aclose()
                await client_stream.aclose()

    async def _serve(self, raw: _StallableStream) -> None:
        async with trio.open_nursery() as nursery:
            request = await trio_websocket.wrap_server_stream(nursery, raw)
            ws = await request.accept()
            if self._answer_auth:
                await ws.get_message()
                await ws.send_message(json.dumps({"stream": "authorization", "data": {"status": "authorized"}}))
                await ws.get_message()
                await ws.send_message(json.dumps({"stream": "listening", "data": {"streams": ["trade_updates"]}}))
            raw.stall()
            await trio.sleep_forever()


async def test_missed_heartbeats_mark_stale_then_reconnect_and_resync(autojump_clock: Any) -> None:
    async with running_world() as w:
        server = HalfDeadServer(w.nursery, w.front.open_websocket)
        stream = TradingStream(rest=w.rest, url="ws://x/stream", credentials=CREDS, clock=w.clock,
                               ws_connect=server.connect)
        await w.nursery.start(stream.serve, w.collect)
        t_live = trio.current_time()
        assert stream.live
        await trio.sleep(HEARTBEAT_INTERVAL_S * (HEARTBEAT_MISSED_TOLERANCE + 1) + 5)
    assert stream.states_log[:5] == ["connecting", "authenticating", "subscribing", "resyncing", "live"]
    assert "stale" in stream.states_log and stream.states_log[-1] == "live"
    assert stream.connects == 2 and server.connections == 2
    stale_at = stream.states_log.index("stale")
    assert stream.states_log[stale_at - 1] == "live"
    assert stream.commands_log.count("Resync") == 2
    assert trio.current_time() - t_live >= HEARTBEAT_INTERVAL_S * HEARTBEAT_MISSED_TOLERANCE


async def test_a_handshake_that_hangs_is_abandoned_after_the_timeout(autojump_clock: Any) -> None:
    async with running_world() as w:
        server = HalfDeadServer(w.nursery, w.front.open_websocket, answer_auth=False)
        stream = TradingStream(rest=w.rest, url="ws://x/stream", credentials=CREDS, clock=w.clock,
                               ws_connect=server.connect)
        start = trio.current_time()
        await w.nursery.start(stream.serve, w.collect)
        took = trio.current_time() - start
    assert stream.live and stream.connects == 2
    # timeout, then the dead socket's 1 s close wait (see HalfDeadServer), then an immediate retry
    assert took == pytest.approx(WS_HANDSHAKE_TIMEOUT_S + 1)


async def test_refused_credentials_end_in_failed(autojump_clock: Any) -> None:
    async with running_world(venue_secret="the-right-one") as w:
        stream = w.trading_stream()
        with pytest.raises(BaseExceptionGroup) as info:
            async with trio.open_nursery() as nursery:
                await nursery.start(stream.serve, w.collect)
        assert info.group_contains(StreamFailed, depth=None)
    assert stream.machine.state.value == "failed"
    assert stream.connects == 6  # first try + RECONNECT_MAX_RETRIES, each refused


def test_drop_oldest_buffer_keeps_the_newest() -> None:
    buffer: DropOldestBuffer[int] = DropOldestBuffer(3)
    for i in range(5):
        buffer.put(i)
    assert buffer.dropped == 2 and len(buffer) == 3 and buffer.high_water == 3

    async def drain() -> list[int]:
        return [await buffer.get() for _ in range(3)]

    assert trio.run(drain) == [2, 3, 4]


async def test_a_slow_consumer_loses_the_oldest_updates_not_the_stream(autojump_clock: Any) -> None:
    stream = TradingStream(rest=None, url="ws://x", credentials=CREDS, clock=_ZeroClock(),  # type: ignore[arg-type]
                           buffer_capacity=10)
    for i in range(25):
        stream.on_frame(trade_update_frame("new", id=f"order-{i}"))
    assert stream.buffer.dropped == 15
    assert (await stream.buffer.get()).order.id == "order-15"


class _ZeroClock:
    def now_ns(self) -> int:
        return 0


@settings(max_examples=100, deadline=None)
@given(frames=st.lists(st.one_of(st.binary(max_size=200), st.text(max_size=200)), max_size=5), cut=st.integers(0, 400))
async def test_trading_stream_never_raises_on_garbage_frames(frames: list[Any], cut: int) -> None:
    stream = TradingStream(rest=None, url="ws://x", credentials=CREDS, clock=_ZeroClock())  # type: ignore[arg-type]
    good = trade_update_frame("fill", status="filled", filled_qty="10")
    for frame in [*frames, good[:cut], good]:
        assert stream.on_frame(frame) == []  # data frames never produce machine events outside a handshake
    assert len(stream.buffer) >= 1  # the good frame still got through
    assert stream.decode_errors + len(stream.buffer) >= 1


@settings(max_examples=100, deadline=None)
@given(frames=st.lists(st.binary(max_size=200), max_size=5), cut=st.integers(0, 300))
async def test_market_stream_never_raises_on_garbage_frames(frames: list[bytes], cut: int) -> None:
    stream = MarketDataStream(url="ws://x", credentials=CREDS, clock=_ZeroClock())
    good = market_frame(bar_msg())
    for frame in [*frames, good[:cut], good]:
        stream.on_frame(frame)
    assert len(stream.buffer) >= 1
