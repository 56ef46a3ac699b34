"""Spec 3.2 / 1.4 failure modes against the fake venue's FaultPlan, on virtual time.

429 storms back off and honour X-Ratelimit-Reset without dropping the request; timeouts retry at most 3
times with the same client_order_id and never place a second order; 5xx retry at most 5 times; kill-switch
calls jump the client token bucket.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio

from adapters.alpaca.ratelimit import RateLimiter, TokenBucket
from adapters.alpaca.retry import backoff_s
from adapters.fake.faults import FaultInjector, FaultPlan
from core.limits import SERVER_ERROR_MAX_RETRIES, TIMEOUT_MAX_RETRIES
from core.ports import BrokerUnavailable, DuplicateClientOrderId
from tests.alpaca.world import BASE_URL, CREDS, event, market_order, running_world


async def test_5xx_retries_five_times_with_backoff_then_gives_up(autojump_clock: Any) -> None:
    async with running_world(faults=FaultPlan(rest_5xx_p=1.0)) as w:
        start = trio.current_time()
        with pytest.raises(BrokerUnavailable) as info:
            await w.rest.get_account()
        elapsed = trio.current_time() - start
    assert info.value.status >= 500
    assert len(w.requests("GET", "/v2/account")) == 1 + SERVER_ERROR_MAX_RETRIES
    assert elapsed == pytest.approx(sum(backoff_s(i) for i in range(1, SERVER_ERROR_MAX_RETRIES + 1)))
    assert w.telemetry.counters["alpaca.rest.server_error"] == 1 + SERVER_ERROR_MAX_RETRIES


async def test_5xx_then_recovery_succeeds(autojump_clock: Any) -> None:
    faults = FaultPlan(events=(event("rest_outage", 0.5, duration_s=3.0),))
    async with running_world(faults=faults) as w:
        await trio.sleep(1.0)
        account = await w.rest.get_account()
    statuses = [r.status for r in w.requests("GET", "/v2/account")]
    assert statuses[-1] == 200 and set(statuses[:-1]) == {503} and len(statuses) >= 3
    assert account.cash > 0


async def test_network_timeouts_retry_at_most_3_times_with_the_same_client_order_id(autojump_clock: Any) -> None:
    # Every response is lost after the venue applied the request: the worst ambiguous case.
    async with running_world(faults=FaultPlan(rest_timeout_after_accept_p=1.0, rest_read_timeout_p=1.0)) as w:
        with pytest.raises(BrokerUnavailable):
            await w.rest.submit_order(market_order("ambiguous-1"))
    posts = w.requests("POST", "/v2/orders")
    assert len(posts) == 1 + TIMEOUT_MAX_RETRIES
    assert [p.status for p in posts] == [200] + [422] * TIMEOUT_MAX_RETRIES  # the resends were refused...
    assert [o.client_order_id for o in w.venue.order_log] == ["ambiguous-1"]  # ...so exactly one order exists


def _seed_where_only_the_first_response_is_lost(plan: FaultPlan) -> int:
    """The fault plan draws per request from a seeded RNG: pick the seed whose draws go lost, kept, kept."""
    for seed in range(1, 500):
        injector = FaultInjector(plan, seed=seed, resolve_at_ns=lambda e: 0)
        if [injector.drop_response_after_accept() for _ in range(3)] == [True, False, False]:
            return seed
    raise AssertionError("no seed found")


async def test_ambiguous_timeout_adopts_the_order_that_landed(autojump_clock: Any) -> None:
    plan = FaultPlan(rest_timeout_after_accept_p=0.5)
    async with running_world(faults=plan, seed=_seed_where_only_the_first_response_is_lost(plan)) as w:
        order = await w.rest.submit_order(market_order("landed-1"))
    assert w.telemetry.counters["alpaca.rest.timeout"] == 1  # the answer to the POST was lost
    assert [o.client_order_id for o in w.venue.order_log] == ["landed-1"]
    assert order.id == w.venue.order_log[0].order_id
    assert len(w.requests("POST", "/v2/orders")) == 1  # the GET by client order id found it: no resend
    assert len(w.requests("GET", "/v2/orders:by_client_order_id")) == 1


async def test_first_attempt_duplicate_is_the_callers_bug(autojump_clock: Any) -> None:
    async with running_world() as w:
        await w.rest.submit_order(market_order("dup-1"))
        with pytest.raises(DuplicateClientOrderId):
            await w.rest.submit_order(market_order("dup-1"))


async def test_429_storm_backs_off_and_the_request_eventually_succeeds(autojump_clock: Any) -> None:
    faults = FaultPlan(events=(event("rate_limit_storm", 0.5, duration_s=20.0),))
    async with running_world(faults=faults) as w:
        await trio.sleep(1.0)
        start = trio.current_time()
        order = await w.rest.submit_order(market_order("storm-1"))
        waited = trio.current_time() - start
    posts = w.requests("POST", "/v2/orders")
    assert posts[-1].status == 200 and all(p.status == 429 for p in posts[:-1])
    assert waited >= 19.5 - 1e-6 and len(posts) <= 8  # exponential backoff, not a hot loop
    assert [o.order_id for o in w.venue.order_log] == [order.id]


async def test_429_waits_until_the_reset_header_then_succeeds(autojump_clock: Any) -> None:
    async with running_world(rate_limit_per_min=200) as w:
        # Another process on the same key drains the venue's window (alpaca-wire.md §6: per account).
        async with httpx.AsyncClient(transport=w.front.http_transport(), base_url=BASE_URL,
                                     headers=CREDS.headers()) as other:
            for _ in range(200):
                assert (await other.get("/v2/clock")).status_code == 200
            drained = await other.get("/v2/clock")
        assert drained.status_code == 429
        reset_epoch_s = int(drained.headers["x-ratelimit-reset"])
        clock = await w.rest.get_clock()
        waited_until_s = w.clock.now_ns() / 1e9
    ours = [r.status for r in w.requests("GET", "/v2/clock")][201:]
    assert ours == [429, 200]  # one refusal, one wait, one success: no hammering, nothing dropped
    assert waited_until_s >= reset_epoch_s - 1
    assert clock.is_open


async def test_header_driven_pacing_queues_a_burst_without_429s(autojump_clock: Any) -> None:
    # Our bucket is set far above the venue's 200/min: X-Ratelimit-Remaining=0 is what holds the queue.
    limiter = RateLimiter(TokenBucket.per_minute(10_000))
    async with running_world(rate_limit_per_min=200, limiter=limiter) as w:
        results: list[Any] = []

        async def one() -> None:
            results.append(await w.rest.get_clock())

        async with trio.open_nursery() as nursery:
            for _ in range(260):
                nursery.start_soon(one)
        elapsed = trio.current_time()
    statuses = [r.status for r in w.requests("GET", "/v2/clock")]
    assert len(results) == 260 and statuses == [200] * 260  # every request answered, none refused
    assert elapsed >= 59.0  # the 201st waited for the window


async def test_kill_switch_calls_jump_the_client_queue(autojump_clock: Any) -> None:
    limiter = RateLimiter(TokenBucket(capacity=1, refill_per_s=1.0))
    async with running_world(limiter=limiter) as w, trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(w.rest.get_account)
        await trio.sleep(0.1)
        nursery.start_soon(w.rest.cancel_all_orders)
    paths = [r.path for r in w.venue.request_log]
    assert paths[:2] == ["/v2/account", "/v2/orders"]  # the first account call was already on the wire
    assert paths.count("/v2/account") == 5
