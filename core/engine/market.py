"""Market actor: mirrors quotes, rolls stream bars into decision bars, fills gaps with last-known values.

It owns ``state.quotes`` and ``state.decision_bars``. When a decision bar closes it tells the policy actor; every
update re-marks the ledger so equity, P&L and risk see current prices.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal

import trio

from core.engine.messages import BarClosed, DecisionDue, QuoteUpdated
from core.engine.state import EngineState
from core.model import Bar, Quote

log = logging.getLogger("ttlive.market")


class BarRoller:
    """Aggregates interval bars into ``decision_interval_ns`` bars, aligned to the epoch (pure)."""

    def __init__(self, decision_interval_ns: int) -> None:
        assert decision_interval_ns > 0
        self.interval_ns = decision_interval_ns
        self.open_bars: dict[str, Bar] = {}

    def bucket(self, ts_ns: int) -> int:
        return ts_ns - ts_ns % self.interval_ns

    def add(self, bar: Bar) -> Bar | None:
        """Fold ``bar`` in; returns the decision bar it closed, if it started a new bucket."""
        bucket = self.bucket(bar.ts_ns)
        current = self.open_bars.get(bar.symbol)
        closed = None
        if current is not None and current.ts_ns != bucket:
            if bucket < current.ts_ns:
                log.warning("late bar for %s at %d ignored", bar.symbol, bar.ts_ns)
                return None
            closed = current
            current = None
        if current is None:
            self.open_bars[bar.symbol] = Bar(
                symbol=bar.symbol, open=bar.open, high=bar.high, low=bar.low, close=bar.close,
                volume=bar.volume, ts_ns=bucket, interpolated=bar.interpolated,
            )
        else:
            self.open_bars[bar.symbol] = Bar(
                symbol=bar.symbol, open=current.open, high=max(current.high, bar.high),
                low=min(current.low, bar.low), close=bar.close, volume=current.volume + bar.volume,
                ts_ns=current.ts_ns, interpolated=current.interpolated and bar.interpolated,
            )
        return closed

    def flush(self, symbol: str, now_ns: int) -> Bar | None:
        """Close ``symbol``'s open bar once its bucket has ended (no later bar arrived to close it)."""
        current = self.open_bars.get(symbol)
        if current is not None and now_ns >= current.ts_ns + self.interval_ns:
            del self.open_bars[symbol]
            return current
        return None


def carry_forward(last: Bar, ts_ns: int) -> Bar:
    """Last-known-value interpolation for a missing bar (spec 1.1), marked as interpolated."""
    return Bar(
        symbol=last.symbol, open=last.close, high=last.close, low=last.close, close=last.close,
        volume=Decimal(0), ts_ns=ts_ns, interpolated=True,
    )


class MarketActor:
    def __init__(
        self,
        *,
        state: EngineState,
        symbols: list[str],
        decision_interval_s: float,
        inbox: trio.MemoryReceiveChannel[BarClosed | QuoteUpdated],
        decisions: trio.MemorySendChannel[DecisionDue],
        now_ns: object,
        on_mark: Callable[[], None],
        observers: list[Callable[[DecisionDue], None]] | None = None,
    ) -> None:
        self.state = state
        self.observers = observers if observers is not None else []  # Engine.decision_observers
        self._on_mark = on_mark  # a mark moves equity: EngineContext.book_changed (the supervisor's idle tick)
        self.symbols = sorted(symbols)
        self.roller = BarRoller(int(decision_interval_s * 1e9))
        self.inbox = inbox
        self.decisions = decisions
        self._now_ns = now_ns
        self.gaps_filled = 0
        self._last_decision_bucket: int | None = None

    def on_quote(self, quote: Quote) -> None:
        if quote.bid_price <= 0 or quote.ask_price <= 0 or quote.ask_price < quote.bid_price:
            log.warning("unusable quote for %s ignored: bid %s ask %s", quote.symbol, quote.bid_price, quote.ask_price)
            return
        self.state.quotes[quote.symbol] = quote
        self.state.ledger.mark(quote.symbol, quote.mid)
        self._on_mark()

    def on_bar(self, bar: Bar) -> list[Bar]:
        """Returns decision bars closed by this bar (for this symbol, plus gap fills for silent symbols)."""
        if bar.close <= 0:
            log.warning("bar with non-positive close for %s ignored", bar.symbol)
            return []
        if not bar.interpolated:
            self.state.last_bar_start_ns[bar.symbol] = max(bar.ts_ns, self.state.last_bar_start_ns.get(bar.symbol, 0))
        if self.state.fresh_quote(bar.symbol) is None:  # no quote, or the market traded after it
            self.state.ledger.mark(bar.symbol, bar.close)
            self._on_mark()
        closed = self.roller.add(bar)
        return [closed] if closed is not None else []

    def close_bucket(self, bucket_end_ns: int) -> list[str]:
        """Called when a decision bucket has ended: flush stragglers and carry silent symbols forward."""
        ready: list[str] = []
        for symbol in self.symbols:
            closed = self.roller.flush(symbol, bucket_end_ns)
            if closed is not None:
                self.state.bars(symbol).append(closed)
            history = self.state.bars(symbol)
            expected_ts = bucket_end_ns - self.roller.interval_ns
            if history and history[-1].ts_ns < expected_ts:
                history.append(carry_forward(history[-1], expected_ts))
                self.gaps_filled += 1
            if history and history[-1].ts_ns == expected_ts:
                ready.append(symbol)
        return ready

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async with self.inbox:
            async for message in self.inbox:
                await self.handle(message)
                while True:  # what is already queued, without a scheduler pass per message
                    try:
                        message = self.inbox.receive_nowait()
                    except trio.WouldBlock:
                        break
                    except trio.EndOfChannel:
                        return
                    await self.handle(message)

    async def handle(self, message: BarClosed | QuoteUpdated) -> None:
        if isinstance(message, QuoteUpdated):
            self.on_quote(message.quote)
            return
        for decision_bar in self.on_bar(message.bar):
            self.state.bars(decision_bar.symbol).append(decision_bar)
        await self._maybe_decide(message.bar.ts_ns)

    async def _maybe_decide(self, bar_ts_ns: int) -> None:
        """A bar from a new bucket means the previous bucket ended for everyone: decide once per bucket."""
        bucket = self.roller.bucket(bar_ts_ns)
        if self._last_decision_bucket is None:
            self._last_decision_bucket = bucket
            return
        if bucket <= self._last_decision_bucket:
            return
        ended_at = self._last_decision_bucket + self.roller.interval_ns
        self._last_decision_bucket = bucket
        # Put the new bar back: close_bucket flushes only buckets that ended before it.
        ready = self.close_bucket(ended_at)
        if ready:
            due = DecisionDue(symbols=tuple(ready), ts_ns=ended_at)
            for observer in self.observers:
                observer(due)
            await self.decisions.send(due)
