"""Shared helpers for the market-data and front-end tests: real replay market, venue factory, requests.

Not a test module by itself; pytest collects it but it defines no tests.
"""

from __future__ import annotations

import functools
import json
from decimal import Decimal
from typing import Any

from adapters.fake.calendar import NyseCalendar, ns_at
from adapters.fake.faults import FaultPlan
from adapters.fake.interfaces import MarketSource, RestRequest
from adapters.fake.market_replay import ReplaySource
from adapters.fake.venue import Venue, VenueConfig

NS = 1_000_000_000
MINUTE_NS = 60 * NS
AUTH = {"apca-api-key-id": "key", "apca-api-secret-key": "secret"}
REPLAY_FILES = {"NVDA": "nvda-1999-2014.txt", "ORCL": "orcl-1995-2014.txt", "YHOO": "yhoo-1996-2015.txt"}
OPEN_NS = ns_at("2014-06-02", "09:30")  # a Monday


@functools.cache
def calendar() -> NyseCalendar:
    return NyseCalendar()


def replay(seed: int = 1, bar_interval_s: int = 60, **kwargs: Any) -> ReplaySource:
    return ReplaySource(
        REPLAY_FILES,
        {"NVDA": "semis", "ORCL": "software", "YHOO": "internet"},
        bar_interval_s,
        seed,
        calendar=calendar(),
        **kwargs,
    )


def make_venue(
    *,
    seed: int = 1,
    start_ns: int = OPEN_NS,
    market: MarketSource | None = None,
    faults: FaultPlan | None = None,
    key: str | None = None,
    rate_limit_per_min: int = 0,
) -> Venue:
    config = VenueConfig(
        seed=seed,
        cash_usd=Decimal(100_000),
        faults=faults or FaultPlan(),
        key_id=key,
        secret_key="secret" if key else None,
        rate_limit_per_min=rate_limit_per_min,
    )
    return Venue(config, market=market or replay(seed), calendar=calendar(), start_ns=start_ns)


def get(path: str, headers: dict[str, str] | None = None, **query: str) -> RestRequest:
    return RestRequest("GET", path, dict(query), dict(AUTH if headers is None else headers))


def post(path: str, body: dict[str, Any]) -> RestRequest:
    return RestRequest(
        "POST", path, {}, {**AUTH, "content-type": "application/json"}, json.dumps(body).encode()
    )


def body(response: Any) -> Any:
    return json.loads(response.body) if response.body else None
