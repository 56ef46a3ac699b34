"""Deterministic market data for the fake venue: real daily bars replayed intraday, or a seeded generator.

Every session of every symbol is precomputed once as integer-cent numpy arrays; lookups are index arithmetic.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import itertools
import os
import zlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from adapters.fake.calendar import (
    NS_PER_DAY,
    ArraySessionCalendar,
    NyseCalendar,
    ns_at,
)
from adapters.fake.interfaces import FakeBar, FakeQuote, MarketSource
from core.model import NS_PER_S

DATA_DIR_ENV = "TTLIVE_MARKET_DATA"
DAY_CACHE_MAX = 256  # precomputed symbol-sessions kept per source (~50 KB each at 60 s bars)
ROUND_LOT = 100  # shares; touch and trade sizes are whole round lots
AVG_TRADE_SIZE_SHARES = 200  # splits a bar's volume into a trade count
TOUCH_FRACTION_OF_BAR_VOLUME = 0.02  # size at each side of the touch, before seeded jitter
FLASH_CRASH_SPREAD_MULT = 5.0  # spreads widen while a flash crash runs


BUNDLED_DATA_DIR = Path(__file__).resolve().parent / "data" / "market"  # the repo's own copy, with its provenance


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


@dataclass(frozen=True, slots=True)
class Regime:
    """A generator regime shift: at ET wall time ``at`` on session ``day`` (0-based; None = every day)."""

    at: str
    kind: Literal["calm", "trend", "flash_crash"]
    size_pct: float = 0.0  # trend: total move in %, signed; flash_crash: depth in %; calm: vol in % of normal
    duration_s: float = 600.0
    day: int | None = None


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


def cents(value: int) -> Decimal:
    return Decimal(int(value)).scaleb(-2)


def _seed_words(seed: int, *parts: str) -> list[int]:
    return [seed & 0xFFFFFFFF, seed >> 32 & 0xFFFFFFFF, *(zlib.crc32(p.encode()) for p in parts)]


def _rng(seed: int, *parts: str) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(_seed_words(seed, *parts))))


# --- one symbol-session, precomputed -------------------------------------------------------------------


class DayPath:
    """One symbol's session as arrays; bar k covers [open + k*interval, open + (k+1)*interval).

    The quote in force during bar k is centred on bar k's open; the tick's trade prints at that open.
    Prices are integer cents, vwap integer 1/10000 dollars.
    """

    __slots__ = (
        "_quotes",
        "ask",
        "ask_size",
        "bar_close",
        "bar_count",
        "bar_high",
        "bar_low",
        "bar_open",
        "bar_volume",
        "bar_vwap",
        "bid",
        "bid_size",
        "close_ns",
        "date",
        "has_bar",
        "interval_ns",
        "n",
        "open_ns",
        "symbol",
        "trade_id_base",
        "trade_size",
    )

    def __init__(
        self,
        *,
        symbol: str,
        date: str,
        open_ns: int,
        interval_ns: int,
        o: NDArray[Any],
        h: NDArray[Any],
        lo: NDArray[Any],
        c: NDArray[Any],
        volume: NDArray[Any],
        has_bar: NDArray[Any],
        rng: np.random.Generator,
        spread_bps: float,
        spread_mult: NDArray[Any] | None = None,
    ) -> None:
        n = len(o)
        assert n > 0 and len(h) == len(lo) == len(c) == len(volume) == n, "bar arrays differ in length"
        self.symbol, self.date, self.n = symbol, date, n
        self.open_ns, self.interval_ns = open_ns, interval_ns
        self.close_ns = open_ns + n * interval_ns
        self.bar_open, self.bar_high, self.bar_low, self.bar_close = o, h, lo, c
        assert bool(np.all(h >= np.maximum(o, c))) and bool(np.all(lo <= np.minimum(o, c))), "bar OHLC broken"
        self.has_bar = has_bar
        self.bar_volume = np.where(has_bar, volume, 0).astype(np.int64)
        count = np.where(self.bar_volume > 0, np.maximum(1, self.bar_volume // AVG_TRADE_SIZE_SHARES), 0)
        self.bar_count = count.astype(np.int64)
        typical = (h + lo + 2 * c) * 25  # (h + l + 2c) / 4 in 1/10000 dollars
        self.bar_vwap = np.clip(typical, lo * 100, h * 100).astype(np.int64)
        # Quotes around the bar open: half-spread of spread_bps/2, at least half a cent, whole cents.
        half = np.maximum(0.5, o * (spread_bps / 2.0 / 10_000.0))
        if spread_mult is not None:
            half = half * spread_mult
        bid = np.floor(o - half + 1e-9).astype(np.int64)
        ask = np.ceil(o + half - 1e-9).astype(np.int64)
        self.bid = np.maximum(1, np.minimum(bid, ask - 1))
        self.ask = np.maximum(ask, self.bid + 1)
        base = np.maximum(volume, ROUND_LOT * 10) * TOUCH_FRACTION_OF_BAR_VOLUME
        jitter = rng.uniform(0.5, 1.5, size=(2, n))
        self.bid_size = (np.maximum(1, np.round(base * jitter[0] / ROUND_LOT)) * ROUND_LOT).astype(np.int64)
        self.ask_size = (np.maximum(1, np.round(base * jitter[1] / ROUND_LOT)) * ROUND_LOT).astype(np.int64)
        per_trade = np.where(count > 0, self.bar_volume // np.maximum(count, 1), 0)
        self.trade_size = np.where(
            self.bar_volume > 0, np.maximum(1, np.round(per_trade / ROUND_LOT)) * ROUND_LOT, 0
        ).astype(np.int64)
        self.trade_id_base = int(date.replace("-", "")) * 1_000_000
        self._quotes: list[FakeQuote | None] = [None] * n

    def tick_ns(self, k: int) -> int:
        return self.open_ns + k * self.interval_ns

    def index_at(self, ts_ns: int) -> int:
        """Bar index in force at ts_ns (caller checks the session bounds)."""
        return (ts_ns - self.open_ns) // self.interval_ns

    def quote(self, k: int) -> FakeQuote:
        q = self._quotes[k]
        if q is None:
            q = FakeQuote(
                symbol=self.symbol,
                bid_price=cents(self.bid[k]),
                ask_price=cents(self.ask[k]),
                bid_size=int(self.bid_size[k]),
                ask_size=int(self.ask_size[k]),
                ts_ns=self.tick_ns(k),
            )
            self._quotes[k] = q
        return q

    def trade(self, k: int) -> FakeTrade | None:
        if not self.has_bar[k]:
            return None
        return FakeTrade(
            symbol=self.symbol,
            price=cents(self.bar_open[k]),
            size=int(self.trade_size[k]),
            ts_ns=self.tick_ns(k),
            trade_id=self.trade_id_base + k,
        )

    def bar(self, k: int) -> FakeBar:
        return FakeBar(
            symbol=self.symbol,
            ts_ns=self.tick_ns(k),
            open=cents(self.bar_open[k]),
            high=cents(self.bar_high[k]),
            low=cents(self.bar_low[k]),
            close=cents(self.bar_close[k]),
            volume=int(self.bar_volume[k]),
            trade_count=int(self.bar_count[k]),
            vwap=Decimal(int(self.bar_vwap[k])).scaleb(-4),
        )

    def daily_bar(self, ts_ns: int, upto: int | None = None) -> FakeBar | None:
        """The session's daily bar from bars [0, upto) (all by default), stamped ts_ns."""
        m = self.n if upto is None else min(upto, self.n)
        idx = np.flatnonzero(self.has_bar[:m])
        if len(idx) == 0:
            return None
        vol = self.bar_volume[idx]
        total = int(vol.sum())
        vwap = (
            round(float((self.bar_vwap[idx] * vol).sum()) / total) if total else int(self.bar_vwap[idx[-1]])
        )
        return FakeBar(
            symbol=self.symbol,
            ts_ns=ts_ns,
            open=cents(self.bar_open[idx[0]]),
            high=cents(self.bar_high[idx].max()),
            low=cents(self.bar_low[idx].min()),
            close=cents(self.bar_close[idx[-1]]),
            volume=total,
            trade_count=int(self.bar_count[idx].sum()),
            vwap=Decimal(vwap).scaleb(-4),
        )


def intraday_from_ohlc(
    o: float, h: float, lo: float, c: float, n: int, rng: np.random.Generator
) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]]:
    """n intraday bars (float prices) whose path runs from o to c and touches h and lo exactly.

    A seeded Brownian bridge through anchors (open, high, low in random order at random interior
    ticks, close), clipped to [lo, h]; each bar adds a small excursion that never passes the extremes.
    """
    h, lo = max(h, o, c), min(lo, o, c)
    if n == 1:
        return np.array([o]), np.array([h]), np.array([lo]), np.array([c])
    pts = np.empty(n + 1)
    interior = np.sort(rng.choice(np.arange(1, n), size=min(2, n - 1), replace=False))
    extremes = [h, lo] if rng.random() < 0.5 else [lo, h]
    anchors = [(0, o)] + [(int(i), extremes[j]) for j, i in enumerate(interior)] + [(n, c)]
    sigma = (h - lo) / np.sqrt(n) * 0.6
    for (i, a), (j, b) in itertools.pairwise(anchors):
        m = j - i
        walk = np.concatenate(([0.0], np.cumsum(rng.standard_normal(m)))) * sigma
        frac = np.arange(m + 1) / m
        pts[i : j + 1] = a + (b - a) * frac + walk - frac * walk[-1]
    pts = np.clip(pts, lo, h)
    bo, bc = pts[:-1], pts[1:]
    wig = rng.exponential(max(sigma, 1e-12) * 0.25, size=(2, n))
    bh = np.minimum(np.maximum(bo, bc) + wig[0], h)
    bl = np.maximum(np.minimum(bo, bc) - wig[1], lo)
    bh[int(np.argmax(bh))] = h
    bl[int(np.argmin(bl))] = lo
    return bo.copy(), bh, bl, bc.copy()


def u_shape_split(total: int, n: int, rng: np.random.Generator) -> NDArray[Any]:
    """Split an integer total over n bars, heavier at open and close, exactly summing to total."""
    if n == 1:
        return np.array([total], dtype=np.int64)
    x = np.linspace(-1.0, 1.0, n)
    w = (1.0 + 1.5 * x * x) * np.exp(0.25 * rng.standard_normal(n))
    raw = w / w.sum() * total
    out: NDArray[np.int64] = np.floor(raw).astype(np.int64)
    rest = int(total - out.sum())
    if rest > 0:
        order = np.argsort(-(raw - out), kind="stable")[:rest]
        out[order] += 1
    return out


def _to_cents(x: NDArray[Any]) -> NDArray[np.int64]:
    out: NDArray[np.int64] = np.maximum(1, np.round(x * 100.0)).astype(np.int64)
    return out


# --- the shared machinery -----------------------------------------------------------------------


class _Window:
    __slots__ = ("from_ns", "kind", "until_ns")

    def __init__(self, kind: str, from_ns: int, until_ns: int) -> None:
        self.kind, self.from_ns, self.until_ns = kind, from_ns, until_ns


class PathSource:
    """MarketSource + TickSource over per-session DayPaths; subclasses list the sessions and build them."""

    def __init__(
        self,
        *,
        symbols: Sequence[str],
        sectors: Mapping[str, str] | None,
        bar_interval_s: int,
        seed: int,
        spread_bps: float,
    ) -> None:
        assert bar_interval_s > 0, "bar_interval_s must be positive"
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"duplicate symbols: {list(symbols)}")
        self._symbols = tuple(symbols)
        self._sectors = dict(sectors or {})
        self._interval_ns = int(bar_interval_s) * NS_PER_S
        self.seed = seed
        self.spread_bps = spread_bps
        self._days: OrderedDict[tuple[str, int], DayPath | None] = OrderedDict()
        self._windows: dict[str, list[_Window]] = {}
        self._latest_query_ns = 0

    # --- subclass hooks --------------------------------------------------------------------------
    def _sessions(self, symbol: str) -> ArraySessionCalendar:
        raise NotImplementedError

    def _build(self, symbol: str, index: int) -> DayPath | None:
        raise NotImplementedError

    def _file_daily_bar(self, symbol: str, index: int) -> FakeBar | None:
        """A complete daily bar known without building the path (replayed files); None = aggregate."""
        return None

    # --- MarketSource ---------------------------------------------------------------------------
    @property
    def symbols(self) -> Sequence[str]:
        return self._symbols

    def bar_interval_ns(self) -> int:
        return self._interval_ns

    def sector(self, symbol: str) -> str:
        return self._sectors.get(symbol, "unknown")

    def quote_at(self, symbol: str, ts_ns: int) -> FakeQuote | None:
        self._latest_query_ns = max(self._latest_query_ns, ts_ns)
        located = self._locate(symbol, ts_ns)
        if located is None:
            return None
        day, k = located
        windows = self._windows.get(symbol)
        if windows:
            for w in windows:
                if w.from_ns <= ts_ns < w.until_ns:
                    if w.kind == "gap":
                        return None
                    frozen = self._locate(symbol, w.from_ns)  # stale: the quote as it was when it froze
                    return frozen[0].quote(frozen[1]) if frozen else None
        return day.quote(k)

    def bars_between(
        self, symbol: str, start_ns: int, end_ns: int, *, limit: int | None = None, descending: bool = False
    ) -> list[FakeBar]:
        """Interval bars whose start is in [start_ns, end_ns)."""
        return self._collect(symbol, start_ns, end_ns, limit, descending, "bar")  # type: ignore[return-value]

    def daily_bars_between(self, symbol: str, start_ns: int, end_ns: int) -> list[FakeBar]:
        """Complete daily bars stamped at ET midnight of their date, for stamps in [start_ns, end_ns)."""
        if symbol not in self._symbols:
            return []
        sessions = self._sessions(symbol)
        out: list[FakeBar] = []
        for date, _open, _close in sessions.sessions_between(start_ns - NS_PER_DAY, end_ns):
            stamp = ns_at(date)
            if not start_ns <= stamp < end_ns:
                continue
            index = sessions.session_index(date)
            assert index is not None
            bar = self._file_daily_bar(symbol, index)
            if bar is None:
                day = self._day(symbol, index)
                bar = day.daily_bar(stamp) if day is not None else None
            if bar is not None:
                out.append(bar)
        return out

    # --- TickSource -----------------------------------------------------------------------------
    def quotes_between(
        self, symbol: str, start_ns: int, end_ns: int, *, limit: int | None = None, descending: bool = False
    ) -> list[FakeQuote]:
        """Quote ticks (one per bar start, unless stale or gapped) with ts in [start_ns, end_ns)."""
        return self._collect(symbol, start_ns, end_ns, limit, descending, "quote")  # type: ignore[return-value]

    def trades_between(
        self, symbol: str, start_ns: int, end_ns: int, *, limit: int | None = None, descending: bool = False
    ) -> list[FakeTrade]:
        return self._collect(symbol, start_ns, end_ns, limit, descending, "trade")  # type: ignore[return-value]

    def latest_quote(self, symbol: str, ts_ns: int) -> FakeQuote | None:
        """The last quote at or before ts_ns, looking back into earlier sessions when closed."""
        if self._locate(symbol, ts_ns) is not None:
            return self.quote_at(symbol, ts_ns)
        got = self.quotes_between(symbol, ts_ns - 14 * NS_PER_DAY, ts_ns + 1, limit=1, descending=True)
        return got[0] if got else None

    def latest_trade(self, symbol: str, ts_ns: int) -> FakeTrade | None:
        got = self.trades_between(symbol, ts_ns - 14 * NS_PER_DAY, ts_ns + 1, limit=1, descending=True)
        return got[0] if got else None

    def daily_bars_asof(self, symbol: str, start_ns: int, end_ns: int, now_ns: int) -> list[FakeBar]:
        """Daily bars stamped in [start_ns, end_ns) as known at now_ns: sessions closed by then, and the
        running bar of a session in progress (from its completed interval bars). No look-ahead."""
        if symbol not in self._symbols:
            return []
        sessions = self._sessions(symbol)
        out: list[FakeBar] = []
        for date, _open, close_ns in sessions.sessions_between(
            start_ns - NS_PER_DAY, min(end_ns + NS_PER_DAY, now_ns)
        ):
            stamp = ns_at(date)
            if not start_ns <= stamp < end_ns:
                continue
            index = sessions.session_index(date)
            assert index is not None
            bar = self._file_daily_bar(symbol, index) if close_ns <= now_ns else None
            if bar is None:
                day = self._day(symbol, index)  # built only for the running or an aggregated session
                if day is not None and day.open_ns <= now_ns:
                    bar = day.daily_bar(stamp, upto=None if day.close_ns <= now_ns else day.index_at(now_ns))
            if bar is not None:
                out.append(bar)
        return out

    def day_path(self, symbol: str, date: str) -> DayPath | None:
        """The precomputed session of symbol on date ('YYYY-MM-DD'), None when it has none."""
        if symbol not in self._symbols:
            return None
        index = self._sessions(symbol).session_index(date)
        return None if index is None else self._day(symbol, index)

    # --- faults ---------------------------------------------------------------------------------
    def set_stale(self, symbol: str, until_ns: int, *, from_ns: int | None = None) -> None:
        """Freeze quotes of symbol ("*" = all) on [from_ns, until_ns): quote_at repeats the quote in
        force at from_ns and no new quote ticks are published. from_ns defaults to the latest
        instant anyone asked this source about (the venue's now)."""
        self._add_window("stale", symbol, self._latest_query_ns if from_ns is None else from_ns, until_ns)

    def set_gap(self, symbol: str, until_ns: int, *, from_ns: int | None = None) -> None:
        """Drop all data of symbol ("*" = all) on [from_ns, until_ns): no quotes, trades or bars."""
        self._add_window("gap", symbol, self._latest_query_ns if from_ns is None else from_ns, until_ns)

    def clear_faults(self) -> None:
        self._windows.clear()

    def _add_window(self, kind: str, symbol: str, from_ns: int, until_ns: int) -> None:
        assert until_ns >= from_ns, "fault window ends before it starts"
        targets = self._symbols if symbol == "*" else (symbol,)
        for s in targets:
            self._windows.setdefault(s, []).append(_Window(kind, from_ns, until_ns))

    def _suppressed(self, symbol: str, ts_ns: int, kind: str) -> bool:
        for w in self._windows.get(symbol, ()):
            if w.from_ns <= ts_ns < w.until_ns and (w.kind == "gap" or kind == "quote"):
                return True
        return False

    # --- internals ------------------------------------------------------------------------------
    def _day(self, symbol: str, index: int) -> DayPath | None:
        key = (symbol, index)
        if key in self._days:
            self._days.move_to_end(key)
            return self._days[key]
        day = self._build(symbol, index)
        self._remember(key, day)
        return day

    def _remember(self, key: tuple[str, int], day: DayPath | None) -> None:
        self._days[key] = day
        self._days.move_to_end(key)
        while len(self._days) > DAY_CACHE_MAX:
            self._days.popitem(last=False)

    def _locate(self, symbol: str, ts_ns: int) -> tuple[DayPath, int] | None:
        if symbol not in self._symbols:
            return None
        index = self._sessions(symbol).session_containing(ts_ns)
        if index is None:
            return None
        day = self._day(symbol, index)
        if day is None or ts_ns >= day.close_ns:
            return None
        return day, day.index_at(ts_ns)

    def _collect(
        self, symbol: str, start_ns: int, end_ns: int, limit: int | None, descending: bool, what: str
    ) -> list[object]:
        if symbol not in self._symbols or end_ns <= start_ns:
            return []
        sessions = self._sessions(symbol).sessions_between(start_ns, end_ns - 1)
        cal = self._sessions(symbol)
        out: list[object] = []
        for date, _open, _close in reversed(sessions) if descending else sessions:
            index = cal.session_index(date)
            assert index is not None
            day = self._day(symbol, index)
            if day is None:
                continue
            lo = max(0, -((day.open_ns - start_ns) // day.interval_ns))  # first k with tick >= start
            hi = min(day.n, -((day.open_ns - end_ns) // day.interval_ns))  # first k with tick >= end
            ks = range(hi - 1, lo - 1, -1) if descending else range(lo, hi)
            for k in ks:
                ts = day.tick_ns(k)
                if self._windows and self._suppressed(symbol, ts, what):
                    continue
                item: object | None
                if what == "quote":
                    item = day.quote(k)
                elif what == "trade":
                    item = day.trade(k)
                else:
                    item = day.bar(k) if day.has_bar[k] else None
                if item is not None:
                    out.append(item)
                    if limit is not None and len(out) >= limit:
                        return out
        return out


# --- replay of the real files ------------------------------------------------------------------------


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
        oc, hc, lc, cc = (int(x) for x in _to_cents(np.array([o, max(h, o, c), min(lo, o, c), c])))
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
        rng = _rng(self.seed, symbol, date)
        n = max(1, (close_ns - open_ns) // self._interval_ns)
        if self._minute[symbol]:
            o, h, lo, c, v, has = self._minute_bars(symbol, date, open_ns, n, rng)
        else:
            do, dh, dl, dc, dv = _read_daily(str(self._paths[symbol]))[date]
            fo, fh, fl, fc = intraday_from_ohlc(do, dh, dl, dc, n, rng)
            o, h, lo, c = _to_cents(fo), _to_cents(fh), _to_cents(fl), _to_cents(fc)
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
        return _to_cents(o), _to_cents(h), _to_cents(lo), _to_cents(c), v, has


# --- seeded generator -------------------------------------------------------------------------------


class GeneratorSource(PathSource):
    """Correlated geometric Brownian motion with sector structure and scripted regime shifts.

    ``correlation`` is one number (pairwise correlation inside a sector; across sectors
    ``cross_sector_correlation``) or a full matrix in symbol order. Sessions follow the calendar from
    ``start_date`` (minus ``history_days`` warm-up sessions); each session's path is seeded by
    (seed, date) and starts at the previous session's close, so any day can be rebuilt alone.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        sectors: Mapping[str, str] | None = None,
        seed: int = 0,
        *,
        drift_bps_per_day: float = 0.0,
        vol_pct_per_day: float = 2.0,
        correlation: float | Sequence[Sequence[float]] = 0.3,
        cross_sector_correlation: float = 0.0,
        spread_bps: float = 2.0,
        regimes: Sequence[Regime] = (),
        bar_interval_s: int = 60,
        start_date: str = "2014-06-02",
        history_days: int = 0,
        start_prices: Mapping[str, Decimal | float] | None = None,
        volume_per_day: int = 2_000_000,
        calendar: ArraySessionCalendar | None = None,
    ) -> None:
        super().__init__(
            symbols=symbols, sectors=sectors, bar_interval_s=bar_interval_s, seed=seed, spread_bps=spread_bps
        )
        if not symbols:
            raise ValueError("GeneratorSource needs at least one symbol")
        if vol_pct_per_day < 0:
            raise ValueError("vol_pct_per_day must be >= 0")
        self._cal = calendar if calendar is not None else NyseCalendar()
        self._drift = drift_bps_per_day / 10_000.0
        self._vol = vol_pct_per_day / 100.0
        self._regimes = tuple(regimes)
        for r in self._regimes:
            dt.time.fromisoformat(r.at)
            if r.kind not in ("calm", "trend", "flash_crash"):
                raise ValueError(f"unknown regime kind {r.kind!r}")
        self._volume = volume_per_day
        self._chol = np.linalg.cholesky(self._correlation(correlation, cross_sector_correlation))
        self._start = self._cal.first_session_on_or_after(start_date)
        self._first = max(0, self._start - history_days)
        prices = dict(start_prices or {})
        self._opening = [np.array([float(prices.get(s, 100.0)) for s in self._symbols])]  # per session
        self._all_days: dict[int, dict[str, DayPath]] = {}

    def _correlation(self, corr: float | Sequence[Sequence[float]], cross: float) -> NDArray[Any]:
        m = len(self._symbols)
        if isinstance(corr, (int, float)):
            mat = np.full((m, m), float(cross))
            for i, a in enumerate(self._symbols):
                for j, b in enumerate(self._symbols):
                    if self.sector(a) == self.sector(b):
                        mat[i, j] = float(corr)
            np.fill_diagonal(mat, 1.0)
        else:
            mat = np.array(corr, dtype=float)
            if mat.shape != (m, m) or not np.allclose(mat, mat.T) or not np.allclose(np.diag(mat), 1.0):
                raise ValueError(f"correlation matrix must be symmetric {m}x{m} with ones on the diagonal")
        if np.any(np.abs(mat) > 1.0) or np.min(np.linalg.eigvalsh(mat)) <= 0:
            raise ValueError("correlation matrix is not positive definite")
        return mat

    def _sessions(self, symbol: str) -> ArraySessionCalendar:
        return self._cal

    def _build(self, symbol: str, index: int) -> DayPath | None:
        if index < self._first:
            return None
        if index not in self._all_days:
            self._all_days = {index: self._build_all(index)}  # one day of all symbols at a time
            for s, day in self._all_days[index].items():
                self._remember((s, index), day)
        return self._all_days[index][symbol]

    def _opening_prices(self, index: int) -> NDArray[Any]:
        """Open of session index = close of the one before; walk forward once, remember the opens."""
        rel = index - self._first
        while len(self._opening) <= rel:
            d = self._first + len(self._opening) - 1
            closes, _ = self._log_path(d, self._opening[-1])
            self._opening.append(np.exp(closes[:, -1]))
        return self._opening[rel]

    def _log_path(self, index: int, opening: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
        """(log prices (m, n+1), spread multiplier (n,)) for session index starting at ``opening``."""
        date, open_ns, close_ns = self._cal.session(index)
        n = max(1, (close_ns - open_ns) // self._interval_ns)
        rng = _rng(self.seed, "generator", date)
        m = len(self._symbols)
        sigma = np.full(n, self._vol / np.sqrt(n))
        mu = np.full(n, self._drift / n - 0.5 * (self._vol**2) / n)
        offset = np.zeros(n + 1)
        spread = np.ones(n)
        day_number = index - self._start
        for r in self._regimes:
            if r.day is not None and r.day != day_number:
                continue
            k0 = (ns_at(date, r.at) - open_ns) // self._interval_ns
            length = max(1, int(r.duration_s * NS_PER_S // self._interval_ns))
            k1 = min(n, k0 + length)
            if k0 >= n or k1 <= 0:
                continue
            k0 = max(0, k0)
            if r.kind == "calm":
                sigma[k0:k1] *= max(0.0, r.size_pct) / 100.0 if r.size_pct else 0.2
            elif r.kind == "trend":
                mu[k0:k1] += np.log1p(r.size_pct / 100.0) / (k1 - k0)
            else:
                depth = np.log1p(-min(abs(r.size_pct), 95.0) / 100.0)
                fall = max(1, (k1 - k0) // 3)
                profile = np.concatenate(
                    (np.linspace(0.0, depth, fall + 1), np.linspace(depth, 0.0, k1 - k0 - fall + 1)[1:])
                )
                offset[k0 : k0 + len(profile)] += profile[: n + 1 - k0]
                spread[k0:k1] = FLASH_CRASH_SPREAD_MULT
        z = rng.standard_normal((m, n))
        steps = mu + sigma * (self._chol @ z)
        logp = np.log(opening)[:, None] + np.concatenate((np.zeros((m, 1)), np.cumsum(steps, axis=1)), axis=1)
        return logp + offset, spread

    def _build_all(self, index: int) -> dict[str, DayPath]:
        date, open_ns, _close_ns = self._cal.session(index)
        logp, spread = self._log_path(index, self._opening_prices(index))
        n = logp.shape[1] - 1
        rng = _rng(self.seed, "generator-bars", date)
        out: dict[str, DayPath] = {}
        for i, symbol in enumerate(self._symbols):
            pts = np.exp(logp[i])
            bo, bc = pts[:-1], pts[1:]
            wig = rng.exponential(np.maximum(pts[:-1], 1e-9) * self._vol / np.sqrt(n) * 0.25, size=(2, n))
            bh = np.maximum(bo, bc) + wig[0]
            bl = np.maximum(np.minimum(bo, bc) - wig[1], np.minimum(bo, bc) * 0.5)
            out[symbol] = DayPath(
                symbol=symbol,
                date=date,
                open_ns=open_ns,
                interval_ns=self._interval_ns,
                o=_to_cents(bo),
                h=_to_cents(bh),
                lo=_to_cents(bl),
                c=_to_cents(bc),
                volume=u_shape_split(self._volume, n, rng),
                has_bar=np.ones(n, dtype=bool),
                rng=rng,
                spread_bps=self.spread_bps,
                spread_mult=spread,
            )
        return out


# --- adapting a plain MarketSource ------------------------------------------------------------------


class SampledTicks:
    """TickSource view of any MarketSource: quote ticks sampled at the bar interval, trades at the mid."""

    def __init__(self, market: MarketSource) -> None:
        self._m = market

    def __getattr__(self, name: str) -> object:
        return getattr(self._m, name)

    @property
    def symbols(self) -> Sequence[str]:
        return self._m.symbols

    def _grid(self, start_ns: int, end_ns: int, descending: bool) -> range:
        step = self._m.bar_interval_ns()
        first = -(-start_ns // step) * step
        if descending:
            last = (end_ns - 1) // step * step
            return range(last, first - 1, -step)
        return range(first, end_ns, step)

    def quotes_between(
        self, symbol: str, start_ns: int, end_ns: int, *, limit: int | None = None, descending: bool = False
    ) -> list[FakeQuote]:
        out: list[FakeQuote] = []
        seen: set[int] = set()
        for ts in self._grid(start_ns, end_ns, descending):
            q = self._m.quote_at(symbol, ts)
            if q is not None and start_ns <= q.ts_ns < end_ns and q.ts_ns not in seen:
                seen.add(q.ts_ns)
                out.append(q)
                if limit is not None and len(out) >= limit:
                    break
        return out

    def trades_between(
        self, symbol: str, start_ns: int, end_ns: int, *, limit: int | None = None, descending: bool = False
    ) -> list[FakeTrade]:
        quotes = self.quotes_between(symbol, start_ns, end_ns, limit=limit, descending=descending)
        return [
            FakeTrade(
                symbol=symbol,
                price=((q.bid_price + q.ask_price) / 2).quantize(Decimal("0.01")),
                size=ROUND_LOT,
                ts_ns=q.ts_ns,
                trade_id=q.ts_ns // NS_PER_S,
            )
            for q in quotes
        ]

    def latest_quote(self, symbol: str, ts_ns: int) -> FakeQuote | None:
        return self._m.quote_at(symbol, ts_ns)

    def latest_trade(self, symbol: str, ts_ns: int) -> FakeTrade | None:
        got = self.trades_between(
            symbol, ts_ns - self._m.bar_interval_ns(), ts_ns + 1, limit=1, descending=True
        )
        return got[0] if got else None

    def bars_between(
        self, symbol: str, start_ns: int, end_ns: int, *, limit: int | None = None, descending: bool = False
    ) -> list[FakeBar]:
        bars = self._m.bars_between(symbol, start_ns, end_ns)
        if descending:
            bars = list(reversed(bars))
        return bars if limit is None else bars[:limit]

    def daily_bars_asof(self, symbol: str, start_ns: int, end_ns: int, now_ns: int) -> list[FakeBar]:
        """Without session knowledge: a daily bar counts once a whole day has passed since its stamp."""
        return [
            b for b in self._m.daily_bars_between(symbol, start_ns, end_ns) if b.ts_ns + NS_PER_DAY <= now_ns
        ]


def ticks(market: MarketSource) -> TickSource:
    """The market as a TickSource (itself when it already is one)."""
    if isinstance(market, PathSource):
        return market
    return SampledTicks(market)  # type: ignore[return-value]


KNOWN_FILES = {  # symbol -> file in the market data directory, for quick starts (`ttlive fake-alpaca --symbols`)
    "NVDA": "nvda-1999-2014.txt",
    "ORCL": "orcl-1995-2014.txt",
    "YHOO": "yhoo-1996-2015.txt",
    "ES": "2006-01-02-volume-min-001.txt",
}


def market_from_spec(
    spec: Any,
    *,
    symbols: Sequence[str],
    sectors: Mapping[str, str],
    seed: int,
    bar_interval_s: int,
    start_date: str,
    calendar: ArraySessionCalendar | None = None,
) -> PathSource:
    """A MarketSource from a scenario's ``[market]`` table (any object with those attributes).

    source = "replay": ``files`` maps symbol -> file (relative to the data dir); symbols without an entry
    use KNOWN_FILES. source = "generator": drift_bps_per_day, vol_pct_per_day, correlation, spread_bps,
    regimes (objects with at, kind, size_pct, duration_s).
    """
    source = getattr(spec, "source", "replay")
    spread_bps = float(getattr(spec, "spread_bps", 2.0))
    if source == "replay":
        files = dict(getattr(spec, "files", {}) or {})
        missing = [s for s in symbols if s not in files and s not in KNOWN_FILES]
        if missing:
            raise ValueError(
                f"no market file for {', '.join(missing)} (known: {', '.join(sorted(KNOWN_FILES))})"
            )
        chosen = {s: files.get(s, KNOWN_FILES.get(s, "")) for s in symbols}
        return ReplaySource(chosen, sectors, bar_interval_s, seed, spread_bps=spread_bps, calendar=calendar)
    if source == "generator":
        regimes = [
            Regime(
                at=r.at,
                kind=r.kind,
                size_pct=float(r.size_pct),
                duration_s=float(r.duration_s),
                day=getattr(r, "day", None),
            )
            for r in getattr(spec, "regimes", ())
        ]
        return GeneratorSource(
            symbols,
            sectors,
            seed,
            drift_bps_per_day=float(getattr(spec, "drift_bps_per_day", 0.0)),
            vol_pct_per_day=float(getattr(spec, "vol_pct_per_day", 2.0)),
            correlation=getattr(spec, "correlation", 0.3),
            spread_bps=spread_bps,
            regimes=regimes,
            bar_interval_s=bar_interval_s,
            start_date=start_date,
            calendar=calendar,
        )
    raise ValueError(f"unknown market source {source!r} (replay | generator)")
