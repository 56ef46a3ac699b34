"""Reconciler actor: every 60 s the stream-derived book is compared with the venue's REST snapshot (spec 1.3).

A material mismatch first asks execution for a REST resync and checks again; one that survives the resync trips
the kill switch (the trigger logic lives in core.triggers). A resync that failed (REST trouble) is no resync: the
reconciler checks again at the next interval and asks again, so a mismatch a resync would explain does not halt
on a blip; after ``RESYNC_FAILURES_BEFORE_JUDGING`` failed resyncs in a row a persisting mismatch is judged on
what the checks see (when in doubt, halt). After such a trip the engine adopts the venue's
positions, audited, so the book it halts with is the one the broker holds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal

import trio

from core.engine.context import EngineContext
from core.engine.messages import ResyncRequested, ResyncWaiter
from core.model import Account, BrokerOrder, Side
from core.order_fsm import OPEN_STATUSES
from core.orderplan import is_ours
from core.ports import BrokerError
from core.reconcile import MoneyCheck, ReconcileReport, apply_cash_activity, compare_money, reconcile
from core.triggers import ReconciliationChecked, RequestResync

log = logging.getLogger("ttlive.reconciler")
RESYNC_WAIT_S = 120.0  # how long a check waits for execution to apply a resync it asked for
RESYNC_FAILURES_BEFORE_JUDGING = 3  # consecutive failed resyncs after which a mismatch counts as surviving one
ACTIVITY_IDS_KEPT = 1000  # applied non-trade activity ids remembered (the watermark bounds what is fetched)
# (venue positions, their prices, our open order ids, open orders we did not place, the account)
Snapshot = tuple[dict[str, Decimal], dict[str, Decimal], set[str], list[BrokerOrder], Account]


class Reconciler:
    def __init__(
        self,
        ctx: EngineContext,
        *,
        requests: trio.MemoryReceiveChannel[RequestResync],
        execution: trio.MemorySendChannel[object],
        supervisor: trio.MemorySendChannel[object],
        open_venue_ids: Callable[[], set[str]],
        register_waiter: Callable[[ResyncWaiter], None],
        is_halted: Callable[[], bool],
        working_fills: Callable[[], list[tuple[str, str | None, Decimal]]] = list,
        on_account: Callable[[Account], None] = lambda _account: None,
        positions_from_broker_ns: int = 0,
    ) -> None:
        self.ctx = ctx
        self.requests = requests
        self.execution = execution
        self.supervisor = supervisor
        self.open_venue_ids = open_venue_ids
        self.register_waiter = register_waiter
        self.is_halted = is_halted
        self.working_fills = working_fills  # (symbol, venue order id, filled qty) of each order of ours working
        self.venue_filled: dict[str, Decimal] = {}  # the last snapshot: venue order id -> filled qty, our open ones
        self.on_account = on_account  # each check's account snapshot (the engine's buying power follows it)
        self.positions_from_broker_ns = positions_from_broker_ns  # start-up adopted the broker's book at this time
        self.money_streak = 0  # consecutive checks whose cash/equity differ beyond the tolerance, unexplained
        self.last_money: MoneyCheck | None = None
        # Differences below the alert threshold, (engine qty, venue qty) per symbol, as the last check saw them:
        # the same one twice with nothing working on the symbol is not a fill in flight, it is the broker's truth.
        self.small_drifts: dict[str, tuple[Decimal, Decimal]] = {}
        self.foreign_open_orders = 0  # open orders at the account that ttlive did not place (last snapshot)
        self.foreign_orders: list[BrokerOrder] = []  # those orders themselves (RiskGuard counts what may fill)
        self.interval_s = ctx.config.reconcile.interval_s
        self.tolerance = Decimal(ctx.config.reconcile.tolerance_pct) / 100
        self.reports: list[tuple[int, bool]] = []  # (ts_ns, in agreement)
        self.last_venue_positions: dict[str, Decimal] = {}
        self.mismatch_streak = 0  # consecutive mismatched checks; a fill in flight explains the first one
        self.resynced = False  # a resync was applied since the last check that saw the venue
        self.failed_resyncs = 0  # consecutive resyncs that failed or timed out

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
                    if await self.resync(request.reason):
                        self.failed_resyncs = 0
                        self.resynced = True
                    else:
                        self.failed_resyncs += 1
                        if self.failed_resyncs < RESYNC_FAILURES_BEFORE_JUDGING:
                            continue  # no evidence either way: check (and ask again) at the next interval
                        self.resynced = True  # when in doubt, halt: judge the mismatch on what the checks see
                await self.check()

    async def resync(self, reason: str) -> bool:
        """Ask the execution actor to pull orders and activities from REST; True once it applied them, False if the
        pull failed or did not finish within ``RESYNC_WAIT_S``."""
        waiter = ResyncWaiter()
        self.register_waiter(waiter)
        await self.execution.send(ResyncRequested(reason=reason))
        with trio.move_on_after(RESYNC_WAIT_S):
            await waiter.done.wait()
        return waiter.done.is_set() and waiter.ok

    def note_foreign(self, orders: list[BrokerOrder]) -> None:
        """The open orders at the account that ttlive did not place, as the latest listing saw them."""
        self.foreign_orders = [o for o in orders if o.status in OPEN_STATUSES]

    def foreign_pending_qty(self) -> dict[str, Decimal]:
        """Net signed quantity the owner's open orders may still trade per symbol (buy > 0), for RiskGuard: an
        order that may fill counts toward the position and exposure limits like one of ours. A notional order is
        sized at the mark; a symbol with no price at all cannot be judged and is left out (logged once)."""
        out: dict[str, Decimal] = {}
        for order in self.foreign_orders:
            leaves = order.qty - order.filled_qty
            if order.notional is not None:
                mark = self.ctx.state.mark(order.symbol)
                if mark is None or mark <= 0:
                    continue
                leaves = max(Decimal(0), order.notional / mark - order.filled_qty)
            if self.ctx.state.mark(order.symbol) is None:
                continue  # no price: RiskGuard could not value it
            signed = leaves if order.side is Side.BUY else -leaves
            out[order.symbol] = out.get(order.symbol, Decimal(0)) + signed
        return out

    async def snapshot(self) -> Snapshot | None:
        """The venue's positions, their prices, our open order ids, the open orders we did not place, the account."""
        try:
            with trio.fail_after(60):
                positions = await self.ctx.broker.get_positions()
                open_orders = await self.ctx.broker.list_orders(status="open")
                account = await self.ctx.broker.get_account()
        except (BrokerError, trio.TooSlowError) as exc:
            log.warning("reconciliation snapshot failed: %s", exc)
            return None
        venue = {p.symbol: p.qty for p in positions if p.qty != 0}
        prices = {p.symbol: p.current_price for p in positions if p.current_price is not None}
        open_ids: set[str] = set()
        foreign: list[BrokerOrder] = []
        self.venue_filled = {}
        for order in open_orders:
            if not is_ours(order.client_order_id):
                if order.status in OPEN_STATUSES:  # the owner's own orders: never a mismatch
                    foreign.append(order)
                continue
            for o in (order, *order.legs):  # a filled bracket parent is listed while its legs work
                self.venue_filled[o.id] = o.filled_qty
                if o.status in OPEN_STATUSES:
                    open_ids.add(o.id)
        return venue, prices, open_ids, foreign, account

    async def handle_foreign(self, order_ids: list[str]) -> None:
        """Open orders ttlive did not place: audited when their number changes, and left alone unless the config
        says ``foreign_orders = "cancel"`` (then each is cancelled, audited; a failed cancel is retried next check)."""
        policy = self.ctx.config.reconcile.foreign_orders
        if len(order_ids) != self.foreign_open_orders:
            self.foreign_open_orders = len(order_ids)
            action = "cancelling them" if policy == "cancel" and order_ids else "left alone"
            self.ctx.system("health", reason=f"{len(order_ids)} open order(s) at the account not placed by ttlive: "
                            f"{action}", extra={"event": "foreign_orders", "count": len(order_ids)})
        if policy != "cancel":
            return
        for order_id in order_ids:
            try:
                with trio.fail_after(30):
                    await self.ctx.broker.cancel_order(order_id)
            except (BrokerError, trio.TooSlowError) as exc:
                log.warning("could not cancel foreign order %s: %s", order_id, exc)
                continue
            self.ctx.system("health", reason="cancelled an order not placed by ttlive (foreign_orders = cancel)",
                            extra={"event": "foreign_order_cancelled", "alpaca_order_id": order_id})

    async def check(self) -> ReconcileReport | None:
        ctx = self.ctx
        snap = await self.snapshot()
        if snap is None:
            return None
        venue, venue_prices, venue_open, foreign, account = snap
        self.note_foreign(foreign)
        await self.handle_foreign([o.id for o in foreign])
        self.on_account(account)
        self.last_venue_positions = venue
        prices = dict(venue_prices)
        for symbol in ctx.config.symbols:
            mark = ctx.state.mark(symbol)
            if mark is not None:
                prices.setdefault(symbol, mark)
        ledger = ctx.state.ledger
        money = compare_money(ledger, cash=account.cash, equity=account.equity, buying_power=account.buying_power,
                              prices=venue_prices, tolerance_fraction=self.tolerance)
        if (ledger.positions() != venue or money.cash_diff != 0) and await self.explain():
            money = compare_money(ledger, cash=account.cash, equity=account.equity,
                                  buying_power=account.buying_power, prices=venue_prices,
                                  tolerance_fraction=self.tolerance)
        await self.judge_money(money)
        engine = ledger.positions()
        # Orders are compared one way only: an order the venue holds open that we think closed is a real
        # discrepancy; one we think open that the venue closed is an update still on its way.
        report = reconcile(engine, venue, prices, set(), venue_open - self.open_venue_ids(),
                           tolerance_fraction=self.tolerance)
        ctx.state.counters.reconciliations += 1
        self.converge(report)
        after_resync, self.resynced = self.resynced, False
        agreed = not report.material
        self.reports.append((ctx.now_ns(), agreed))
        self.mismatch_streak = 0 if agreed else self.mismatch_streak + 1
        if agreed:
            self.failed_resyncs = 0
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
                # A symbol with an order of ours working (a protective stop, core.protect) may have a fill on its
                # way: adopted on the first sight, that fill would count twice. It is adopted once it persists.
                wait = self.working_symbols() if self.mismatch_streak < 2 else set()
                self.adopt_venue(venue, reason=f"halted with mismatch: {detail}", skip=wait)
        await self.supervisor.send(
            ReconciliationChecked(ts_s=ctx.now_s(), mismatched=not agreed, after_resync=after_resync,
                                  detail="" if agreed else "positions differ from the venue")
        )
        return report

    async def explain(self) -> bool:
        """Differences first look for their reason in the account's non-trade activities (dividends, fees,
        interest, journals, transfers, splits) since the last one applied: each new one is applied to the ledger
        (core.reconcile.apply_cash_activity) and audited as an adjustment. True if any was applied."""
        ctx = self.ctx
        state = ctx.state
        try:
            with trio.fail_after(60):
                activities = await ctx.broker.get_cash_activities(after_ts_ns=state.activities_after_ns or None)
        except (BrokerError, trio.TooSlowError) as exc:
            log.warning("activities unavailable: %s", exc)
            return False
        seen = set(state.activity_ids)
        applied = False
        for activity in sorted(activities, key=lambda a: (a.ts_ns, a.id)):
            if activity.id in seen:
                continue
            change = apply_cash_activity(state.ledger, activity, positions_from_broker_ns=self.positions_from_broker_ns)
            state.activity_ids.append(activity.id)
            seen.add(activity.id)
            applied = True
            ctx.book_changed()
            ctx.system("reconcile", symbol=activity.symbol or "",
                       reason=f"adjustment: {activity.activity_type} {activity.description}".strip(),
                       extra={"event": "activity_applied", "activity_id": activity.id,
                              "activity_type": activity.activity_type, "cash_delta": str(change.cash_delta),
                              "split_ratio": None if change.split_ratio is None else str(change.split_ratio)})
        if applied:
            del state.activity_ids[:-ACTIVITY_IDS_KEPT]
            ctx.persist()
        return applied

    async def judge_money(self, money: MoneyCheck) -> None:
        """Spec 1.3: a difference of cash or equity above the tolerance (0.1 % of equity) that no activity explains
        is audited each time and alerted when it survives a second check (a fill in flight explains one). It does
        not halt: the kill switch's reconciliation trigger is about positions (spec 2.3)."""
        self.last_money = money
        if not money.material:
            self.money_streak = 0
            return
        self.money_streak += 1
        detail = (f"cash engine {money.engine_cash:.2f} broker {money.broker_cash:.2f}; equity engine "
                  f"{money.engine_equity:.2f} broker {money.broker_equity:.2f} (tolerance {money.tolerance_usd:.2f})")
        self.ctx.system("reconcile", reason=f"money differs from the broker: {detail}",
                        extra={"event": "money_mismatch", "streak": self.money_streak,
                               "cash_diff": str(money.cash_diff), "equity_diff": str(money.equity_diff),
                               "buying_power": str(money.buying_power)})
        if self.money_streak == 2:
            self.ctx.state.counters.alerts += 1
            await self.ctx.alerts.send(severity="warning", key="reconcile.money",
                                       message=f"unexplained money difference: {detail}", ts_ns=self.ctx.now_ns())

    def working_symbols(self) -> set[str]:
        """Symbols with an order of ours working."""
        return {symbol for symbol, _venue_id, _filled in self.working_fills()}

    def unsettled_symbols(self) -> set[str]:
        """Symbols where a fill of ours may be on its way: an order of ours working there that the venue's open
        orders (the last snapshot) do not list with the filled quantity we booked. A resting order the venue shows
        unfilled as we do (a protective stop all day long) leaves its symbol settled."""
        return {symbol for symbol, venue_id, filled in self.working_fills()
                if venue_id is None or self.venue_filled.get(venue_id) != filled}

    def converge(self, report: ReconcileReport) -> None:
        """Adopt a position difference below the alert threshold once it is seen in two checks in a row, unchanged,
        with no fill of ours possibly on its way on the symbol (a trade made outside the engine, a rounding at the
        broker): the ledger converges on the broker instead of staying wrong to the close. Cash moves as if the
        difference had traded at the mark; audited. Material differences stay with the kill-switch path."""
        working = self.unsettled_symbols()
        seen = {d.symbol: (d.engine_qty, d.venue_qty) for d in report.positions if not d.material}
        ledger = self.ctx.state.ledger
        for symbol, (engine_qty, venue_qty) in sorted(seen.items()):
            if symbol in working or self.small_drifts.get(symbol) != (engine_qty, venue_qty):
                continue
            if ledger.position_qty(symbol) != engine_qty:
                continue  # a fill arrived since the snapshot
            price = self.ctx.state.mark(symbol) or ledger.holdings[symbol].avg_entry_price
            delta = ledger.adopt_venue_position(symbol, venue_qty, ledger.holdings[symbol].avg_entry_price)
            ledger.cash_usd -= delta * price
            del seen[symbol]
            self.ctx.state.counters.reconcile_adoptions += 1
            self.ctx.system("reconcile", symbol=symbol,
                            reason="converged on the broker's position (a difference below the alert threshold)",
                            extra={"adopted_qty": str(venue_qty), "delta": str(delta), "price": str(price)})
        self.small_drifts = seen

    def adopt_venue(self, venue: dict[str, Decimal], *, reason: str, skip: set[str] | None = None) -> None:
        """Take the broker's positions as truth (audited), except for the symbols in ``skip``. Used once trading
        is halted."""
        ledger = self.ctx.state.ledger
        for symbol in sorted(set(venue) | set(ledger.positions())):
            if skip and symbol in skip:
                continue
            qty = venue.get(symbol, Decimal(0))
            if ledger.position_qty(symbol) == qty:
                continue
            price = self.ctx.state.mark(symbol) or Decimal(0)
            delta = ledger.adopt_venue_position(symbol, qty, price)
            self.ctx.book_changed()
            self.ctx.system("reconcile", reason=reason, symbol=symbol,
                            extra={"adopted_qty": str(qty), "delta": str(delta)})
        self.ctx.persist()
