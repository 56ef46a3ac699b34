"""Deterministic market data for the fake venue: where the market files live, and what every source shares.

The sources: ``market_replay`` (real bars replayed intraday), ``market_generator`` (a seeded generator), both
built on ``market_paths``; ``market_ticks`` adapts any MarketSource for the data front-ends, ``market_spec``
picks a source from a scenario's ``[market]`` table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from adapters.fake.interfaces import FakeBar, FakeQuote, MarketSource

DATA_DIR_ENV = "TTLIVE_MARKET_DATA"
BUNDLED_DATA_DIR = Path(__file__).resolve().parent / "data" / "market"  # the repo's own copy, with its provenance
KNOWN_FILES = {  # symbol -> file in the market data directory, for quick starts (`ttlive fake-alpaca --symbols`)
    "NVDA": "nvda-1999-2014.txt",
    "ORCL": "orcl-1995-2014.txt",
    "YHOO": "yhoo-1996-2015.txt",
    "ES": "2006-01-02-volume-min-001.txt",
}


def market_data_dir() -> Path:
    """Where market files are read from: $TTLIVE_MARKET_DATA, or the copy that ships in the repository (the one
    place that decides; scenarios, training, backtests and benchmarks all ask here)."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env)
    return BUNDLED_DATA_DIR


@dataclass(frozen=True, slots=True)
class FakeTrade:
    symbol: str
    price: Decimal
    size: int
    ts_ns: int
    trade_id: int


class TickSource(MarketSource, Protocol):
    """What the data front-ends use beyond MarketSource; ``ticks(market)`` adapts a plain MarketSource."""

    def quotes_between(
        self, symbol: str, start_ns: int, end_ns: int, *, limit: int | None = None, descending: bool = False
    ) -> list[FakeQuote]: ...
    def trades_between(
        self, symbol: str, start_ns: int, end_ns: int, *, limit: int | None = None, descending: bool = False
    ) -> list[FakeTrade]: ...
    def latest_quote(self, symbol: str, ts_ns: int) -> FakeQuote | None: ...
    def latest_trade(self, symbol: str, ts_ns: int) -> FakeTrade | None: ...
    def bars_between(
        self, symbol: str, start_ns: int, end_ns: int, *, limit: int | None = None, descending: bool = False
    ) -> list[FakeBar]: ...
    def daily_bars_asof(self, symbol: str, start_ns: int, end_ns: int, now_ns: int) -> list[FakeBar]: ...
