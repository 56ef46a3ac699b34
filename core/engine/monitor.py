"""Monitor actor: the spec 4.3 alert thresholds, evaluated on a timer from the book and the counters.

Drawdown warnings, latency p95 and rejection rate go to the alert sink (which de-duplicates with a cool-down);
the kill switch itself is the supervisor's, not this actor's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal

import trio

from core.engine.context import EngineContext
from core.triggers import alert_levels

log = logging.getLogger("ttlive.monitor")
MONITOR_INTERVAL_S = 15.0


class MonitorActor:
    def __init__(self, ctx: EngineContext, *, latency_p95_ms: Callable[[], float]) -> None:
        self.ctx = ctx
        self.latency_p95_ms = latency_p95_ms
        self.raised: list[tuple[int, str, str]] = []  # (ts_ns, severity, key)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await trio.sleep(MONITOR_INTERVAL_S)
            await self.evaluate()

    def drawdown_fraction(self) -> Decimal:
        start = self.ctx.state.start_of_day_equity
        if start <= 0:
            return Decimal(0)
        return max(Decimal(0), (start - self.ctx.equity()) / start)

    def rejection_rate(self) -> float:
        c = self.ctx.state.counters
        return c.orders_rejected / c.orders_submitted if c.orders_submitted >= 20 else 0.0

    async def evaluate(self) -> None:
        ctx = self.ctx
        equity = ctx.equity()
        ctx.state.equity_curve.append((ctx.now_ns(), equity))
        del ctx.state.equity_curve[:-2000]
        for alert in alert_levels(self.drawdown_fraction(), self.latency_p95_ms(), self.rejection_rate()):
            self.raised.append((ctx.now_ns(), alert.severity.value, alert.key))
            ctx.state.counters.alerts += 1
            await ctx.alerts.send(severity=alert.severity.value, key=alert.key, message=alert.message,
                                  ts_ns=ctx.now_ns())
