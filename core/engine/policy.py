"""Policy actor: decision bars -> features (cached, 1 s TTL) -> one batched inference -> signals.

Signals for every symbol whose decision bar closed within the 100 ms batching window run as one batch (spec 3.1).
A signal names a target change; its id is derived from (model, symbol, bar) so a restarted engine re-derives the
same id, and with it the same client order id.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import numpy as np
import trio

from core.engine.context import EngineContext
from core.engine.messages import DecisionDue, SignalRaised
from core.engine.state import deterministic_uuid
from core.features import DEFAULT_SPEC, FeatureCache, FeatureError, RollingWindow
from core.halt_fsm import persisted_halted
from core.limits import BATCH_WINDOW_S
from core.model import Direction, ExecutionAction, Signal
from core.orderplan import WHOLE_SHARE, quantity_steps, size_for_value
from core.ports import DecisionModel, Intent

log = logging.getLogger("ttlive.policy")
ZERO = Decimal(0)


class PolicyActor:
    def __init__(
        self,
        ctx: EngineContext,
        *,
        model: DecisionModel,
        inbox: trio.MemoryReceiveChannel[DecisionDue],
        signals: trio.MemorySendChannel[SignalRaised],
        pending_qty: Any,  # () -> dict[symbol, signed Decimal]: working orders (execution actor's view)
        target_weight: Decimal,
    ) -> None:
        self.ctx = ctx
        self.model = model
        self.inbox = inbox
        self.signals = signals
        self.pending_qty = pending_qty
        self.target_weight = target_weight
        self.cache = FeatureCache()
        self.windows: dict[str, RollingWindow] = {}  # per traded symbol: floats kept as bars arrive
        self.steps = quantity_steps(ctx.config)  # symbol -> quantity step; absent = whole shares
        # The newest decision bucket (its end, market time) this actor decided on: a graceful stop records it, so a
        # replay of the session decides exactly as far (tools.replay.stop_events).
        self.decided_through_ns: int | None = None

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.model.warm_up()  # spec 3.1: the first real inference is not the first inference
        task_status.started()
        async with self.inbox:
            while True:
                try:
                    first = await self.inbox.receive()
                except trio.EndOfChannel:
                    return
                batch = [first]
                with trio.move_on_after(BATCH_WINDOW_S):  # accumulate across symbols for one inference
                    while True:
                        batch.append(await self.inbox.receive())
                for signal in self.decide(batch):
                    await self.signals.send(signal)

    def allowed_value(self) -> Decimal:
        return self.ctx.equity() * self.target_weight

    def decide(self, batch: list[DecisionDue]) -> list[SignalRaised]:
        ctx = self.ctx
        if persisted_halted(ctx.state.halt) or ctx.stopping:
            return []
        self.decided_through_ns = max(due.ts_ns for due in batch)
        raised_at = ctx.now_ns()
        symbols: list[str] = []
        rows: list[Any] = []
        fractions: list[tuple[float, float]] = []
        bar_ts: dict[str, int] = {}
        allowed = self.allowed_value()
        pending = self.pending_qty()
        for due in batch:
            for symbol in due.symbols:
                bars = ctx.state.decision_bars.get(symbol)
                price = ctx.state.mark(symbol)
                if not bars or len(bars) < DEFAULT_SPEC.lookback_bars or price is None or allowed <= 0:
                    continue
                position = ctx.state.ledger.position_qty(symbol)
                pos_fraction = float(position * price / allowed)
                work_fraction = float(pending.get(symbol, ZERO) * price / allowed)
                rolling = self.windows.get(symbol)
                if rolling is None:
                    rolling = self.windows[symbol] = RollingWindow(DEFAULT_SPEC.lookback_bars)
                window = rolling.sync(bars)  # == window_from_bars(list(bars)[-lookback_bars:])
                try:
                    row = self.cache.features(symbol, bars[-1].ts_ns, window, pos_fraction, ctx.now_s())
                except FeatureError as exc:
                    log.warning("no features for %s: %s", symbol, exc)
                    continue
                symbols.append(symbol)
                rows.append(row)
                fractions.append((pos_fraction, work_fraction))
                bar_ts[symbol] = bars[-1].ts_ns
        if not rows:
            return []
        actions = self.model.infer(np.stack(rows).astype(np.float32))
        latency_ms = max(0, (ctx.now_ns() - raised_at) // 1_000_000)  # features + inference, on the Clock port
        out: list[SignalRaised] = []
        for symbol, action_id, (pos_f, work_f) in zip(symbols, actions, fractions, strict=True):
            intent = self.model.intent(int(action_id), position_fraction=pos_f, working_fraction=work_f)
            out.extend(self._signals_for(symbol, intent, bar_ts[symbol], allowed, raised_at, int(action_id),
                                         latency_ms))
        return out

    def _signals_for(self, symbol: str, intent: Intent, bar_ts_ns: int, allowed: Decimal, raised_at: int,
                     action_id: int, latency_ms: int) -> list[SignalRaised]:
        from core import audit as A

        ctx = self.ctx
        out: list[SignalRaised] = []
        base_id = deterministic_uuid(self.model.model_id, symbol, bar_ts_ns)
        if intent.cancel_working:
            cancel = Signal(signal_id=deterministic_uuid(base_id, "cancel"), model_id=self.model.model_id,
                            symbol=symbol, direction=Direction.NEUTRAL, quantity=ZERO,
                            action=ExecutionAction.CANCEL, ts_ns=raised_at)
            out.append(SignalRaised(signal=cancel, raised_at_ns=raised_at))
        if intent.direction is not None and intent.execution is not None:
            price = ctx.state.mark(symbol)
            assert price is not None
            position = ctx.state.ledger.position_qty(symbol)
            if intent.direction is Direction.NEUTRAL:
                qty = abs(position)
            else:
                # The target weight as shares: whole, or fractional under execution.sizing (core.orderplan).
                step = self.steps.get(symbol, WHOLE_SHARE)
                qty = size_for_value(Decimal(str(intent.delta_fraction)) * allowed, price, step)
            if qty > 0:
                signal = Signal(signal_id=base_id, model_id=self.model.model_id, symbol=symbol,
                                direction=intent.direction, quantity=qty, action=intent.execution,
                                ts_ns=raised_at, reduce_only=intent.direction is Direction.NEUTRAL)
                out.append(SignalRaised(signal=signal, raised_at_ns=raised_at))
        for raised in out:
            s = raised.signal
            ctx.state.counters.signals += 1
            ctx.audit(A.signal_record(
                ts_ns=raised_at, signal_id=s.signal_id, model_id=s.model_id, symbol=s.symbol,
                direction=s.direction, quantity=s.quantity, latency_ms=latency_ms,
                extra={"action": s.action.value, "action_id": action_id, "bar_ts_ns": bar_ts_ns},
            ))
        return out
