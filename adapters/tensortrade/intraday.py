"""Intraday training bars: the fake venue's own seeded session paths, rolled to the decision interval.

The live engine decides on decision bars it rolls from the market-data stream's one-minute bars, and in
simulation those minutes are the fake venue's seeded intraday paths of the real daily bars
(``adapters.fake.market_replay.ReplaySource``: a Brownian bridge from each day's open to its close through its
high and low, volume split U-shaped). Training on those same paths, rolled to the same interval the same way
(open of the first minute, high/low over the minutes, close of the last, volume summed), is training on the
timeframe the policy decides on. A different ``path_seed`` draws other paths through the same real days, so
one daily file gives as many intraday dates as training wants.

The result is a ``DailyBars`` whose ``sessions`` mark where each trading day starts: episodes are whole
sessions, and a session's first decisions see the previous sessions' bars (as the engine's warm-up does).
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Final

import numpy as np

from adapters.fake.market import market_data_dir
from adapters.fake.market_replay import ReplaySource
from adapters.policy.contract import timeframe_seconds
from adapters.tensortrade.env import DailyBars, find_data_file
from core.features import OhlcvWindow

MINUTE_S: Final = 60
CENTS: Final = 100.0


def _file_dates(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as f:
        return sorted(row["Date"] for row in csv.DictReader(f))


def load_session_bars(
    symbol: str,
    *,
    first: str,
    last: str,
    interval_s: int = 300,
    path_seed: int = 0,
    data_dir: Path | None = None,
) -> DailyBars:
    """Every NYSE session of ``symbol`` in [first, last] (YYYY-MM-DD), as the fake venue generates its minutes
    at ``path_seed``, rolled to ``interval_s`` bars. Prices in dollars as the file states them (the venue trades
    the file's prices: no dividend adjustment intraday)."""
    if interval_s % MINUTE_S:
        raise ValueError(f"interval_s must be whole minutes, got {interval_s}")
    path = find_data_file(symbol, data_dir if data_dir is not None else market_data_dir())
    source = ReplaySource({symbol: path}, bar_interval_s=MINUTE_S, seed=path_seed)
    group = interval_s // MINUTE_S
    columns: list[list[np.ndarray]] = [[], [], [], [], []]
    ends: list[np.ndarray] = []
    starts: list[int] = []
    count = 0
    for date in _file_dates(path):
        if not first <= date <= last:
            continue
        day = source.day_path(symbol, date)
        if day is None:  # a file date the NYSE calendar does not open (bad rows): the venue skips it too
            continue
        n = day.n // group
        if n == 0:
            continue
        cut = n * group
        o = day.bar_open[:cut].reshape(n, group)
        h = day.bar_high[:cut].reshape(n, group)
        lo = day.bar_low[:cut].reshape(n, group)
        c = day.bar_close[:cut].reshape(n, group)
        v = day.bar_volume[:cut].reshape(n, group)
        columns[0].append(o[:, 0] / CENTS)
        columns[1].append(h.max(axis=1) / CENTS)
        columns[2].append(lo.min(axis=1) / CENTS)
        columns[3].append(c[:, -1] / CENTS)
        columns[4].append(v.sum(axis=1).astype(np.float64))
        ends.append(day.open_ns + (np.arange(1, n + 1) * group * day.interval_ns))
        starts.append(count)
        count += n
    if not starts:
        raise ValueError(f"{symbol}: no sessions between {first} and {last} in {path.name}")
    bars = OhlcvWindow(*(np.concatenate(col).astype(np.float64) for col in columns))
    stamps = np.concatenate(ends).astype("datetime64[ns]").astype("datetime64[m]")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return DailyBars(symbol.upper(), stamps, bars, str(path), digest, sessions=np.array(starts, dtype=np.int64),
                     timeframe=f"{interval_s // MINUTE_S}Min")


__all__ = ["load_session_bars", "timeframe_seconds"]
