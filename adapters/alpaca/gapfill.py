"""Message-loss detection and gap fill for streams that carry no sequence numbers (spec 1.4).

Trade updates: every execution of an order is identified by the order's cumulative filled quantity after
it (its "level"), so a fill is counted once whether it came from the stream or was rebuilt from REST FILL
activities; a level sum that falls short of the highest level seen is a gap. Market data: missing bars
are carried forward from the last known value and marked ``interpolated=True``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from core.model import Activity, Bar, BrokerOrder, OrderType, Quote, TradeUpdate

log = logging.getLogger("ttlive.alpaca.gapfill")

FILL_EVENTS = frozenset({"fill", "partial_fill"})
# done_for_day is not final (core.order_fsm): a gtc order done for the day works again at the next open.
TERMINAL_STATUSES = frozenset({"filled", "canceled", "expired", "rejected", "replaced"})
# REST status -> the trade_updates event that would have announced it (for statuses missed in a gap).
STATUS_EVENT = {
    "new": "new",
    "accepted": "accepted",
    "pending_new": "pending_new",
    "canceled": "canceled",
    "expired": "expired",
    "rejected": "rejected",
    "replaced": "replaced",
    "done_for_day": "done_for_day",
    "pending_cancel": "pending_cancel",
    "pending_replace": "pending_replace",
    "stopped": "stopped",
    "suspended": "suspended",
    "calculated": "calculated",
}
# Our bounds (style rule 6), pending a home in core/limits.py:
TRACKED_ORDERS_MAX = 10_000  # orders remembered for de-duplication; oldest terminal ones are forgotten
RECENT_STATUS_KEYS_MAX = 10_000  # remembered (order, event, ts, level) keys to drop duplicated status events
MARKET_ORDER_SILENCE_S = 10.0  # a market order with no update for this long is checked over REST
SILENCE_BACKOFF_MAX_DOUBLINGS = 5  # repeated checks of one quiet order back off to 10 s * 2**5 = 320 s
MAX_INTERPOLATED_BARS = 390  # one regular session of minute bars: never invent more than a day


@dataclass(slots=True)
class OrderTrack:
    order: BrokerOrder
    levels: dict[Decimal, Decimal] = field(default_factory=dict)  # cum level -> execution qty
    execution_ids: set[str] = field(default_factory=set)
    last_update_ns: int = 0
    silence_checks: int = 0  # REST checks since the last update (each doubles the next wait)
    last_check_ns: int = 0

    @property
    def counted_qty(self) -> Decimal:
        return sum(self.levels.values(), Decimal(0))

    @property
    def highest_level(self) -> Decimal:
        return max(self.levels, default=Decimal(0))

    @property
    def terminal(self) -> bool:
        return self.order.status in TERMINAL_STATUSES

    def missing_qty(self, reported_filled_qty: Decimal) -> Decimal:
        return max(reported_filled_qty, self.highest_level) - self.counted_qty


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    deliver: bool  # pass the update downstream
    gap: bool  # fills are missing before this update: fetch them first
    reason: str


class TradeGapTracker:
    """Sans-IO bookkeeping behind the trading stream: duplicates out, gaps detected, REST fills merged.

    ``observe`` judges one stream update and records it; ``synthesize`` turns a REST order snapshot plus
    its FILL activities into the updates the stream lost, recording them so nothing counts twice.
    """

    def __init__(self) -> None:
        self._orders: OrderedDict[str, OrderTrack] = OrderedDict()
        # Tracks not yet seen terminal, in tracking order: terminal is absorbing here (``_record_snapshot`` and
        # ``synthesize`` never roll a terminal order back), so the silent-order scan drops them for good.
        self._unfinished: dict[str, OrderTrack] = {}
        self._status_keys: OrderedDict[tuple[str, str, int, Decimal], None] = OrderedDict()
        self.suspects: set[str] = set()  # order ids with unresolved gaps
        self.counters: dict[str, int] = {}
        # Told when an order starts being tracked or its snapshot changes (the silent-order watch sleeps while
        # no open market order is tracked, until then).
        self.on_change: Callable[[], None] | None = None

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def track(self, order: BrokerOrder, *, now_ns: int = 0) -> OrderTrack:
        t = self._orders.get(order.id)
        if t is None:
            t = self._orders[order.id] = self._unfinished[order.id] = OrderTrack(order=order, last_update_ns=now_ns)
            self._evict()
            self._changed()
        return t

    def _evict(self) -> None:
        while len(self._orders) > TRACKED_ORDERS_MAX:
            victim = next((oid for oid, t in self._orders.items() if t.terminal), None)
            if victim is None:
                victim = next(iter(self._orders))
            del self._orders[victim]
            self._unfinished.pop(victim, None)

    def get(self, order_id: str) -> OrderTrack | None:
        return self._orders.get(order_id)

    def open_orders(self) -> list[BrokerOrder]:
        return [t.order for t in self._orders.values() if not t.terminal]

    def last_update_ns(self) -> int:
        return max((t.last_update_ns for t in self._orders.values()), default=0)

    def observe(self, update: TradeUpdate) -> Verdict:
        order = update.order
        t = self.track(order, now_ns=update.ts_ns)
        if update.event in FILL_EVENTS:
            return self._observe_fill(t, update)
        key = (order.id, update.event, update.ts_ns, order.filled_qty)
        if key in self._status_keys:
            self._count("duplicate_status")
            return Verdict(deliver=False, gap=False, reason="duplicate status event")
        self._status_keys[key] = None
        while len(self._status_keys) > RECENT_STATUS_KEYS_MAX:
            self._status_keys.popitem(last=False)
        gap = t.missing_qty(order.filled_qty) > 0
        if gap:
            self._count("gap_status")
            self.suspects.add(order.id)
        self._record_snapshot(t, order, update.ts_ns)
        return Verdict(deliver=True, gap=gap, reason="status shows unseen fills" if gap else "status")

    def _observe_fill(self, t: OrderTrack, update: TradeUpdate) -> Verdict:
        level = update.order.filled_qty
        if update.execution_id is not None and update.execution_id in t.execution_ids:
            self._count("duplicate_fill")
            return Verdict(deliver=False, gap=False, reason="duplicate execution id")
        if level in t.levels:
            self._count("duplicate_fill")
            return Verdict(deliver=False, gap=False, reason="execution already counted (same level)")
        qty = update.qty if update.qty is not None else level - t.highest_level
        t.levels[level] = qty
        if update.execution_id is not None:
            t.execution_ids.add(update.execution_id)
        self._record_snapshot(t, update.order, update.ts_ns)
        gap = t.missing_qty(level) > 0
        if gap:
            self._count("gap_fill")
            self.suspects.add(t.order.id)
        return Verdict(deliver=True, gap=gap, reason="fill skips unseen executions" if gap else "fill")

    def _record_snapshot(self, t: OrderTrack, order: BrokerOrder, ts_ns: int) -> None:
        # why: the wire reorders; an older or post-terminal snapshot must not roll the order back.
        stale = ts_ns < t.last_update_ns or (t.terminal and order.status not in TERMINAL_STATUSES)
        if not stale:
            t.order = order
            self._changed()
        t.last_update_ns = max(t.last_update_ns, ts_ns)
        t.silence_checks = 0

    def synthesize(self, order: BrokerOrder, activities: Iterable[Activity]) -> list[TradeUpdate]:
        """Updates for whatever the REST view shows that the stream never delivered, oldest first.

        Fills come from FILL activities of this order whose level was not counted yet; a status the
        stream never reported (e.g. ``canceled`` during a disconnect) becomes one status update.
        """
        existing = self._orders.get(order.id)
        previous_status = existing.order.status if existing is not None else None
        t = self.track(order)
        out: list[TradeUpdate] = []
        mine = sorted((a for a in activities if a.order_id == order.id), key=lambda a: (a.cum_qty, a.ts_ns))
        for act in mine:
            exec_id = act.execution_id
            if act.cum_qty in t.levels or exec_id in t.execution_ids:
                continue
            t.levels[act.cum_qty] = act.qty
            t.execution_ids.add(exec_id)
            final = act.leaves_qty == 0
            snapshot = msgspec.structs.replace(
                order,
                filled_qty=act.cum_qty,
                status="filled" if final else "partially_filled",
                filled_avg_price=order.filled_avg_price if act.cum_qty == order.filled_qty else None,
            )
            out.append(
                TradeUpdate(
                    event="fill" if final else "partial_fill",
                    order=snapshot,
                    ts_ns=act.ts_ns,
                    execution_id=exec_id,
                    price=act.price,
                    qty=act.qty,
                )
            )
            t.last_update_ns = max(t.last_update_ns, act.ts_ns)
            self._count("synthesized_fill")
        missing = t.missing_qty(order.filled_qty)
        if missing > 0:
            log.warning("order %s: %s filled qty still unaccounted after gap fill", order.id, missing)
            self.suspects.add(order.id)
            self._count("gap_unresolved")
        else:
            self.suspects.discard(order.id)
        went_back = previous_status in TERMINAL_STATUSES and order.status not in TERMINAL_STATUSES
        if order.status != previous_status and order.status in STATUS_EVENT and not went_back:
            event = STATUS_EVENT[order.status]
            ts_ns = max(order.updated_at_ns, t.last_update_ns)
            out.append(TradeUpdate(event=event, order=order, ts_ns=ts_ns))
            self._status_keys[(order.id, event, ts_ns, order.filled_qty)] = None
            self._count("synthesized_status")
        if t.order.status not in TERMINAL_STATUSES or order.status in TERMINAL_STATUSES:
            t.order = order
            self._changed()
        t.last_update_ns = max(t.last_update_ns, order.updated_at_ns)
        return out

    def needs_fills(self, order: BrokerOrder) -> bool:
        t = self._orders.get(order.id)
        counted = t.counted_qty if t is not None else Decimal(0)
        return order.filled_qty > counted or order.id in self.suspects

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def has_open_market_orders(self) -> bool:
        """Could ``silent_orders`` find anything, now or later without news? (Only open market orders count.)"""
        return any(not t.terminal and t.order.type is OrderType.MARKET for t in self._unfinished.values())

    def silent_orders(self, now_ns: int, *, silence_s: float = MARKET_ORDER_SILENCE_S) -> list[str]:
        """Open market orders with no news for ``silence_s``: their updates were probably lost.

        An order that stays quiet after a check (queued before the open, say) is checked less and less
        often, so a quiet book cannot eat the rate limit.
        """
        out = []
        silence_ns = int(silence_s * 1e9)
        finished = []
        for oid, t in self._unfinished.items():
            if t.terminal:
                finished.append(oid)
                continue
            if t.order.type is not OrderType.MARKET:
                continue
            wait_ns = silence_ns * 2 ** min(t.silence_checks, SILENCE_BACKOFF_MAX_DOUBLINGS)
            if now_ns - max(t.last_update_ns, t.last_check_ns) > wait_ns:
                out.append(oid)
        for oid in finished:
            del self._unfinished[oid]
        return sorted(out)

    def note_checked(self, order_id: str, now_ns: int) -> None:
        t = self._orders.get(order_id)
        if t is not None:
            t.silence_checks += 1
            t.last_check_ns = now_ns


class BarGapFiller:
    """Last-known-value interpolation for bar streams (spec 1.1): missing intervals become flat bars at
    the previous close with zero volume, marked ``interpolated=True``.
    """

    def __init__(self, *, bar_interval_ns: int = 60_000_000_000) -> None:
        assert bar_interval_ns > 0, "bar interval must be positive"
        self.bar_interval_ns = bar_interval_ns
        self._last: dict[str, Bar] = {}
        self.interpolated_count = 0

    def last_bar_ns(self) -> dict[str, int]:
        return {symbol: bar.ts_ns for symbol, bar in self._last.items()}

    def on_bar(self, bar: Bar) -> list[Bar]:
        """The bars to deliver for ``bar``: interpolated fillers for the gap (if any), then the bar."""
        last = self._last.get(bar.symbol)
        if last is not None and bar.ts_ns <= last.ts_ns:
            return [bar]  # late correction or duplicate: pass through, never rewind the carry
        out: list[Bar] = []
        if last is not None:
            ts_ns = last.ts_ns + self.bar_interval_ns
            while ts_ns < bar.ts_ns and len(out) < MAX_INTERPOLATED_BARS:
                out.append(
                    Bar(
                        symbol=bar.symbol,
                        open=last.close,
                        high=last.close,
                        low=last.close,
                        close=last.close,
                        volume=Decimal(0),
                        ts_ns=ts_ns,
                        interpolated=True,
                    )
                )
                ts_ns += self.bar_interval_ns
        self.interpolated_count += len(out)
        self._last[bar.symbol] = bar
        out.append(bar)
        return out


class QuoteCarry:
    """Last known quote per symbol, re-issued as ``interpolated=True`` after a stream gap."""

    def __init__(self) -> None:
        self._last: dict[str, Quote] = {}

    def on_quote(self, quote: Quote) -> None:
        last = self._last.get(quote.symbol)
        if last is None or quote.ts_ns >= last.ts_ns:
            self._last[quote.symbol] = quote

    def carried(self, now_ns: int, symbols: Iterable[str]) -> list[Quote]:
        return [
            msgspec.structs.replace(self._last[s], ts_ns=max(now_ns, self._last[s].ts_ns), interpolated=True)
            for s in sorted(set(symbols))
            if s in self._last
        ]
