"""A fake Alpaca venue behind its in-process front-end, wired to the real adapter (not a test module).

Everything runs on trio's MockClock: the venue clock follows trio time, the adapter's clock reads the venue's.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import trio

from adapters.alpaca.config import Credentials
from adapters.alpaca.ratelimit import RateLimiter, TokenBucket
from adapters.alpaca.rest import AlpacaData, AlpacaRest
from adapters.alpaca.streams import MarketDataStream, TradingStream
from adapters.alpaca.telemetry import LatencyTelemetry
from adapters.fake.calendar import NyseCalendar, ns_at
from adapters.fake.faults import FaultEvent, FaultPlan
from adapters.fake.inprocess import InProcessVenue
from adapters.fake.market_replay import ReplaySource
from adapters.fake.venue import Venue, VenueConfig
from core.model import OrderRequest, OrderType, Side, TimeInForce, TradeUpdate

NS = 1_000_000_000
OPEN_NS = ns_at("2014-06-02", "09:30")  # a Monday
CREDS = Credentials(key_id="PKTEST", secret_key="not-a-real-secret")
BASE_URL = "http://fake-alpaca"


@functools.cache
def calendar() -> NyseCalendar:
    return NyseCalendar()


@functools.cache
def market(seed: int = 1) -> ReplaySource:
    return ReplaySource(
        {"NVDA": "nvda-1999-2014.txt", "ORCL": "orcl-1995-2014.txt"},
        {"NVDA": "semis", "ORCL": "software"},
        60,
        seed,
        calendar=calendar(),
    )


def make_venue(*, faults: FaultPlan | None = None, seed: int = 1, rate_limit_per_min: int = 0,
               start_ns: int = OPEN_NS + 60 * NS, venue_secret: str | None = None,
               trading_stream_frames: str = "binary", trade_events: str = "basic") -> Venue:
    """``venue_secret`` set: the venue accepts only CREDS.key_id with that secret."""
    config = VenueConfig(seed=seed, cash_usd=Decimal(1_000_000), faults=faults or FaultPlan(),
                         rate_limit_per_min=rate_limit_per_min,
                         key_id=CREDS.key_id if venue_secret else None, secret_key=venue_secret,
                         trading_stream_frames=trading_stream_frames, trade_events=trade_events)
    return Venue(config, market=market(seed), calendar=calendar(), start_ns=start_ns)


def event(kind: str, at_s: float, **params: Any) -> FaultEvent:
    """A timed fault ``at_s`` seconds after the world's start."""
    return FaultEvent(kind=kind, at_ns=OPEN_NS + 60 * NS + int(at_s * NS), **params)


def market_order(coid: str, qty: int = 10, symbol: str = "NVDA", side: Side = Side.BUY) -> OrderRequest:
    return OrderRequest(client_order_id=coid, symbol=symbol, side=side, qty=Decimal(qty),
                        type=OrderType.MARKET, time_in_force=TimeInForce.DAY)


class VenueClock:
    """``core.ports.Clock`` on the venue's session clock (the same mapping the front-end uses)."""

    def __init__(self, front: InProcessVenue) -> None:
        self._front = front

    def now_ns(self) -> int:
        return self._front.session_ns()


@dataclass
class World:
    venue: Venue
    front: InProcessVenue
    clock: VenueClock
    rest: AlpacaRest
    data: AlpacaData
    telemetry: LatencyTelemetry
    nursery: trio.Nursery
    updates: list[TradeUpdate] = field(default_factory=list)
    market_items: list[Any] = field(default_factory=list)

    def trading_stream(self, **kwargs: Any) -> TradingStream:
        return TradingStream(rest=self.rest, url="ws://fake-alpaca/stream", credentials=CREDS, clock=self.clock,
                             ws_connect=self.front.open_websocket, monitor=self.telemetry, **kwargs)

    def market_stream(self, **kwargs: Any) -> MarketDataStream:
        kwargs.setdefault("history", self.data)
        return MarketDataStream(url="ws://fake-alpaca/v2/iex", credentials=CREDS, clock=self.clock,
                                ws_connect=self.front.open_websocket, monitor=self.telemetry, **kwargs)

    async def collect(self, update: TradeUpdate) -> None:
        self.updates.append(update)

    async def collect_market(self, item: Any) -> None:
        self.market_items.append(item)

    def filled_qty_delivered(self, order_id: str) -> Decimal:
        return sum((u.qty or Decimal(0) for u in self.updates
                    if u.order.id == order_id and u.event in ("fill", "partial_fill")), Decimal(0))

    def requests(self, method: str, path: str) -> list[Any]:
        return [r for r in self.venue.request_log if r.method == method and r.path == path]


async def _tick(front: InProcessVenue, tick_s: float) -> None:
    while True:
        await trio.sleep(tick_s)
        front.sync()


@asynccontextmanager
async def running_world(*, faults: FaultPlan | None = None, seed: int = 1, rate_limit_per_min: int = 0,
                        limiter: RateLimiter | None = None, tick_s: float | None = None,
                        venue_secret: str | None = None, trading_stream_frames: str = "binary",
                        trade_events: str = "basic") -> AsyncIterator[World]:
    """``tick_s`` keeps the venue clock current between requests. Needed for short timed faults: the fake
    opens a stream session (and decides a refusal) before it brings its clock up to now, so without
    ticks a 3 s refusal window lasts until the next bar boundary (inprocess.VenueDriver.run_session)."""
    venue = make_venue(faults=faults, seed=seed, rate_limit_per_min=rate_limit_per_min, venue_secret=venue_secret,
                       trading_stream_frames=trading_stream_frames, trade_events=trade_events)
    front = InProcessVenue(venue)
    telemetry = LatencyTelemetry()
    clock = VenueClock(front)
    async with trio.open_nursery() as nursery:
        await nursery.start(front.serve)
        if tick_s is not None:
            nursery.start_soon(_tick, front, tick_s)
        transport = front.http_transport()
        rest = AlpacaRest(credentials=CREDS, clock=clock, base_url=BASE_URL, transport=transport,
                          monitor=telemetry, limiter=limiter or RateLimiter(TokenBucket.per_minute()))
        data = AlpacaData(credentials=CREDS, clock=clock, base_url=BASE_URL, transport=transport,
                          monitor=telemetry)
        world = World(venue=venue, front=front, clock=clock, rest=rest, data=data, telemetry=telemetry,
                      nursery=nursery)
        try:
            yield world
        finally:
            nursery.cancel_scope.cancel()
            await rest.aclose()
            await data.aclose()
