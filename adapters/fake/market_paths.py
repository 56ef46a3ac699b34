"""The machinery under every fake market source: one symbol-session precomputed as arrays, and the source
that serves quotes, trades and bars from a cache of them (with stale and gap fault windows).

Every session of every symbol is precomputed once as integer-cent numpy arrays; lookups are index arithmetic.
"""

from __future__ import annotations

import itertools
import zlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray

from adapters.fake.calendar import NS_PER_DAY, ArraySessionCalendar, ns_at
from adapters.fake.interfaces import FakeBar, FakeQuote
from adapters.fake.market import FakeTrade
from adapters.fake.market_realistic import (  # one home for the print and lot sizes, shared with the ticks
    AVG_TRADE_SIZE_SHARES,
    ROUND_LOT,
    TICK_MODES,
    TICK_RATE_RANGE,
    TickDay,
    generate,
)
from core.model import NS_PER_S

DAY_CACHE_MAX = 256  # precomputed symbol-sessions kept per source (~50 KB each at 60 s bars)
TICK_CACHE_MAX = 12  # realistic tick days kept per source (a few MB each); rebuilt identically when dropped
TOUCH_FRACTION_OF_BAR_VOLUME = 0.02  # size at each side of the touch, before seeded jitter


def cents(value: int) -> Decimal:
    return Decimal(int(value)).scaleb(-2)


def _seed_words(seed: int, *parts: str) -> list[int]:
    return [seed & 0xFFFFFFFF, seed >> 32 & 0xFFFFFFFF, *(zlib.crc32(p.encode()) for p in parts)]


def seeded_rng(seed: int, *parts: str) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(_seed_words(seed, *parts))))


# --- one symbol-session, precomputed ---------------------------------------------------------------------


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
        "realistic",
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
        self.realistic = False  # bar_count/bar_vwap come from realistic ticks (PathSource.set_ticks)

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


def to_cents(x: NDArray[Any]) -> NDArray[np.int64]:
    out: NDArray[np.int64] = np.maximum(1, np.round(x * 100.0)).astype(np.int64)
    return out


# --- the shared machinery --------------------------------------------------------------------------------


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
        self._tick_rate: float | None = None  # None: one quote and one trade per bar ("bar" ticks)
        self._tick_days: OrderedDict[tuple[str, str], TickDay] = OrderedDict()

    def set_ticks(self, mode: str, rate: float = 1.0) -> None:
        """``"bar"``: one quote and one trade per bar, at its open (the default). ``"realistic"``: quotes and
        trades between bars (adapters.fake.market_realistic), ``rate`` scaling their arrival rates. Choose
        before the first lookup."""
        if mode not in TICK_MODES:
            raise ValueError(f"unknown ticks mode {mode!r} ({' | '.join(TICK_MODES)})")
        if not TICK_RATE_RANGE[0] <= rate <= TICK_RATE_RANGE[1]:
            raise ValueError(f"tick_rate must be in [{TICK_RATE_RANGE[0]:g}, {TICK_RATE_RANGE[1]:g}], got {rate!r}")
        assert not self._days, "choose the tick mode before the market is read"
        self._tick_rate = rate if mode == "realistic" else None

    @property
    def realistic_ticks(self) -> bool:
        return self._tick_rate is not None

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
                    return self._quote_in_force(frozen[0], frozen[1], w.from_ns) if frozen else None
        if day.realistic:
            return self._quote_in_force(day, k, ts_ns)
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

    # --- realistic ticks --------------------------------------------------------------------------
    def next_tick_ns(self, after_ns: int) -> int | None:
        """The first quote or trade of any symbol after ``after_ns`` in the sessions in progress then; None
        with bar ticks (the bar boundaries are the only instants) or outside every session."""
        if self._tick_rate is None:
            return None
        best: int | None = None
        for symbol in self._symbols:
            located = self._locate(symbol, after_ns)
            if located is None:
                continue
            td = self._tick_day(located[0])
            for stamps in (td.quote_ns, td.trade_ns):
                i = int(np.searchsorted(stamps, after_ns, side="right"))
                if i < len(stamps) and (best is None or int(stamps[i]) < best):
                    best = int(stamps[i])
        return best

    def _tick_day(self, day: DayPath) -> TickDay:
        key = (day.symbol, day.date)
        td = self._tick_days.get(key)
        if td is not None:
            self._tick_days.move_to_end(key)
            return td
        assert self._tick_rate is not None
        td = generate(day, seeded_rng(self.seed, "ticks", day.symbol, day.date), self._tick_rate)
        self._tick_days[key] = td
        while len(self._tick_days) > TICK_CACHE_MAX:
            self._tick_days.popitem(last=False)
        return td

    def _quote_in_force(self, day: DayPath, k: int, ts_ns: int) -> FakeQuote:
        if not day.realistic:
            return day.quote(k)
        td = self._tick_day(day)
        return _tick_quote(day, td, int(np.searchsorted(td.quote_ns, ts_ns, side="right")) - 1)

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
        if self._tick_rate is not None and day is not None and not day.realistic:
            td = self._tick_day(day)  # the bars' n and vw become those of their prints
            day.bar_count, day.bar_vwap, day.realistic = td.bar_count, td.bar_vwap, True
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
            if day.realistic and what != "bar":
                if self._collect_ticks(day, symbol, start_ns, end_ns, limit, descending, what, out):
                    return out
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

    def _collect_ticks(
        self,
        day: DayPath,
        symbol: str,
        start_ns: int,
        end_ns: int,
        limit: int | None,
        descending: bool,
        what: str,
        out: list[object],
    ) -> bool:
        """Append the day's quotes or trades stamped in [start_ns, end_ns) to out; True once limit is reached."""
        td = self._tick_day(day)
        stamps = td.quote_ns if what == "quote" else td.trade_ns
        lo = int(np.searchsorted(stamps, start_ns, side="left"))
        hi = int(np.searchsorted(stamps, end_ns, side="left"))
        for i in range(hi - 1, lo - 1, -1) if descending else range(lo, hi):
            if self._windows and self._suppressed(symbol, int(stamps[i]), what):
                continue
            out.append(_tick_quote(day, td, i) if what == "quote" else _tick_trade(day, td, i))
            if limit is not None and len(out) >= limit:
                return True
        return False


def _tick_quote(day: DayPath, td: TickDay, i: int) -> FakeQuote:
    return FakeQuote(
        symbol=day.symbol,
        bid_price=cents(td.bid[i]),
        ask_price=cents(td.ask[i]),
        bid_size=int(td.bid_size[i]),
        ask_size=int(td.ask_size[i]),
        ts_ns=int(td.quote_ns[i]),
    )


def _tick_trade(day: DayPath, td: TickDay, i: int) -> FakeTrade:
    return FakeTrade(
        symbol=day.symbol,
        price=cents(td.trade_px[i]),
        size=int(td.trade_size[i]),
        ts_ns=int(td.trade_ns[i]),
        trade_id=day.trade_id_base + i,
    )
