"""The reconciler actor on trio's MockClock, against the fake venue through the real Alpaca adapter.

The smallest slice that hosts it: the reconciler, the execution actor it asks for REST resyncs (and whose ledger it
checks), and the supervisor that turns its reports into the kill switch's ``reconciliation_mismatch`` trigger, wired
with bounded channels exactly as ``core.engine.system`` wires them. The venue's position is changed behind the
engine's back with the fake's own ``position_drift`` fault (a trade made outside the engine).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import trio

from adapters.fake.faults import FaultPlan
from adapters.ids import SeededIds
from core.config import EngineConfig, ExecutionSection, ReconcileSection
from core.engine.context import EngineContext
from core.engine.execution import ExecutionActor
from core.engine.messages import SubmitApproved, TradeUpdateReceived
from core.engine.reconciler import Reconciler
from core.engine.state import EngineState
from core.engine.supervisor import Supervisor
from core.halt_fsm import HaltState, HaltTrigger
from core.ledger import Ledger
from core.limits import ACTOR_CHANNEL_CAPACITY
from core.model import AccountType, Direction, ExecutionAction, Quote, Signal
from core.orderplan import client_order_id
from tests.alpaca.world import NS, World, event, running_world
from tests.core.test_execution_actor import Records

CASH = Decimal(1_000_000)
INTERVAL_S = 30.0  # the configured reconciliation interval (spec default 60 s; shorter keeps the tests brief)


@dataclass
class Slice:
    world: World
    ctx: EngineContext
    execution: ExecutionActor
    reconciler: Reconciler
    supervisor: Supervisor
    records: Records
    to_execution: trio.MemorySendChannel[Any]
    start_ns: int  # the venue clock when the slice started
    # At each latch: (reconciliations completed, of which mismatched, resyncs applied) at that very instant.
    at_latch: list[tuple[int, int, int]]

    async def buy(self, signal_id: str, qty: int) -> str:
        now_ns = self.ctx.now_ns()
        self.ctx.state.quotes["NVDA"] = Quote(symbol="NVDA", bid_price=Decimal("19.04"), ask_price=Decimal("19.06"),
                                              bid_size=Decimal(10_000), ask_size=Decimal(10_000), ts_ns=now_ns)
        signal = Signal(signal_id=signal_id, model_id="test", symbol="NVDA", direction=Direction.LONG,
                        quantity=Decimal(qty), action=ExecutionAction.MARKET, ts_ns=now_ns)
        await self.to_execution.send(SubmitApproved(signal=signal, approved_qty=Decimal(qty), raised_at_ns=now_ns))
        return client_order_id(signal_id, 0)

    async def until(self, what: Callable[[], bool], *, within_s: float = 600.0) -> None:
        with trio.fail_after(within_s):
            while not what():
                await trio.sleep(0.1)

    def venue_qty(self, symbol: str = "NVDA") -> Decimal:
        return self.world.venue.account.position_qty(symbol)

    def engine_qty(self, symbol: str = "NVDA") -> Decimal:
        return self.ctx.state.ledger.position_qty(symbol)

    def checks(self) -> list[tuple[float, bool]]:
        """(seconds since the world started, agreed) of every completed reconciliation."""
        return [((ts - self.start_ns) / NS, agreed) for ts, agreed in self.reconciler.reports]

    def since_start_s(self, ts_ns: int) -> float:
        return (ts_ns - self.start_ns) / NS


@asynccontextmanager
async def reconciler_slice(*, faults: FaultPlan | None = None, stream: bool = True) -> AsyncIterator[Slice]:
    config = EngineConfig(execution=ExecutionSection(brackets=False),
                          reconcile=ReconcileSection(interval_s=INTERVAL_S))
    async with running_world(faults=faults) as w:
        records = Records()
        ctx = EngineContext(
            config=config, broker=w.rest, clock=w.clock, ids=SeededIds(1), alerts=records, audit_sink=records,
            store=records, account_type=AccountType.MARGIN_INITIAL, model_id="test",
            state=EngineState(ledger=Ledger(cash_usd=CASH), start_of_day_equity=CASH, start_of_week_equity=CASH),
            session_start_ns=w.clock.now_ns() - 86_400 * NS,
        )
        cap = ACTOR_CHANNEL_CAPACITY
        ex_send, ex_recv = trio.open_memory_channel[Any](cap)
        sup_send, sup_recv = trio.open_memory_channel[Any](cap)
        rs_send, rs_recv = trio.open_memory_channel[Any](cap)
        at_latch: list[tuple[int, int, int]] = []
        reconciler: Reconciler | None = None

        def on_gate(halted: bool) -> None:
            if halted and reconciler is not None:
                reports = reconciler.reports
                at_latch.append((len(reports), sum(not agreed for _, agreed in reports), ctx.state.counters.resyncs))

        supervisor = Supervisor(ctx, inbox=sup_recv, resync=rs_send, observers=[on_gate])
        execution = ExecutionActor(ctx, inbox=ex_recv, self_send=ex_send, is_halted=lambda: supervisor.is_halted,
                                   on_fill=lambda *_: None, halted_since_ns=lambda: supervisor.halted_since_ns)
        reconciler = Reconciler(ctx, requests=rs_recv, execution=ex_send, supervisor=sup_send,
                                open_venue_ids=execution.venue_open_ids,
                                register_waiter=execution.resync_waiters.append,
                                is_halted=lambda: supervisor.is_halted)
        slice_ = Slice(world=w, ctx=ctx, execution=execution, reconciler=reconciler, supervisor=supervisor,
                       records=records, to_execution=ex_send, start_ns=w.clock.now_ns(), at_latch=at_latch)
        for serve in (supervisor.serve, execution.serve, reconciler.serve):
            await w.nursery.start(serve)
        if stream:
            async def deliver(update: Any) -> None:
                await ex_send.send(TradeUpdateReceived(update=update))

            await w.nursery.start(w.trading_stream().serve, deliver)
        yield slice_


def mismatch_trips(s: Slice) -> list[tuple[int, str, str]]:
    return [t for t in s.supervisor.trip_log if t[1] == HaltTrigger.RECONCILIATION_MISMATCH]


async def test_equal_books_never_trigger(autojump_clock: Any) -> None:
    async with reconciler_slice() as s:
        coid = await s.buy("sig-eq", 100)
        await s.until(lambda: coid in s.execution.machines and s.execution.machines[coid].is_terminal)
        await trio.sleep(10 * INTERVAL_S)
    assert s.engine_qty() == s.venue_qty() == Decimal(100)
    checks = s.checks()
    assert len(checks) >= 9 and all(agreed for _, agreed in checks)
    assert s.supervisor.halt.state is HaltState.ACTIVE and s.supervisor.trip_log == []
    assert s.ctx.state.counters.reconcile_mismatches == 0 and s.ctx.state.counters.resyncs == 0


async def test_a_drift_within_tolerance_is_not_a_mismatch_and_the_ledger_converges(autojump_clock: Any) -> None:
    # A quarter share on 500 is 0.05 % of the position's value: under the 0.1 % tolerance (spec 1.3). No alarm,
    # but seen twice unchanged with nothing working on NVDA, the ledger takes the broker's quantity (issue 17).
    faults = FaultPlan(events=(event("position_drift", 100.0, symbol="NVDA", qty=Decimal("0.25")),))
    async with reconciler_slice(faults=faults) as s:
        coid = await s.buy("sig-tol", 500)
        await s.until(lambda: coid in s.execution.machines and s.execution.machines[coid].is_terminal)
        await trio.sleep(100.0)
        cash_before = s.ctx.state.ledger.cash_usd
        await trio.sleep(200.0)
    assert s.venue_qty() == s.engine_qty() == Decimal("500.25")
    assert s.ctx.state.counters.reconcile_adoptions == 1
    adopted = [e for e in s.records.audit if "converged" in str((e.extra or {}).get("reason", ""))]
    assert len(adopted) == 1 and adopted[0].symbol == "NVDA" and adopted[0].extra["delta"] == "0.25"
    price = Decimal(str(adopted[0].extra["price"]))
    assert s.ctx.state.ledger.cash_usd == cash_before - Decimal("0.25") * price  # as if it traded at the mark
    checks = s.checks()
    assert len([t for t, _ in checks if t > 100.0]) >= 6 and all(agreed for _, agreed in checks)
    assert s.supervisor.trip_log == [] and s.ctx.state.counters.resyncs == 0


async def test_a_drift_beyond_tolerance_trips_once_a_resync_fails_to_explain_it(autojump_clock: Any) -> None:
    drift_at_s = 100.0
    faults = FaultPlan(events=(event("position_drift", drift_at_s, symbol="NVDA", qty=Decimal(50)),))
    async with reconciler_slice(faults=faults) as s:
        coid = await s.buy("sig-drift", 100)
        await s.until(lambda: coid in s.execution.machines and s.execution.machines[coid].is_terminal)
        await s.until(lambda: s.supervisor.halt.state is HaltState.HALTED, within_s=drift_at_s + 2 * INTERVAL_S)
        await trio.sleep(2 * INTERVAL_S)
    checks = s.checks()
    before = [agreed for t, agreed in checks if t < drift_at_s]
    assert len(before) >= 3 and all(before)  # equal books before the drift
    first_mismatch_s = next(t for t, agreed in checks if not agreed)
    assert drift_at_s <= first_mismatch_s <= drift_at_s + INTERVAL_S  # seen at the first check after it
    # The grace: the first mismatch only asked execution for a REST resync; the check after it tripped. At the
    # latch exactly two checks had disagreed, with exactly one resync between them.
    assert s.at_latch == [(len(before) + 2, 2, 1)]
    trips = mismatch_trips(s)
    assert len(trips) == 1 and len(s.supervisor.trip_log) == 1
    assert s.since_start_s(trips[0][0]) <= drift_at_s + INTERVAL_S + 1
    assert ("warning", "reconcile.mismatch") in s.records.alerts  # the surviving mismatch is worth a human
    # Halted with a mismatch, the engine adopts the venue's book (audited): it halts holding what the broker holds.
    assert s.engine_qty() == s.venue_qty() == Decimal(150)
    assert any("adopted_qty" in e.extra for e in s.records.of_type("reconcile"))


async def test_a_mismatch_a_resync_explains_does_not_trip(autojump_clock: Any) -> None:
    # No trade stream: the engine never hears the fill, so the first check sees venue 100 vs engine 0. That is the
    # grace the trigger gives: a REST resync books the execution from the venue's activities and the next agrees.
    async with reconciler_slice(stream=False) as s:
        coid = await s.buy("sig-lag", 100)
        await s.until(lambda: coid in s.execution.machines and s.execution.machines[coid].venue_order_id is not None)
        assert s.engine_qty() == 0 and s.venue_qty() == Decimal(100)
        await trio.sleep(4 * INTERVAL_S)
    checks = s.checks()
    assert [agreed for _, agreed in checks][:2] == [False, True]  # one mismatch, resynced, then agreement
    assert all(agreed for _, agreed in checks[1:])
    assert s.engine_qty() == s.venue_qty() == Decimal(100) and s.ctx.state.counters.resyncs >= 1
    assert s.supervisor.trip_log == [] and s.supervisor.halt.state is HaltState.ACTIVE


async def test_a_transient_rest_failure_during_reconciliation_does_not_trip(autojump_clock: Any) -> None:
    # REST answers 503 from 50 s to 300 s: the adapter gives up on snapshot after snapshot. A failed read is no
    # evidence of a mismatch: nothing is judged, no resync is asked for, and the books agree once REST is back.
    faults = FaultPlan(events=(event("rest_outage", 50.0, duration_s=250.0),))
    async with reconciler_slice(faults=faults) as s:
        coid = await s.buy("sig-outage", 100)
        await s.until(lambda: coid in s.execution.machines and s.execution.machines[coid].is_terminal)
        await trio.sleep(450.0)
    checks = s.checks()
    assert not [t for t, _ in checks if 50.0 <= t < 300.0]  # no snapshot completed during the outage
    failed_reads = [r for r in s.world.requests("GET", "/v2/positions") if r.status == 503]
    assert len({r.ts_ns // (INTERVAL_S * NS) for r in failed_reads}) >= 4  # it kept trying, check after check
    assert all(agreed for _, agreed in checks) and len([t for t, _ in checks if t >= 300.0]) >= 3
    assert s.supervisor.trip_log == [] and s.supervisor.halt.state is HaltState.ACTIVE
    assert s.ctx.state.counters.reconcile_mismatches == 0 and not s.supervisor.monitor.state.resync_pending


# Both tests below share one timeline. Every answer takes 1 s, so the first check's snapshot (two reads, from 30 s)
# ends before REST goes down at 31.9 s, and the resync that check asks for starts after it. The adapter gives up on
# the resync at ~48 s (its 5xx retries spent) and REST is back at 60 s. No trade stream: the engine never hears of
# its fill, so the first check disagrees, and a resync that succeeded would explain it (as in the test above).
BLIND_FAULTS = FaultPlan(events=(event("rest_slow", 0.0, latency_ms=1000, duration_s=900.0),
                                 event("rest_outage", 33.9, duration_s=28.1)))  # after the check's 4 reads


async def test_a_failed_resync_is_not_a_resync_the_mismatch_survived(autojump_clock: Any) -> None:
    async with reconciler_slice(faults=BLIND_FAULTS, stream=False) as s:
        await s.buy("sig-failed-resync", 100)
        await s.until(lambda: len(s.reconciler.reports) >= 1)
        assert s.checks()[0][1] is False  # the mismatch a resync would explain
        await trio.sleep(10 * INTERVAL_S)
    assert s.supervisor.trip_log == [] and s.supervisor.halt.state is HaltState.ACTIVE
    assert s.engine_qty() == s.venue_qty() == Decimal(100)  # booked by a resync once REST was back


async def test_a_failed_resync_does_not_blind_the_reconciler(autojump_clock: Any) -> None:
    async with reconciler_slice(faults=BLIND_FAULTS, stream=False) as s:
        await s.buy("sig-blind", 100)
        await s.until(lambda: len(s.reconciler.reports) >= 1)
        first_s = s.checks()[0][0]
        await trio.sleep(4 * INTERVAL_S)
    failed = [r for r in s.world.requests("GET", "/v2/orders") if r.status == 503]
    assert failed and s.since_start_s(failed[0].ts_ns) > first_s - 2  # the resync's reads are what failed
    later = [t for t, _ in s.checks() if t > first_s]
    assert later and later[0] <= first_s + 2 * INTERVAL_S  # checked again soon after REST returned
