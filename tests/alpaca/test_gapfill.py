"""Gap detection without sequence numbers: duplicates dropped, skipped levels detected, REST fills merged
so every execution is counted exactly once; bar gaps carried forward as interpolated bars."""

from __future__ import annotations

from decimal import Decimal

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.alpaca.gapfill import BarGapFiller, QuoteCarry, TradeGapTracker
from adapters.alpaca.models import execution_id_from_activity
from core.model import Activity, Bar, BrokerOrder, OrderType, Quote, Side, TimeInForce, TradeUpdate

D = Decimal
BASE = BrokerOrder(
    id="o1", client_order_id="c1", symbol="AAPL", side=Side.BUY, qty=D(30), filled_qty=D(0),
    filled_avg_price=None, status="new", type=OrderType.MARKET, time_in_force=TimeInForce.DAY,
)


def fill(cum: int, qty: int, *, ts: int, exec_id: str | None = None) -> TradeUpdate:
    status = "filled" if cum == 30 else "partially_filled"
    order = msgspec.structs.replace(BASE, filled_qty=D(cum), status=status)
    return TradeUpdate(event="fill" if cum == 30 else "partial_fill", order=order, ts_ns=ts,
                       execution_id=exec_id or f"x{cum}", price=D("10"), qty=D(qty))


def activity(cum: int, qty: int, ts: int) -> Activity:
    return Activity(id=f"20240102143000123::x{cum}", execution_id=f"x{cum}", order_id="o1", symbol="AAPL", side="buy",
                    qty=D(qty),
                    price=D("10"), cum_qty=D(cum), leaves_qty=D(30 - cum), ts_ns=ts)


ACTIVITIES = [activity(10, 10, 1), activity(20, 10, 2), activity(30, 10, 3)]


def test_execution_id_from_activity() -> None:
    assert execution_id_from_activity("20240102143000123::abc") == "abc"
    assert execution_id_from_activity("plain") == "plain"


def test_in_order_fills_have_no_gap_and_duplicates_are_dropped() -> None:
    tracker = TradeGapTracker()
    assert tracker.observe(fill(10, 10, ts=1)).gap is False
    dup = tracker.observe(fill(10, 10, ts=1))
    assert not dup.deliver and "duplicate" in dup.reason
    assert tracker.observe(fill(20, 10, ts=2)) .deliver
    assert tracker.counters == {"duplicate_fill": 1}


def test_dropped_fill_is_a_gap_and_rest_synthesis_counts_it_once() -> None:
    tracker = TradeGapTracker()
    tracker.observe(fill(10, 10, ts=1))
    verdict = tracker.observe(fill(30, 10, ts=3))  # level 20 was lost
    assert verdict.gap and verdict.deliver and "o1" in tracker.suspects
    rest = msgspec.structs.replace(BASE, filled_qty=D(30), status="filled", filled_avg_price=D(10))
    synthesized = tracker.synthesize(rest, ACTIVITIES)
    assert [(u.event, u.order.filled_qty, u.execution_id) for u in synthesized] == [("partial_fill", D(20), "x20")]
    assert "o1" not in tracker.suspects
    # the lost frame shows up late (reorder): it is the same execution, dropped
    assert tracker.observe(fill(20, 10, ts=2, exec_id="other-id")).deliver is False
    assert tracker.synthesize(rest, ACTIVITIES) == []  # idempotent


def test_status_with_unseen_fills_is_a_gap() -> None:
    tracker = TradeGapTracker()
    canceled = msgspec.structs.replace(BASE, filled_qty=D(10), status="canceled")
    verdict = tracker.observe(TradeUpdate(event="canceled", order=canceled, ts_ns=5))
    assert verdict.gap and verdict.deliver
    assert tracker.observe(TradeUpdate(event="canceled", order=canceled, ts_ns=5)).deliver is False


def test_unknown_order_after_reconnect_gets_fills_and_terminal_status() -> None:
    tracker = TradeGapTracker()
    rest = msgspec.structs.replace(BASE, filled_qty=D(20), status="canceled", updated_at_ns=9)
    out = tracker.synthesize(rest, ACTIVITIES[:2])
    assert [u.event for u in out] == ["partial_fill", "partial_fill", "canceled"]
    assert tracker.get("o1") is not None and tracker.get("o1").terminal  # type: ignore[union-attr]


def test_incomplete_activities_leave_the_order_suspect() -> None:
    tracker = TradeGapTracker()
    rest = msgspec.structs.replace(BASE, filled_qty=D(30), status="filled")
    tracker.synthesize(rest, ACTIVITIES[:1])
    assert "o1" in tracker.suspects and tracker.counters["gap_unresolved"] == 1


def test_silent_market_orders_are_reported() -> None:
    tracker = TradeGapTracker()
    tracker.track(BASE, now_ns=0)
    assert tracker.silent_orders(5 * 10**9) == []
    assert tracker.silent_orders(11 * 10**9) == ["o1"]


def test_the_tracker_says_when_a_silent_order_check_could_find_something() -> None:
    """The trading stream's silent-order watch sleeps while no open market order is tracked, until a change."""
    tracker, changes = TradeGapTracker(), []
    tracker.on_change = lambda: changes.append(1)
    assert not tracker.has_open_market_orders()
    tracker.track(BASE, now_ns=0)
    assert tracker.has_open_market_orders() and len(changes) == 1
    assert tracker.observe(fill(30, 30, ts=2)).deliver  # filled: terminal
    assert not tracker.has_open_market_orders() and len(changes) == 2
    assert tracker.silent_orders(60 * 10**9) == []
    limit = msgspec.structs.replace(BASE, id="o2", type=OrderType.LIMIT, limit_price=D(10))
    tracker.track(limit, now_ns=0)
    assert not tracker.has_open_market_orders()  # only market orders are watched for silence


@settings(max_examples=150, deadline=None)
@given(st.permutations([0, 1, 2]), st.lists(st.integers(0, 2), max_size=4), st.sets(st.integers(0, 2)))
def test_any_order_loss_or_duplication_counts_each_execution_once(
    perm: list[int], dups: list[int], lost: set[int]
) -> None:
    """Whatever the stream does (reorder, duplicate, drop), stream + REST synthesis sum to the order qty."""
    fills = [fill(10, 10, ts=1), fill(20, 10, ts=2), fill(30, 10, ts=3)]
    stream = [fills[i] for i in perm if i not in lost] + [fills[i] for i in dups]
    tracker = TradeGapTracker()
    counted = D(0)
    for update in stream:
        if tracker.observe(update).deliver:
            counted += update.qty or 0
    rest = msgspec.structs.replace(BASE, filled_qty=D(30), status="filled")
    counted += sum((u.qty or 0 for u in tracker.synthesize(rest, ACTIVITIES)), D(0))
    assert counted == D(30)


def test_bar_gap_is_filled_with_last_close_marked_interpolated() -> None:
    filler = BarGapFiller(bar_interval_ns=60)
    b0 = Bar(symbol="A", open=D(1), high=D(2), low=D(1), close=D("1.5"), volume=D(100), ts_ns=0)
    b3 = msgspec.structs.replace(b0, ts_ns=180, close=D(3))
    assert filler.on_bar(b0) == [b0]
    out = filler.on_bar(b3)
    assert [b.ts_ns for b in out] == [60, 120, 180]
    assert all(b.interpolated and b.close == D("1.5") and b.volume == 0 for b in out[:2])
    assert out[2] is b3 and filler.interpolated_count == 2
    assert filler.on_bar(b0) == [b0]  # a late bar passes through without rewinding


def test_quote_carry_marks_interpolated() -> None:
    carry = QuoteCarry()
    q = Quote(symbol="A", bid_price=D(1), ask_price=D(2), bid_size=D(1), ask_size=D(1), ts_ns=5)
    carry.on_quote(q)
    [carried] = carry.carried(100, ["A", "B"])
    assert carried.interpolated and carried.ts_ns == 100 and carried.bid_price == D(1)


def test_quiet_orders_are_checked_less_and_less_often() -> None:
    tracker = TradeGapTracker()
    tracker.track(BASE, now_ns=0)
    s = 10**9
    assert tracker.silent_orders(11 * s) == ["o1"]
    tracker.note_checked("o1", 11 * s)
    assert tracker.silent_orders(25 * s) == []  # the next check waits 20 s
    assert tracker.silent_orders(32 * s) == ["o1"]
    tracker.note_checked("o1", 32 * s)
    assert tracker.silent_orders(70 * s) == []  # then 40 s
    tracker.observe(fill(10, 10, ts=71 * s))  # news resets the backoff
    assert tracker.silent_orders(82 * s) == ["o1"]
