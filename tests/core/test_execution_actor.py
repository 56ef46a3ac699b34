"""The execution actor alone, on trio's MockClock, against the fake venue through the real Alpaca adapter.

The slice is the actor, the REST adapter over the in-process transport and (where the test needs the venue's
word on fills) the real trading stream, delivering into the actor's inbox as the engine does. No supervisor: the
kill switch is a latch the test owns (``Latch``), read through the same two callables the engine passes in.
Every test asserts on the venue's own records (request log, order log, fills) as well as on the order machine
and the ledger: what reached the broker is the fact that matters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import trio

from adapters.alpaca.ratelimit import RateLimiter, TokenBucket
from adapters.fake.faults import FaultPlan
from adapters.ids import SeededIds
from core.audit import AuditEntry, ts_ns_from_iso
from core.config import EngineConfig, ExecutionSection
from core.engine.context import EngineContext
from core.engine.execution import ExecutionActor
from core.engine.messages import CancelRequested, ResyncRequested, SubmitApproved, TradeUpdateReceived
from core.engine.state import EngineState
from core.ledger import Ledger
from core.limits import ACTOR_CHANNEL_CAPACITY
from core.model import AccountType, Direction, ExecutionAction, Fill, Quote, Signal
from core.order_fsm import Order, OrderEvent, OrderState
from core.orderplan import client_order_id
from tests.alpaca.world import NS, World, event, running_world

CASH = Decimal(1_000_000)
NO_BRACKETS = EngineConfig(execution=ExecutionSection(brackets=False))


class Latch:
    """The kill switch as the execution actor sees it: ``is_halted`` and ``halted_since_ns``."""

    def __init__(self, now_ns: Callable[[], int]) -> None:
        self._now_ns = now_ns
        self.since_ns: int | None = None

    def latch(self) -> None:
        self.since_ns = self._now_ns()

    def is_halted(self) -> bool:
        return self.since_ns is not None

    def halted_since_ns(self) -> int | None:
        return self.since_ns


class Records:
    """Audit sink, alert sink and state store in one: what the actor wrote, in order."""

    def __init__(self) -> None:
        self.audit: list[AuditEntry] = []
        self.alerts: list[tuple[str, str]] = []
        self.saved: dict[str, Any] | None = None

    def write(self, entry: AuditEntry) -> None:
        self.audit.append(entry)

    async def send(self, *, severity: str, key: str, message: str, ts_ns: int) -> None:
        self.alerts.append((severity, key))

    def load(self) -> dict[str, Any] | None:
        return self.saved

    def save(self, state: dict[str, Any]) -> None:
        self.saved = state

    def of_type(self, event_type: str) -> list[AuditEntry]:
        return [e for e in self.audit if e.event_type == event_type]


@dataclass
class Slice:
    world: World
    actor: ExecutionActor
    ctx: EngineContext
    latch: Latch
    records: Records
    inbox: trio.MemorySendChannel[Any]
    fills: list[Fill] = field(default_factory=list)

    async def approve(self, signal_id: str, qty: int, *, symbol: str = "NVDA",
                      action: ExecutionAction = ExecutionAction.MARKET, bid: str = "19.04", ask: str = "19.06") -> str:
        """Risk approved a signal: hand it to the actor as the risk actor does. Returns the first attempt's id.

        The quote is the engine's view (the market actor's job); its sizes are large so the order planner does
        not cut the order to the touch, and the venue's own (smaller) touch decides how it fills."""
        now_ns = self.ctx.now_ns()
        self.ctx.state.quotes[symbol] = Quote(symbol=symbol, bid_price=Decimal(bid), ask_price=Decimal(ask),
                                              bid_size=Decimal(10_000_000), ask_size=Decimal(10_000_000), ts_ns=now_ns)
        signal = Signal(signal_id=signal_id, model_id="test", symbol=symbol, direction=Direction.LONG,
                        quantity=Decimal(qty), action=action, ts_ns=now_ns)
        await self.inbox.send(SubmitApproved(signal=signal, approved_qty=Decimal(qty), raised_at_ns=now_ns))
        return client_order_id(signal_id, 0)

    def order(self, coid: str) -> Order:
        return self.actor.machines[coid]

    async def until(self, what: Callable[[], bool], *, within_s: float = 600.0) -> None:
        """Wait in virtual time until ``what`` holds; fail (not hang) after ``within_s``."""
        with trio.fail_after(within_s):
            while not what():
                await trio.sleep(0.1)

    def posts(self) -> list[Any]:
        return self.world.requests("POST", "/v2/orders")

    def venue_orders(self, coid: str) -> list[Any]:
        return [o for o in self.world.venue.order_log if o.client_order_id == coid]

    def venue_filled_qty(self, coid: str) -> Decimal:
        ids = {o.order_id for o in self.venue_orders(coid)}
        return sum((f.qty for f in self.world.venue.fills if f.order_id in ids), Decimal(0))


@asynccontextmanager
async def execution_slice(*, faults: FaultPlan | None = None, config: EngineConfig = NO_BRACKETS,
                          stream: bool = True, limiter: RateLimiter | None = None) -> AsyncIterator[Slice]:
    async with running_world(faults=faults, limiter=limiter) as w:
        records = Records()
        latch = Latch(w.clock.now_ns)
        ctx = EngineContext(
            config=config, broker=w.rest, clock=w.clock, ids=SeededIds(1), alerts=records, audit_sink=records,
            store=records, account_type=AccountType.MARGIN_INITIAL, model_id="test",
            state=EngineState(ledger=Ledger(cash_usd=CASH), start_of_day_equity=CASH, start_of_week_equity=CASH),
            session_start_ns=w.clock.now_ns() - 86_400 * NS,
        )
        send, recv = trio.open_memory_channel[Any](ACTOR_CHANNEL_CAPACITY)
        fills: list[Fill] = []
        actor = ExecutionActor(ctx, inbox=recv, self_send=send, is_halted=latch.is_halted,
                               on_fill=lambda fill, _pl, _closed: fills.append(fill),
                               halted_since_ns=latch.halted_since_ns)
        await w.nursery.start(actor.serve)
        if stream:
            async def deliver(update: Any) -> None:
                await send.send(TradeUpdateReceived(update=update))

            await w.nursery.start(w.trading_stream().serve, deliver)
        yield Slice(world=w, actor=actor, ctx=ctx, latch=latch, records=records, inbox=send, fills=fills)


def events_of(order: Order) -> list[OrderEvent]:
    return [entry.event for entry in order.log]


# --- the happy path ---------------------------------------------------------------------------------------------


async def test_an_accepted_and_filled_submit_moves_the_machine_and_the_ledger(autojump_clock: Any) -> None:
    async with execution_slice() as s:
        coid = await s.approve("sig-fill", 100)
        await s.until(lambda: coid in s.actor.machines and s.order(coid).is_terminal)
        order = s.order(coid)
        await trio.sleep(5)  # nothing more may arrive: the fill is counted once
    assert order.state is OrderState.FILLED and order.filled_qty == Decimal(100)
    assert events_of(order)[:2] == [OrderEvent.RISK_APPROVED, OrderEvent.SUBMIT_SENT]
    assert [o.client_order_id for o in s.world.venue.order_log] == [coid]
    assert order.venue_order_id == s.world.venue.order_log[0].order_id
    # The ledger holds exactly what the venue executed, at the venue's prices.
    venue_fills = [f for f in s.world.venue.fills if f.order_id == order.venue_order_id]
    assert s.ctx.state.ledger.position_qty("NVDA") == Decimal(100) == sum(f.qty for f in venue_fills)
    assert s.ctx.state.ledger.seen_execution_ids == {f.execution_id for f in venue_fills}
    assert order.avg_fill_price == sum(f.qty * f.price for f in venue_fills) / Decimal(100)
    assert s.ctx.state.counters.fills == len(venue_fills) and len(s.fills) == len(venue_fills)
    # Intent audited before the send; every execution audited once.
    submitted, accepted = s.records.of_type("order")  # the intent, then the venue's answer (spec 4.1)
    assert submitted.alpaca_order_id is None and submitted.extra.get("phase") is None
    assert accepted.extra["phase"] == "accepted" and accepted.alpaca_order_id == order.venue_order_id
    assert len(s.records.of_type("fill")) == len(venue_fills)
    assert s.ctx.state.order_states[coid]["state"] == "filled"


async def test_partial_fills_accumulate_to_the_order_quantity(autojump_clock: Any) -> None:
    # 2,000 shares against a touch of a few hundred: the venue fills the touch now and the rest on later quotes.
    async with execution_slice() as s:
        coid = await s.approve("sig-partial", 2_000)
        await s.until(lambda: coid in s.actor.machines and s.order(coid).filled_qty > 0)
        first = s.order(coid).filled_qty
        assert s.order(coid).state is OrderState.PARTIALLY_FILLED and 0 < first < 2_000
        assert s.ctx.state.ledger.position_qty("NVDA") == first
        await s.until(lambda: s.order(coid).is_terminal)
        order = s.order(coid)
    executions = [e for e in order.log if e.execution_id is not None]
    assert len(executions) >= 2
    assert [e.event for e in executions[:-1]] == [OrderEvent.PARTIAL_FILL] * (len(executions) - 1)
    assert executions[-1].event is OrderEvent.FILL
    running = Decimal(0)
    for entry in executions:  # filled_qty never decreases; each execution adds its own quantity
        assert entry.qty is not None and entry.qty > 0
        running += entry.qty
    assert running == order.filled_qty == Decimal(2_000) == s.venue_filled_qty(coid)
    assert order.state is OrderState.FILLED
    assert s.ctx.state.ledger.position_qty("NVDA") == Decimal(2_000)
    assert s.ctx.state.counters.fills == len(executions)


# --- rejections -------------------------------------------------------------------------------------------------


async def test_a_403_ends_the_order_rejected_and_nothing_is_retried(autojump_clock: Any) -> None:
    # A million shares at ~$19 is far beyond the margin account's buying power: the venue answers 403.
    async with execution_slice() as s:
        coid = await s.approve("sig-403", 1_000_000)
        await s.until(lambda: coid in s.actor.machines and s.order(coid).is_terminal)
        await trio.sleep(60)  # room for any retry or re-price to show up
        order = s.order(coid)
    assert order.state is OrderState.REJECTED and order.venue_order_id is None
    assert events_of(order)[-2:] == [OrderEvent.SUBMIT_SENT, OrderEvent.SUBMIT_REJECTED]
    assert [p.status for p in s.posts()] == [403]  # one POST, refused; a 403 is never re-priced
    assert s.world.venue.order_log == [] and sorted(s.actor.machines) == [coid]
    assert s.ctx.state.counters.orders_rejected == 1 and s.ctx.state.ledger.positions() == {}
    assert any(e.extra.get("event") == "order_rejected" for e in s.records.of_type("health"))


async def test_a_422_with_give_up_ends_rejected_after_one_post(autojump_clock: Any) -> None:
    config = EngineConfig(execution=ExecutionSection(brackets=False, on_reject="give_up"))
    async with execution_slice(config=config) as s:
        coid = await s.approve("sig-422", 10, symbol="NOPE")  # an asset the venue does not know: 422
        await s.until(lambda: coid in s.actor.machines and s.order(coid).is_terminal)
        await trio.sleep(60)
    assert s.order(coid).state is OrderState.REJECTED
    assert [p.status for p in s.posts()] == [422] and sorted(s.actor.machines) == [coid]


async def test_a_422_is_repriced_once_under_a_new_id_and_never_again(autojump_clock: Any) -> None:
    # on_reject = "reprice_once" (the default): the rejected order stays rejected; one new attempt, then give up.
    async with execution_slice() as s:
        coid = await s.approve("sig-422r", 10, symbol="NOPE")
        retry = client_order_id("sig-422r", 1)
        await s.until(lambda: retry in s.actor.machines and s.order(retry).is_terminal)
        await trio.sleep(60)
    assert s.order(coid).state is OrderState.REJECTED and s.order(retry).state is OrderState.REJECTED
    assert sorted(s.actor.machines) == sorted([coid, retry])
    assert [p.status for p in s.posts()] == [422, 422]
    assert s.ctx.state.counters.orders_rejected == 2


# --- ambiguous submits ------------------------------------------------------------------------------------------


async def test_a_lost_answer_is_resolved_by_client_order_id_and_one_order_exists(autojump_clock: Any) -> None:
    # Every order-creating answer is lost after the venue applied the request. The adapter asks the venue by
    # client_order_id before it would resend, finds the order, and adopts it: never a second POST.
    async with execution_slice(faults=FaultPlan(rest_timeout_after_accept_p=1.0)) as s:
        coid = await s.approve("sig-lost", 100)
        await s.until(lambda: coid in s.actor.machines and s.order(coid).is_terminal)
        await trio.sleep(60)
        order = s.order(coid)
    assert s.world.telemetry.counters.get("alpaca.rest.timeout") == 1  # the answer to the one POST was lost
    assert s.ctx.state.counters.orders_ambiguous == 0  # settled inside the adapter: the actor never saw doubt
    assert [p.status for p in s.posts()] == [200] and len(s.venue_orders(coid)) == 1
    assert s.world.requests("GET", "/v2/orders:by_client_order_id")
    assert order.state is OrderState.FILLED and order.venue_order_id == s.venue_orders(coid)[0].order_id
    assert s.ctx.state.ledger.position_qty("NVDA") == Decimal(100) == s.venue_filled_qty(coid)


async def test_an_unresolved_submit_is_looked_up_by_the_actor_never_resent(autojump_clock: Any) -> None:
    # The answer is lost and REST goes down for 50 s right after: the adapter's own landed-check cannot reach the
    # venue, so the actor's submit deadline expires with the outcome unknown (ACK_UNKNOWN). The actor then asks
    # the venue by client_order_id (reads only) until it answers. No trade stream here: the lookup must settle it.
    faults = FaultPlan(rest_timeout_after_accept_p=1.0, events=(event("rest_outage", 1.0, duration_s=50.0),))
    async with execution_slice(faults=faults, stream=False) as s:
        coid = await s.approve("sig-unknown", 100)
        await s.until(lambda: coid in s.actor.machines and s.order(coid).state is OrderState.ACK_UNKNOWN)
        assert s.ctx.state.counters.orders_ambiguous == 1
        await s.until(lambda: s.ctx.state.counters.ambiguous_resolved == 1)
        order = s.order(coid)
        assert order.state is OrderState.FILLED and order.venue_order_id == s.venue_orders(coid)[0].order_id
        # The venue says 100 filled; the executions themselves come with the next REST resync, counted once.
        assert order.missing_fill_qty == Decimal(100) and s.ctx.state.ledger.positions() == {}
        await s.inbox.send(ResyncRequested(reason="test"))
        await s.until(lambda: order.filled_qty == Decimal(100))
        await s.inbox.send(ResyncRequested(reason="test again"))
        await trio.sleep(10)
    assert [p.status for p in s.posts() if p.status == 200] == [200]  # resends hit the outage (503), none landed
    assert len(s.venue_orders(coid)) == 1 and len(s.world.venue.order_log) == 1
    assert OrderEvent.SUBMIT_TIMEOUT in events_of(order)
    assert s.ctx.state.ledger.position_qty("NVDA") == Decimal(100) == s.venue_filled_qty(coid)
    assert s.ctx.state.counters.fills == len(s.records.of_type("fill"))


# --- the kill switch -----------------------------------------------------------------------------------------------


async def test_a_halt_while_the_submit_waits_withdraws_it_and_nothing_is_sent(autojump_clock: Any) -> None:
    # The submission waits for the client's rate limiter (paused 30 s, as after a 429); the latch closes at 10 s.
    limiter = RateLimiter(TokenBucket.per_minute())
    async with execution_slice(limiter=limiter, stream=False) as s:
        limiter.pause_until(trio.current_time() + 30.0)
        coid = await s.approve("sig-gated", 100)
        await s.until(lambda: coid in s.actor.machines)
        assert s.order(coid).state is OrderState.SUBMITTING
        await trio.sleep(10.0)
        s.latch.latch()
        await s.until(lambda: s.order(coid).is_terminal)
        await trio.sleep(60)
        order = s.order(coid)
    assert s.posts() == [] and s.world.venue.order_log == []  # not one POST reached the venue
    assert order.state is OrderState.CANCELED and events_of(order)[-1] is OrderEvent.WITHDRAWN
    assert s.ctx.state.counters.halt_inflight_resolved == 1 and s.ctx.state.ledger.positions() == {}


async def test_a_halt_during_5xx_retries_is_resolved_by_lookup_and_withdrawn(autojump_clock: Any) -> None:
    # REST answers 503 for 20 s. The first POST went out (refused, not applied); the latch closes at 2 s, so the
    # retry is never sent. An attempt did go out, so only a lookup by client_order_id may settle it: not found.
    faults = FaultPlan(events=(event("rest_outage", 0.0, duration_s=20.0),))
    async with execution_slice(faults=faults, stream=False) as s:
        await trio.sleep(0.5)
        coid = await s.approve("sig-5xx", 100)
        await trio.sleep(1.5)
        s.latch.latch()
        await s.until(lambda: coid in s.actor.machines and s.order(coid).is_terminal)
        await trio.sleep(60)
        order = s.order(coid)
    posts, latched = s.posts(), s.latch.since_ns
    assert latched is not None and posts and all(p.status == 503 for p in posts)
    assert posts[-1].ts_ns < latched  # every POST left before the latch; none after it
    assert s.world.venue.order_log == []
    assert s.world.requests("GET", "/v2/orders:by_client_order_id")  # looked up, not resent
    assert events_of(order)[-3:] == [OrderEvent.SUBMIT_TIMEOUT, OrderEvent.NOT_FOUND, OrderEvent.WITHDRAWN]
    assert order.state is OrderState.CANCELED
    assert s.ctx.state.counters.ambiguous_resolved == 1 and s.ctx.state.counters.halt_inflight_resolved == 1


async def test_a_fill_after_the_halt_is_booked_counted_and_alerted(autojump_clock: Any) -> None:
    # A 2,000-share order fills the touch now and the rest on later quotes; the latch closes in between (the
    # cancel-all did not reach it: no supervisor here). The venue's later executions are facts: booked, counted.
    async with execution_slice() as s:
        coid = await s.approve("sig-post-halt", 2_000)
        await s.until(lambda: coid in s.actor.machines and s.order(coid).filled_qty > 0)
        before = s.order(coid).filled_qty
        s.latch.latch()
        await s.until(lambda: s.order(coid).is_terminal)
        await trio.sleep(1)
        order = s.order(coid)
    latched = s.latch.since_ns
    assert latched is not None
    after = [e for e in order.log if e.execution_id is not None and e.ts_ns >= latched]
    assert after and sum(e.qty for e in after if e.qty is not None) == Decimal(2_000) - before
    assert s.ctx.state.counters.post_halt_fills == len(after)
    assert s.ctx.state.ledger.position_qty("NVDA") == Decimal(2_000) == s.venue_filled_qty(coid)
    assert s.records.alerts.count(("critical", "halt.post_halt_fill")) == len(after)
    flagged = [e for e in s.records.of_type("health") if e.extra.get("event") == "post_halt_fill"]
    assert sorted(e.extra["execution_id"] for e in flagged) == sorted(e.execution_id for e in after)


async def test_a_fill_audited_before_a_crash_is_booked_without_a_second_record(autojump_clock: Any) -> None:
    """Killed after a fill's record, before the state was saved: the restart's resync brings the fill again. The
    engine (Engine.load_state) hands the actor the executions the trail holds and the saved ledger not; such a fill
    is booked and said (health ``fill_recovered``), never audited twice."""
    async with execution_slice() as s:
        coid = await s.approve("sig-recovered", 100)
        await s.until(lambda: coid in s.actor.machines and s.order(coid).filled_qty > 0)
        first = next(f for f in s.world.venue.fills if f.order_id == s.order(coid).venue_order_id)
    assert len(s.records.of_type("fill")) >= 1
    async with execution_slice() as again:  # the same world again: the same ids; this life knows the first audited
        again.actor.audited_unbooked = {first.execution_id}
        coid = await again.approve("sig-recovered", 100)
        await again.until(lambda: coid in again.actor.machines and again.order(coid).is_terminal)
        venue_fills = [f for f in again.world.venue.fills if f.order_id == again.order(coid).venue_order_id]
    assert first.execution_id in {f.execution_id for f in venue_fills}
    assert again.ctx.state.ledger.seen_execution_ids == {f.execution_id for f in venue_fills}  # all booked
    audited = {e.extra["execution_id"] for e in again.records.of_type("fill")}
    assert audited == {f.execution_id for f in venue_fills} - {first.execution_id}  # the recovered one not again
    recovered = [e for e in again.records.of_type("health") if e.extra.get("event") == "fill_recovered"]
    assert [e.extra["execution_id"] for e in recovered] == [first.execution_id]
    assert again.actor.audited_unbooked == set()


# --- cancels ------------------------------------------------------------------------------------------------------


async def test_a_cancel_record_carries_the_time_from_the_decision_to_the_venues_answer(autojump_clock: Any) -> None:
    # Every REST answer takes 1.5 s (rest_slow); a passive buy at 15.00 rests far under the venue's ~19 touch.
    slow = FaultPlan(events=(event("rest_slow", 0.0, latency_ms=1_500, duration_s=3_600.0),))
    async with execution_slice(faults=slow) as s:
        coid = await s.approve("sig-rest", 100, action=ExecutionAction.LIMIT_PASSIVE, bid="15.00", ask="15.02")
        await s.until(lambda: coid in s.actor.machines and s.order(coid).venue_order_id is not None)
        venue_id = s.order(coid).venue_order_id
        decided_ns = s.ctx.now_ns()
        cancel = Signal(signal_id="sig-cancel", model_id="test", symbol="NVDA", direction=Direction.NEUTRAL,
                        quantity=Decimal(0), action=ExecutionAction.CANCEL, ts_ns=decided_ns,
                        cancel_order_id=venue_id)
        await s.inbox.send(CancelRequested(signal=cancel))
        await trio.sleep(0.5)
        # The decision is on record before the venue answers (a process dying now would still have it) ...
        [requested] = s.records.of_type("cancel")
        assert requested.extra["phase"] == "requested" and requested.latency_ms == 0
        assert ts_ns_from_iso(requested.timestamp) == decided_ns and requested.extra["reason"] == "policy"
        assert requested.alpaca_order_id == venue_id and requested.extra["client_order_id"] == coid
        await s.until(lambda: len(s.records.of_type("cancel")) == 2)
        await s.until(lambda: s.order(coid).is_terminal)
    # ... and the answer follows, with the time from the decision to it.
    record = s.records.of_type("cancel")[1]
    assert record.extra["phase"] == "answered"
    answered_ns = ts_ns_from_iso(record.timestamp)
    assert record.latency_ms >= 1_500 and record.latency_ms == (answered_ns - decided_ns) // 1_000_000
    assert record.alpaca_order_id == venue_id and record.extra["client_order_id"] == coid
    assert record.extra["reason"] == "policy" and record.quantity == 100 and "error" not in record.extra
    assert s.order(coid).state is OrderState.CANCELED
    assert [r.status for r in s.world.requests("DELETE", f"/v2/orders/{venue_id}")] == [204]
