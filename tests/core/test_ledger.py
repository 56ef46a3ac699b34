"""Ledger: each execution booked once, cash conserved, P&L consistent with a brute-force recomputation."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from core.ledger import Ledger
from core.model import Fill, Side

D = Decimal


def fill(eid: str, side: Side, qty: str, price: str, symbol: str = "NVDA") -> Fill:
    return Fill(
        execution_id=eid, order_id="o", client_order_id="c", symbol=symbol, side=side,
        qty=D(qty), price=D(price), ts_ns=0,
    )


def test_round_trip_realises_pl_and_restores_cash_plus_pl() -> None:
    ledger = Ledger(cash_usd=D(10_000))
    ledger.apply_fill(fill("e1", Side.BUY, "10", "100"))
    ledger.apply_fill(fill("e2", Side.BUY, "10", "110"))
    assert ledger.holdings["NVDA"].avg_entry_price == D(105)
    booked = ledger.apply_fill(fill("e3", Side.SELL, "20", "120"))
    assert booked is not None and booked.closed_trade
    assert booked.realized_pl == D(300)
    assert ledger.cash_usd == D(10_300)
    assert ledger.positions() == {}
    assert ledger.take_round_trip_pl("NVDA") == D(300)


def test_duplicate_execution_is_ignored() -> None:
    ledger = Ledger(cash_usd=D(1000))
    assert ledger.apply_fill(fill("e1", Side.BUY, "1", "10")) is not None
    assert ledger.apply_fill(fill("e1", Side.BUY, "1", "10")) is None
    assert ledger.position_qty("NVDA") == D(1)
    assert ledger.fills_booked == 1


def test_flip_through_zero_opens_remainder_at_fill_price() -> None:
    ledger = Ledger(cash_usd=D(1000))
    ledger.apply_fill(fill("e1", Side.BUY, "5", "10"))
    booked = ledger.apply_fill(fill("e2", Side.SELL, "8", "12"))
    assert booked is not None and booked.closed_trade and booked.realized_pl == D(10)
    assert ledger.position_qty("NVDA") == D(-3)
    assert ledger.holdings["NVDA"].avg_entry_price == D(12)


def test_short_pl_sign() -> None:
    ledger = Ledger(cash_usd=D(1000))
    ledger.apply_fill(fill("e1", Side.SELL, "4", "50"))
    booked = ledger.apply_fill(fill("e2", Side.BUY, "4", "45"))
    assert booked is not None and booked.realized_pl == D(20)


def test_state_round_trips_through_dict() -> None:
    ledger = Ledger(cash_usd=D(1000))
    ledger.apply_fill(fill("e1", Side.BUY, "3", "10.5"))
    again = Ledger.from_dict(ledger.to_dict())
    assert again.to_dict() == ledger.to_dict()
    assert again.apply_fill(fill("e1", Side.BUY, "3", "10.5")) is None


class LedgerMachine(RuleBasedStateMachine):
    """Random fills (with replays): the ledger equals a brute-force replay of the unique fills."""

    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger(cash_usd=D(100_000))
        self.unique: dict[str, Fill] = {}
        self.n = 0

    @rule(
        side=st.sampled_from([Side.BUY, Side.SELL]),
        qty=st.integers(1, 50),
        cents=st.integers(100, 50_000),
        symbol=st.sampled_from(["NVDA", "ORCL"]),
    )
    def new_fill(self, side: Side, qty: int, cents: int, symbol: str) -> None:
        self.n += 1
        f = fill(f"e{self.n}", side, str(qty), str(D(cents) / 100), symbol)
        self.unique[f.execution_id] = f
        self.ledger.apply_fill(f)

    @rule(data=st.data())
    def replay_old_fill(self, data: st.DataObject) -> None:
        if self.unique:
            eid = data.draw(st.sampled_from(sorted(self.unique)))
            assert self.ledger.apply_fill(self.unique[eid]) is None

    @invariant()
    def matches_brute_force(self) -> None:
        qty: dict[str, Decimal] = {}
        cash = D(100_000)
        for f in self.unique.values():
            signed = f.qty if f.side is Side.BUY else -f.qty
            qty[f.symbol] = qty.get(f.symbol, D(0)) + signed
            cash -= signed * f.price
        assert self.ledger.positions() == {s: q for s, q in sorted(qty.items()) if q}
        assert self.ledger.cash_usd == cash
        assert self.ledger.fills_booked == len(self.unique)
        # Equity marked at entry prices == cash + cost basis: realised P&L is the only source of change.
        basis = sum((h.qty * h.avg_entry_price for h in self.ledger.holdings.values()), D(0))
        # (average prices are 28-digit Decimals, so allow rounding far below a cent)
        assert abs(self.ledger.cash_usd + basis - D(100_000) - self.ledger.realized_pl_usd) < D("1e-12")


TestLedgerMachine = LedgerMachine.TestCase
TestLedgerMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
