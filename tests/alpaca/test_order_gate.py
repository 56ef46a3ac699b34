"""The order gate (issue 15): once the kill switch latches, no order-creating request leaves the adapter.

The gate is asked before every attempt, after the rate limiter: a 429 or 5xx retry, or a ticket that waited in the
queue, is not sent once it closes. An attempt that already went out is never re-POSTed; the caller is told it was
sent (resolve by client_order_id), or that nothing left at all.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from adapters.fake.faults import FaultPlan
from core.ports import OrderGateClosed
from tests.alpaca.world import event, market_order, running_world


class Gate:
    """Open until ``close_after_s`` of virtual time have passed since it was made."""

    def __init__(self, close_after_s: float) -> None:
        self.closes_at = trio.current_time() + close_after_s
        self.asked = 0
        self.opened = 0  # answers "open": each may be followed by one attempt, and no more

    def __call__(self) -> bool:
        self.asked += 1
        is_open = trio.current_time() < self.closes_at
        self.opened += is_open
        return is_open


async def test_closed_gate_sends_nothing(autojump_clock: Any) -> None:
    async with running_world() as w:
        with pytest.raises(OrderGateClosed) as info:
            await w.rest.submit_order(market_order("gated-1"), gate=lambda: False)
    assert info.value.sent is False
    assert w.requests("POST", "/v2/orders") == [] and w.venue.order_log == []


async def test_gate_closing_during_a_429_storm_stops_the_retries(autojump_clock: Any) -> None:
    faults = FaultPlan(events=(event("rate_limit_storm", 0.5, duration_s=60.0),))
    async with running_world(faults=faults) as w:
        await trio.sleep(1.0)
        gate = Gate(close_after_s=5.0)
        with pytest.raises(OrderGateClosed) as info:
            await w.rest.submit_order(market_order("storm-gated"), gate=gate)
        stopped_at = trio.current_time()
    posts = w.requests("POST", "/v2/orders")
    assert posts and all(p.status == 429 for p in posts)  # refused, not processed: nothing landed
    assert w.venue.order_log == []
    assert info.value.sent is True  # attempts went out: the caller looks it up rather than assuming
    assert gate.asked == len(posts) + 1  # asked before each attempt, and once more when it refused
    assert stopped_at - gate.closes_at < 30.0  # stopped at the next attempt, not after the storm


async def test_gate_closing_during_5xx_retries_never_resends(autojump_clock: Any) -> None:
    async with running_world(faults=FaultPlan(rest_5xx_p=1.0)) as w:
        gate = Gate(close_after_s=2.5)
        with pytest.raises(OrderGateClosed):
            await w.rest.submit_order(market_order("5xx-gated"), gate=gate)
    posts = w.requests("POST", "/v2/orders")
    # Each POST followed an "open"; the landed-check between attempts (GETs, also failing) outlasted the gate.
    assert len(posts) == gate.opened >= 1 and gate.asked == gate.opened + 1
    assert w.venue.order_log == []


async def test_an_open_gate_changes_nothing(autojump_clock: Any) -> None:
    async with running_world() as w:
        gate = Gate(close_after_s=3600.0)
        order = await w.rest.submit_order(market_order("open-1"), gate=gate)
    assert gate.asked == 1
    assert [o.order_id for o in w.venue.order_log] == [order.id]
