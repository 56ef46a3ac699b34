"""The engine's book: what every actor reads, each part written by exactly one actor.

Ledger and order trackers belong to the execution actor, quotes and bars to the market actor, the halt latch to
the supervisor. It round-trips through a plain dict so the StateStore can persist it and a restart resumes.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from core.ledger import Ledger
from core.model import Bar, Quote, Side
from core.order_fsm import TERMINAL, OrderState

ZERO = Decimal(0)
DECISION_BARS_KEPT = 512  # features read at most a window of this many bars


def deterministic_uuid(*parts: object) -> str:
    """A UUID-shaped id derived from content: the same decision after a restart gets the same id."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-5{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}"


@dataclass(slots=True)
class TrackedOrder:
    """Engine-side facts about one order attempt beside its state machine (which core.order_fsm owns)."""

    client_order_id: str
    signal_id: str
    symbol: str
    side: Side
    qty: Decimal
    attempt: int
    reference_price: Decimal  # mid when the order was planned: slippage is measured against it
    raised_at_ns: int
    venue_order_id: str | None = None
    parent_client_order_id: str | None = None  # bracket legs point at their entry
    action: str = "MARKET"
    direction: str = "long"
    submitted_at_ns: int = 0
    notional: Decimal | None = None  # a dollar-amount order: qty is then the estimate (core.order_fsm)
    protect: bool = False  # an entry that gets a trailing-stop protective exit once filled

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "client_order_id": self.client_order_id, "signal_id": self.signal_id, "symbol": self.symbol,
            "side": self.side.value, "qty": str(self.qty), "attempt": self.attempt,
            "reference_price": str(self.reference_price), "raised_at_ns": self.raised_at_ns,
            "venue_order_id": self.venue_order_id, "parent_client_order_id": self.parent_client_order_id,
            "action": self.action, "direction": self.direction, "submitted_at_ns": self.submitted_at_ns,
        }
        if self.notional is not None:  # only when set: the persisted shape of every other order is unchanged
            out["notional"] = str(self.notional)
        if self.protect:
            out["protect"] = True
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrackedOrder:
        return cls(
            client_order_id=d["client_order_id"], signal_id=d["signal_id"], symbol=d["symbol"],
            side=Side(d["side"]), qty=Decimal(d["qty"]), attempt=int(d["attempt"]),
            reference_price=Decimal(d["reference_price"]), raised_at_ns=int(d["raised_at_ns"]),
            venue_order_id=d["venue_order_id"], parent_client_order_id=d["parent_client_order_id"],
            action=d["action"], direction=d["direction"], submitted_at_ns=int(d["submitted_at_ns"]),
            notional=Decimal(d["notional"]) if d.get("notional") is not None else None,
            protect=bool(d.get("protect", False)),
        )


@dataclass(slots=True)
class Counters:
    signals: int = 0
    risk_pass: int = 0
    risk_resize: int = 0
    risk_reject: int = 0
    orders_submitted: int = 0
    orders_rejected: int = 0
    orders_ambiguous: int = 0
    ambiguous_resolved: int = 0  # ambiguous submits settled by a lookup by client_order_id
    fills: int = 0
    duplicate_updates: int = 0
    cancels: int = 0
    resyncs: int = 0
    reconciliations: int = 0
    reconcile_mismatches: int = 0
    alerts: int = 0
    skipped_while_halted: int = 0
    halt_inflight_resolved: int = 0  # submissions whose fate was settled after the latch (withdrawn/pulled/booked)
    post_halt_fills: int = 0  # executions the venue made after the latch (audited and alerted)
    reconcile_adoptions: int = 0  # small differences the reconciler converged on (core.engine.reconciler)

    def to_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]

    @classmethod
    def from_dict(cls, d: dict[str, int]) -> Counters:
        return cls(**{k: int(v) for k, v in d.items() if k in cls.__slots__})  # type: ignore[attr-defined]


@dataclass(slots=True)
class EngineState:
    ledger: Ledger
    start_of_day_equity: Decimal
    start_of_week_equity: Decimal
    session_date: str = ""
    quotes: dict[str, Quote] = field(default_factory=dict)
    # Start of the newest real (not interpolated) bar per symbol: a quote older than it is stale (see fresh_quote).
    last_bar_start_ns: dict[str, int] = field(default_factory=dict)
    decision_bars: dict[str, deque[Bar]] = field(default_factory=dict)
    orders: dict[str, TrackedOrder] = field(default_factory=dict)  # by client_order_id
    by_venue_id: dict[str, str] = field(default_factory=dict)  # venue order id -> client_order_id
    counters: Counters = field(default_factory=Counters)
    bought_today: set[str] = field(default_factory=set)
    sold_today: set[str] = field(default_factory=set)
    day_trades: list[str] = field(default_factory=list)  # session dates of day trades (PDT window)
    day_trade_orders: set[str] = field(default_factory=set)  # closing orders already counted today
    sessions_seen: list[str] = field(default_factory=list)  # session dates, oldest first (PDT window)
    equity_curve: list[tuple[int, Decimal]] = field(default_factory=list)
    peak_equity_today: Decimal = ZERO
    halt: dict[str, Any] = field(default_factory=dict)  # halt machine state (supervisor persists it)
    triggers: dict[str, Any] = field(default_factory=dict)
    order_states: dict[str, dict[str, Any]] = field(default_factory=dict)  # order machine snapshots
    # Non-trade activities (core.reconcile.apply_cash_activity): those after ``activities_after_ns`` not yet in
    # ``activity_ids`` are still to apply (a fresh ledger starts from the broker's cash: everything before is in).
    activities_after_ns: int = 0
    activity_ids: list[str] = field(default_factory=list)

    def day_trades_in_window(self, window_sessions: int) -> int:
        """Day trades within the last ``window_sessions`` sessions, today included (FINRA: 5 business days)."""
        recent = set(self.sessions_seen[-window_sessions:])
        return sum(1 for date in self.day_trades if date in recent)

    def bars(self, symbol: str) -> deque[Bar]:
        bars = self.decision_bars.get(symbol)
        if bars is None:
            bars = self.decision_bars[symbol] = deque(maxlen=DECISION_BARS_KEPT)
        return bars

    def fresh_quote(self, symbol: str) -> Quote | None:
        """The symbol's last usable quote, unless the market traded after it: a bar that started after the quote
        carries a newer price (a thin feed can leave the last quote many minutes behind the bars)."""
        quote = self.quotes.get(symbol)
        if quote is None or quote.bid_price <= 0 or quote.ask_price <= 0:
            return None
        if quote.ts_ns < self.last_bar_start_ns.get(symbol, quote.ts_ns):
            return None
        return quote

    def mark(self, symbol: str) -> Decimal | None:
        """The price the book and RiskGuard value a symbol at: a fresh quote's mid, else the last mark (the newest
        bar's close when the quote fell behind it)."""
        quote = self.fresh_quote(symbol)
        if quote is not None:
            return quote.mid
        return self.ledger.marks.get(symbol)

    def order_ended(self, client_order_id: str) -> bool:
        """The order's persisted machine snapshot is terminal (no snapshot, or an unknown state: it has not)."""
        snap = self.order_states.get(client_order_id)
        if snap is None:
            return False
        try:
            return OrderState(str(snap.get("state"))) in TERMINAL
        except ValueError:
            return False

    def retire_settled_orders(self, *, raised_before_ns: int) -> list[str]:
        """Forget orders that ended and were raised before ``raised_before_ns`` (with their machine snapshots and
        venue-id index entries); returns their client order ids, sorted.

        Without this the book kept every order it ever placed: each save serialised all of them and every risk
        decision walked them, so a deployment got slower with every week it ran. What an ended order could still
        be needed for stays: an entry whose bracket legs still work is kept while they do, an order not known to
        have ended is kept, and the caller passes the start of the resync window (a resync lists only what happened
        since then; anything older was booked when it happened, and the ledger's execution ids would refuse it
        anyway). Called at the start of a new session, before the order machines are rebuilt."""
        working_parents = {
            tracked.parent_client_order_id for coid, tracked in self.orders.items()
            if tracked.parent_client_order_id is not None and not self.order_ended(coid)
        }
        retired = sorted(
            coid for coid, tracked in self.orders.items()
            if tracked.raised_at_ns < raised_before_ns and coid not in working_parents and self.order_ended(coid)
        )
        for coid in retired:
            del self.orders[coid]
            self.order_states.pop(coid, None)
        if retired:
            gone = set(retired)
            for venue_id in [v for v, coid in self.by_venue_id.items() if coid in gone]:
                del self.by_venue_id[venue_id]
        return retired

    def to_dict(self) -> dict[str, Any]:
        return {
            "ledger": self.ledger.to_dict(),
            "start_of_day_equity": str(self.start_of_day_equity),
            "start_of_week_equity": str(self.start_of_week_equity),
            "session_date": self.session_date,
            "orders": [o.to_dict() for _, o in sorted(self.orders.items())],
            "counters": self.counters.to_dict(),
            "bought_today": sorted(self.bought_today),
            "sold_today": sorted(self.sold_today),
            "day_trades": list(self.day_trades),
            "day_trade_orders": sorted(self.day_trade_orders),
            "sessions_seen": list(self.sessions_seen),
            "halt": self.halt,
            "triggers": self.triggers,
            "order_states": {k: v for k, v in sorted(self.order_states.items())},
            "activities_after_ns": self.activities_after_ns,
            "activity_ids": list(self.activity_ids),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EngineState:
        state = cls(
            ledger=Ledger.from_dict(d["ledger"]),
            start_of_day_equity=Decimal(d["start_of_day_equity"]),
            start_of_week_equity=Decimal(d["start_of_week_equity"]),
            session_date=d["session_date"],
        )
        for od in d["orders"]:
            order = TrackedOrder.from_dict(od)
            state.orders[order.client_order_id] = order
            if order.venue_order_id:
                state.by_venue_id[order.venue_order_id] = order.client_order_id
        state.counters = Counters.from_dict(d["counters"])
        state.bought_today = set(d["bought_today"])
        state.sold_today = set(d["sold_today"])
        state.day_trades = list(d["day_trades"])
        state.day_trade_orders = set(d.get("day_trade_orders", []))
        state.sessions_seen = list(d.get("sessions_seen", []))
        state.halt = dict(d["halt"])
        state.triggers = dict(d["triggers"])
        state.order_states = dict(d["order_states"])
        state.activities_after_ns = int(d.get("activities_after_ns", 0))
        state.activity_ids = list(d.get("activity_ids", []))
        return state
