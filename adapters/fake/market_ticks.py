"""The tick view the data front-ends read (quotes, trades, bars between instants) of any fake market source."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from adapters.fake.calendar import NS_PER_DAY
from adapters.fake.interfaces import FakeBar, FakeQuote, MarketSource
from adapters.fake.market import FakeTrade, TickSource
from adapters.fake.market_paths import PathSource
from adapters.fake.market_realistic import ROUND_LOT
from core.model import NS_PER_S


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
