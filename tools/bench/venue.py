"""The in-process fake venue wired to the real Alpaca adapter, for benchmarks that submit orders.

Runs on trio's real clock (we time wall cost). The client's token bucket is opened wide and the venue's rate
limit is off: both would otherwise pace a benchmark at Alpaca's 200 requests/minute, which measures nothing.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

import httpx
import trio

from adapters.alpaca.config import Credentials
from adapters.alpaca.ratelimit import RateLimiter, TokenBucket
from adapters.alpaca.rest import AlpacaRest
from adapters.fake.calendar import ns_at
from adapters.fake.inprocess import InProcessVenue
from adapters.fake.venue import Venue, VenueConfig
from tools.bench.data import START_DATE, calendar, replay_source

CREDENTIALS: Final = Credentials(key_id="PKBENCH", secret_key="bench-secret")
BASE_URL: Final = "http://fake-alpaca"
UNLIMITED_PER_S: Final = 1e12
# On trio's real clock the venue fills market orders only at its next bar (a minute away), so orders pile up
# open, and its per-submit work grows with its open orders. Benchmarks of the client start a fresh venue
# every this many orders, so they time the adapter rather than a venue holding thousands of open orders.
ORDERS_PER_VENUE: Final = 500


def venue_blocks(n_orders: int) -> list[range]:
    """Order indexes ``0..n_orders-1`` split into one block per fresh venue."""
    return [
        range(start, min(start + ORDERS_PER_VENUE, n_orders))
        for start in range(0, n_orders, ORDERS_PER_VENUE)
    ]


def unlimited_limiter() -> RateLimiter:
    return RateLimiter(TokenBucket(capacity=UNLIMITED_PER_S, refill_per_s=UNLIMITED_PER_S))


class StampingTransport(httpx.AsyncBaseTransport):
    """Records when a request reaches the transport (the hand-off instant), then lets the venue answer."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.last_arrival_ns = 0
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.last_arrival_ns = time.perf_counter_ns()
        self.requests += 1
        return await self.inner.handle_async_request(request)


class WallClock:
    """``core.ports.Clock`` on the venue's session clock (follows trio's real clock here)."""

    def __init__(self, front: InProcessVenue) -> None:
        self._front = front

    def now_ns(self) -> int:
        return self._front.session_ns()


@dataclass(slots=True)
class VenueWorld:
    venue: Venue
    front: InProcessVenue
    rest: AlpacaRest
    transport: StampingTransport


def make_venue(*, seed: int, cash_usd: Decimal = Decimal(10) ** 12) -> Venue:
    config = VenueConfig(seed=seed, cash_usd=cash_usd, rate_limit_per_min=0)
    start_ns = ns_at(START_DATE, "09:31")
    return Venue(config, market=replay_source(seed), calendar=calendar(), start_ns=start_ns)


@asynccontextmanager
async def venue_world(*, seed: int) -> AsyncIterator[VenueWorld]:
    venue = make_venue(seed=seed)
    front = InProcessVenue(venue)
    async with trio.open_nursery() as nursery:
        await nursery.start(front.serve)
        transport = StampingTransport(front.http_transport())
        rest = AlpacaRest(
            credentials=CREDENTIALS,
            clock=WallClock(front),
            base_url=BASE_URL,
            transport=transport,
            limiter=unlimited_limiter(),
        )
        try:
            yield VenueWorld(venue=venue, front=front, rest=rest, transport=transport)
        finally:
            nursery.cancel_scope.cancel()
            await rest.aclose()
