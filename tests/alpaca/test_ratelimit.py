"""Client token bucket: pacing on virtual time, kill-switch priority, 429 pauses, no request dropped."""

from __future__ import annotations

import trio

from adapters.alpaca.ratelimit import Priority, RateLimiter, TokenBucket
from adapters.alpaca.retry import MAX_RETRIES, Failure, RetryBudget, backoff_s
from core.limits import RATE_LIMIT_MAX_WAIT_S, RETRY_BACKOFF_CEILING_S, SERVER_ERROR_MAX_RETRIES, TIMEOUT_MAX_RETRIES


def test_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(capacity=2, refill_per_s=1.0)
    assert bucket.take(0.0) == 0.0 and bucket.take(0.0) == 0.0
    assert bucket.take(0.0) == 1.0  # empty: one second to the next token
    assert bucket.take(0.5) == 0.5
    assert bucket.take(1.0) == 0.0


def test_bucket_pause_blocks_until_reset() -> None:
    bucket = TokenBucket(capacity=10, refill_per_s=10.0)
    bucket.pause_until(5.0)
    assert bucket.take(1.0) == 4.0
    assert bucket.take(5.0) == 0.0


async def test_limiter_paces_190_per_minute(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(TokenBucket.per_minute(190))
    start = trio.current_time()
    for _ in range(190 + 19):
        await limiter.acquire()
    # 190 burst, then 19 more at 190/60 per second = 6 s
    assert abs(trio.current_time() - start - 6.0) < 1e-6


async def test_kill_switch_calls_jump_the_queue(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(TokenBucket(capacity=1, refill_per_s=1.0))
    order: list[str] = []
    await limiter.acquire()  # drain the bucket

    async def request(name: str, priority: Priority, delay_s: float) -> None:
        await trio.sleep(delay_s)
        await limiter.acquire(priority)
        order.append(name)

    async with trio.open_nursery() as nursery:
        for i in range(5):
            nursery.start_soon(request, f"data{i}", Priority.NORMAL, 0.01 * i)
        nursery.start_soon(request, "cancel_all", Priority.KILL_SWITCH, 0.1)
    # data0 was waiting for the refill since t=0, yet the cancel (t=0.1) gets the next token
    assert order[0] == "cancel_all"
    assert order[1:] == [f"data{i}" for i in range(5)]  # FIFO among equals
    assert sorted(order) == sorted([*(f"data{i}" for i in range(5)), "cancel_all"])  # nobody dropped
    assert limiter.queue_depth == 0 and limiter.max_queue_depth == 6


async def test_cancelled_waiter_leaves_the_queue(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(TokenBucket(capacity=1, refill_per_s=0.1))
    await limiter.acquire()
    with trio.move_on_after(1.0):
        await limiter.acquire()
    assert limiter.queue_depth == 0
    await limiter.acquire()  # the next caller is not blocked by the ghost
    assert trio.current_time() >= 10.0


def test_retry_budget_matches_spec_matrix() -> None:
    assert MAX_RETRIES[Failure.TIMEOUT] == TIMEOUT_MAX_RETRIES == 3
    assert MAX_RETRIES[Failure.SERVER_ERROR] == SERVER_ERROR_MAX_RETRIES == 5
    budget = RetryBudget()
    delays = [budget.next_delay_s(Failure.SERVER_ERROR) for _ in range(6)]
    assert delays[-1] is None and all(d is not None for d in delays[:5])
    assert delays[:5] == sorted(delays[:5])  # exponential, non-decreasing
    assert backoff_s(50) == RETRY_BACKOFF_CEILING_S


def test_rate_limited_delay_honours_reset_but_is_capped() -> None:
    budget = RetryBudget()
    assert budget.next_delay_s(Failure.RATE_LIMITED, reset_in_s=12.0) == 12.0
    assert budget.next_delay_s(Failure.RATE_LIMITED, reset_in_s=None) == backoff_s(2)
    assert budget.next_delay_s(Failure.RATE_LIMITED, reset_in_s=10_000.0) == RATE_LIMIT_MAX_WAIT_S
