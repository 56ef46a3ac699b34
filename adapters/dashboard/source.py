"""What the dashboard reads and commands: the ``DashboardSource`` protocol the engine implements, and an
in-memory ``StaticDashboardSource`` with real halt/reset semantics for tests, demos and the browser test.

Snapshot values are JSON-ready: money and quantities as decimal strings (never floats), times as RFC 3339.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final, Protocol

from adapters.alerts import DASHBOARD_ALERTS_MAX, Alert, DashboardAlertSink
from adapters.alpaca.models import ns_to_rfc3339
from core.limits import DAILY_LOSS_HALT_FRACTION, MAX_POSITION_FRACTION
from core.ports import Clock
from core.protect import ProtectionStatus
from core.triggers import Severity

EQUITY_CURVE_MAX_POINTS: Final = 2_000  # ~5.5 h of 10 s points; the chart needs no more
OPERATOR_MAX_CHARS: Final = 100
REASON_MAX_CHARS: Final = 500
HALT_ACTIVE: Final = "ACTIVE"
HALT_HALTED: Final = "HALTED"
_CENT: Final = Decimal("0.01")


class CommandRejected(Exception):
    """The source refused a dashboard command in its current state (e.g. reset while not halted)."""


class DashboardSource(Protocol):
    """The engine as the dashboard sees it.

    ``snapshot()`` returns a JSON-able dict with keys: ts (RFC 3339), mode, positions [{symbol, qty,
    avg_entry_price, current_price, market_value, unrealized_pl}], unrealized_pl, daily_realized_pl,
    open_orders {count, value_usd}, risk_utilisation {rule_id: percent}, connections {stream: state},
    halt {state, trigger, reason, since, on_halt, protection [{symbol, qty, protected, stop_price, order_id, note}]
    while halted, else []}, alerts [last 50, oldest first], equity_curve [[ts, equity], ...],
    fills_count, orders_count.
    ``kill`` latches the kill switch (idempotent when already halted). ``reset`` needs a non-empty operator and
    reason, raises ``ValueError`` when they are missing and ``CommandRejected`` when not halted.
    """

    def snapshot(self) -> dict[str, Any]: ...
    async def kill(self, reason: str, source: str) -> None: ...
    async def reset(self, operator: str, reason: str) -> None: ...


def validate_reset(operator: str, reason: str) -> tuple[str, str]:
    """The one place that says what a valid manual reset carries (architecture: operator + reason)."""
    operator, reason = operator.strip(), reason.strip()
    if not operator or not reason:
        raise ValueError("reset needs a non-empty operator and reason")
    if len(operator) > OPERATOR_MAX_CHARS or len(reason) > REASON_MAX_CHARS:
        raise ValueError(f"operator is limited to {OPERATOR_MAX_CHARS} and reason to {REASON_MAX_CHARS} chars")
    return operator, reason


def money(value: Decimal) -> str:
    return str(value.quantize(_CENT, rounding=ROUND_HALF_EVEN))


@dataclass(slots=True)
class _Holding:
    qty: Decimal
    avg_entry_price: Decimal
    current_price: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class DashboardCommand:
    """A command the source carried out, recorded for tests (fakes record what happened)."""

    kind: str  # "kill" | "reset"
    ts_ns: int
    actor: str  # kill: where it came from; reset: the operator
    reason: str


class StaticDashboardSource:
    """An in-memory account with positions, open orders, connections and a halt latch.

    Prices move only when told (``mark``/``step``), so tests decide what changes. ``kill`` cancels the open
    orders and latches HALTED; ``reset`` needs operator and reason and works only while halted.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        mode: str = "sim",
        cash_usd: Decimal = Decimal("100000"),
        alerts: DashboardAlertSink | None = None,
    ) -> None:
        self._clock = clock
        self.mode = mode
        self.cash_usd = cash_usd
        self.alerts = alerts if alerts is not None else DashboardAlertSink(DASHBOARD_ALERTS_MAX)
        self.daily_realized_pl = Decimal(0)
        self.fills_count = 0
        self.orders_count = 0
        self._holdings: dict[str, _Holding] = {}
        self._open_orders: list[tuple[str, Decimal, Decimal]] = []  # (symbol, qty, limit price)
        self.connections: dict[str, str] = {}
        self._halt: dict[str, Any] = {"state": HALT_ACTIVE, "trigger": None, "reason": None, "since": None,
                                      "on_halt": "cancel_all", "protection": []}
        self._equity_curve: deque[tuple[int, Decimal]] = deque(maxlen=EQUITY_CURVE_MAX_POINTS)
        self.commands: list[DashboardCommand] = []

    # --- state the test or demo drives ----------------------------------------------------------------
    @property
    def halted(self) -> bool:
        return bool(self._halt["state"] != HALT_ACTIVE)

    def set_position(self, symbol: str, qty: Decimal, avg_entry_price: Decimal) -> None:
        self._holdings[symbol] = _Holding(qty, avg_entry_price, avg_entry_price)
        self.record_equity()

    def close_position(self, symbol: str, price: Decimal) -> None:
        """Sell (or cover) the whole position at ``price``: the P&L is realized into today's total and cash."""
        holding = self._holdings.pop(symbol)
        self.daily_realized_pl += (price - holding.avg_entry_price) * holding.qty
        self.cash_usd += holding.qty * price
        self.fills_count += 1
        self.record_equity()

    def add_open_order(self, symbol: str, qty: Decimal, limit_price: Decimal) -> None:
        self._open_orders.append((symbol, qty, limit_price))
        self.orders_count += 1

    def set_connection(self, stream: str, state: str) -> None:
        self.connections[stream] = state

    def mark(self, symbol: str, price: Decimal) -> None:
        self._holdings[symbol].current_price = price
        self.record_equity()

    def step(self, rng: random.Random, *, max_move_bps: int = 50) -> None:
        """Move every price by a seeded random walk of at most ``max_move_bps`` and record equity."""
        for symbol in sorted(self._holdings):
            holding = self._holdings[symbol]
            move_bps = rng.randint(-max_move_bps, max_move_bps)
            holding.current_price = (holding.current_price * (1 + Decimal(move_bps) / 10_000)).quantize(_CENT)
        self.record_equity()

    def equity_usd(self) -> Decimal:
        return self.cash_usd + sum((h.qty * h.current_price for h in self._holdings.values()), Decimal(0))

    def record_equity(self) -> None:
        self._equity_curve.append((self._clock.now_ns(), self.equity_usd()))

    # --- DashboardSource -----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        equity = self.equity_usd()
        positions = []
        unrealized = Decimal(0)
        largest_fraction = Decimal(0)
        for symbol in sorted(self._holdings):
            h = self._holdings[symbol]
            market_value = h.qty * h.current_price
            pl = (h.current_price - h.avg_entry_price) * h.qty
            unrealized += pl
            if equity > 0:
                largest_fraction = max(largest_fraction, abs(market_value) / equity)
            positions.append({
                "symbol": symbol,
                "qty": str(h.qty),
                "avg_entry_price": money(h.avg_entry_price),
                "current_price": money(h.current_price),
                "market_value": money(market_value),
                "unrealized_pl": money(pl),
            })
        day_loss = -min(self.daily_realized_pl + unrealized, Decimal(0))
        day_loss_fraction = day_loss / equity if equity > 0 else Decimal(0)
        return {
            "ts": ns_to_rfc3339(self._clock.now_ns()),
            "mode": self.mode,
            "positions": positions,
            "unrealized_pl": money(unrealized),
            "daily_realized_pl": money(self.daily_realized_pl),
            "open_orders": {
                "count": len(self._open_orders),
                "value_usd": money(sum((q * p for _, q, p in self._open_orders), Decimal(0))),
            },
            "risk_utilisation": {
                "daily_loss": money(day_loss_fraction / DAILY_LOSS_HALT_FRACTION * 100),
                "position_size": money(largest_fraction / MAX_POSITION_FRACTION * 100),
            },
            "connections": dict(sorted(self.connections.items())),
            "halt": dict(self._halt),
            "alerts": self.alerts.recent(),
            "equity_curve": [[ns_to_rfc3339(ts), money(eq)] for ts, eq in self._equity_curve],
            "fills_count": self.fills_count,
            "orders_count": self.orders_count,
        }

    async def kill(self, reason: str, source: str) -> None:
        now_ns = self._clock.now_ns()
        self.commands.append(DashboardCommand(kind="kill", ts_ns=now_ns, actor=source, reason=reason))
        if self.halted:
            return  # the latch is already set; a second kill changes nothing
        self._open_orders.clear()  # spec 2.3 action 1: cancel all open orders (on_halt = cancel_all)
        protection = [ProtectionStatus(symbol=symbol, qty=h.qty, protected=False,
                                       note="stop-loss orders cancelled by the halt").to_dict()
                      for symbol, h in sorted(self._holdings.items())]
        self._halt = {"state": HALT_HALTED, "trigger": "manual", "reason": reason,
                      "since": ns_to_rfc3339(now_ns), "on_halt": "cancel_all", "protection": protection}
        await self._alert(Severity.CRITICAL, "kill_switch", f"kill switch engaged by {source}: {reason}", now_ns)

    async def reset(self, operator: str, reason: str) -> None:
        operator, reason = validate_reset(operator, reason)
        if not self.halted:
            raise CommandRejected("reset refused: the kill switch is not engaged")
        now_ns = self._clock.now_ns()
        self.commands.append(DashboardCommand(kind="reset", ts_ns=now_ns, actor=operator, reason=reason))
        self._halt = {"state": HALT_ACTIVE, "trigger": None, "reason": None, "since": ns_to_rfc3339(now_ns),
                      "on_halt": "cancel_all", "protection": []}
        await self._alert(Severity.WARNING, "kill_switch_reset", f"kill switch reset by {operator}: {reason}",
                          now_ns)

    async def _alert(self, severity: Severity, key: str, message: str, ts_ns: int) -> None:
        await self.alerts.deliver(Alert(severity=severity, key=key, message=message, ts_ns=ts_ns))


# The keys every snapshot carries (the protocol's contract; tests check sources against it).
SNAPSHOT_KEYS: Final[frozenset[str]] = frozenset({
    "ts", "mode", "positions", "unrealized_pl", "daily_realized_pl", "open_orders", "risk_utilisation",
    "connections", "halt", "alerts", "equity_curve", "fills_count", "orders_count",
})

__all__ = [
    "SNAPSHOT_KEYS",
    "CommandRejected",
    "DashboardCommand",
    "DashboardSource",
    "StaticDashboardSource",
    "validate_reset",
]

