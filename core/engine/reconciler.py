"""Reconciler actor: every 60 s the stream-derived book is compared with the venue's REST snapshot (spec 1.3).

A material mismatch first asks execution for a REST resync and checks again; one that survives the resync trips
the kill switch (the trigger logic lives in core.triggers). After such a trip the engine adopts the venue's
positions, audited, so the book it halts with is the one the broker holds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal

import trio

from core.engine.context import EngineContext
from core.engine.messages import ResyncRequested
from core.order_fsm import OPEN
from core.ports import BrokerError
from core.reconcile import ReconcileReport, reconcile
from core.triggers import ReconciliationChecked, RequestResync

log = logging.getLogger("ttlive.reconciler")
OPEN_STATUSES = frozenset(s.value for s in OPEN)


class Reconciler:
    def __init__(
        self,
        ctx: EngineContext,
        *,
        requests: trio.MemoryReceiveChannel[RequestResync],
        execution: trio.MemorySendChannel[object],
        supervisor: trio.MemorySendChannel[object],
        open_venue_ids: Callable[[], set[str]],
        register_waiter: Callable[[trio.Event], None],
        is_halted: Callable[[], bool],
    ) -> None:
        self.ctx = ctx
        self.requests = requests
        self.execution = execution
        self.supervisor = supervisor
        self.open_venue_ids = open_venue_ids
        self.register_waiter = register_waiter
        self.is_halted = is_halted
        self.interval_s = ctx.config.reconcile.interval_s
        self.tolerance = Decimal(ctx.config.reconcile.tolerance_pct) / 100
        self.reports: list[tuple[int, bool]] = []  # (ts_ns, in agreement)
        self.last_venue_positions: dict[str, Decimal] = {}
        self.mismatch_streak = 0  # consecutive mismatched checks; a fill in flight explains the first one

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async with self.requests:
            while True:
                request: RequestResync | None = None
                with trio.move_on_after(self.interval_s):
                    try:
                        request = await self.requests.receive()
                    except trio.EndOfChannel:
                        return
                if request is not None:
                    await self.resync(request.reason)
                await self.check()

    async def resync(self, reason: str) -> None:
        """Ask the execution actor to pull orders and activities from REST, and wait until it applied them."""
        done = trio.Event()
        self.register_waiter(done)
        await self.execution.send(ResyncRequested(reason=reason))
        with trio.move_on_after(120):
            await done.wait()

    async def snapshot(self) -> tuple[dict[str, Decimal], dict[str, Decimal], set[str]] | None:
        try:
            with trio.fail_after(60):
                positions = await self.ctx.broker.get_positions()
                open_orders = await self.ctx.broker.list_orders(status="open")
        except (BrokerError, trio.TooSlowError) as exc:
            log.warning("reconciliation snapshot failed: %s", exc)
            return None
        venue = {p.symbol: p.qty for p in positions if p.qty != 0}
        prices = {p.symbol: p.current_price for p in positions if p.current_price is not None}
        open_ids: set[str] = set()
        for order in open_orders:
            for o in (order, *order.legs):  # a filled bracket parent is listed while its legs work
                if o.status in OPEN_STATUSES:
                    open_ids.add(o.id)
        return venue, prices, open_ids

    async def check(self) -> ReconcileReport | None:
        ctx = self.ctx
        snap = await self.snapshot()
        if snap is None:
            return None
        venue, venue_prices, venue_open = snap
        self.last_venue_positions = venue
        prices = dict(venue_prices)
        for symbol in ctx.config.symbols:
            mark = ctx.state.mark(symbol)
            if mark is not None:
                prices.setdefault(symbol, mark)
        engine = ctx.state.ledger.positions()
        # Orders are compared one way only: an order the venue holds open that we think closed is a real
        # discrepancy; one we think open that the venue closed is an update still on its way.
        report = reconcile(engine, venue, prices, set(), venue_open - self.open_venue_ids(),
                           tolerance_fraction=self.tolerance)
        ctx.state.counters.reconciliations += 1
        agreed = not report.material
        self.reports.append((ctx.now_ns(), agreed))
        self.mismatch_streak = 0 if agreed else self.mismatch_streak + 1
        if not agreed:
            ctx.state.counters.reconcile_mismatches += 1
            detail = "; ".join(
                f"{d.symbol} engine {d.engine_qty} venue {d.venue_qty}" for d in report.positions if d.material
            ) or f"{len(report.orders)} unknown open orders at the venue: " + ", ".join(
                o.order_id for o in report.orders[:3])
            ctx.system("reconcile", reason=detail, extra={"agreed": False, "streak": self.mismatch_streak})
            if self.mismatch_streak >= 2:  # it survived a resync: worth a human's attention (spec 1.3)
                await ctx.alerts.send(severity="warning", key="reconcile.mismatch", message=detail,
                                      ts_ns=ctx.now_ns())
            if self.is_halted():
                self.adopt_venue(venue, reason=f"halted with mismatch: {detail}")
        await self.supervisor.send(
            ReconciliationChecked(ts_s=ctx.now_s(), mismatched=not agreed,
                                  detail="" if agreed else "positions differ from the venue")
        )
        return report

    def adopt_venue(self, venue: dict[str, Decimal], *, reason: str) -> None:
        """Take the broker's positions as truth (audited). Used once trading is halted."""
        ledger = self.ctx.state.ledger
        for symbol in sorted(set(venue) | set(ledger.positions())):
            qty = venue.get(symbol, Decimal(0))
            if ledger.position_qty(symbol) == qty:
                continue
            price = self.ctx.state.mark(symbol) or Decimal(0)
            delta = ledger.adopt_venue_position(symbol, qty, price)
            self.ctx.book_changed()
            self.ctx.system("reconcile", reason=reason, symbol=symbol,
                            extra={"adopted_qty": str(qty), "delta": str(delta)})
        self.ctx.persist()
