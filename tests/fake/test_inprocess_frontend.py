"""The in-process front-end under MockClock: httpx transport, in-memory WebSockets, the clock driver."""

from __future__ import annotations

import hashlib
import json
from contextlib import suppress
from typing import Any

import httpx
import msgpack
import pytest
import trio
import trio_websocket

from adapters.fake.calendar import ns_at
from adapters.fake.data_stream import decode_frames
from adapters.fake.faults import FaultEvent, FaultPlan
from adapters.fake.inprocess import InProcessVenue
from tests.fake.test_market_support import AUTH, MINUTE_NS, NS, OPEN_NS, make_venue

MSGPACK = [(b"Content-Type", b"application/msgpack")]
ORDER = {"symbol": "NVDA", "qty": "10", "side": "buy", "type": "market", "time_in_force": "day"}


def _client(front: InProcessVenue, timeout_s: float = 30.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=front.http_transport(), base_url="http://fake-alpaca", headers=AUTH, timeout=timeout_s
    )


async def test_rest_round_trip_decodes_path_query_and_body(autojump_clock: Any) -> None:
    venue = make_venue()
    front = InProcessVenue(venue)
    async with trio.open_nursery() as nursery:
        await nursery.start(front.serve)
        async with _client(front) as client:
            placed = await client.post("/v2/orders", json={**ORDER, "client_order_id": "a/b c"})
            assert placed.status_code == 200
            order = placed.json()
            found = await client.get("/v2/orders:by_client_order_id", params={"client_order_id": "a/b c"})
            assert found.status_code == 200 and found.json()["id"] == order["id"]
            listed = await client.get(
                "/v2/orders", params=[("status", "open"), ("status", "all"), ("nested", "True")]
            )
            assert listed.status_code == 200 and [o["id"] for o in listed.json()] == [order["id"]]
            assert "x-ratelimit-limit" in listed.headers
        nursery.cancel_scope.cancel()
    paths = [r.path for r in venue.request_log]
    assert paths == ["/v2/orders", "/v2/orders:by_client_order_id", "/v2/orders"]
    assert front.requests_handled == 3


async def test_the_venue_clock_follows_trio_time_and_skips_closed_hours(autojump_clock: Any) -> None:
    venue = make_venue(start_ns=ns_at("2014-06-02", "15:58"))
    front = InProcessVenue(venue)
    async with trio.open_nursery() as nursery:
        await nursery.start(front.serve)
        await trio.sleep(90)
        assert venue.now_ns == ns_at("2014-06-02", "15:59")  # ticks on bar boundaries...
        await trio.sleep(0.5)
        front.sync()
        assert venue.now_ns == ns_at("2014-06-02", "15:59:30.500000")  # ...and exactly on demand
        steps: list[int] = []
        advance = venue.advance_to
        venue.advance_to = lambda ts_ns: (steps.append(ts_ns), advance(ts_ns))  # type: ignore[method-assign]
        await trio.sleep(18 * 3600)  # overnight: one jump to the next open, not a tick per minute
        assert venue.now_ns == ns_at("2014-06-03", "09:59")
        assert ns_at("2014-06-03", "09:30") in steps and len(steps) < 40
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(("client_timeout_s", "waited_s"), [(2.0, 2.0), (30.0, 5.0)])
async def test_dropped_response_times_out_after_the_venue_applied_it(
    autojump_clock: Any, client_timeout_s: float, waited_s: float
) -> None:
    venue = make_venue(faults=FaultPlan(rest_timeout_after_accept_p=1.0))
    front = InProcessVenue(venue)
    async with trio.open_nursery() as nursery:
        await nursery.start(front.serve)
        async with _client(front, client_timeout_s) as client:
            t0 = trio.current_time()
            with pytest.raises(httpx.ReadTimeout):
                await client.post("/v2/orders", json={**ORDER, "client_order_id": "ambiguous-1"})
            assert trio.current_time() - t0 == pytest.approx(waited_s)  # min(client timeout, venue's 5 s)
        nursery.cancel_scope.cancel()
    assert [o.client_order_id for o in venue.order_log] == ["ambiguous-1"]  # placed although unanswered
    assert front.responses_dropped == 1


async def test_slow_api_delays_and_times_out_past_the_client_timeout(autojump_clock: Any) -> None:
    slow = FaultPlan(
        events=(FaultEvent(kind="rest_slow", at_ns=OPEN_NS + NS, latency_ms=1500, duration_s=600),)
    )
    front = InProcessVenue(make_venue(faults=slow))
    async with trio.open_nursery() as nursery:
        await nursery.start(front.serve)
        await trio.sleep(1)
        async with _client(front, 5.0) as client:
            t0 = trio.current_time()
            assert (await client.get("/v2/account")).status_code == 200
            assert trio.current_time() - t0 == pytest.approx(1.5)
        async with _client(front, 1.0) as client:
            t0 = trio.current_time()
            with pytest.raises(httpx.ReadTimeout):
                await client.get("/v2/account")
            assert trio.current_time() - t0 == pytest.approx(1.0)
        nursery.cancel_scope.cancel()


async def test_market_data_stream_over_memory_websocket(autojump_clock: Any) -> None:
    venue = make_venue()
    front = InProcessVenue(venue)
    async with trio.open_nursery() as nursery:
        await nursery.start(front.serve)
        async with front.open_websocket("ws://fake-alpaca/v2/iex", extra_headers=MSGPACK) as ws:
            assert decode_frames([await ws.get_message()]) == [{"T": "success", "msg": "connected"}]
            await ws.send_message(msgpack.packb({"action": "auth", "key": "k", "secret": "s"}))
            assert decode_frames([await ws.get_message()])[0]["msg"] == "authenticated"
            await ws.send_message(msgpack.packb({"action": "subscribe", "bars": ["NVDA"]}))
            assert decode_frames([await ws.get_message()])[0]["T"] == "subscription"
            got = []
            for _ in range(3):
                got.extend(decode_frames([await ws.get_message()]))
            assert [(m["T"], m["t"]) for m in got] == [("b", OPEN_NS + k * MINUTE_NS) for k in range(3)]
            assert trio.current_time() == pytest.approx(180.0)  # each bar arrives when it completes
        nursery.cancel_scope.cancel()
    assert front.connections_opened == ["/v2/iex"]


async def test_trading_stream_delivers_trade_updates_for_a_rest_order(autojump_clock: Any) -> None:
    front = InProcessVenue(make_venue())
    async with trio.open_nursery() as nursery:
        await nursery.start(front.serve)
        async with front.open_websocket("ws://fake-alpaca/stream") as ws, _client(front) as client:
            await ws.send_message(
                json.dumps({"action": "authenticate", "data": {"key_id": "k", "secret_key": "s"}})
            )
            assert json.loads(await ws.get_message())["data"]["status"] == "authorized"
            await ws.send_message(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
            assert json.loads(await ws.get_message())["stream"] == "listening"
            order = (await client.post("/v2/orders", json=ORDER)).json()
            events = []
            with trio.fail_after(120):
                while not events or events[-1] != "fill":
                    update = json.loads(await ws.get_message())
                    assert (
                        update["stream"] == "trade_updates" and update["data"]["order"]["id"] == order["id"]
                    )
                    events.append(update["data"]["event"])
            assert events[0] in ("new", "accepted", "pending_new") and events[-1] == "fill"
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("code", [1006, 1000])
async def test_venue_close_reaches_the_client_with_its_code_after_sent_data(
    autojump_clock: Any, code: int
) -> None:
    close = FaultPlan(
        events=(FaultEvent(kind="ws_close", at_ns=OPEN_NS + 150 * NS, stream="data", code=code),)
    )
    front = InProcessVenue(make_venue(faults=close))
    async with trio.open_nursery() as nursery:
        await nursery.start(front.serve)
        async with front.open_websocket("ws://fake-alpaca/v2/iex", extra_headers=MSGPACK) as ws:
            await ws.get_message()
            await ws.send_message(msgpack.packb({"action": "auth", "key": "k", "secret": "s"}))
            await ws.get_message()
            await ws.send_message(msgpack.packb({"action": "subscribe", "quotes": ["NVDA"]}))
            await ws.get_message()
            received = []
            with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                while True:
                    received.extend(decode_frames([await ws.get_message()]))
            assert closed.value.reason.code == code
            assert [m["t"] for m in received] == [OPEN_NS + MINUTE_NS, OPEN_NS + 2 * MINUTE_NS]
        nursery.cancel_scope.cancel()


async def test_unknown_websocket_path_is_rejected_and_serve_keeps_running(autojump_clock: Any) -> None:
    front = InProcessVenue(make_venue())
    async with trio.open_nursery() as nursery:
        await nursery.start(front.serve)
        with pytest.raises(trio_websocket.ConnectionRejected) as rejected:
            async with front.open_websocket("ws://fake-alpaca/v1/nope"):
                pass
        assert rejected.value.status_code == 404
        async with front.open_websocket("ws://fake-alpaca/v2/sip") as ws:
            assert json.loads(await ws.get_message()) == [
                {"T": "success", "msg": "connected"}
            ]  # JSON default
        nursery.cancel_scope.cancel()
    with pytest.raises(RuntimeError, match="serve"):
        async with front.open_websocket("ws://fake-alpaca/stream"):
            pass


async def _scripted_session(seed: int) -> list[bytes]:
    """Requests and both streams over ~8 virtual minutes; returns every REST body and decoded message."""
    front = InProcessVenue(make_venue(seed=seed, faults=FaultPlan(trade_update_duplicate_p=0.3)))
    record: list[bytes] = []

    async def pump(ws: trio_websocket.WebSocketConnection, decode: Any, tag: bytes) -> None:
        with suppress(trio_websocket.ConnectionClosed):
            while True:
                record.append(tag + json.dumps(decode(await ws.get_message()), sort_keys=True).encode())

    async with trio.open_nursery() as nursery:
        await nursery.start(front.serve)
        async with (
            front.open_websocket("ws://f/v2/iex", extra_headers=MSGPACK) as data,
            front.open_websocket("ws://f/stream") as trading,
            _client(front) as client,
            trio.open_nursery() as pumps,
        ):
            pumps.start_soon(pump, data, lambda m: decode_frames([m]), b"data:")
            pumps.start_soon(pump, trading, json.loads, b"trading:")
            await trading.send_message(json.dumps({"action": "auth", "key": "k", "secret": "s"}))
            await trading.send_message(
                json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}})
            )
            await data.send_message(msgpack.packb({"action": "auth", "key": "k", "secret": "s"}))
            await data.send_message(msgpack.packb({"action": "subscribe", "quotes": ["*"], "bars": ["NVDA"]}))
            for i in range(5):
                r = await client.post(
                    "/v2/orders", json={**ORDER, "qty": str(i + 1), "client_order_id": f"o{i}"}
                )
                record.append(b"rest:" + r.content)
                await trio.sleep(97)
            for path in ("/v2/positions", "/v2/account", "/v2/orders?status=all"):
                record.append(b"rest:" + (await client.get(path)).content)
            bars = await client.get("/v2/stocks/bars", params={"symbols": "NVDA,ORCL", "timeframe": "1Min"})
            record.append(b"rest:" + bars.content)
            pumps.cancel_scope.cancel()
        nursery.cancel_scope.cancel()
    return record


async def test_same_script_same_bytes(autojump_clock: Any) -> None:
    first = await _scripted_session(seed=5)
    second = await _scripted_session(seed=5)
    assert len(first) > 30
    assert sum(r.startswith(b"trading:") for r in first) >= 10  # new + fill per order, some duplicated
    assert hashlib.sha256(b"\n".join(first)).hexdigest() == hashlib.sha256(b"\n".join(second)).hexdigest()
    other = await _scripted_session(seed=6)
    assert other != first  # the seed matters (ids, fills)
