"""Messages between actors: commands imperative, events past tense; frozen and keyword-only (style rule 4)."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import trio

from core.model import Bar, BrokerOrder, Quote, Signal, TradeUpdate


class BarClosed(msgspec.Struct, frozen=True, kw_only=True):
    bar: Bar


class QuoteUpdated(msgspec.Struct, frozen=True, kw_only=True):
    quote: Quote


class DecisionDue(msgspec.Struct, frozen=True, kw_only=True):
    """Market actor -> policy actor: a decision bar closed for these symbols."""

    symbols: tuple[str, ...]
    ts_ns: int


class SignalRaised(msgspec.Struct, frozen=True, kw_only=True):
    signal: Signal
    raised_at_ns: int  # for signal-to-order latency (session clock)
    features_ready_ns: int = 0


class SubmitApproved(msgspec.Struct, frozen=True, kw_only=True):
    signal: Signal
    approved_qty: Decimal
    raised_at_ns: int


class CancelRequested(msgspec.Struct, frozen=True, kw_only=True):
    signal: Signal


class TradeUpdateReceived(msgspec.Struct, frozen=True, kw_only=True):
    update: TradeUpdate


class SubmitFinished(msgspec.Struct, frozen=True, kw_only=True):
    """Execution actor's own submit task reports back; the order machine is mutated only in the actor loop."""

    client_order_id: str
    venue_order_id: str | None
    status: str | None
    error: str | None = None
    ambiguous: bool = False  # timeouts exhausted: the venue may or may not have the order
    withdrawn: bool = False  # the order gate closed before any attempt left: the venue never saw it
    http_status: int = 0


class ResyncRequested(msgspec.Struct, frozen=True, kw_only=True):
    reason: str


class ResyncWaiter:
    """Someone waiting for the next REST resync: released when one is applied (``ok``) or one failed."""

    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.ok = False

    def release(self, ok: bool) -> None:
        self.ok = ok
        self.done.set()


class TripRequested(msgspec.Struct, frozen=True, kw_only=True):
    trigger: str
    reason: str


class ResetRequested(msgspec.Struct, frozen=True, kw_only=True):
    operator: str
    reason: str


class ConnectivityChanged(msgspec.Struct, frozen=True, kw_only=True):
    stream: str
    state: str  # connection machine state value
    ts_ns: int


class OrdersAdopted(msgspec.Struct, frozen=True, kw_only=True):
    """Orders of ours that execution did not place itself (found open at start-up, or the supervisor's protective
    stops): execution gives each an order machine, its state from the broker's status, so later fills count."""

    orders: tuple[BrokerOrder, ...]
    reason: str  # "start-up" | "protect"
