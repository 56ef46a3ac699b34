"""Risk actor: every signal passes RiskGuard.evaluate_signal before anything reaches the broker (spec 2.1).

It builds the portfolio view from the book at the moment of the check, audits each decision (rules evaluated,
action taken) and forwards only PASS/RESIZE to execution. While halted every new signal is refused with ``halt``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import trio

from core import audit as A
from core.engine.context import EngineContext
from core.engine.messages import CancelRequested, SignalRaised, SubmitApproved
from core.limits import PDT_WINDOW_DAYS
from core.model import ExecutionAction
from core.risk import Outcome, PortfolioView, RiskConfig, RiskGuard

log = logging.getLogger("ttlive.risk")


class RiskActor:
    def __init__(
        self,
        ctx: EngineContext,
        *,
        inbox: trio.MemoryReceiveChannel[SignalRaised],
        execution: trio.MemorySendChannel[Any],
        pending_qty: Callable[[], dict[str, Decimal]],
        is_halted: Callable[[], bool],
        correlations: Callable[[], Any],
        buying_power: Callable[[], Decimal],
        pattern_day_trader: bool = False,
    ) -> None:
        self.ctx = ctx
        self.inbox = inbox
        self.execution = execution
        self.pending_qty = pending_qty
        self.is_halted = is_halted
        self.correlations = correlations
        self.buying_power = buying_power
        self.pattern_day_trader = pattern_day_trader
        self.config = RiskConfig.from_engine_config(ctx.config)
        self.config.validate_sectors(ctx.config.symbols)
        self.guard = RiskGuard(self.config)

    def view(self) -> PortfolioView:
        st = self.ctx.state
        pending = {s: q for s, q in self.pending_qty().items() if q != 0}
        positions = st.ledger.positions()
        prices: dict[str, Decimal] = {}
        for symbol in sorted(set(positions) | set(pending) | set(self.ctx.config.symbols)):
            mark = st.mark(symbol)
            if mark is not None and mark > 0:
                prices[symbol] = mark
        return PortfolioView(
            equity=st.ledger.equity_usd(),
            last_equity=st.start_of_day_equity,
            week_start_equity=st.start_of_week_equity,
            cash=st.ledger.cash_usd,
            buying_power=self.buying_power(),
            account_type=self.ctx.account_type,
            positions=positions,
            prices=prices,
            open_orders=pending,
            correlations=self.correlations(),
            day_trades_5d=st.day_trades_in_window(PDT_WINDOW_DAYS),
            bought_today=frozenset(st.bought_today),
            sold_today=frozenset(st.sold_today),
            pattern_day_trader=self.pattern_day_trader,
            halted=self.is_halted(),
        )

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async with self.inbox:
            async for raised in self.inbox:
                forward = self.check(raised)
                if forward is not None:
                    await self.execution.send(forward)

    def check(self, raised: SignalRaised) -> SubmitApproved | CancelRequested | None:
        ctx, signal = self.ctx, raised.signal
        if signal.action is ExecutionAction.CANCEL:
            return CancelRequested(signal=signal)  # cancels reduce risk: never blocked, audited as cancels
        t0_ns = ctx.now_ns()
        decision = self.guard.evaluate_signal(signal, self.view())
        latency_ms = max(0, (ctx.now_ns() - t0_ns) // 1_000_000)  # on the Clock port: 0 in virtual time
        counters = ctx.state.counters
        if decision.outcome is Outcome.PASS:
            counters.risk_pass += 1
        elif decision.outcome is Outcome.RESIZE:
            counters.risk_resize += 1
        else:
            counters.risk_reject += 1
        ctx.audit(A.risk_record(
            ts_ns=ctx.now_ns(), signal_id=signal.signal_id, model_id=signal.model_id, symbol=signal.symbol,
            direction=signal.direction, quantity=decision.approved_qty, result=decision.to_audit(),
            latency_ms=latency_ms, requested_quantity=decision.requested_qty,
            extra={"binding_rule": decision.binding_rule,
                   "reasons": "; ".join(f"{k}: {v}" for k, v in sorted(decision.reasons.items()))},
        ))
        if not decision.passed or decision.approved_qty < 1:
            return None
        return SubmitApproved(signal=signal, approved_qty=decision.approved_qty, raised_at_ns=raised.raised_at_ns)
