"""The market data every benchmark uses: the minute bars and quotes the fake venue makes from daily files.

One place, so the latency loops, the NautilusTrader comparison and the sim runs all see the same bars.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Final

from adapters.fake.calendar import NyseCalendar, ns_at
from adapters.fake.market import KNOWN_FILES
from adapters.fake.market_replay import ReplaySource
from core.model import NS_PER_S, Bar, Quote

REPLAY_SYMBOLS: Final = ("NVDA", "ORCL", "YHOO")  # the three real daily files in market_data_dir()
SECTORS: Final = {"NVDA": "semiconductors", "ORCL": "software", "YHOO": "internet"}
START_DATE: Final = "2014-06-02"  # a Monday; the replay files cover it
BAR_INTERVAL_S: Final = 60


@functools.cache
def calendar() -> NyseCalendar:
    return NyseCalendar()


@functools.cache
def replay_source(seed: int, symbols: tuple[str, ...] = REPLAY_SYMBOLS) -> ReplaySource:
    """The fake's replay market; ``seed`` shapes the intraday paths (Brownian bridges through each day's
    OHLC), so a comparison must use the seed its simulation runs with."""
    return ReplaySource(
        {s: KNOWN_FILES[s] for s in symbols},
        {s: SECTORS[s] for s in symbols},
        BAR_INTERVAL_S,
        seed,
        calendar=calendar(),
    )


@dataclass(frozen=True, slots=True)
class Session:
    date: str
    open_ns: int
    close_ns: int


def sessions(days: int, start_date: str = START_DATE) -> list[Session]:
    """The first ``days`` NYSE sessions from ``start_date`` on."""
    start_ns = ns_at(start_date, "00:00")
    found = calendar().sessions_between(start_ns, start_ns + (days * 2 + 10) * 86_400 * NS_PER_S)
    chosen = [Session(d, o, c) for d, o, c in found[:days]]
    assert len(chosen) == days, f"only {len(chosen)} sessions found after {start_date}"
    return chosen


def minute_bars(symbol: str, days: int, *, seed: int, start_date: str = START_DATE) -> list[Bar]:
    """The fake venue's one-minute bars for ``symbol`` over ``days`` sessions, as domain Bars (Decimal)."""
    source = replay_source(seed)
    out: list[Bar] = []
    for session in sessions(days, start_date):
        for b in source.bars_between(symbol, session.open_ns, session.close_ns):
            out.append(
                Bar(
                    symbol=b.symbol,
                    open=b.open,
                    high=b.high,
                    low=b.low,
                    close=b.close,
                    volume=Decimal(b.volume),
                    ts_ns=b.ts_ns,
                )
            )
    return out


def quote_at(symbol: str, ts_ns: int, *, seed: int) -> Quote:
    """The fake venue's quote at an instant (it exists at every instant of an open session)."""
    q = replay_source(seed).quote_at(symbol, ts_ns)
    assert q is not None, f"no quote for {symbol} at {ts_ns}"
    return Quote(
        symbol=q.symbol,
        bid_price=q.bid_price,
        ask_price=q.ask_price,
        bid_size=Decimal(q.bid_size),
        ask_size=Decimal(q.ask_size),
        ts_ns=q.ts_ns,
    )


def write_bars_csv(
    path: Path, symbols: tuple[str, ...], days: int, *, seed: int, start_date: str = START_DATE
) -> int:
    """Write the bars for the NautilusTrader side (tools/bench/nautilus_side.py); returns how many."""
    count = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["symbol", "ts_ns", "open", "high", "low", "close", "volume"])
        for symbol in symbols:
            for bar in minute_bars(symbol, days, seed=seed, start_date=start_date):
                writer.writerow(
                    [bar.symbol, bar.ts_ns, bar.open, bar.high, bar.low, bar.close, int(bar.volume)]
                )
                count += 1
    return count
