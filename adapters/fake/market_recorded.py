"""Recorded bars replayed by the fake venue: the market a captured session saw (``ttlive replay``, issue 22).

One CSV per symbol, ``ts_ns,open,high,low,close,volume`` (bar start, UTC epoch ns; prices in dollars), as
``tools.replay`` writes it from a capture. Each session of the calendar becomes a DayPath with the recorded
bars where they were recorded; between them the last recorded close carries forward with no bar (no trade,
quotes still quoted), so the venue's quotes and fills follow the bars the session received. Quotes are built
from the bars exactly as every fake market builds them (``market_paths.DayPath``).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np

from adapters.fake.calendar import ArraySessionCalendar
from adapters.fake.market_paths import DayPath, PathSource, seeded_rng

BAR_COLUMNS = ("ts_ns", "open", "high", "low", "close", "volume", "bid", "ask", "bid_size", "ask_size")
Row = tuple[int, tuple[int, int, int, int, int] | None, tuple[int, int, int, int] | None]


class RecordedBarsError(ValueError):
    """A recorded-bars file that cannot be replayed; the message names the file and line."""


def _cents(text: str) -> int:
    return int((Decimal(text) * 100).to_integral_value())


def read_bars(path: Path) -> list[Row]:
    """(ts_ns, bar (o, h, l, c cents, volume) or None, quote (bid, ask cents, sizes) or None), sorted by time.
    A row is one bar interval (ts_ns its start): the bar received for it and/or the last quote heard in it."""
    rows: list[Row] = []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None or tuple(header) != BAR_COLUMNS:
                raise RecordedBarsError(f"{path}: line 1: expected the header {','.join(BAR_COLUMNS)}")
            for line_no, row in enumerate(reader, start=2):
                try:
                    ts, o, h, lo, c, v, bp, ap, bs, az = row
                    bar = (_cents(o), _cents(h), _cents(lo), _cents(c), int(v)) if o else None
                    quote = (_cents(bp), _cents(ap), int(bs), int(az)) if bp else None
                    item: Row = (int(ts), bar, quote)
                except (ValueError, InvalidOperation):
                    raise RecordedBarsError(f"{path}: line {line_no}: expected {len(BAR_COLUMNS)} columns of "
                                            f"numbers (bar or quote columns may be empty), got {row!r}") from None
                if bar is not None and not (bar[1] >= max(bar[0], bar[3]) and 0 < bar[2] <= min(bar[0], bar[3])):
                    raise RecordedBarsError(f"{path}: line {line_no}: high/low do not bracket open/close")
                if quote is not None and not 0 < quote[0] < quote[1]:
                    raise RecordedBarsError(f"{path}: line {line_no}: expected 0 < bid < ask")
                rows.append(item)
    except OSError as exc:
        raise RecordedBarsError(f"{path}: cannot read recorded bars: {exc}") from None
    return sorted(rows, key=lambda r: r[0])


class RecordedSource(PathSource):
    """MarketSource over recorded bars (see the module doc), on the world's calendar."""

    def __init__(self, files: Mapping[str, str | Path], sectors: Mapping[str, str] | None, bar_interval_s: int,
                 seed: int, *, spread_bps: float, calendar: ArraySessionCalendar) -> None:
        super().__init__(symbols=list(files), sectors=sectors, bar_interval_s=bar_interval_s, seed=seed,
                         spread_bps=spread_bps)
        self._cal = calendar
        self._bars = {symbol: read_bars(Path(path)) for symbol, path in files.items()}

    def _sessions(self, symbol: str) -> ArraySessionCalendar:
        return self._cal

    def _build(self, symbol: str, index: int) -> DayPath | None:
        date, open_ns, close_ns = self._cal.session(index)
        rows = [r for r in self._bars[symbol] if open_ns <= r[0] < close_ns]
        earlier = [r[1] for r in self._bars[symbol] if r[0] < open_ns and r[1] is not None]
        bars = [(r[0], r[1]) for r in rows if r[1] is not None]
        if not bars and not earlier:
            return None
        n = max(1, (close_ns - open_ns) // self._interval_ns)
        o, h, lo, c = (np.zeros(n, dtype=np.int64) for _ in range(4))
        volume = np.zeros(n, dtype=np.int64)
        has_bar = np.zeros(n, dtype=bool)
        for ts, (bo, bh, bl, bc, bv) in bars:
            k = (ts - open_ns) // self._interval_ns
            o[k], h[k], lo[k], c[k], volume[k], has_bar[k] = bo, bh, bl, bc, bv, True
        last = earlier[-1][3] if earlier else bars[0][1][0]  # before the first bar: its open
        for k in range(n):  # between recorded bars the last close stands (quoted, not traded)
            if has_bar[k]:
                last = int(c[k])
            else:
                o[k] = h[k] = lo[k] = c[k] = last
        day = DayPath(symbol=symbol, date=date, open_ns=open_ns, interval_ns=self._interval_ns, o=o, h=h, lo=lo,
                      c=c, volume=volume, has_bar=has_bar, rng=seeded_rng(self.seed, "recorded", symbol, date),
                      spread_bps=self.spread_bps)
        for ts, _bar, quote in rows:  # the quotes the session heard, where it heard them (prices and sizes)
            if quote is not None:
                k = (ts - open_ns) // self._interval_ns
                day.bid[k], day.ask[k], day.bid_size[k], day.ask_size[k] = quote
        return day
