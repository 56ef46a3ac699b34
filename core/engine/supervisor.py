"""Supervisor actor: kill-switch triggers, the halt lifecycle and the connectivity watchdog (spec 2.3).

It alone drives the halt machine. A trip latches at once (HALTING already closes the order gate), then the spec's
actions run in order: cancel all open orders (verified, retried), set halted and persist, optionally liquidate,
alert. Only an audited manual reset with operator and reason leads back to ACTIVE.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from decimal import Decimal

import trio

from core.engine.context import EngineContext
from core.engine.messages import ConnectivityChanged, ResetRequested, TripRequested
from core.halt_fsm import (
    CancelAllOrders,
    ClearHalted,
    HaltCommand,
    HaltMachine,
    HaltState,
    LiquidateAll,
    SendAlert,
    SetHalted,
)
from core.ports import BrokerError
from core.triggers import (
    ClockTicked,
    ConnectivityLost,
    ConnectivityRestored,
    EquityMarked,
    KillSwitchMonitor,
    ReconciliationChecked,
    RequestResync,
    SessionStarted,
    TradeClosed,
    TriggerConfig,
    Trip,
)

log = logging.getLogger("ttlive.supervisor")
TICK_S = 1.0  # watchdog resolution while a channel is down: connectivity judged to the second (spec 2.3)
IDLE_TICK_S = 5.0  # equity marks for the loss triggers when every channel is up
CANCEL_ALL_ATTEMPTS = 5
# A halted book whose cancel-all was not verified (REST down at the latch, or a restart while halted) is tried
# again this often, one attempt at a time, until nothing of ours works at the venue.
CANCEL_RETRY_S = 10.0
CANCEL_RETRY_TIMEOUT_S = 30.0
HEALTHY_STREAM_STATES = frozenset({"live", "polling", "resyncing"})  # polling: REST still reaches the API

SupervisorMessage = TripRequested | ResetRequested | ConnectivityChanged | ReconciliationChecked | TradeClosed


class Supervisor:
    def __init__(self, ctx: EngineContext, *, inbox: trio.MemoryReceiveChannel[SupervisorMessage],
                 resync: trio.MemorySendChannel[RequestResync],
                 observers: Sequence[Callable[[bool], None]] = ()) -> None:
        self.ctx = ctx
        self.observers = observers  # told True the instant the gate closes (a latch), False when a reset opens it
        self.inbox = inbox
        self.resync = resync
        r = ctx.config.risk
        self.halt = (
            HaltMachine.from_state(ctx.state.halt, liquidate_on_halt=r.liquidate_on_halt)
            if ctx.state.halt else HaltMachine(liquidate_on_halt=r.liquidate_on_halt)
        )
        trigger_config = TriggerConfig(
            daily_loss_fraction=Decimal(r.daily_loss_halt_pct) / 100,
            weekly_loss_fraction=Decimal(r.weekly_loss_halt_pct) / 100,
            max_consecutive_losses=r.max_consecutive_losses,
            connectivity_lost_halt_s=r.connectivity_lost_halt_s,
        )
        self.monitor = (
            KillSwitchMonitor.from_dict(ctx.state.triggers, trigger_config)
            if ctx.state.triggers else KillSwitchMonitor(trigger_config)
        )
        self.halted_event = trio.Event()
        self.cancel_all_verified = False
        # Owed a verified cancel-all: after a failed one, and after a restart while halted (orders may have been
        # placed or survived while we were down).
        self.cancel_all_owed = self.is_halted
        self._cancel_retry_at_s = 0.0
        # The idle tick re-marks equity for the loss triggers; the book's writers ring ctx.book_alarm when equity
        # may have moved (a mark, a fill, an adopted position), so a tick that could only repeat the last is skipped.
        self._quiet = False  # the last step was an idle tick and nothing rang since it read the book
        self.trip_log: list[tuple[int, str, str]] = []  # (ts_ns, trigger, reason)
        self.reset_log: list[tuple[int, str, str]] = []
        self._save()

    @property
    def is_halted(self) -> bool:
        return self.halt.state is not HaltState.ACTIVE

    @property
    def halted_since_ns(self) -> int | None:
        """When the current halt latched (its first trip); None while trading."""
        first = self.halt.first_trip
        return first.ts_ns if self.is_halted and first is not None else None

    def _save(self) -> None:
        self.ctx.state.halt = self.halt.to_state()
        self.ctx.state.triggers = self.monitor.to_dict()

    # --- wiring ----------------------------------------------------------------------------------------------

    def session_started(self, start_equity: Decimal, *, new_week: bool) -> None:
        self.monitor.handle(SessionStarted(ts_s=self.ctx.now_s(), start_equity=start_equity, new_week=new_week))
        self._save()

    async def recover(self) -> None:
        """After a restart: a persisted halt comes back latched, and its actions run again if interrupted."""
        commands = self.halt.recovery_commands(self.ctx.now_ns())
        if commands:
            await self.execute(commands)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self.recover()
        task_status.started()
        alarm = self.ctx.book_alarm
        async with self.inbox:
            while True:
                message: SupervisorMessage | None = None
                lost = bool(self.monitor.state.lost_since_s)
                # A tick is due on time unless it could only repeat the last idle tick: same book (no ring), no
                # channel down (the connectivity clock runs), no cancel-all retry owed, no message since.
                owed = self.cancel_all_owed and self.halt.state is HaltState.HALTED
                due = lost or owed or not self._quiet
                with alarm.wait_scope(TICK_S if lost else IDLE_TICK_S, due=due):
                    try:
                        message = await self.inbox.receive()
                    except trio.EndOfChannel:
                        return
                rung = alarm.rings
                await self.step(message)
                self._quiet = message is None and alarm.rings == rung

    async def step(self, message: SupervisorMessage | None) -> None:
        ctx = self.ctx
        now_s = ctx.now_s()
        if isinstance(message, TripRequested):
            await self.trip(message.trigger, message.reason)
            return
        if isinstance(message, ResetRequested):
            await self.reset(message.operator, message.reason)
            return
        if isinstance(message, ConnectivityChanged):
            if message.state in HEALTHY_STREAM_STATES:
                result = self.monitor.handle(ConnectivityRestored(ts_s=now_s, channel=message.stream))
            else:
                result = self.monitor.handle(ConnectivityLost(ts_s=now_s, channel=message.stream))
        elif isinstance(message, ReconciliationChecked | TradeClosed):
            result = self.monitor.handle(message)
        elif self.cancel_all_owed and self.halt.state is HaltState.HALTED and now_s >= self._cancel_retry_at_s:
            await self.retry_cancel_all()
            result = None
        else:
            result = self.monitor.handle(EquityMarked(ts_s=now_s, equity=ctx.equity()))
            if result is None:
                result = self.monitor.handle(ClockTicked(ts_s=now_s))
        self._save()
        if isinstance(result, Trip):
            await self.trip(result.trigger.value, result.reason)
        elif isinstance(result, RequestResync):
            await self.resync.send(result)

    # --- the halt --------------------------------------------------------------------------------------------

    async def trip(self, trigger: str, reason: str) -> None:
        ctx = self.ctx
        was_halted = self.is_halted
        commands = self.halt.trip(trigger, reason, ctx.now_ns())
        self.trip_log.append((ctx.now_ns(), trigger, reason))
        self._save()
        ctx.persist()  # latched before any network call: a crash now still comes back halted
        if not was_halted:
            self._tell(True)
        await self.execute(commands)

    async def reset(self, operator: str, reason: str) -> None:
        from core.fsm_errors import IllegalTransition
        from core.halt_fsm import InvalidReset
        from core.latch import reset_latch

        ctx = self.ctx
        try:
            commands = reset_latch(self.halt, self.monitor, operator=operator, reason=reason, now_ns=ctx.now_ns())
        except (InvalidReset, IllegalTransition) as exc:
            log.warning("manual reset refused: %s", exc)
            ctx.system("health", reason=f"manual reset refused: {exc}", operator=operator)
            return
        self.reset_log.append((ctx.now_ns(), operator, reason))
        self._save()
        await self.execute(commands)
        if not self.is_halted:
            self._tell(False)

    def _tell(self, halted: bool) -> None:
        for observer in self.observers:
            observer(halted)

    async def execute(self, commands: list[HaltCommand]) -> None:
        ctx = self.ctx
        for command in commands:
            if isinstance(command, CancelAllOrders):
                self.cancel_all_verified = await self.cancel_all()
                self.cancel_all_owed = not self.cancel_all_verified
                self._cancel_retry_at_s = ctx.now_s() + CANCEL_RETRY_S
            elif isinstance(command, SetHalted):
                ctx.system("halt", reason=command.reason,
                           extra={"trigger": str(command.trigger), "cancel_all_verified": self.cancel_all_verified})
                self._save()
                ctx.persist()
            elif isinstance(command, LiquidateAll):
                await self.liquidate()
            elif isinstance(command, SendAlert):
                ctx.state.counters.alerts += 1
                await ctx.alerts.send(severity=command.severity, key=command.key, message=command.message,
                                      ts_ns=command.ts_ns)
            elif isinstance(command, ClearHalted):
                ctx.system("reset", reason=command.reason, operator=command.operator)
                self._save()
                ctx.persist()
        if self.halt.state is HaltState.HALTING:
            self.halt.halt_complete(ctx.now_ns())
            self._save()
            ctx.persist()
            self.halted_event.set()

    async def cancel_all(self) -> bool:
        """DELETE /v2/orders, then verify no open order remains; retried with backoff (spec 2.3 step 1)."""
        broker = self.ctx.broker
        for attempt in range(1, CANCEL_ALL_ATTEMPTS + 1):
            try:
                with trio.fail_after(60):
                    await broker.cancel_all_orders()
                    remaining = await broker.list_orders(status="open")
                if not remaining:
                    return True
                log.warning("cancel-all: %d orders still open (attempt %d)", len(remaining), attempt)
            except (BrokerError, trio.TooSlowError) as exc:
                log.warning("cancel-all attempt %d failed: %s", attempt, exc)
            await trio.sleep(min(30.0, 2.0 ** attempt))
        self.ctx.system("health", reason="cancel-all could not be verified after retries")
        return False

    async def retry_cancel_all(self) -> None:
        """One more try at the kill switch's step 1 for a halted book; audited when it finally holds."""
        broker = self.ctx.broker
        try:
            with trio.fail_after(CANCEL_RETRY_TIMEOUT_S):
                await broker.cancel_all_orders()
                remaining = await broker.list_orders(status="open")
        except (BrokerError, trio.TooSlowError) as exc:
            log.warning("cancel-all retry failed: %s", exc)
            remaining = None
        if remaining == []:
            self.cancel_all_verified, self.cancel_all_owed = True, False
            self.ctx.system("health", reason="cancel-all verified: nothing of ours works at the venue",
                            extra={"event": "cancel_all_verified"})
        else:
            self._cancel_retry_at_s = self.ctx.now_s() + CANCEL_RETRY_S

    async def liquidate(self) -> None:
        try:
            with trio.fail_after(60):
                await self.ctx.broker.close_all_positions(cancel_orders=True)
        except (BrokerError, trio.TooSlowError) as exc:
            log.error("liquidation failed: %s", exc)
            self.ctx.system("health", reason=f"liquidation failed: {exc}")
