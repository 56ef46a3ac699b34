"""Real bars replayed by the fake venue: daily files become seeded intraday paths, minute files replay as is."""

from __future__ import annotations

import csv
import functools
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from adapters.fake.calendar import ArraySessionCalendar, NyseCalendar, ns_at
from adapters.fake.interfaces import FakeBar
from adapters.fake.market import market_data_dir
from adapters.fake.market_paths import (
    DayPath,
    PathSource,
    cents,
    intraday_from_ohlc,
    seeded_rng,
    to_cents,
    u_shape_split,
)
from adapters.fake.market_realistic import AVG_TRADE_SIZE_SHARES
from core.model import NS_PER_S


@functools.cache
def _read_daily(path: str) -> dict[str, tuple[float, float, float, float, int]]:
    out: dict[str, tuple[float, float, float, float, int]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        for row in reader:
            out[row["Date"]] = (
                float(row["Open"]),
                float(row["High"]),
                float(row["Low"]),
                float(row["Close"]),
                int(float(row["Volume"])),
            )
    return out


def last_close_before(path: str, date: str) -> float | None:
    """The close of the last trading day before ``date`` (YYYY-MM-DD) in a daily market file: what an account
    that already held the symbol marked it at on the eve of a session."""
    days = [d for d in _read_daily(path) if d < date]
    return _read_daily(path)[max(days)][3] if days else None


@functools.cache
def _read_minutes(path: str) -> dict[str, list[tuple[str, float, float, float, float, int]]]:
    """date -> [(HH:MM:SS bar end, o, h, l, c, volume)] in file order."""
    out: dict[str, list[tuple[str, float, float, float, float, int]]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)  # the header names 7 columns but rows carry 8: Date,Time,O,H,L,C,Volume,OpenInterest
        for row in reader:
            out.setdefault(row[0], []).append(
                (row[1], float(row[2]), float(row[3]), float(row[4]), float(row[5]), int(float(row[6])))
            )
    return out


def _is_minute_file(path: Path) -> bool:
    """Minute files carry a time column after the date (their header does not say so)."""
    with open(path, encoding="utf-8") as f:
        f.readline()
        first = f.readline().split(",")
    return len(first) > 1 and ":" in first[1]


class ReplaySource(PathSource):
    """Real bars from ``market_data_dir()``: daily files become intraday paths, minute files replay as is.

    Daily files: each session's path is a seeded Brownian bridge from the day's open to its close that
    touches its high and low (seeded by (seed, symbol, date)), volume split U-shaped, on the NYSE
    session of that date. Minute files (the 2006 index future): real one-minute bars, times read as
    bar ends in ``minute_tz`` (Eurex hours in Europe/Berlin); other intervals resample those minutes.
    """

    def __init__(
        self,
        files: Mapping[str, str | Path],
        sectors: Mapping[str, str] | None = None,
        bar_interval_s: int = 60,
        seed: int = 0,
        *,
        spread_bps: float = 2.0,
        calendar: ArraySessionCalendar | None = None,
        minute_tz: str = "Europe/Berlin",
    ) -> None:
        super().__init__(
            symbols=list(files),
            sectors=sectors,
            bar_interval_s=bar_interval_s,
            seed=seed,
            spread_bps=spread_bps,
        )
        self._calendar = calendar if calendar is not None else NyseCalendar()
        self._minute_tz = ZoneInfo(minute_tz)
        self._paths: dict[str, Path] = {}
        self._minute: dict[str, bool] = {}
        self._session_cals: dict[str, ArraySessionCalendar] = {}
        for symbol, name in files.items():
            path = Path(name)
            if not path.is_absolute():
                path = market_data_dir() / path
            if not path.exists():
                raise FileNotFoundError(f"market file for {symbol} not found: {path}")
            self._paths[symbol] = path
            self._minute[symbol] = _is_minute_file(path)
            if self._minute[symbol] and (bar_interval_s % 60 and 60 % bar_interval_s):
                raise ValueError(f"bar_interval_s {bar_interval_s} must divide or be a multiple of 60")

    def _sessions(self, symbol: str) -> ArraySessionCalendar:
        cal = self._session_cals.get(symbol)
        if cal is None:
            cal = self._minute_sessions(symbol) if self._minute[symbol] else self._daily_sessions(symbol)
            self._session_cals[symbol] = cal
        return cal

    def _daily_sessions(self, symbol: str) -> ArraySessionCalendar:
        return self._calendar.restricted_to(set(_read_daily(str(self._paths[symbol]))))

    def _minute_sessions(self, symbol: str) -> ArraySessionCalendar:
        days = _read_minutes(str(self._paths[symbol]))
        dates = tuple(sorted(days))
        opens = [ns_at(d, days[d][0][0], self._minute_tz) - 60 * NS_PER_S for d in dates]
        closes = [ns_at(d, days[d][-1][0], self._minute_tz) for d in dates]
        step = self._interval_ns
        opens = [o // step * step for o in opens]
        closes = [-(-c // step) * step for c in closes]
        return ArraySessionCalendar(dates, np.array(opens, dtype=np.int64), np.array(closes, dtype=np.int64))

    def _file_daily_bar(self, symbol: str, index: int) -> FakeBar | None:
        if self._minute[symbol]:
            return None
        date = self._sessions(symbol).session(index)[0]
        o, h, lo, c, v = _read_daily(str(self._paths[symbol]))[date]
        oc, hc, lc, cc = (int(x) for x in to_cents(np.array([o, max(h, o, c), min(lo, o, c), c])))
        count = max(1, v // AVG_TRADE_SIZE_SHARES) if v > 0 else 0
        vwap = min(max((hc + lc + 2 * cc) * 25, lc * 100), hc * 100)
        return FakeBar(
            symbol=symbol,
            ts_ns=ns_at(date),
            open=cents(oc),
            high=cents(hc),
            low=cents(lc),
            close=cents(cc),
            volume=v,
            trade_count=count,
            vwap=Decimal(vwap).scaleb(-4),
        )

    def _build(self, symbol: str, index: int) -> DayPath | None:
        date, open_ns, close_ns = self._sessions(symbol).session(index)
        rng = seeded_rng(self.seed, symbol, date)
        n = max(1, (close_ns - open_ns) // self._interval_ns)
        if self._minute[symbol]:
            o, h, lo, c, v, has = self._minute_bars(symbol, date, open_ns, n, rng)
        else:
            do, dh, dl, dc, dv = _read_daily(str(self._paths[symbol]))[date]
            fo, fh, fl, fc = intraday_from_ohlc(do, dh, dl, dc, n, rng)
            o, h, lo, c = to_cents(fo), to_cents(fh), to_cents(fl), to_cents(fc)
            v, has = u_shape_split(dv, n, rng), np.ones(n, dtype=bool)
        return DayPath(
            symbol=symbol,
            date=date,
            open_ns=open_ns,
            interval_ns=self._interval_ns,
            o=o,
            h=h,
            lo=lo,
            c=c,
            volume=v,
            has_bar=has,
            rng=rng,
            spread_bps=self.spread_bps,
        )

    def _minute_bars(
        self, symbol: str, date: str, open_ns: int, n: int, rng: np.random.Generator
    ) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]]:
        rows = _read_minutes(str(self._paths[symbol]))[date]
        step = self._interval_ns
        sub = max(1, 60 * NS_PER_S // step)  # intervals per minute (>1 when resampling below a minute)
        o = np.zeros(n)
        h = np.zeros(n)
        lo = np.full(n, np.inf)
        c = np.zeros(n)
        v = np.zeros(n, dtype=np.int64)
        has = np.zeros(n, dtype=bool)
        for end, mo, mh, ml, mc, mv in rows:
            start_ns = ns_at(date, end, self._minute_tz) - 60 * NS_PER_S
            k0 = (start_ns - open_ns) // step
            if sub == 1:
                k = k0
                if not 0 <= k < n:
                    continue
                if not has[k]:
                    o[k] = mo
                h[k], lo[k], c[k] = max(h[k], mh), min(lo[k], ml), mc
                v[k] += mv
                has[k] = True
            else:
                so, sh, sl, sc = intraday_from_ohlc(mo, mh, ml, mc, sub, rng)
                sv = u_shape_split(mv, sub, rng)
                for j in range(sub):
                    k = k0 + j
                    if 0 <= k < n:
                        o[k], h[k], lo[k], c[k], v[k], has[k] = so[j], sh[j], sl[j], sc[j], sv[j], True
        # Bars without trades carry the last close forward, so quotes exist all session long.
        first = int(np.argmax(has)) if has.any() else 0
        last = o[first] if has.any() else 0.0
        for k in range(n):
            if has[k]:
                last = c[k]
            else:
                o[k] = h[k] = lo[k] = c[k] = last
        return to_cents(o), to_cents(h), to_cents(lo), to_cents(c), v, has
