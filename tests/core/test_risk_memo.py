"""RiskGuard's per-view memo never changes a decision: memoised == computed afresh, field for field.

The guard reuses, for the last view it saw, the per-symbol book sums and the (cap, reason) of rules that depend
only on (view, config, symbol, side). These tests run long streams of signals through one guard and compare
every decision with a fresh guard's (which computes everything from the view), including the Decimals'
representation (repr), across view changes and a Decimal context change.
"""

from __future__ import annotations

import decimal
import random
from decimal import Decimal

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.model import Direction, ExecutionAction, Signal
from core.risk import DEFAULT_RULES, Outcome, RiskGuard
from tests.core.test_risk_properties import SYMBOLS, Case, cases

STREAM = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def stream(rnd: random.Random, n: int) -> list[Signal]:
    """Signals in every symbol (and one unknown), every direction, many sizes, some reduce-only or CANCEL."""
    out = []
    for i in range(n):
        action = ExecutionAction.CANCEL if rnd.random() < 0.05 else rnd.choice(
            [ExecutionAction.MARKET, ExecutionAction.LIMIT_AGGRESSIVE, ExecutionAction.LIMIT_PASSIVE]
        )
        out.append(Signal(
            signal_id=f"s{i}", model_id="m", symbol=rnd.choice([*SYMBOLS, "ZZZ"]),
            direction=rnd.choice(list(Direction)), quantity=Decimal(rnd.choice([0, 1, 7, rnd.randint(1, 5_000)])),
            action=action, ts_ns=i, reduce_only=rnd.random() < 0.1,
        ))
    return out


def fresh(case: Case, signal: Signal) -> str:
    return repr(RiskGuard(case.config).evaluate_signal(signal, case.view))


@STREAM
@given(case=cases(), seed=st.integers(0, 2**32))
def test_a_stream_through_one_guard_equals_fresh_guards(case: Case, seed: int) -> None:
    guard = RiskGuard(case.config)
    signals = stream(random.Random(seed), 60)
    for signal in signals + signals[::-1]:  # every key is both first computed and then reused
        assert repr(guard.evaluate_signal(signal, case.view)) == fresh(case, signal)


@STREAM
@given(first=cases(), second=cases(), seed=st.integers(0, 2**32))
def test_a_new_view_starts_a_new_memo(first: Case, second: Case, seed: int) -> None:
    guard = RiskGuard(first.config)
    other = Case(second.view, first.config, second.signal)
    rebuilt = Case(msgspec.structs.replace(first.view), first.config, first.signal)  # equal, not identical
    for signal in stream(random.Random(seed), 20):
        for case in (first, other, first, rebuilt):
            assert repr(guard.evaluate_signal(signal, case.view)) == fresh(case, signal)


@settings(STREAM, max_examples=20)
@given(case=cases())
def test_memo_is_used_and_a_decimal_context_change_resets_it(case: Case) -> None:
    guard = RiskGuard(case.config)
    signal = Signal(signal_id="x", model_id="m", symbol=SYMBOLS[0], direction=Direction.LONG,
                    quantity=Decimal(10), action=ExecutionAction.MARKET, ts_ns=0)
    guard.evaluate_signal(signal, case.view)
    memo = guard._memo
    guard.evaluate_signal(signal, case.view)
    assert guard._memo is memo
    with decimal.localcontext() as ctx:
        ctx.prec = 6  # sums now round differently: nothing computed under 28 digits may be reused
        low = guard.evaluate_signal(signal, case.view)
        assert guard._memo is not memo
        assert repr(low) == repr(RiskGuard(case.config).evaluate_signal(signal, case.view))


def test_only_quantity_free_rules_are_memoised() -> None:
    memoised = {rule.id for rule in DEFAULT_RULES if getattr(rule, "memoisable", False)}
    assert memoised == {"position_limit", "sector_exposure", "correlated_exposure", "leverage", "buying_power"}


def test_bench_book_many_signals_equal_fresh() -> None:
    """The latency benchmark's 50-position book (10 sectors, correlated groups, pending orders)."""
    from tools.bench.latency import fifty_position_book, random_signals

    rnd = random.Random(7)
    book = fifty_position_book(rnd)
    guard = RiskGuard(book.config)
    outcomes = set()
    for signal in random_signals(rnd, book.universe, 1_500):
        memoised = guard.evaluate_signal(signal, book.view)
        assert repr(memoised) == repr(RiskGuard(book.config).evaluate_signal(signal, book.view))
        outcomes.add(memoised.outcome)
    assert outcomes == set(Outcome)
