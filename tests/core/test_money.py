"""Reconciling the money (issue 17 item 3): cash and equity against the broker's, explained by non-trade
activities applied to the ledger (a dividend, a fee, a journal move cash; a split moves the position only)."""

from __future__ import annotations

from decimal import Decimal

from core.ledger import Ledger
from core.model import CashActivity
from core.reconcile import apply_cash_activity, compare_money

D = Decimal


def ledger() -> Ledger:
    book = Ledger(cash_usd=D(10_000))
    book.adopt_venue_position("NVDA", D(100), D(20))
    book.mark("NVDA", D(25))
    return book


def activity(kind: str, net: str = "0", **kw: object) -> CashActivity:
    return CashActivity(id=f"{kind}-1", activity_type=kind, ts_ns=100, net_amount=D(net), **kw)  # type: ignore[arg-type]


def test_cash_activities_move_cash_and_explain_the_difference() -> None:
    book = ledger()
    before = compare_money(book, cash=D("10037.50"), equity=D("12537.50"), buying_power=D(0), prices={"NVDA": D(25)})
    assert before.cash_diff == D("37.50") and before.material  # 0.3 % of equity: alert-worthy until explained
    for a in (activity("DIV", "50", symbol="NVDA", qty=D(100), per_share_amount=D("0.5")), activity("FEE", "-12.50")):
        apply_cash_activity(book, a, positions_from_broker_ns=0)
    after = compare_money(book, cash=D("10037.50"), equity=D("12537.50"), buying_power=D(0), prices={"NVDA": D(25)})
    assert after.cash_diff == 0 and after.equity_diff == 0


def test_a_split_doubles_the_position_halves_entry_and_mark_and_keeps_equity() -> None:
    book = ledger()
    equity = book.equity_usd()
    change = apply_cash_activity(book, activity("SPLIT", symbol="NVDA", qty=D(100), per_share_amount=D(2)),
                                 positions_from_broker_ns=0)
    assert change.split_ratio == 2 and book.position_qty("NVDA") == 200
    assert book.holdings["NVDA"].avg_entry_price == D(10) and book.marks["NVDA"] == D("12.5")
    assert book.equity_usd() == equity and book.cash_usd == D(10_000)


def test_a_split_the_start_up_already_adopted_is_not_applied_twice() -> None:
    book = ledger()
    apply_cash_activity(book, activity("SPLIT", symbol="NVDA", qty=D(100)), positions_from_broker_ns=200)
    assert book.position_qty("NVDA") == 100


def test_an_unexplained_difference_above_the_tolerance_is_material() -> None:
    book = ledger()
    check = compare_money(book, cash=D(9_000), equity=D(11_500), buying_power=D(5), prices={"NVDA": D(25)})
    assert check.material and check.cash_diff == D(-1000) and check.equity_diff == D(-1000)
    # equity is valued at the broker's prices: a quote the engine has not seen yet is no money difference
    moved = compare_money(book, cash=D(10_000), equity=D(13_000), buying_power=D(5), prices={"NVDA": D(30)})
    assert not moved.material and moved.equity_diff == 0


def test_an_unexplained_difference_is_audited_and_alerted_on_the_second_check_never_halted() -> None:
    import trio

    from core.config import EngineConfig
    from core.engine.context import EngineContext
    from core.engine.reconciler import Reconciler
    from core.engine.state import EngineState
    from core.model import AccountType

    class Sink:
        def __init__(self) -> None:
            self.audit: list[object] = []
            self.alerts: list[str] = []

        def write(self, entry: object) -> None:
            self.audit.append(entry)

        async def send(self, *, severity: str, key: str, message: str, ts_ns: int) -> None:
            self.alerts.append(key)

    class Clock:
        def now_ns(self) -> int:
            return 0

    sink = Sink()
    ctx = EngineContext(config=EngineConfig(), broker=None, clock=Clock(), ids=None, alerts=sink,  # type: ignore[arg-type]
                        audit_sink=sink, store=None, account_type=AccountType.MARGIN_INITIAL,  # type: ignore[arg-type]
                        model_id="m", state=EngineState(ledger=ledger(), start_of_day_equity=D(0),
                                                         start_of_week_equity=D(0)))
    reconciler = Reconciler(ctx, requests=None, execution=None, supervisor=None,  # type: ignore[arg-type]
                            open_venue_ids=set, register_waiter=lambda _: None, is_halted=lambda: False)
    off = compare_money(ctx.state.ledger, cash=D(9_000), equity=D(11_500), buying_power=D(0), prices={})
    fine = compare_money(ctx.state.ledger, cash=D(10_000), equity=D(12_500), buying_power=D(0), prices={})

    async def main() -> None:
        await reconciler.judge_money(off)
        assert sink.alerts == [] and len(sink.audit) == 1  # a fill in flight explains one check
        await reconciler.judge_money(off)
        assert sink.alerts == ["reconcile.money"] and len(sink.audit) == 2
        await reconciler.judge_money(fine)
        assert reconciler.money_streak == 0 and len(sink.audit) == 2

    trio.run(main)
