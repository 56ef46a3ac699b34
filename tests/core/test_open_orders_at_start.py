"""Open orders at start-up (issue 17 item 1): ours are adopted into order machines with the broker's status (fills
arriving later are booked, what filled before is not booked again); the owner's count toward RiskGuard's limits."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from core.config import EngineConfig
from core.engine.context import EngineContext
from core.engine.execution import ADOPTED, ExecutionActor
from core.engine.reconciler import Reconciler
from core.engine.state import EngineState
from core.ledger import Ledger
from core.model import AccountType, BrokerOrder, Direction, ExecutionAction, OrderType, Quote, Side, Signal, TimeInForce
from core.order_fsm import OrderState
from core.risk import Outcome, PortfolioView, RiskConfig, RiskGuard

D = Decimal
CASH = D(100_000)


class Records:
    def __init__(self) -> None:
        self.audit: list[Any] = []

    def write(self, entry: Any) -> None:
        self.audit.append(entry)

    def save(self, state: dict[str, Any]) -> None:
        pass


class Clock:
    def now_ns(self) -> int:
        return 1_000


def context() -> EngineContext:
    records = Records()
    state = EngineState(ledger=Ledger(cash_usd=CASH), start_of_day_equity=CASH, start_of_week_equity=CASH)
    state.quotes["NVDA"] = Quote(symbol="NVDA", bid_price=D(100), ask_price=D(100), bid_size=D(1), ask_size=D(1),
                                 ts_ns=0)
    return EngineContext(config=EngineConfig(), broker=None, clock=Clock(), ids=None, alerts=None,  # type: ignore[arg-type]
                         audit_sink=records, store=records, state=state, account_type=AccountType.MARGIN_INITIAL,
                         model_id="test")


def order(coid: str, *, side: Side = Side.BUY, qty: str = "10", filled: str = "0", status: str = "new",
          legs: tuple[BrokerOrder, ...] = (), notional: str | None = None, type_: OrderType = OrderType.LIMIT,
          oid: str | None = None) -> BrokerOrder:
    return BrokerOrder(id=oid or f"v-{coid}", client_order_id=coid, symbol="NVDA", side=side, qty=D(qty),
                       filled_qty=D(filled), filled_avg_price=D(99) if D(filled) else None, status=status,
                       type=type_, time_in_force=TimeInForce.GTC, limit_price=D(90), legs=legs,
                       notional=None if notional is None else D(notional))


def test_our_open_orders_become_machines_with_the_brokers_state() -> None:
    ctx = context()
    execution = ExecutionActor(ctx, inbox=None, self_send=None, is_halted=lambda: False,  # type: ignore[arg-type]
                               on_fill=lambda *_: None)
    leg = order("leg-1", side=Side.SELL, status="held", oid="v-leg")
    partial = order("tt-aaa-0", qty="10", filled="4", status="partially_filled", legs=(leg,))
    resting = order("tt-bbb-0", status="new")
    execution.adopt_orders((partial, resting), reason="start-up")
    assert execution.machines["tt-aaa-0"].state is OrderState.PARTIALLY_FILLED
    assert execution.machines["tt-aaa-0"].filled_qty == D(4) and execution.machines["tt-aaa-0"].missing_fill_qty == 0
    assert execution.machines["tt-bbb-0"].state is OrderState.NEW
    assert ctx.state.orders["leg-1"].parent_client_order_id == "tt-aaa-0"  # the bracket's legs come along
    assert ctx.state.orders["tt-bbb-0"].action == ADOPTED
    assert execution.pending_qty() == {"NVDA": D(16)}  # leaves of both entries; the leg is not exposure
    assert execution.venue_open_ids() >= {"v-tt-aaa-0", "v-tt-bbb-0"}  # no reconciliation mismatch
    audited = [e.extra["event"] for e in ctx.audit_sink.audit]  # type: ignore[attr-defined]
    assert audited.count("order_adopted") == 2
    execution.adopt_orders((resting,), reason="start-up")  # idempotent
    assert len(ctx.audit_sink.audit) == 2  # type: ignore[attr-defined]


def test_foreign_open_orders_count_toward_the_position_limit() -> None:
    ctx = context()
    reconciler = Reconciler(ctx, requests=None, execution=None, supervisor=None,  # type: ignore[arg-type]
                            open_venue_ids=set, register_waiter=lambda _: None, is_halted=lambda: False)
    reconciler.note_foreign([order("desk-1", qty="40"), order("desk-2", side=Side.SELL, qty="5"),
                             order("desk-3", qty="0", notional="1000"), order("desk-4", status="canceled")])
    assert reconciler.foreign_pending_qty() == {"NVDA": D(40) - D(5) + D(10)}
    view = PortfolioView(equity=CASH, last_equity=CASH, week_start_equity=CASH, cash=CASH, buying_power=CASH,
                         account_type=AccountType.MARGIN_INITIAL, prices={"NVDA": D(100)},
                         open_orders=reconciler.foreign_pending_qty())
    signal = Signal(signal_id="s", model_id="m", symbol="NVDA", direction=Direction.LONG, quantity=D(40),
                    action=ExecutionAction.MARKET, ts_ns=0)
    guard = RiskGuard(RiskConfig(size_scale=D(1), sectors={"NVDA": "semiconductors"}))
    decision = guard.evaluate_signal(signal, view)  # 5 % of 100k at $100 = 50 shares; 45 may fill already
    assert decision.outcome is Outcome.RESIZE and decision.approved_qty == D(5), decision
    alone = guard.evaluate_signal(signal, msgspec.structs.replace(view, open_orders={}))
    assert alone.outcome is Outcome.PASS and alone.approved_qty == D(40)  # without them: nothing binds
