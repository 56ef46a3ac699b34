"""Execution actor: approved signals become orders; venue updates drive each order's state machine.

The only writer of order machines and of the ledger. Network calls run in child tasks that report back through
the inbox, so a slow submit never delays a fill, and every machine is mutated in one place (the actor loop).
A submit is audited (fsync) before it is sent; a fill is audited before it is booked.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable
from decimal import ROUND_FLOOR, Decimal

import msgspec
import trio

from core import audit as A
from core.engine.context import EngineContext
from core.engine.messages import (
    CancelRequested,
    OrdersAdopted,
    ResyncRequested,
    ResyncWaiter,
    SubmitApproved,
    SubmitFinished,
    TradeUpdateReceived,
)
from core.engine.state import TrackedOrder, deterministic_uuid
from core.fsm_errors import IllegalTransition, VenueProtocolError
from core.model import NS_PER_S, Activity, BrokerOrder, Direction, Fill, OrderRequest, Quote, Side, TradeUpdate
from core.order_fsm import (
    MAY_EXECUTE,
    OPEN,
    Applied,
    Order,
    OrderEvent,
    OrderState,
    Outcome,
    status_event,
    trade_event,
)
from core.orderplan import PlanConfig, PlanError, is_entry, plan_order, trailing_exit
from core.ports import (
    BrokerError,
    BrokerUnavailable,
    DuplicateClientOrderId,
    NotCancelable,
    OrderGateClosed,
    OrderNotFound,
)

log = logging.getLogger("ttlive.execution")
ZERO = Decimal(0)
MAX_REPRICE_ATTEMPTS = 1  # execution.on_reject = "reprice_once"
LOOKUP_ATTEMPTS = 3  # GET by client_order_id after an ambiguous submit, 1 s (halted) or 5 s apart; then ...
LOOKUP_SLOW_RETRY_S = 30.0  # ... every 30 s for as long as REST cannot answer and nothing else settled the order


class LookupFinished(msgspec.Struct, frozen=True, kw_only=True):
    client_order_id: str
    order: BrokerOrder | None  # None: the venue never got it


class ResyncData(msgspec.Struct, frozen=True, kw_only=True):
    orders: list[BrokerOrder]
    activities: list[Activity]
    reason: str


class CancelFinished(msgspec.Struct, frozen=True, kw_only=True):
    """The venue's answer to a cancel of ours; the cancel's audit record is written now, with the latency from
    the decision (``decided_ns``) to this answer."""

    client_order_id: str
    error: str | None = None
    venue_order_id: str = ""
    reason: str = ""
    quantity: Decimal = Decimal(0)  # the leaves quantity when the cancel was decided
    decided_ns: int = 0


ExecutionMessage = (
    SubmitApproved | CancelRequested | TradeUpdateReceived | SubmitFinished | LookupFinished | ResyncRequested
    | ResyncData | CancelFinished | OrdersAdopted
)
ADOPTED = "ADOPTED"  # TrackedOrder.action of an order of ours found open at start-up (placed by an earlier life)
PROTECT = "PROTECT_STOP"  # TrackedOrder.action of a protective stop the supervisor placed at a halt (core.protect)
EXITS_ONLY = frozenset({PROTECT})  # actions that only ever reduce a position: not pending exposure


def fill_from_activity(activity: Activity, client_order_id: str) -> Fill:
    """A FILL activity carries the execution (its id decoded by the adapter)."""
    execution_id = activity.execution_id
    return Fill(
        execution_id=execution_id, order_id=activity.order_id, client_order_id=client_order_id,
        symbol=activity.symbol, side=Side.BUY if activity.side == "buy" else Side.SELL, qty=activity.qty,
        price=activity.price, ts_ns=activity.ts_ns, cum_qty=activity.cum_qty,
    )


class ExecutionActor:
    def __init__(
        self,
        ctx: EngineContext,
        *,
        inbox: trio.MemoryReceiveChannel[ExecutionMessage],
        self_send: trio.MemorySendChannel[ExecutionMessage],
        is_halted: Callable[[], bool],
        on_fill: Callable[[Fill, Decimal, bool], None],
        halted_since_ns: Callable[[], int | None] = lambda: None,
    ) -> None:
        self.ctx = ctx
        self.inbox = inbox
        self.self_send = self_send
        self.is_halted = is_halted
        self.halted_since_ns = halted_since_ns  # when the current halt latched (None while trading)
        self.on_fill = on_fill  # (fill, realised P&L of a closed round trip, closed?) -> supervisor
        # Executions audited by an earlier life that died before saving them (Engine.load_state): booked when they
        # come again, not audited twice.
        self.audited_unbooked: set[str] = set()
        self.machines: dict[str, Order] = {}
        self.resync_waiters: list[ResyncWaiter] = []
        self.nursery: trio.Nursery | None = None
        self.plan_config = PlanConfig.from_engine_config(ctx.config)

    # --- reading (other actors) ------------------------------------------------------------------------------

    def open_orders(self, symbol: str | None = None) -> list[tuple[TrackedOrder, Order]]:
        out = []
        for coid, order in sorted(self.machines.items()):
            if order.state in MAY_EXECUTE and (symbol is None or order.symbol == symbol):
                out.append((self.ctx.state.orders[coid], order))
        return out

    def pending_qty(self) -> dict[str, Decimal]:
        """Net signed leaves quantity per symbol of orders that may still execute (legs excluded: they only
        ever reduce what their entry opened)."""
        out: dict[str, Decimal] = {}
        for tracked, order in self.open_orders():
            if tracked.parent_client_order_id is not None or tracked.action in EXITS_ONLY:
                continue
            signed = order.leaves_qty if order.side is Side.BUY else -order.leaves_qty
            out[order.symbol] = out.get(order.symbol, ZERO) + signed
        return out

    def open_order_value_usd(self) -> Decimal:
        total = ZERO
        for tracked, order in self.open_orders():
            if tracked.parent_client_order_id is None and tracked.action not in EXITS_ONLY:
                total += order.leaves_qty * tracked.reference_price
        return total

    def venue_open_ids(self) -> set[str]:
        return {o.venue_order_id for _, o in self.open_orders() if o.venue_order_id and o.state in OPEN}

    # --- the loop --------------------------------------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            task_status.started()
            async with self.inbox:
                async for message in self.inbox:
                    self.handle(message)
            nursery.cancel_scope.cancel()

    def handle(self, message: ExecutionMessage) -> None:
        if isinstance(message, TradeUpdateReceived):
            self.on_trade_update(message.update)
        elif isinstance(message, SubmitApproved):
            self.on_approved(message)
        elif isinstance(message, SubmitFinished):
            self.on_submit_finished(message)
        elif isinstance(message, LookupFinished):
            self.on_lookup_finished(message)
        elif isinstance(message, CancelRequested):
            self.on_cancel_requested(message)
        elif isinstance(message, CancelFinished):
            self.on_cancel_finished(message)
        elif isinstance(message, ResyncRequested):
            self._spawn(self._fetch_resync, message.reason)
        elif isinstance(message, ResyncData):
            self.on_resync(message)
        elif isinstance(message, OrdersAdopted):
            self.adopt_orders(message.orders, reason=message.reason)

    def _spawn(self, fn: Callable[..., object], *args: object) -> None:
        assert self.nursery is not None, "execution actor not started"
        self.nursery.start_soon(fn, *args)  # type: ignore[arg-type]

    # --- submissions -----------------------------------------------------------------------------------------

    def quote_for(self, symbol: str) -> Quote | None:
        """The touch an order is planned at: the fresh quote, else one at the last price (the newest bar's close
        when the quote fell behind the bars, else the last decision bar's)."""
        state = self.ctx.state
        quote = state.fresh_quote(symbol)
        if quote is not None:
            return quote
        price = state.mark(symbol) if symbol in state.quotes else None  # overtaken by bars: the newest bar's close
        ts_ns = state.last_bar_start_ns.get(symbol, 0)
        if price is None and (bars := state.decision_bars.get(symbol)):
            price, ts_ns = bars[-1].close, bars[-1].ts_ns
        if price is None:
            return None
        return Quote(symbol=symbol, bid_price=price, ask_price=price, bid_size=ZERO, ask_size=ZERO, ts_ns=ts_ns,
                     interpolated=True)

    def on_approved(self, message: SubmitApproved, attempt: int = 0) -> None:
        ctx, signal = self.ctx, message.signal
        if self.is_halted():
            ctx.state.counters.skipped_while_halted += 1
            log.info("signal %s dropped: trading is halted", signal.signal_id)
            return
        quote = self.quote_for(signal.symbol)
        if quote is None:
            log.warning("no quote for %s: signal %s dropped", signal.symbol, signal.signal_id)
            return
        position = ctx.state.ledger.position_qty(signal.symbol)
        try:
            request = plan_order(
                signal_id=signal.signal_id, attempt=attempt, symbol=signal.symbol, direction=signal.direction,
                qty=message.approved_qty, action=signal.action, quote=quote,
                position_qty=position, config=self.plan_config,
            )
        except PlanError as exc:
            log.info("signal %s not expressible as an order: %s", signal.signal_id, exc)
            return
        coid = request.client_order_id
        if coid in self.machines:
            log.warning("order %s already exists: not submitting twice", coid)
            return
        tracked = TrackedOrder(
            client_order_id=coid, signal_id=signal.signal_id, symbol=request.symbol, side=request.side,
            qty=request.qty, attempt=attempt, reference_price=quote.mid, raised_at_ns=message.raised_at_ns,
            action=signal.action.value, direction=signal.direction.value, notional=request.notional,
            protect=self.plan_config.protective_exit == "trailing_stop" and is_entry(request.side, position),
        )
        self._send_new(request, tracked, model_id=signal.model_id, direction=signal.direction,
                       latency_ms=max(0, (ctx.now_ns() - message.raised_at_ns) // 1_000_000))

    def _send_new(self, request: OrderRequest, tracked: TrackedOrder, *, model_id: str, direction: Direction,
                  latency_ms: int) -> None:
        """Machine, durable intent (audit + persist), then the send: for entries, exits and protective exits."""
        ctx, coid = self.ctx, request.client_order_id
        order = Order(order_id=deterministic_uuid("exec", coid), client_order_id=coid, symbol=request.symbol,
                      side=request.side, qty=request.qty, notional=request.notional)
        order.apply(OrderEvent.RISK_APPROVED, ts_ns=ctx.now_ns())
        self.machines[coid] = order
        ctx.state.orders[coid] = tracked
        # Durable intent before the send: after a crash the same key is re-derived, never a second order.
        extra: dict[str, object] = {
            "type": request.type.value, "time_in_force": request.time_in_force.value,
            "limit_price": str(request.limit_price) if request.limit_price is not None else None,
            "order_class": request.order_class.value, "side": request.side.value, "attempt": tracked.attempt,
        }
        if request.notional is not None:
            extra["notional"] = request.notional
        if request.trail_percent is not None:
            extra["trail_percent"] = request.trail_percent
        ctx.audit(A.order_record(
            ts_ns=ctx.now_ns(), signal_id=tracked.signal_id, model_id=model_id, symbol=request.symbol,
            direction=direction, quantity=request.qty, client_order_id=coid, latency_ms=latency_ms, extra=extra,
        ))
        self._snapshot(order)
        ctx.persist()
        if self.is_halted():  # the halt may have latched while we audited: never send after it
            order.apply(OrderEvent.WITHDRAWN, ts_ns=ctx.now_ns())
            self._snapshot(order)
            return
        order.apply(OrderEvent.SUBMIT_SENT, ts_ns=ctx.now_ns())
        tracked.submitted_at_ns = ctx.now_ns()
        ctx.state.counters.orders_submitted += 1
        if tracked.parent_client_order_id is not None:  # a protective exit releases nothing
            self._spawn(self._submit, request, [])
            return
        # Working orders on the other side must go first: an exit needs the shares its bracket legs hold
        # ("insufficient qty"), and an order that could cross our own resting order is a wash trade (422).
        release = [o.venue_order_id for t, o in self.open_orders(request.symbol)
                   if o.venue_order_id is not None
                   and (t.parent_client_order_id is not None or t.action in EXITS_ONLY or t.action == ADOPTED
                        or o.side is not request.side)]  # an earlier life's order yields to today's decision
        self._spawn(self._submit, request, release)

    def _protect(self, order: Order) -> None:
        """``protective_exit = "trailing_stop"``: once an entry is done (filled, or ended with fills), the
        position it built gets a gtc trailing stop for its whole shares (earlier protective exits were released
        when this entry was sent). At most one per entry: its client order id derives from the entry's."""
        tracked = self.ctx.state.orders.get(order.client_order_id)
        if tracked is None or not tracked.protect or not order.is_terminal or order.filled_qty <= 0:
            return
        if self.is_halted():
            return
        position = self.ctx.state.ledger.position_qty(order.symbol)
        if position == 0 or (position > 0) != (order.side is Side.BUY):
            return  # the entry's position is gone already (or flipped): nothing to protect
        try:
            request = trailing_exit(entry_client_order_id=order.client_order_id, symbol=order.symbol,
                                    entry_side=order.side, qty=abs(position).to_integral_value(rounding=ROUND_FLOOR),
                                    config=self.plan_config)
        except PlanError as exc:
            log.info("no protective exit for %s: %s", order.client_order_id, exc)
            return
        if request.client_order_id in self.machines:
            return
        exit_tracked = TrackedOrder(
            client_order_id=request.client_order_id, signal_id=tracked.signal_id, symbol=request.symbol,
            side=request.side, qty=request.qty, attempt=tracked.attempt, reference_price=tracked.reference_price,
            raised_at_ns=self.ctx.now_ns(), parent_client_order_id=order.client_order_id, action="TRAILING_STOP",
            direction="neutral",
        )
        # latency_ms 0 is right here: the exit is decided and recorded in this same step (no signal before it);
        # its send-to-answer time is in the outcome record (_audit_outcome).
        self._send_new(request, exit_tracked, model_id=self.ctx.model_id, direction=Direction.NEUTRAL,
                       latency_ms=0)

    def gate(self) -> bool:
        """The order gate: open while trading. The adapter asks it before every order-creating attempt, so a
        retry, a rate-limiter wait or a leg release that outlasts the latch never reaches the venue."""
        return not self.is_halted()

    async def _submit(self, request: OrderRequest, release_leg_ids: list[str]) -> None:
        started_ns = self.ctx.now_ns()
        result: SubmitFinished
        try:
            with trio.fail_after(self.ctx.config.execution.submit_timeout_s * 8):
                for leg_id in release_leg_ids:
                    with contextlib.suppress(NotCancelable, OrderNotFound):  # filled or gone meanwhile
                        await self.ctx.broker.cancel_order(leg_id)
                if not self.gate():
                    raise OrderGateClosed("halted while releasing legs", sent=False)
                placed = await self.ctx.broker.submit_order(request, gate=self.gate)
            result = SubmitFinished(client_order_id=request.client_order_id, venue_order_id=placed.id,
                                    status=placed.status)
            self._register_legs(request.client_order_id, placed)
        except OrderGateClosed as exc:
            log.info("submit %s stopped at the order gate (sent before: %s)", request.client_order_id, exc.sent)
            # Sent before and unanswered: only a lookup by client_order_id may resolve it, never another POST.
            result = SubmitFinished(client_order_id=request.client_order_id, venue_order_id=None, status=None,
                                    ambiguous=exc.sent, withdrawn=not exc.sent)
        except DuplicateClientOrderId:
            result = SubmitFinished(client_order_id=request.client_order_id, venue_order_id=None, status=None,
                                    ambiguous=True)
        except (BrokerUnavailable, trio.TooSlowError) as exc:
            log.warning("submit %s ambiguous: %s", request.client_order_id, exc)
            result = SubmitFinished(client_order_id=request.client_order_id, venue_order_id=None, status=None,
                                    ambiguous=True)
        except BrokerError as exc:
            result = SubmitFinished(client_order_id=request.client_order_id, venue_order_id=None, status=None,
                                    error=f"{exc.status} {exc.code}: {exc}", http_status=exc.status)
        self.ctx.monitor.observe_latency("submit_order", (self.ctx.now_ns() - started_ns) / NS_PER_S)
        await self.self_send.send(result)

    def _register_legs(self, parent_coid: str, placed: BrokerOrder) -> None:
        """Bracket legs are our orders too: their fills move our position (spec 2.2)."""
        parent = self.ctx.state.orders.get(parent_coid)
        if parent is None:
            return
        for leg in placed.legs:
            if leg.client_order_id in self.machines:
                continue
            order = Order(order_id=deterministic_uuid("exec", leg.client_order_id),
                          client_order_id=leg.client_order_id, symbol=leg.symbol, side=leg.side, qty=leg.qty)
            order.apply(OrderEvent.RISK_APPROVED)
            order.apply(OrderEvent.SUBMIT_SENT)
            self._apply_status(order, leg)
            self.machines[leg.client_order_id] = order
            self.ctx.state.orders[leg.client_order_id] = TrackedOrder(
                client_order_id=leg.client_order_id, signal_id=parent.signal_id, symbol=leg.symbol,
                side=leg.side, qty=leg.qty, attempt=parent.attempt,
                reference_price=leg.limit_price or leg.stop_price or parent.reference_price,
                raised_at_ns=parent.raised_at_ns, venue_order_id=leg.id, parent_client_order_id=parent_coid,
                action="BRACKET_LEG", direction="neutral",
            )
            self.ctx.state.by_venue_id[leg.id] = leg.client_order_id
            self._snapshot(order)

    def adopt_orders(self, orders: tuple[BrokerOrder, ...], *, reason: str) -> None:
        """Give each order of ours that this actor did not place an order machine (state from the broker's status,
        what already filled counted as filled: that is in the adopted position), so fills arriving later are
        booked. Bracket legs come with their parent. Audited; idempotent (known orders are skipped)."""
        ctx = self.ctx
        action = PROTECT if reason == "protect" else ADOPTED
        for broker_order in orders:
            if self._lookup_machine(broker_order) is not None:
                continue
            qty = broker_order.qty
            if qty <= 0:  # a notional order nothing of which filled yet: its quantity is not known
                log.info("open order %s (notional %s) not adopted: no quantity yet", broker_order.id,
                         broker_order.notional)
                continue
            coid = broker_order.client_order_id
            order = Order(order_id=deterministic_uuid("exec", coid), client_order_id=coid,
                          symbol=broker_order.symbol, side=broker_order.side, qty=qty)
            order.apply(OrderEvent.RISK_APPROVED, ts_ns=ctx.now_ns())
            order.apply(OrderEvent.SUBMIT_SENT, ts_ns=ctx.now_ns())
            order.filled_qty = broker_order.filled_qty
            if broker_order.filled_qty and broker_order.filled_avg_price is not None:
                order._filled_notional = broker_order.filled_qty * broker_order.filled_avg_price
            price = (broker_order.limit_price or broker_order.stop_price or ctx.state.mark(broker_order.symbol)
                     or ZERO)
            self.machines[coid] = order
            ctx.state.orders[coid] = TrackedOrder(
                client_order_id=coid, signal_id=coid, symbol=broker_order.symbol, side=broker_order.side, qty=qty,
                attempt=0, reference_price=price, raised_at_ns=ctx.now_ns(), venue_order_id=broker_order.id,
                action=action, direction="neutral", submitted_at_ns=broker_order.submitted_at_ns,
            )
            ctx.state.by_venue_id[broker_order.id] = coid
            self._apply_status(order, broker_order)
            self._register_legs(coid, broker_order)
            self._snapshot(order)
            ctx.system("reconcile", symbol=broker_order.symbol,
                       reason=f"{reason}: tracking an open order of ours ({broker_order.type.value} "
                              f"{broker_order.side.value} {qty}, {broker_order.status})",
                       extra={"event": "order_adopted", "client_order_id": coid,
                              "alpaca_order_id": broker_order.id, "legs": len(broker_order.legs)})
        ctx.persist()

    def on_submit_finished(self, message: SubmitFinished) -> None:
        ctx = self.ctx
        order = self.machines[message.client_order_id]
        tracked = ctx.state.orders[message.client_order_id]
        if message.error is not None or (message.venue_order_id is not None and message.status is not None):
            self._audit_outcome(tracked, order, message)
        if message.error is not None:
            self._apply(order, OrderEvent.SUBMIT_REJECTED)
            ctx.state.counters.orders_rejected += 1
            log.info("order %s rejected at submit: %s", order.client_order_id, message.error)
            ctx.system("health", reason=f"order rejected: {message.error}", symbol=order.symbol,
                       extra={"client_order_id": order.client_order_id, "event": "order_rejected"})
            if message.http_status == 422:  # a price/shape problem (e.g. wash trade): worth one re-price
                self._fallback_after_reject(tracked)
        elif message.withdrawn:
            self._apply(order, OrderEvent.WITHDRAWN)
            ctx.state.counters.halt_inflight_resolved += 1
        elif message.ambiguous:
            ctx.state.counters.orders_ambiguous += 1
            applied = self._apply(order, OrderEvent.SUBMIT_TIMEOUT)
            if applied is not None and applied.commands:
                self._spawn(self._lookup, order.client_order_id)
        else:
            assert message.venue_order_id is not None and message.status is not None
            tracked.venue_order_id = message.venue_order_id
            ctx.state.by_venue_id[message.venue_order_id] = order.client_order_id
            self._apply(order, status_event(message.status), venue_order_id=message.venue_order_id)
            self._pull_if_halted(tracked, order)
        self._snapshot(order)
        ctx.persist()

    def _audit_outcome(self, tracked: TrackedOrder, order: Order, message: SubmitFinished) -> None:
        """The venue's answer in the orders stream (spec 4.1): accepted with its order id, or rejected with why."""
        ctx = self.ctx
        sent_ns = tracked.submitted_at_ns or ctx.now_ns()
        ctx.audit(A.order_outcome_record(
            ts_ns=ctx.now_ns(), signal_id=tracked.signal_id, model_id=ctx.model_id, symbol=order.symbol,
            direction=tracked.direction, quantity=order.qty, client_order_id=order.client_order_id,
            latency_ms=max(0, (ctx.now_ns() - sent_ns) // 1_000_000),
            phase=A.ORDER_REJECTED if message.error is not None else A.ORDER_ACCEPTED,
            alpaca_order_id=message.venue_order_id, reason=message.error or "",
        ))

    def _pull_if_halted(self, tracked: TrackedOrder, order: Order) -> None:
        """An order whose fate we learn after the latch: cancel it if it still works (the kill switch's cancel-all
        may have run before the venue had it, or before we knew its id)."""
        if not self.is_halted():
            return
        self.ctx.state.counters.halt_inflight_resolved += 1
        if order.state in MAY_EXECUTE:
            self._request_cancel(tracked, order, reason="halt")

    async def _lookup(self, client_order_id: str) -> None:
        """After an ambiguous submit: does the venue have it? (Reads only: never a second POST.) Asked until the
        venue answers or something else settles the order (a trade update, a resync listing it): an order left
        unknown blocks the reconciler's convergence on its symbol and, after a halt, its withdrawal (swarm
        world 73604455731352: three orders sent into a REST outage stayed unknown all day)."""
        found: BrokerOrder | None = None
        failures = 0
        while True:
            try:
                with trio.fail_after(self.ctx.config.execution.submit_timeout_s * 8):
                    found = await self.ctx.broker.get_order_by_client_id(client_order_id)
                break
            except OrderNotFound:
                found = None
                break
            except (BrokerError, trio.TooSlowError) as exc:
                log.warning("lookup of %s failed: %s", client_order_id, exc)
                failures += 1
                fast = 1 if self.is_halted() else 5  # after a latch the clock is on: 10 s to resolve
                await trio.sleep(fast if failures <= LOOKUP_ATTEMPTS else LOOKUP_SLOW_RETRY_S)
                order = self.machines.get(client_order_id)
                if failures >= LOOKUP_ATTEMPTS and (order is None or order.state is not OrderState.ACK_UNKNOWN):
                    return  # settled meanwhile
        if found is not None:
            self._register_legs(client_order_id, found)
        await self.self_send.send(LookupFinished(client_order_id=client_order_id, order=found))

    def on_lookup_finished(self, message: LookupFinished) -> None:
        order = self.machines[message.client_order_id]
        tracked = self.ctx.state.orders[message.client_order_id]
        self.ctx.state.counters.ambiguous_resolved += 1
        if message.order is None:
            self._apply(order, OrderEvent.NOT_FOUND)
            if self.is_halted():  # the venue never got it, and after the latch it never will
                self._apply(order, OrderEvent.WITHDRAWN)
                self.ctx.state.counters.halt_inflight_resolved += 1
        else:
            tracked.venue_order_id = message.order.id
            self.ctx.state.by_venue_id[message.order.id] = order.client_order_id
            self._apply_status(order, message.order)
            self._pull_if_halted(tracked, order)
        self._snapshot(order)
        self.ctx.persist()

    def _fallback_after_reject(self, tracked: TrackedOrder) -> None:
        """Spec 1.3 "rejected - trigger fallback logic": re-price once with a fresh quote, or give up."""
        if self.ctx.config.execution.on_reject != "reprice_once" or tracked.attempt >= MAX_REPRICE_ATTEMPTS:
            return
        if tracked.parent_client_order_id is not None or self.is_halted():
            return
        from core.model import ExecutionAction, Signal

        signal = Signal(
            signal_id=tracked.signal_id, model_id=self.ctx.model_id, symbol=tracked.symbol,
            direction=Direction(tracked.direction), quantity=tracked.qty,
            action=ExecutionAction(tracked.action), ts_ns=self.ctx.now_ns(),
        )
        self.on_approved(
            SubmitApproved(signal=signal, approved_qty=tracked.qty, raised_at_ns=tracked.raised_at_ns),
            attempt=tracked.attempt + 1,
        )

    # --- cancels ---------------------------------------------------------------------------------------------

    def on_cancel_requested(self, message: CancelRequested) -> None:
        signal = message.signal
        for tracked, order in self.open_orders(signal.symbol):
            if tracked.parent_client_order_id is not None:
                continue  # bracket legs live and die with their position
            if signal.cancel_order_id and order.venue_order_id != signal.cancel_order_id:
                continue
            self._request_cancel(tracked, order, reason="policy")

    def _request_cancel(self, tracked: TrackedOrder, order: Order, *, reason: str) -> None:
        ctx = self.ctx
        if order.venue_order_id is None:
            return  # not acknowledged yet: the ack handler cancels it if still unwanted
        ctx.state.counters.cancels += 1
        # The decision on record before the DELETE leaves (a process that dies with it in flight still has it).
        ctx.audit(A.cancel_record(
            ts_ns=ctx.now_ns(), signal_id=tracked.signal_id, model_id=ctx.model_id, symbol=tracked.symbol,
            quantity=order.leaves_qty, reason=reason, latency_ms=0, alpaca_order_id=order.venue_order_id,
            client_order_id=order.client_order_id, phase=A.CANCEL_REQUESTED,
        ))
        self._spawn(self._cancel, CancelFinished(
            client_order_id=order.client_order_id, venue_order_id=order.venue_order_id, reason=reason,
            quantity=order.leaves_qty, decided_ns=ctx.now_ns(),
        ))

    async def _cancel(self, request: CancelFinished) -> None:
        """DELETE the order; the answer (``request`` with its error, if any) comes back to the actor."""
        error = None
        try:
            with trio.fail_after(self.ctx.config.execution.submit_timeout_s * 8):
                await self.ctx.broker.cancel_order(request.venue_order_id)
        except (NotCancelable, OrderNotFound) as exc:
            error = str(exc)  # filled or gone meanwhile: the stream says which
        except (BrokerError, trio.TooSlowError) as exc:
            error = f"cancel failed: {exc}"
        await self.self_send.send(msgspec.structs.replace(request, error=error))

    def on_cancel_finished(self, message: CancelFinished) -> None:
        """The venue's answer to a cancel on record (spec 4.1; its decision was recorded when it was made), with
        ``latency_ms`` from the decision to the answer on the Clock port, and the answer itself when it was not
        an acceptance."""
        ctx = self.ctx
        if message.error:
            log.info("cancel of %s: %s", message.client_order_id, message.error)
        tracked = ctx.state.orders.get(message.client_order_id)
        ctx.audit(A.cancel_record(
            ts_ns=ctx.now_ns(), signal_id=tracked.signal_id if tracked is not None else "", model_id=ctx.model_id,
            symbol=tracked.symbol if tracked is not None else "", quantity=message.quantity, reason=message.reason,
            latency_ms=max(0, (ctx.now_ns() - message.decided_ns) // 1_000_000),
            alpaca_order_id=message.venue_order_id, client_order_id=message.client_order_id,
            phase=A.CANCEL_ANSWERED, extra={"error": message.error} if message.error else None,
        ))

    # --- venue updates ---------------------------------------------------------------------------------------

    def _lookup_machine(self, broker_order: BrokerOrder) -> Order | None:
        order = self.machines.get(broker_order.client_order_id)
        if order is None:
            coid = self.ctx.state.by_venue_id.get(broker_order.id)
            order = self.machines.get(coid) if coid else None
        return order

    def on_trade_update(self, update: TradeUpdate) -> None:
        order = self._lookup_machine(update.order)
        if order is None:
            # Not ours (another client on the account, or a manual trade): the reconciler judges it.
            log.info("trade update for foreign order %s (%s) ignored", update.order.id, update.order.symbol)
            return
        tracked = self.ctx.state.orders[order.client_order_id]
        if tracked.venue_order_id is None:
            tracked.venue_order_id = update.order.id
            self.ctx.state.by_venue_id[update.order.id] = order.client_order_id
        try:
            event = trade_event(update.event)
        except VenueProtocolError as exc:
            log.warning("unknown trade update %r skipped: %s", update.event, exc)
            return
        if event in (OrderEvent.FILL, OrderEvent.PARTIAL_FILL) and update.execution_id and update.qty:
            assert update.price is not None
            fill = Fill(
                execution_id=update.execution_id, order_id=update.order.id, client_order_id=order.client_order_id,
                symbol=order.symbol, side=order.side, qty=update.qty, price=update.price, ts_ns=update.ts_ns,
                cum_qty=update.order.filled_qty, position_qty=update.position_qty,
            )
            final = update.order.filled_qty if update.order.status == "filled" else None
            self._book(order, tracked, fill, final_qty=final)
            if order.venue_order_id is None:
                self._apply(order, status_event(update.order.status), venue_order_id=update.order.id)
        else:
            self._apply(order, event, venue_order_id=update.order.id, venue_filled_qty=update.order.filled_qty)
            if event is OrderEvent.REJECTED:
                self.ctx.state.counters.orders_rejected += 1
                self.ctx.system("health", reason="order rejected by venue", symbol=order.symbol,
                                extra={"client_order_id": order.client_order_id, "event": "order_rejected"})
                self._fallback_after_reject(tracked)
        if order.missing_fill_qty > 0:
            # The venue says more filled than we counted: an update was lost. Fetch the executions.
            self._spawn(self._fetch_resync, f"missing fills on {order.client_order_id}")
        self._snapshot(order)
        self._protect(order)

    def _book(self, order: Order, tracked: TrackedOrder, fill: Fill, *, final_qty: Decimal | None = None) -> None:
        """Book one execution once. ``final_qty``: the venue says the order is complete at this quantity (only a
        notional order's machine needs it: its share quantity is the venue's to decide)."""
        ctx = self.ctx
        if fill.execution_id in ctx.state.ledger.seen_execution_ids:
            ctx.state.counters.duplicate_updates += 1
            return
        try:
            applied = order.apply_fill(fill.execution_id, fill.qty, fill.price, cum_qty=fill.cum_qty,
                                       ts_ns=fill.ts_ns, final_qty=final_qty if order.notional is not None else None)
        except VenueProtocolError as exc:
            log.error("venue protocol error on %s: %s", order.client_order_id, exc)
            ctx.system("health", reason=f"venue protocol error: {exc}", symbol=order.symbol)
            return
        if applied.outcome is Outcome.DUPLICATE:
            ctx.state.counters.duplicate_updates += 1
            return
        if fill.execution_id in self.audited_unbooked:
            self.audited_unbooked.discard(fill.execution_id)
            log.warning("execution %s was audited before the engine died, not saved: booked now, not re-audited",
                        fill.execution_id)
            ctx.system("health", symbol=fill.symbol, reason="fill audited before a crash, booked on restart",
                       extra={"event": "fill_recovered", "execution_id": fill.execution_id,
                              "client_order_id": order.client_order_id})
        else:
            self._audit_fill(order, tracked, fill)
        booked = ctx.state.ledger.apply_fill(fill)
        assert booked is not None, "ledger and order machine disagree on a fill's novelty"
        ctx.book_changed()
        ctx.state.counters.fills += 1
        halted_since = self.halted_since_ns()
        if tracked.action == PROTECT:  # what a halt in protect mode is for: said, not alarmed as a leak
            ctx.system("health", symbol=fill.symbol, reason=f"protective stop filled: {fill.side.value} {fill.qty} "
                       f"{fill.symbol} @ {fill.price}", extra={"event": "protective_stop_fill",
                                                               "client_order_id": fill.client_order_id,
                                                               "execution_id": fill.execution_id})
            self._spawn(functools.partial(ctx.alerts.send, severity="warning", key="halt.protective_stop_fill",
                                          message=f"protective stop filled: {fill.side.value} {fill.qty} "
                                                  f"{fill.symbol} @ {fill.price}", ts_ns=fill.ts_ns))
        elif halted_since is not None and fill.ts_ns >= halted_since:
            self._post_halt_fill(fill, halted_since)
        opposite_today = ctx.state.sold_today if fill.side is Side.BUY else ctx.state.bought_today
        if fill.symbol in opposite_today and order.client_order_id not in ctx.state.day_trade_orders:
            # FINRA: opening and closing the same security on the same day; one day trade per closing order.
            ctx.state.day_trade_orders.add(order.client_order_id)
            ctx.state.day_trades.append(ctx.state.session_date)
        (ctx.state.bought_today if fill.side is Side.BUY else ctx.state.sold_today).add(fill.symbol)
        closed_pl = ctx.state.ledger.take_round_trip_pl(fill.symbol) if booked.closed_trade else ZERO
        ctx.persist()
        self.on_fill(fill, closed_pl, booked.closed_trade)

    def _audit_fill(self, order: Order, tracked: TrackedOrder, fill: Fill) -> None:
        ctx = self.ctx
        ctx.audit(A.fill_record(
            ts_ns=fill.ts_ns or ctx.now_ns(), signal_id=tracked.signal_id, model_id=ctx.model_id,
            symbol=fill.symbol, direction=tracked.direction, quantity=fill.qty, alpaca_order_id=fill.order_id,
            execution_id=fill.execution_id, execution_price=fill.price, side=fill.side,
            latency_ms=max(0, (ctx.now_ns() - tracked.submitted_at_ns) // 1_000_000) if tracked.submitted_at_ns
            else 0,
            reference_price=tracked.reference_price if tracked.parent_client_order_id is None else None,
            client_order_id=order.client_order_id,
        ))

    def _post_halt_fill(self, fill: Fill, halted_since_ns: int) -> None:
        """A fill the venue made after the latch (an order in flight at the latch, or one the cancel-all could not
        reach in time): booked like any fill, and said loudly: audited and alerted."""
        ctx = self.ctx
        ctx.state.counters.post_halt_fills += 1
        message = (f"post-halt fill: {fill.side.value} {fill.qty} {fill.symbol} @ {fill.price} "
                   f"({(fill.ts_ns - halted_since_ns) / 1e9:.1f} s after the latch, order {fill.client_order_id})")
        log.warning("%s", message)
        ctx.system("health", reason=message, symbol=fill.symbol,
                   extra={"event": "post_halt_fill", "client_order_id": fill.client_order_id,
                          "execution_id": fill.execution_id})
        ctx.state.counters.alerts += 1
        self._spawn(functools.partial(ctx.alerts.send, severity="critical", key="halt.post_halt_fill",
                                      message=message, ts_ns=fill.ts_ns))

    # --- resync (after reconnects, lost updates, reconciliation mismatches) -----------------------------------

    async def _fetch_resync(self, reason: str) -> None:
        ctx = self.ctx
        try:
            with trio.fail_after(60):
                orders = await ctx.broker.list_orders(status="all", after_ts_ns=ctx.session_start_ns, limit=500)
                activities = await ctx.broker.get_activities(after_ts_ns=ctx.session_start_ns)
        except (BrokerError, trio.TooSlowError) as exc:
            log.warning("resync (%s) failed: %s", reason, exc)
            self._release_resync_waiters(ok=False)  # nothing was learned: whoever waits must not think otherwise
            return
        await self.self_send.send(ResyncData(orders=orders, activities=activities, reason=reason))

    def _release_resync_waiters(self, *, ok: bool) -> None:
        for waiter in self.resync_waiters:
            waiter.release(ok)
        self.resync_waiters.clear()

    def on_resync(self, message: ResyncData) -> None:
        ctx = self.ctx
        ctx.state.counters.resyncs += 1
        by_id = {o.id: o for o in message.orders}
        # Executions first (so the order machines see their fills before the terminal status).
        for activity in sorted(message.activities, key=lambda a: (a.ts_ns, a.id)):
            broker_order = by_id.get(activity.order_id)
            coid = ctx.state.by_venue_id.get(activity.order_id)
            if coid is None and broker_order is not None and broker_order.client_order_id in self.machines:
                coid = broker_order.client_order_id
            if coid is None or coid not in self.machines:
                continue  # not ours: the reconciler will see the position difference
            order = self.machines[coid]
            tracked = ctx.state.orders[coid]
            if tracked.action == ADOPTED and activity.ts_ns < tracked.raised_at_ns:
                continue  # executed before we adopted the order: already in the position adopted at start-up
            if tracked.venue_order_id is None:
                tracked.venue_order_id = activity.order_id
                ctx.state.by_venue_id[activity.order_id] = coid
            final = activity.cum_qty if activity.leaves_qty == 0 else None
            self._book(order, tracked, fill_from_activity(activity, coid), final_qty=final)
        for broker_order in message.orders:
            known = self._lookup_machine(broker_order)
            if known is None:
                continue
            tracked = ctx.state.orders[known.client_order_id]
            if tracked.venue_order_id is None:
                tracked.venue_order_id = broker_order.id
                ctx.state.by_venue_id[broker_order.id] = known.client_order_id
            self._register_legs(known.client_order_id, broker_order)
            self._apply_status(known, broker_order)
            self._snapshot(known)
            self._protect(known)
        ctx.persist()
        self._release_resync_waiters(ok=True)

    # --- helpers ---------------------------------------------------------------------------------------------

    def _apply_status(self, order: Order, broker_order: BrokerOrder) -> None:
        try:
            event = status_event(broker_order.status)
        except VenueProtocolError as exc:
            log.warning("unknown status %r for %s: %s", broker_order.status, order.client_order_id, exc)
            return
        self._apply(order, event, venue_order_id=broker_order.id, venue_filled_qty=broker_order.filled_qty)

    def _apply(self, order: Order, event: OrderEvent, **kwargs: object) -> Applied | None:
        try:
            return order.apply(event, ts_ns=self.ctx.now_ns(), **kwargs)  # type: ignore[arg-type]
        except IllegalTransition as exc:
            log.warning("%s", exc)
            return None
        except VenueProtocolError as exc:
            log.error("venue protocol error: %s", exc)
            self.ctx.system("health", reason=f"venue protocol error: {exc}", symbol=order.symbol)
            return None

    def _snapshot(self, order: Order) -> None:
        self.ctx.state.order_states[order.client_order_id] = {
            "state": order.state.value,
            "filled_qty": str(order.filled_qty),
            "venue_order_id": order.venue_order_id,
        }

    def restore(self) -> None:
        """Rebuild order machines after a restart from the persisted snapshots (the venue resync then
        brings each one up to date, and the ledger's execution ids keep fills from counting twice)."""
        from core.order_fsm import OrderState

        for coid, tracked in sorted(self.ctx.state.orders.items()):
            snap = self.ctx.state.order_states.get(coid, {})
            order = Order(order_id=deterministic_uuid("exec", coid), client_order_id=coid, symbol=tracked.symbol,
                          side=tracked.side, qty=tracked.qty, notional=tracked.notional)
            order.state = OrderState(snap.get("state", "ack_unknown"))
            if order.state in (OrderState.CREATED, OrderState.RISK_APPROVED, OrderState.SUBMITTING):
                order.state = OrderState.ACK_UNKNOWN  # we may have died mid-send: ask the venue
            order.venue_order_id = snap.get("venue_order_id") or tracked.venue_order_id
            order.filled_qty = Decimal(snap.get("filled_qty", "0"))
            if order.filled_qty:
                order._filled_notional = order.filled_qty * tracked.reference_price
            self.machines[coid] = order
