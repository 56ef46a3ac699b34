"""Supervisor actor: kill-switch triggers, the halt lifecycle and the connectivity watchdog (spec 2.3).

It alone drives the halt machine. A trip latches at once (HALTING already closes the order gate), then the spec's
actions run in order: cancel all open orders (verified, retried), set halted and persist, optionally liquidate,
alert. Only an audited manual reset with operator and reason leads back to ACTIVE.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from decimal import Decimal

import trio

from core.engine.context import EngineContext
from core.engine.messages import ConnectivityChanged, OrdersAdopted, ResetRequested, TripRequested
from core.engine.state import deterministic_uuid
from core.halt_fsm import (
    CancelAllOrders,
    ClearHalted,
    HaltCommand,
    HaltMachine,
    HaltState,
    LiquidateAll,
    ProtectPositions,
    SendAlert,
    SetHalted,
)
from core.model import BrokerOrder, Position
from core.order_fsm import OPEN_STATUSES
from core.ports import BrokerError, NotCancelable, OrderNotFound
from core.protect import ProtectionStatus, covers, is_protective, protective_stop, working_stops
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
PROTECT_CHECK_S = 60.0  # protect mode, halted: the stops are checked against the broker's positions this often
HEALTHY_STREAM_STATES = frozenset({"live", "polling", "resyncing"})  # polling: REST still reaches the API

SupervisorMessage = TripRequested | ResetRequested | ConnectivityChanged | ReconciliationChecked | TradeClosed


class Supervisor:
    def __init__(self, ctx: EngineContext, *, inbox: trio.MemoryReceiveChannel[SupervisorMessage],
                 resync: trio.MemorySendChannel[RequestResync],
                 observers: Sequence[Callable[[bool], None]] = (),
                 execution: trio.MemorySendChannel[object] | None = None) -> None:
        self.ctx = ctx
        self.execution = execution  # protective stops are handed to execution, the one owner of order machines
        self.observers = observers  # told True the instant the gate closes (a latch), False when a reset opens it
        self.inbox = inbox
        self.resync = resync
        r = ctx.config.risk
        self.halt = (
            HaltMachine.from_state(ctx.state.halt, on_halt=r.halt_action)
            if ctx.state.halt else HaltMachine(on_halt=r.halt_action)
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
        self.on_halt = r.halt_action
        self.stop_fraction = Decimal(r.protect_stop_pct) / 100
        # Each open position at the latest halt and whether a stop of ours works for it (HaltView, audit, alert).
        self.protection: tuple[ProtectionStatus, ...] = ()
        self.protect_owed = False  # protect mode: a position found without its stop (REST trouble): try again
        self._protect_check_at_s = 0.0  # protect mode, halted: when the stops are next checked (positions move)
        self._refused: dict[str, tuple[Decimal, str]] = {}  # symbol -> (position qty, why) the broker refused a stop
        # The idle tick re-marks equity for the loss triggers; the book's writers ring ctx.book_alarm when equity
        # may have moved (a mark, a fill, an adopted position), so a tick that could only repeat the last is skipped.
        self._quiet = False  # the last step was an idle tick and nothing rang since it read the book
        self.trip_log: list[tuple[int, str, str]] = []  # (ts_ns, trigger, reason)
        self._session_trip: Trip | None = None  # a trip the session's start latched in the monitor (serve acts)
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

    def session_started(self, start_equity: Decimal, *, new_week: bool,
                        week_start_equity: Decimal | None = None) -> None:
        result = self.monitor.handle(SessionStarted(ts_s=self.ctx.now_s(), start_equity=start_equity,
                                                    new_week=new_week, week_start_equity=week_start_equity))
        if isinstance(result, Trip):  # latched in the monitor: the halt must follow (serve trips it first thing)
            self._session_trip = result
        self._save()

    async def recover(self) -> None:
        """After a restart: a persisted halt comes back latched, and its actions run again if interrupted."""
        commands = self.halt.recovery_commands(self.ctx.now_ns())
        if commands:
            await self.execute(commands)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self.recover()
        if self._session_trip is not None:
            trip, self._session_trip = self._session_trip, None
            await self.trip(trip.trigger.value, trip.reason)
        task_status.started()
        alarm = self.ctx.book_alarm
        async with self.inbox:
            while True:
                message: SupervisorMessage | None = None
                lost = bool(self.monitor.state.lost_since_s)
                # A tick is due on time unless it could only repeat the last idle tick: same book (no ring), no
                # channel down (the connectivity clock runs), no cancel-all retry owed, no message since.
                owed = (self.cancel_all_owed or self.on_halt == "protect") and self.halt.state is HaltState.HALTED
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
        elif (self.on_halt == "protect" and self.halt.state is HaltState.HALTED and not self.cancel_all_owed
              and now_s >= self._protect_check_at_s):
            await self.protect()  # a stop missing (REST was down) or stale (the position moved since) is fixed
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
                if self.on_halt != "protect":
                    self.protection = self.unprotected_book()
            elif isinstance(command, ProtectPositions):
                if self.cancel_all_verified:
                    await self.protect()
                else:  # the cancel-all is owed: its retry protects once it holds (a DELETE would take the stops)
                    self.protection = self.unprotected_book("cancel-all not verified yet")
            elif isinstance(command, SetHalted):
                ctx.system("halt", reason=command.reason,
                           extra={"trigger": str(command.trigger), "cancel_all_verified": self.cancel_all_verified,
                                  "on_halt": self.on_halt,
                                  "positions": "; ".join(p.sentence() for p in self.protection),
                                  "unprotected": sum(1 for p in self.protection if not p.protected)})
                self._save()
                ctx.persist()
            elif isinstance(command, LiquidateAll):
                await self.liquidate()
            elif isinstance(command, SendAlert):
                ctx.state.counters.alerts += 1
                message = command.message
                if command.key != "halt.reset" and self.protection:
                    message += f" [on_halt={self.on_halt}; positions: " + "; ".join(
                        p.sentence() for p in self.protection) + "]"
                await ctx.alerts.send(severity=command.severity, key=command.key, message=message,
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
                if self.on_halt == "protect":
                    remaining = await self._cancel_all_but_stops()
                else:
                    await broker.cancel_all_orders()
                    remaining = await broker.list_orders(status="open")
        except (BrokerError, trio.TooSlowError) as exc:
            log.warning("cancel-all retry failed: %s", exc)
            remaining = None
        if remaining == []:
            self.cancel_all_verified, self.cancel_all_owed = True, False
            self.ctx.system("health", reason="cancel-all verified: nothing of ours works at the venue",
                            extra={"event": "cancel_all_verified"})
            if self.on_halt == "protect":
                await self.protect()
            else:  # after a restart into the halt this is the first word on the book (HaltView, dashboard)
                self.protection = self.unprotected_book()
        else:
            self._cancel_retry_at_s = self.ctx.now_s() + CANCEL_RETRY_S

    async def _cancel_all_but_stops(self) -> list[BrokerOrder]:
        """Protect mode's retry of step 1: every open order is cancelled one by one except our protective stops
        (a DELETE /v2/orders would leave the book bare until they are placed again); returns what else remains.
        A bracket whose entry filled is listed with its legs working: the legs are cancelled (the parent cannot
        be), and the parent counts only through them."""
        broker = self.ctx.broker
        for order in _working_orders(await broker.list_orders(status="open")):
            with contextlib.suppress(NotCancelable, OrderNotFound):
                await broker.cancel_order(order.id)
        return _working_orders(await broker.list_orders(status="open"))

    def unprotected_book(self, note: str = "") -> tuple[ProtectionStatus, ...]:
        """The ledger's positions, none with a stop (cancel_all: the DELETE took the bracket legs; flatten: the
        liquidation is on its way)."""
        why = note or ("liquidation requested" if self.on_halt == "flatten" else "bracket stops cancelled by the halt")
        return tuple(ProtectionStatus(symbol=symbol, qty=qty, protected=False, note=why)
                     for symbol, qty in sorted(self.ctx.state.ledger.positions().items()) if qty != 0)

    async def protect(self) -> None:
        """on_halt = "protect": a stop-loss for every open position at the broker (ours and adopted), placed
        unless one of ours already covers it. The one exception to the closed order gate, and a narrow one: the
        orders are exits (closing side, at most the whole-share position, core.protect), never entries. Each
        placed stop is handed to execution as an order machine. Audited per position; a failure is retried."""
        broker = self.ctx.broker
        try:
            with trio.fail_after(60):
                positions = await broker.get_positions()
                open_orders = await broker.list_orders(status="open")
        except (BrokerError, trio.TooSlowError) as exc:
            log.warning("protect: could not read the book: %s", exc)
            self.protect_owed = True
            self._protect_check_at_s = self.ctx.now_s() + CANCEL_RETRY_S
            if not self.protection:
                self.protection = self.unprotected_book(f"book unreadable: {exc}")
            return
        stops = working_stops(open_orders)
        placed: list[BrokerOrder] = []
        statuses: list[ProtectionStatus] = []
        owed = False
        for position in sorted(positions, key=lambda p: p.symbol):
            if position.qty == 0:
                continue
            mine = stops.get(position.symbol, [])
            if mine and covers(position, mine):
                statuses.append(ProtectionStatus(symbol=position.symbol, qty=position.qty, protected=True,
                                                 stop_price=mine[0].stop_price, order_id=mine[0].id,
                                                 note="already protected"))
                continue
            refused = self._refused.get(position.symbol)
            if refused is not None and refused[0] == position.qty:  # said once; asked again when the position moves
                statuses.append(ProtectionStatus(symbol=position.symbol, qty=position.qty, protected=False,
                                                 note=refused[1]))
                continue
            status, order, retry = await self._place_stop(position, mine)
            if order is None and not retry and status.note.startswith("stop not placed"):
                self._refused[position.symbol] = (position.qty, status.note)
            statuses.append(status)
            owed = owed or retry
            if order is not None:
                placed.append(order)
        self.protection = tuple(statuses)
        self.protect_owed = owed
        self._protect_check_at_s = self.ctx.now_s() + (CANCEL_RETRY_S if owed else PROTECT_CHECK_S)
        if placed and self.execution is not None:
            await self.execution.send(OrdersAdopted(orders=tuple(placed), reason="protect"))

    async def _place_stop(self, position: Position, stale: list[BrokerOrder]
                          ) -> tuple[ProtectionStatus, BrokerOrder | None, bool]:
        """(status, the placed order, retry later?) for one position; stale stops of ours (a quantity that no
        longer matches) are cancelled first."""
        ctx, broker = self.ctx, self.ctx.broker
        first = self.halt.first_trip
        key = deterministic_uuid("protect", position.symbol, first.ts_ns if first else 0, ctx.now_ns())
        try:
            request = protective_stop(position, self.stop_fraction, key)
        except ValueError as exc:  # under one share, or no price at all: nothing Alpaca would take
            status = ProtectionStatus(symbol=position.symbol, qty=position.qty, protected=False, note=str(exc))
            ctx.system("health", symbol=position.symbol, reason=f"protect: cannot place a stop: {exc}",
                       extra={"event": "protect_failed", "qty": str(position.qty)})
            return status, None, False
        try:
            with trio.fail_after(60):
                for old in stale:
                    await broker.cancel_order(old.id)
                order = await broker.submit_order(request)  # the gate is closed for entries; this is an exit
        except (BrokerError, trio.TooSlowError) as exc:
            log.warning("protect: stop for %s failed: %s", position.symbol, exc)
            # A refusal (4xx: shares held by an order we may not touch, a halted symbol) is an answer: reported,
            # not retried every few seconds; unavailability (5xx, 429, timeouts) is retried.
            answered = isinstance(exc, BrokerError) and 400 <= exc.status < 500 and exc.status != 429
            ctx.system("health", symbol=position.symbol, reason=f"protect: stop not placed: {exc}",
                       extra={"event": "protect_failed", "qty": str(position.qty),
                              "client_order_id": request.client_order_id})
            status = ProtectionStatus(symbol=position.symbol, qty=position.qty, protected=False,
                                      stop_price=request.stop_price, note=f"stop not placed: {exc}")
            return status, None, not answered
        whole = request.qty == abs(position.qty)
        ctx.system("health", symbol=position.symbol,
                   reason=f"protect: stop {request.side.value} {request.qty} @ {request.stop_price} placed",
                   extra={"event": "protect_placed", "qty": str(position.qty), "stop_price": str(request.stop_price),
                          "client_order_id": request.client_order_id, "alpaca_order_id": order.id})
        status = ProtectionStatus(symbol=position.symbol, qty=position.qty, protected=whole,
                                  stop_price=request.stop_price, order_id=order.id,
                                  note="" if whole else f"fractional remainder {abs(position.qty) - request.qty} "
                                                         "has no stop (Alpaca takes none on fractions)")
        return status, order, False

    async def liquidate(self) -> None:
        try:
            with trio.fail_after(60):
                await self.ctx.broker.close_all_positions(cancel_orders=True)
        except (BrokerError, trio.TooSlowError) as exc:
            log.error("liquidation failed: %s", exc)
            self.ctx.system("health", reason=f"liquidation failed: {exc}")


def _working_orders(listed: list[BrokerOrder]) -> list[BrokerOrder]:
    """Orders (legs included) that may still execute, our protective stops excepted."""
    return [o for order in listed for o in (order, *order.legs)
            if o.status in OPEN_STATUSES and not is_protective(o.client_order_id)]
