"""TradingStream and MarketDataStream against the fake venue's in-memory WebSockets and its fault plan.

Spec 1.4 / 3.3 failure modes: disconnect (reconnect + resubscribe + REST resync), message loss (recovered
via REST, counted once), API degradation (POLLING every 5 s, then LIVE again), disconnect during a fill.
"""

from __future__ import annotations

import itertools
from collections import Counter
from decimal import Decimal
from typing import Any

import msgpack
import msgspec
import pytest
import trio

from adapters.fake.faults import FaultPlan
from adapters.fake.wire import ApiError
from core.limits import POLLING_INTERVAL_S, RECONNECT_MAX_RETRIES
from core.model import Bar, OrderType, Quote, Side, TimeInForce
from tests.alpaca.world import NS, event, market_order, running_world

LIVE_PATH = ["Connect", "SendAuth", "SendSubscribe", "Resync", "MarkLive"]


def fills_by_execution(updates: list[Any], order_id: str) -> Counter[str]:
    return Counter(u.execution_id for u in updates if u.order.id == order_id and u.event in ("fill", "partial_fill"))


@pytest.mark.parametrize("frames", ["binary", "text"])
async def test_trading_stream_goes_live_and_delivers_new_and_fill(autojump_clock: Any, frames: str) -> None:
    """Alpaca paper sends the trading stream as binary frames (the fake's default); text frames work the same."""
    async with running_world(trading_stream_frames=frames) as w:
        stream = w.trading_stream()
        seen: list[type] = []
        decode = stream.on_frame

        def spy(data: str | bytes) -> Any:
            seen.append(type(data))
            return decode(data)

        stream.on_frame = spy  # type: ignore[method-assign]
        await w.nursery.start(stream.serve, w.collect)
        assert stream.live and stream.commands_log == LIVE_PATH
        order = await w.rest.submit_order(market_order("s-1"))
        await trio.sleep(5)
    assert ("new", order.id) in [(u.event, u.order.id) for u in w.updates]
    assert w.filled_qty_delivered(order.id) == Decimal(10)
    assert seen and set(seen) == {bytes if frames == "binary" else str}
    assert stream.decode_errors == 0


async def test_disconnect_reconnects_resubscribes_and_resyncs(autojump_clock: Any) -> None:
    faults = FaultPlan(events=(event("ws_close", 10, stream="trading", code=1006),))
    async with running_world(faults=faults) as w:
        stream = w.trading_stream()
        await w.nursery.start(stream.serve, w.collect)
        resyncs_before = len(w.requests("GET", "/v2/orders"))
        await trio.sleep(20)
        order = await w.rest.submit_order(market_order("after-reconnect"))
        await trio.sleep(5)
    assert stream.connects == 2 and stream.live
    # immediate retry (no backoff sleep), then the whole handshake again, ending with a REST resync
    assert stream.commands_log == LIVE_PATH + LIVE_PATH
    assert len(w.requests("GET", "/v2/orders")) == resyncs_before + 1
    assert stream.states_log.count("live") == 2
    assert w.filled_qty_delivered(order.id) == Decimal(10)


async def test_disconnect_during_a_fill_recovers_it_exactly_once(autojump_clock: Any) -> None:
    # The socket dies at t=10 and stays refused for 3 s; the order fills while nobody listens.
    faults = FaultPlan(events=(event("ws_close", 10, stream="trading", code=1006, duration_s=3.0),))
    async with running_world(faults=faults, tick_s=0.25) as w:
        stream = w.trading_stream()
        await w.nursery.start(stream.serve, w.collect)
        await trio.sleep(10.5)
        assert not stream.live
        order = await w.rest.submit_order(market_order("during-gap", qty=25))
        await trio.sleep(30)
    assert stream.live and stream.connects >= 3
    assert w.filled_qty_delivered(order.id) == Decimal(25)
    assert all(n == 1 for n in fills_by_execution(w.updates, order.id).values())
    venue_exec = {f.execution_id for f in w.venue.fills if f.order_id == order.id}
    assert set(fills_by_execution(w.updates, order.id)) == venue_exec  # ids from the FILL activities


async def test_lost_partial_fills_are_recovered_from_rest_and_counted_once(autojump_clock: Any) -> None:
    # Half of all trade_updates frames vanish; a 3000-share order fills in many partials over minutes.
    async with running_world(faults=FaultPlan(trade_update_drop_p=0.5), seed=3) as w:
        stream = w.trading_stream()
        await w.nursery.start(stream.serve, w.collect)
        order = await w.rest.submit_order(market_order("big", qty=3000))
        stream.track_order(order)
        await trio.sleep(20 * 60)
    venue_fills = [f for f in w.venue.fills if f.order_id == order.id]
    assert len(venue_fills) >= 4  # really partial
    assert w.filled_qty_delivered(order.id) == sum(f.qty for f in venue_fills) == Decimal(3000)
    delivered = fills_by_execution(w.updates, order.id)
    assert set(delivered) == {f.execution_id for f in venue_fills} and set(delivered.values()) == {1}
    assert stream.tracker.counters.get("synthesized_fill", 0) >= 1  # some came from REST
    levels = [u.order.filled_qty for u in w.updates if u.order.id == order.id and u.event.endswith("fill")]
    assert levels == sorted(levels)  # missing executions are delivered before the one that revealed them


async def test_duplicated_and_reordered_updates_count_each_execution_once(autojump_clock: Any) -> None:
    faults = FaultPlan(trade_update_duplicate_p=0.5, trade_update_reorder_p=0.5)
    async with running_world(faults=faults, seed=5) as w:
        stream = w.trading_stream()
        await w.nursery.start(stream.serve, w.collect)
        order = await w.rest.submit_order(market_order("dupes", qty=2000))
        await trio.sleep(15 * 60)
    assert w.filled_qty_delivered(order.id) == Decimal(2000)
    assert set(fills_by_execution(w.updates, order.id).values()) == {1}
    assert stream.tracker.counters.get("duplicate_fill", 0) >= 1


async def test_api_degradation_polls_every_5s_then_restores_live(autojump_clock: Any) -> None:
    # Every connection is refused (406) for 150 s: retries run out, REST polling takes over, then restore.
    faults = FaultPlan(events=(event("eviction_406", 5, stream="trading", duration_s=150.0),))
    async with running_world(faults=faults) as w:
        stream = w.trading_stream()
        await w.nursery.start(stream.serve, w.collect)
        await trio.sleep(6)
        assert not stream.live
        await trio.sleep(40)
        assert stream.machine.state.value in ("polling", "connecting", "authenticating") and stream.machine.degraded
        order = await w.rest.submit_order(market_order("while-polling"))
        await trio.sleep(POLLING_INTERVAL_S + 0.1)
        assert w.filled_qty_delivered(order.id) == Decimal(10)  # delivered by the poll, not the stream
        await trio.sleep(200)
    assert stream.live and not stream.machine.degraded
    assert "polling" in stream.states_log and stream.states_log[-1] == "live"
    assert stream.commands_log.count("SwitchToPolling") == 1
    assert stream.connects >= 1 + RECONNECT_MAX_RETRIES + 1
    polls_s = [(r.ts_ns - w.venue.request_log[0].ts_ns) / NS for r in w.requests("GET", "/v2/orders")]
    polling = polls_s[1:-1]  # first: the initial resync; last: the resync of the restored stream
    gaps_s = [b - a for a, b in itertools.pairwise(polling)]
    assert len(gaps_s) >= 20 and all(abs(g - POLLING_INTERVAL_S) < 0.01 for g in gaps_s)
    assert w.filled_qty_delivered(order.id) == Decimal(10)  # and not again after the restore


async def test_market_data_bars_and_quotes_are_typed_and_contiguous(autojump_clock: Any) -> None:
    async with running_world() as w:
        stream = w.market_stream()
        await stream.subscribe(bars=["NVDA"], quotes=["NVDA"])
        await w.nursery.start(stream.serve, w.collect_market)
        await trio.sleep(10 * 60)
    bars = [b for b in w.market_items if isinstance(b, Bar)]
    quotes = [q for q in w.market_items if isinstance(q, Quote)]
    assert len(bars) >= 9 and quotes
    assert all(isinstance(b.close, Decimal) and b.symbol == "NVDA" and not b.interpolated for b in bars)
    ts = [b.ts_ns for b in bars]
    assert all(b - a == 60 * NS for a, b in itertools.pairwise(ts))


async def test_market_data_disconnect_resubscribes_everything_and_backfills(autojump_clock: Any) -> None:
    faults = FaultPlan(events=(event("ws_close", 155, stream="data", code=1000, duration_s=200.0),))
    async with running_world(faults=faults) as w:
        stream = w.market_stream()
        await stream.subscribe(bars=["NVDA"])
        await w.nursery.start(stream.serve, w.collect_market)
        await trio.sleep(60)
        await stream.subscribe(bars=["ORCL"], quotes=["ORCL"])  # live add: sent at once
        await trio.sleep(15 * 60)
    assert stream.connects >= 2 and stream.live and "polling" in stream.states_log
    assert stream.commands_log.count("SendSubscribe") == stream.commands_log.count("MarkLive") == 2
    resubscribe = msgpack.unpackb(stream.subscribe_messages()[0])
    assert resubscribe == {"action": "subscribe", "bars": ["NVDA", "ORCL"], "quotes": ["ORCL"]}
    for symbol in ("NVDA", "ORCL"):
        ts = [b.ts_ns for b in w.market_items if isinstance(b, Bar) and b.symbol == symbol]
        assert len(ts) >= 12 and len(set(ts)) == len(ts)
        assert all(b - a == 60 * NS for a, b in itertools.pairwise(ts)), symbol  # no hole, no dupe
    assert any(isinstance(q, Quote) and q.symbol == "ORCL" for q in w.market_items)


async def test_market_data_loss_is_interpolated_with_last_value(autojump_clock: Any) -> None:
    async with running_world(faults=FaultPlan(market_data_drop_p=0.4), seed=2) as w:
        stream = w.market_stream(history=None)
        await stream.subscribe(bars=["NVDA"])
        await w.nursery.start(stream.serve, w.collect_market)
        await trio.sleep(20 * 60)
    bars = [b for b in w.market_items if isinstance(b, Bar)]
    interpolated = [b for b in bars if b.interpolated]
    assert interpolated and stream.bar_gaps.interpolated_count == len(interpolated)
    ts = [b.ts_ns for b in bars]
    assert all(b - a == 60 * NS for a, b in itertools.pairwise(ts))
    for prev, cur in itertools.pairwise(bars):
        if cur.interpolated:
            assert cur.close == cur.open == prev.close and cur.volume == 0


async def test_every_update_lost_a_silent_market_order_is_recovered_once(autojump_clock: Any) -> None:
    async with running_world(faults=FaultPlan(trade_update_drop_p=1.0)) as w:
        stream = w.trading_stream()
        await w.nursery.start(stream.serve, w.collect)
        order = await w.rest.submit_order(market_order("silent", qty=1500))
        stream.track_order(order)  # what the execution layer does with the REST answer
        await trio.sleep(15 * 60)
    assert w.filled_qty_delivered(order.id) == Decimal(1500)
    assert set(fills_by_execution(w.updates, order.id).values()) == {1}
    assert stream.tracker.counters["synthesized_fill"] == len([f for f in w.venue.fills if f.order_id == order.id])


async def _lossy_session(seed: int) -> list[bytes]:
    async with running_world(faults=FaultPlan(trade_update_drop_p=0.3, trade_update_reorder_p=0.3), seed=seed) as w:
        stream = w.trading_stream()
        await w.nursery.start(stream.serve, w.collect)
        order = await w.rest.submit_order(market_order("det", qty=2500))
        stream.track_order(order)
        await trio.sleep(12 * 60)
    return [msgspec.json.encode(u) for u in w.updates]


async def test_same_seed_same_delivered_updates(autojump_clock: Any) -> None:
    first = await _lossy_session(7)
    second = await _lossy_session(7)
    assert first == second and len(first) >= 5


async def test_every_rich_trade_event_decodes_and_reaches_the_consumer(autojump_clock: Any) -> None:
    """trade_events = "full": pending_new, pending_cancel, pending_replace, replaced, order_replace_rejected,
    done_for_day (and new again at the next open) all decode; none is a decode error."""
    async with running_world(trade_events="full") as w:
        stream = w.trading_stream()
        await w.nursery.start(stream.serve, w.collect)
        filled = await w.rest.submit_order(market_order("rich-1"))
        resting = await w.rest.submit_order(market_order("rich-2").__class__(
            client_order_id="rich-2", symbol="NVDA", side=Side.BUY, qty=Decimal(1), type=OrderType.LIMIT,
            time_in_force=TimeInForce.GTC, limit_price=Decimal("1.00")))
        await trio.sleep(1)
        w.venue.book.replace_order(resting.id, {"limit_price": Decimal("1.01")})
        replacement = next(o for o in w.venue.book.orders() if o.replaces == resting.id)
        with pytest.raises(ApiError):  # refused for buying power: order_replace_rejected, the order works on
            w.venue.book.replace_order(replacement.id, {"qty": Decimal(10**9)})
        await w.rest.cancel_order(replacement.id)
        await trio.sleep(61)  # the cancel lands at the venue's next step (the in-process driver ticks per bar)
    seen = {(u.event, u.order.id) for u in w.updates}
    assert {("pending_new", filled.id), ("new", filled.id), ("fill", filled.id)} <= seen
    assert {("pending_replace", resting.id), ("replaced", resting.id)} <= seen
    assert {("pending_replace", replacement.id), ("order_replace_rejected", replacement.id),
            ("pending_cancel", replacement.id), ("canceled", replacement.id)} <= seen
    assert stream.decode_errors == 0
