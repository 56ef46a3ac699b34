"""Kill-switch triggers (spec 2.3) and alert thresholds (spec 4.3), evaluated as pure logic.

The supervisor feeds events in; a ``Trip`` goes to the halt machine, a ``RequestResync`` to the reconciler.

Trigger definitions (ids are the halt machine's trigger names):

* ``daily_loss``: ``equity - start_of_day_equity <= -DAILY_LOSS_HALT_FRACTION x start_of_day_equity``.
  "At 3%" trips (spec 2.1 "halt at 3% daily drawdown"; the same comparison as RiskGuard's daily_loss rule).
* ``weekly_loss``: the same against start-of-week equity and ``WEEKLY_LOSS_HALT_FRACTION``.
* ``consecutive_losses``: more than ``MAX_CONSECUTIVE_LOSING_TRADES`` losing round trips in a row trips (the
  6th); a win resets the count, a scratch trade (P&L exactly 0) leaves it unchanged.
* ``connectivity_lost``: some channel has been down for strictly more than ``CONNECTIVITY_LOST_HALT_S``.
* ``reconciliation_mismatch``: the first mismatch asks for a REST resync; a mismatch reported by the next
  reconciliation (which the engine runs after that resync) trips. A clean reconciliation clears it.

The monitor latches its first trip: later trips are not reported again (the halt is already under way) until
``rearm()``, which the engine calls on the audited manual reset. After a reset the loss triggers are checked
again at the next equity mark, so a reset on a day still beyond the loss limit trips again.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec

from core.halt_fsm import HaltTrigger
from core.limits import (
    ALERT_API_LATENCY_P95_MS,
    ALERT_DRAWDOWN_CRITICAL_FRACTION,
    ALERT_DRAWDOWN_WARNING_FRACTION,
    ALERT_REJECTION_RATE_FRACTION,
    CONNECTIVITY_LOST_HALT_S,
    DAILY_LOSS_HALT_FRACTION,
    MAX_CONSECUTIVE_LOSING_TRADES,
    WEEKLY_LOSS_HALT_FRACTION,
)
from core.risk import loss_limit_reached

STATE_VERSION = 1


# The triggers this monitor raises on its own: the halt machine's names (one enum), less the operator's and the
# engine's (manual, actor_crash).
AUTOMATIC_TRIGGERS: frozenset[HaltTrigger] = frozenset(HaltTrigger) - {HaltTrigger.MANUAL, HaltTrigger.ACTOR_CRASH}


class TriggerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    daily_loss_fraction: Decimal = DAILY_LOSS_HALT_FRACTION
    weekly_loss_fraction: Decimal = WEEKLY_LOSS_HALT_FRACTION
    max_consecutive_losses: int = MAX_CONSECUTIVE_LOSING_TRADES
    connectivity_lost_halt_s: float = CONNECTIVITY_LOST_HALT_S


# --- events (past tense) ---------------------------------------------------------------------------------


class SessionStarted(msgspec.Struct, frozen=True, kw_only=True):
    """A trading session opened; ``new_week`` on the first session of a calendar week (for us).
    ``week_start_equity``: the equity the week started from when it is not ``start_equity`` (a mid-week first
    start: the broker's portfolio history); None means ``start_equity``."""

    ts_s: float
    start_equity: Decimal
    new_week: bool = False
    week_start_equity: Decimal | None = None


class EquityMarked(msgspec.Struct, frozen=True, kw_only=True):
    ts_s: float
    equity: Decimal


class TradeClosed(msgspec.Struct, frozen=True, kw_only=True):
    """A round trip finished and realised ``realized_pnl``."""

    ts_s: float
    realized_pnl: Decimal
    symbol: str = ""


class ConnectivityLost(msgspec.Struct, frozen=True, kw_only=True):
    ts_s: float
    channel: str = "api"  # e.g. "trading", "market_data", "rest"


class ConnectivityRestored(msgspec.Struct, frozen=True, kw_only=True):
    ts_s: float
    channel: str = "api"


class ClockTicked(msgspec.Struct, frozen=True, kw_only=True):
    """Time passed with nothing else happening; lets the connectivity timer fire."""

    ts_s: float


class ReconciliationChecked(msgspec.Struct, frozen=True, kw_only=True):
    ts_s: float
    mismatched: bool
    detail: str = ""
    after_resync: bool = False  # the first check since a REST resync was applied (a failed one does not count)


MonitorEvent = (
    SessionStarted
    | EquityMarked
    | TradeClosed
    | ConnectivityLost
    | ConnectivityRestored
    | ClockTicked
    | ReconciliationChecked
)


# --- outputs (imperative / results) -----------------------------------------------------------------------


class Trip(msgspec.Struct, frozen=True, kw_only=True):
    trigger: HaltTrigger
    reason: str
    ts_s: float


class RequestResync(msgspec.Struct, frozen=True, kw_only=True):
    reason: str
    ts_s: float


class MonitorState(msgspec.Struct, kw_only=True):
    """Everything the monitor remembers; ``to_dict``/``from_dict`` persist it across a restart."""

    version: int = STATE_VERSION
    day_start_equity: Decimal | None = None
    week_start_equity: Decimal | None = None
    last_equity: Decimal | None = None
    consecutive_losses: int = 0
    lost_since_s: dict[str, float] = {}
    resync_pending: bool = False
    tripped: Trip | None = None


def connectivity_lost_too_long(lost_since_s: float | None, now_s: float, limit_s: float) -> bool:
    """Strictly more than ``limit_s`` without connectivity (30 s exactly does not trip)."""
    return lost_since_s is not None and now_s - lost_since_s > limit_s


def _pct(change: Decimal, base: Decimal) -> str:
    return f"{change / base * 100:.2f}%"


class KillSwitchMonitor:
    """Sans-IO trigger evaluation: ``handle(event)`` returns a Trip, a RequestResync, or None."""

    def __init__(self, config: TriggerConfig | None = None, state: MonitorState | None = None) -> None:
        self.config = config if config is not None else TriggerConfig()
        self.state = state if state is not None else MonitorState()

    @property
    def tripped(self) -> Trip | None:
        return self.state.tripped

    def handle(self, event: MonitorEvent) -> Trip | RequestResync | None:
        st = self.state
        result: Trip | RequestResync | None = None
        if isinstance(event, SessionStarted):
            # A new session's engine has connections of its own: a loss an earlier life recorded (the last session
            # ended with REST down) is not this session's; the connectivity watcher reports a live one in seconds.
            st.lost_since_s.clear()
            st.day_start_equity = event.start_equity
            if event.new_week or st.week_start_equity is None:
                st.week_start_equity = (event.start_equity if event.week_start_equity is None
                                        else event.week_start_equity)
            st.last_equity = event.start_equity
        elif isinstance(event, EquityMarked):
            st.last_equity = event.equity
            result = self._check_losses(event)
        elif isinstance(event, TradeClosed):
            result = self._on_trade(event)
        elif isinstance(event, ConnectivityLost):
            st.lost_since_s.setdefault(event.channel, event.ts_s)
        elif isinstance(event, ConnectivityRestored):
            st.lost_since_s.pop(event.channel, None)
        elif isinstance(event, ReconciliationChecked):
            result = self._on_reconciliation(event)
        if result is None:
            result = self._check_connectivity(event.ts_s)
        if isinstance(result, Trip):
            if st.tripped is not None:
                return None
            st.tripped = result
        return result

    def rearm(self) -> None:
        """Called on the audited manual reset: forget the latch, the loss streak and a pending resync."""
        self.state.tripped = None
        self.state.consecutive_losses = 0
        self.state.resync_pending = False

    # --- individual triggers ---

    def _check_losses(self, event: EquityMarked) -> Trip | None:
        st, cfg = self.state, self.config
        checks = (
            (HaltTrigger.DAILY_LOSS, st.day_start_equity, cfg.daily_loss_fraction, "start-of-day"),
            (HaltTrigger.WEEKLY_LOSS, st.week_start_equity, cfg.weekly_loss_fraction, "start-of-week"),
        )
        for trigger, start, fraction, label in checks:
            if start is not None and loss_limit_reached(event.equity, start, fraction):
                change = event.equity - start
                return Trip(
                    trigger=trigger,
                    reason=(
                        f"P&L {change} is {_pct(change, start)} of {label} equity {start} "
                        f"(limit -{fraction * 100}%)"
                    ),
                    ts_s=event.ts_s,
                )
        return None

    def _on_trade(self, event: TradeClosed) -> Trip | None:
        st = self.state
        if event.realized_pnl > 0:
            st.consecutive_losses = 0
        elif event.realized_pnl < 0:
            st.consecutive_losses += 1
        if st.consecutive_losses > self.config.max_consecutive_losses:
            return Trip(
                trigger=HaltTrigger.CONSECUTIVE_LOSSES,
                reason=(
                    f"{st.consecutive_losses} losing trades in a row "
                    f"(limit {self.config.max_consecutive_losses}); last {event.symbol} {event.realized_pnl}"
                ),
                ts_s=event.ts_s,
            )
        return None

    def _on_reconciliation(self, event: ReconciliationChecked) -> Trip | RequestResync | None:
        st = self.state
        if not event.mismatched:
            st.resync_pending = False
            return None
        if st.resync_pending and event.after_resync:
            st.resync_pending = False
            return Trip(
                trigger=HaltTrigger.RECONCILIATION_MISMATCH,
                reason=f"position mismatch survived a resync: {event.detail}",
                ts_s=event.ts_s,
            )
        st.resync_pending = True
        return RequestResync(reason=f"position mismatch: {event.detail}", ts_s=event.ts_s)

    def _check_connectivity(self, now_s: float) -> Trip | None:
        lost = self.state.lost_since_s
        if not lost:
            return None
        channel, since_s = min(lost.items(), key=lambda item: (item[1], item[0]))
        if connectivity_lost_too_long(since_s, now_s, self.config.connectivity_lost_halt_s):
            return Trip(
                trigger=HaltTrigger.CONNECTIVITY_LOST,
                reason=(
                    f"{channel} connectivity lost for {now_s - since_s:.3f} s "
                    f"(limit {self.config.connectivity_lost_halt_s} s)"
                ),
                ts_s=now_s,
            )
        return None

    # --- persistence ---

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(self.state)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], config: TriggerConfig | None = None) -> KillSwitchMonitor:
        state = msgspec.convert(data, MonitorState)
        if state.version != STATE_VERSION:
            raise ValueError(f"kill-switch monitor state version {state.version}, expected {STATE_VERSION}")
        return cls(config, state)


# --- spec 4.3 alerting thresholds ------------------------------------------------------------------------


class Severity(enum.StrEnum):
    """Alert severities, for every alert source (spec 4.3 levels; the alert router adds nothing of its own)."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Alert(NamedTuple):
    severity: Severity
    key: str
    message: str


def alert_levels(drawdown_fraction: Decimal, latency_p95_ms: float, rejection_rate: float) -> list[Alert]:
    """Spec 4.3 thresholds. ``drawdown_fraction`` is a loss as a positive fraction (0.025 = down 2.5%).

    Drawdown > 2% warns; from 3% it is critical — "at 3%" like the kill switch it accompanies, so the
    critical alert is never missing when the switch trips. Latency p95 > 500 ms warns; rejection rate > 5%
    is critical. One alert per key, always in this order.
    """
    alerts: list[Alert] = []
    if drawdown_fraction >= ALERT_DRAWDOWN_CRITICAL_FRACTION:
        alerts.append(
            Alert(
                Severity.CRITICAL,
                "pnl_drawdown",
                f"P&L drawdown {drawdown_fraction * 100:.2f}% reached "
                f"{ALERT_DRAWDOWN_CRITICAL_FRACTION * 100}%: kill switch",
            )
        )
    elif drawdown_fraction > ALERT_DRAWDOWN_WARNING_FRACTION:
        alerts.append(
            Alert(
                Severity.WARNING,
                "pnl_drawdown",
                f"P&L drawdown {drawdown_fraction * 100:.2f}% above {ALERT_DRAWDOWN_WARNING_FRACTION * 100}%",
            )
        )
    if latency_p95_ms > ALERT_API_LATENCY_P95_MS:
        alerts.append(
            Alert(
                Severity.WARNING,
                "api_latency_p95",
                f"API latency p95 {latency_p95_ms:.0f} ms above {ALERT_API_LATENCY_P95_MS:.0f} ms",
            )
        )
    if rejection_rate > ALERT_REJECTION_RATE_FRACTION:
        alerts.append(
            Alert(
                Severity.CRITICAL,
                "order_rejection_rate",
                f"order rejection rate {rejection_rate * 100:.1f}% "
                f"above {ALERT_REJECTION_RATE_FRACTION * 100:.0f}%",
            )
        )
    return alerts
