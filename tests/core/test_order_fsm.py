"""The order machine: its table over every (state, event) pair, the fill rules, and a stateful fuzz against a
model venue that executes, closes and reports in random order (the wire reorders; the machine must not care).
"""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from core.fsm_errors import IllegalTransition, UnknownWireValue, VenueProtocolError
from core.model import Side
from core.order_fsm import (
    ALPACA_STATUSES,
    IN_FLIGHT,
    LOCAL_EVENTS,
    MAY_EXECUTE,
    OPEN,
    PRE_SUBMIT,
    REPORTED_STATE,
    ROWS,
    TERMINAL,
    TRANSITIONS,
    VENUE_EVENTS,
    LookupOrder,
    Order,
    OrderEvent,
    OrderState,
    Outcome,
    status_event,
    trade_event,
)

E = OrderEvent
S = OrderState
D = Decimal

# alpaca-wire.md §2 "OrderStatus", copied by hand: the test fails if the enum drops or misspells one.
WIRE_ORDER_STATUSES = [
    "new",
    "partially_filled",
    "filled",
    "done_for_day",
    "canceled",
    "expired",
    "replaced",
    "pending_cancel",
    "pending_replace",
    "pending_review",
    "accepted",
    "pending_new",
    "accepted_for_bidding",
    "stopped",
    "rejected",
    "suspended",
    "calculated",
    "held",
]
# alpaca-wire.md §2/§4 trade_updates event names.
WIRE_TRADE_EVENTS = [
    "new",
    "fill",
    "partial_fill",
    "canceled",
    "expired",
    "done_for_day",
    "replaced",
    "accepted",
    "rejected",
    "pending_new",
    "stopped",
    "pending_cancel",
    "pending_replace",
    "calculated",
    "suspended",
    "order_replace_rejected",
    "order_cancel_rejected",
    "restated",
]


def make_order(state: OrderState = S.CREATED, qty: str = "10", **kwargs: object) -> Order:
    return Order(
        order_id="ord-1",
        client_order_id="cid-1",
        symbol="AAPL",
        side=Side.BUY,
        qty=D(qty),
        state=state,
        **kwargs,  # type: ignore[arg-type]
    )


def working(qty: str = "10") -> Order:
    """An order the venue has acknowledged as new."""
    order = make_order(qty=qty)
    order.apply(E.RISK_APPROVED)
    order.apply(E.SUBMIT_SENT)
    order.apply(E.NEW, venue_order_id="v-1", venue_filled_qty=D(0))
    return order


def snapshot(order: Order) -> tuple[object, ...]:
    return (
        order.state,
        order.filled_qty,
        order.reported_filled_qty,
        order.venue_order_id,
        order.avg_fill_price,
        order.seen_execution_ids,
        order.log,
    )


# --- the vocabulary ------------------------------------------------------------------------------------


def test_every_alpaca_order_status_is_a_state_with_its_exact_wire_value() -> None:
    assert len(WIRE_ORDER_STATUSES) == 18
    assert set(WIRE_ORDER_STATUSES) == ALPACA_STATUSES
    values = {s.value for s in OrderState}
    assert set(WIRE_ORDER_STATUSES) <= values
    assert values - set(WIRE_ORDER_STATUSES) == {"created", "risk_approved", "submitting", "ack_unknown"}


def test_status_sets_partition_the_states() -> None:
    groups = [PRE_SUBMIT, IN_FLIGHT, OPEN, TERMINAL]
    assert frozenset().union(*groups) == frozenset(OrderState)
    for a, b in itertools.combinations(groups, 2):
        assert not a & b
    assert MAY_EXECUTE == IN_FLIGHT | OPEN
    assert {s.value for s in OPEN | TERMINAL} == ALPACA_STATUSES
    assert S.DONE_FOR_DAY in OPEN  # a gtc order works again the next session


def test_event_sets_partition_the_events() -> None:
    assert frozenset(OrderEvent) == LOCAL_EVENTS | VENUE_EVENTS
    assert not LOCAL_EVENTS & VENUE_EVENTS
    assert set(REPORTED_STATE) <= VENUE_EVENTS
    assert {s.value for s in REPORTED_STATE.values()} == ALPACA_STATUSES


def test_every_state_has_a_row_terminal_rows_are_empty_open_rows_take_executions_and_final_words() -> None:
    assert set(ROWS) == set(OrderState)
    for state in TERMINAL:
        assert ROWS[state] == {}
    for state in OPEN | IN_FLIGHT:
        for event in (E.PARTIAL_FILL, E.FILL, E.CANCELED, E.EXPIRED, E.REPLACED, E.REJECTED):
            assert (state, event) in TRANSITIONS, (state, event)


def test_status_event_maps_every_wire_status_and_rejects_unknown() -> None:
    for status in WIRE_ORDER_STATUSES:
        assert REPORTED_STATE[status_event(status)].value == status
    with pytest.raises(UnknownWireValue) as info:
        status_event("teleported")
    assert isinstance(info.value, VenueProtocolError)
    assert "teleported" in str(info.value)
    with pytest.raises(UnknownWireValue):
        status_event("fill")  # an event name, not a status


def test_trade_event_maps_every_wire_event_and_rejects_unknown() -> None:
    assert trade_event("fill") is E.FILL
    assert trade_event("partial_fill") is E.PARTIAL_FILL
    assert trade_event("order_cancel_rejected") is E.ORDER_CANCEL_REJECTED
    for name in WIRE_TRADE_EVENTS:
        assert trade_event(name).value == name
    for name in ("filled", "partially_filled", "", "NEW"):
        with pytest.raises(UnknownWireValue):
            trade_event(name)


# --- the table, every pair -----------------------------------------------------------------------------


@pytest.mark.parametrize(("state", "event"), list(itertools.product(OrderState, OrderEvent)))
def test_table_pair(state: OrderState, event: OrderEvent) -> None:
    order = make_order(state)
    before = snapshot(order)
    target = TRANSITIONS.get((state, event))
    if target is not None:
        result = order.apply(event, ts_ns=7)
        assert result.outcome is Outcome.APPLIED
        assert (result.state_before, result.state_after, order.state) == (state, target, target)
        assert [(e.event, e.state_before, e.state_after, e.ts_ns) for e in order.log] == [
            (event, state, target, 7)
        ]
    elif event in VENUE_EVENTS and state not in PRE_SUBMIT:
        result = order.apply(event)
        assert result.outcome is Outcome.STALE
        assert snapshot(order) == before
    else:
        with pytest.raises(IllegalTransition) as info:
            order.apply(event)
        err = info.value
        assert (err.machine, err.state, err.event, err.entity_id) == ("order", state, event, "ord-1")
        assert "ord-1" in str(err) and state.value in str(err) and event.value in str(err)
        assert snapshot(order) == before


# --- submission and acknowledgement --------------------------------------------------------------------


def test_happy_path_ack_then_partial_then_fill() -> None:
    order = working()
    assert order.venue_order_id == "v-1"
    assert order.apply_fill("x1", D(4), D("10.00"), cum_qty=D(4)).state_after is S.PARTIALLY_FILLED
    result = order.apply_fill("x2", D(6), D("10.50"), cum_qty=D(10))
    assert (result.outcome, result.state_after) == (Outcome.APPLIED, S.FILLED)
    assert order.filled_qty == D(10)
    assert order.avg_fill_price == D("10.30")  # (4*10 + 6*10.5) / 10, exact in Decimal
    assert order.leaves_qty == 0
    assert [e.execution_id for e in order.log if e.execution_id] == ["x1", "x2"]
    assert [e.seq for e in order.log] == list(range(len(order.log)))


def test_submit_timeout_goes_ack_unknown_and_asks_for_a_lookup() -> None:
    order = make_order()
    order.apply(E.RISK_APPROVED)
    order.apply(E.SUBMIT_SENT)
    result = order.apply(E.SUBMIT_TIMEOUT)
    assert order.state is S.ACK_UNKNOWN
    assert result.commands == (LookupOrder(order_id="ord-1", client_order_id="cid-1"),)
    # The lookup finds it: any status resolves the ambiguity, and brings the venue id.
    order.apply(E.ACCEPTED, venue_order_id="v-9", venue_filled_qty=D(0))
    assert (order.state, order.venue_order_id) == (S.ACCEPTED, "v-9")


def test_ack_unknown_not_found_allows_a_resend_with_the_same_client_order_id() -> None:
    order = make_order()
    for event in (E.RISK_APPROVED, E.SUBMIT_SENT, E.SUBMIT_TIMEOUT, E.NOT_FOUND):
        order.apply(event)
    assert order.state is S.RISK_APPROVED
    order.apply(E.SUBMIT_SENT)
    assert order.state is S.SUBMITTING and order.client_order_id == "cid-1"


def test_ack_unknown_cannot_be_withdrawn_because_the_venue_may_have_it() -> None:
    order = make_order(S.ACK_UNKNOWN)
    with pytest.raises(IllegalTransition):
        order.apply(E.WITHDRAWN)
    assert order.state is S.ACK_UNKNOWN


def test_ack_unknown_resolved_by_a_fill_that_arrives_first() -> None:
    order = make_order(S.ACK_UNKNOWN)
    assert order.apply_fill("x1", D(10), D(5), cum_qty=D(10)).state_after is S.FILLED


def test_submit_rejected_is_terminal() -> None:
    order = make_order(S.SUBMITTING)
    order.apply(E.SUBMIT_REJECTED)
    assert order.state is S.REJECTED and order.is_terminal


def test_local_event_with_venue_data_is_a_programming_error() -> None:
    order = make_order()
    with pytest.raises(ValueError, match="local event"):
        order.apply(E.RISK_APPROVED, venue_order_id="v-1")
    assert order.state is S.CREATED and order.log == ()


def test_venue_order_id_cannot_change() -> None:
    order = working()
    before = snapshot(order)
    with pytest.raises(VenueProtocolError):
        order.apply(E.NEW, venue_order_id="v-2")
    assert snapshot(order) == before


# --- fills ---------------------------------------------------------------------------------------------


def test_duplicate_execution_is_a_no_op_marker() -> None:
    order = working()
    order.apply_fill("x1", D(3), D(10))
    before = snapshot(order)
    result = order.apply_fill("x1", D(3), D(10))
    assert result.outcome is Outcome.DUPLICATE
    assert snapshot(order) == before
    assert order.filled_qty == D(3)


def test_overfill_is_a_venue_error_and_leaves_the_order_untouched() -> None:
    order = working()
    order.apply_fill("x1", D(8), D(10))
    before = snapshot(order)
    with pytest.raises(VenueProtocolError) as info:
        order.apply_fill("x2", D(3), D(10))
    assert not isinstance(info.value, IllegalTransition)
    assert "overfills" in str(info.value)
    assert snapshot(order) == before
    # The rejected execution id was not remembered: a corrected report can still count.
    assert order.apply_fill("x2", D(2), D(10)).state_after is S.FILLED


@pytest.mark.parametrize(
    ("qty", "price", "cum"),
    [
        (D(0), D(10), None),
        (D(-1), D(10), None),
        (D(1), D(0), None),
        (D(2), D(10), D(1)),
        (D(1), D(10), D(11)),
    ],
)
def test_impossible_executions_are_venue_errors(qty: Decimal, price: Decimal, cum: Decimal | None) -> None:
    order = working()
    before = snapshot(order)
    with pytest.raises(VenueProtocolError):
        order.apply_fill("x1", qty, price, cum_qty=cum)
    assert snapshot(order) == before


def test_fill_for_an_order_never_sent_is_illegal() -> None:
    for state in PRE_SUBMIT:
        order = make_order(state)
        with pytest.raises(IllegalTransition):
            order.apply_fill("x1", D(1), D(10))
        assert order.filled_qty == 0 and order.seen_execution_ids == frozenset()


def test_fill_races_cancel_partial_then_canceled() -> None:
    order = working()
    order.apply(E.PENDING_CANCEL, venue_filled_qty=D(0))
    assert order.apply_fill("x1", D(4), D(10), cum_qty=D(4)).state_after is S.PARTIALLY_FILLED
    order.apply(E.CANCELED, venue_filled_qty=D(4))
    assert order.state is S.CANCELED and order.filled_qty == D(4)


def test_fill_races_cancel_and_wins() -> None:
    order = working()
    order.apply(E.PENDING_CANCEL)
    assert order.apply_fill("x1", D(10), D(10)).state_after is S.FILLED
    # The venue's refusal of the cancel (422 / order_cancel_rejected) arrives after: stale, still filled.
    assert order.apply(E.ORDER_CANCEL_REJECTED).outcome is Outcome.STALE
    assert order.apply(E.CANCELED).outcome is Outcome.STALE
    assert order.state is S.FILLED


def test_late_fill_after_rest_reported_canceled_is_counted_without_leaving_canceled() -> None:
    order = working()
    order.apply(E.CANCELED, venue_filled_qty=D(4))  # REST poll: canceled, 4 had filled
    assert order.missing_fill_qty == D(4)
    result = order.apply_fill("x1", D(4), D(10), cum_qty=D(4))  # the stream's fill, late
    assert (result.outcome, result.state_after) == (Outcome.LATE_FILL, S.CANCELED)
    assert order.filled_qty == D(4) and order.missing_fill_qty == 0
    assert order.log[-1].execution_id == "x1"
    # More than the venue said had filled before the cancel: impossible.
    before = snapshot(order)
    with pytest.raises(VenueProtocolError):
        order.apply_fill("x2", D(1), D(10))
    assert snapshot(order) == before


def test_late_fill_cover_unknown_accepts_partial_but_not_completion() -> None:
    order = make_order(S.CANCELED)
    assert order.apply_fill("x1", D(9), D(10)).outcome is Outcome.LATE_FILL
    with pytest.raises(VenueProtocolError):
        order.apply_fill("x2", D(1), D(10))  # a canceled order cannot have filled completely
    assert order.filled_qty == D(9)


def test_a_later_snapshot_can_raise_the_cover_of_a_terminal_order() -> None:
    order = working()
    order.apply(E.CANCELED, venue_filled_qty=D(0))  # the stream's canceled event, snapshot lagging
    assert order.apply(E.CANCELED, venue_filled_qty=D(3)).outcome is Outcome.STALE  # REST, later
    assert order.reported_filled_qty == D(3) and order.state is S.CANCELED
    assert order.apply_fill("x1", D(3), D(10)).outcome is Outcome.LATE_FILL


def test_rest_reports_filled_before_the_stream_delivers_the_fills() -> None:
    order = working()
    order.apply(E.FILL, venue_filled_qty=D(10))
    assert order.state is S.FILLED and order.filled_qty == 0 and order.missing_fill_qty == D(10)
    assert order.apply_fill("x1", D(6), D(10)).outcome is Outcome.LATE_FILL
    assert order.apply_fill("x2", D(4), D(10)).outcome is Outcome.LATE_FILL
    assert order.filled_qty == D(10) and order.state is S.FILLED


def test_no_fill_on_a_rejected_order() -> None:
    order = make_order(S.SUBMITTING)
    order.apply(E.REJECTED, venue_filled_qty=D(0))
    with pytest.raises(VenueProtocolError):
        order.apply_fill("x1", D(1), D(10))
    assert order.filled_qty == 0


def test_out_of_order_executions_use_cum_qty_as_evidence() -> None:
    order = working()
    # The second execution arrives first; its cum_qty says the order is complete.
    result = order.apply_fill("x2", D(6), D(11), cum_qty=D(10))
    assert result.state_after is S.FILLED
    assert order.filled_qty == D(6) and order.missing_fill_qty == D(4)
    assert order.apply_fill("x1", D(4), D(10), cum_qty=D(4)).outcome is Outcome.LATE_FILL
    assert order.filled_qty == D(10) and order.missing_fill_qty == 0


# --- out-of-order status reports -----------------------------------------------------------------------


def test_status_can_jump_forward_and_backward_reports_are_stale() -> None:
    order = make_order(S.SUBMITTING)
    order.apply(E.PARTIAL_FILL, venue_order_id="v-1", venue_filled_qty=D(2))  # stream beat the POST reply
    assert order.state is S.PARTIALLY_FILLED
    for late in (E.NEW, E.ACCEPTED, E.PENDING_NEW):  # the POST reply and older snapshots
        assert order.apply(late).outcome is Outcome.STALE
    assert order.state is S.PARTIALLY_FILLED
    order.apply(E.FILL)
    for late in (E.NEW, E.PARTIAL_FILL, E.PENDING_CANCEL, E.CANCELED, E.REJECTED):
        assert order.apply(late).outcome is Outcome.STALE
    assert order.state is S.FILLED


def test_ack_ladder_moves_forward_only() -> None:
    order = make_order(S.SUBMITTING)
    order.apply(E.ACCEPTED)
    order.apply(E.PENDING_NEW)
    assert order.apply(E.ACCEPTED).outcome is Outcome.STALE
    assert order.state is S.PENDING_NEW
    order.apply(E.NEW)
    assert order.state is S.NEW


def test_cancel_rejected_returns_to_work_with_the_fills_it_has() -> None:
    order = working()
    order.apply(E.PENDING_CANCEL)
    order.apply(E.ORDER_CANCEL_REJECTED)
    assert order.state is S.NEW
    order.apply_fill("x1", D(2), D(10))
    order.apply(E.PENDING_CANCEL)
    order.apply(E.ORDER_CANCEL_REJECTED)
    assert order.state is S.PARTIALLY_FILLED  # a working order with executions


def test_done_for_day_is_not_terminal_for_gtc() -> None:
    order = working()
    order.apply_fill("x1", D(3), D(10))
    order.apply(E.DONE_FOR_DAY)
    assert order.state is S.DONE_FOR_DAY and not order.is_terminal
    order.apply(E.NEW)  # next session
    assert order.state is S.PARTIALLY_FILLED
    order.apply(E.EXPIRED)
    assert order.is_terminal


def test_repeated_status_report_is_a_self_loop() -> None:
    order = working()
    result = order.apply(E.NEW, venue_order_id="v-1")
    assert (result.outcome, result.state_before, result.state_after) == (Outcome.APPLIED, S.NEW, S.NEW)


def test_order_rejects_nonpositive_qty() -> None:
    with pytest.raises(ValueError):
        make_order(qty="0")


# --- stateful fuzz against a model venue ---------------------------------------------------------------

_ACKS = [E.HELD, E.PENDING_REVIEW, E.ACCEPTED, E.PENDING_NEW, E.ACCEPTED_FOR_BIDDING, E.NEW]
_SIDES = [
    E.PENDING_CANCEL,
    E.PENDING_REPLACE,
    E.DONE_FOR_DAY,
    E.STOPPED,
    E.SUSPENDED,
    E.CALCULATED,
    E.RESTATED,
]
_CLOSES = [E.CANCELED, E.EXPIRED, E.REPLACED]
_NO_STATUS = [E.RESTATED, E.ORDER_CANCEL_REJECTED, E.ORDER_REPLACE_REJECTED]


class OrderVsVenue(RuleBasedStateMachine):
    """The venue executes and closes truthfully; its reports and executions reach the order in any order,
    repeated. The order must count each execution once, never overfill, and never leave a terminal state."""

    @initialize(qty=st.integers(1, 40))
    def start(self, qty: int) -> None:
        self.order = make_order(qty=str(qty))
        self.order.apply(E.RISK_APPROVED)
        self.order.apply(E.SUBMIT_SENT)
        self.venue_cum = D(0)
        self.venue_closed_as: OrderState | None = None
        self.executions: list[tuple[str, Decimal, Decimal, Decimal]] = []  # id, qty, price, cum after
        self.reports: list[tuple[OrderEvent, Decimal]] = []  # event, venue cum at that time
        self.delivered: set[str] = set()
        self.last_filled = D(0)
        self.terminal_seen: OrderState | None = None

    # The venue's own (truthful) life.
    @rule(event=st.sampled_from(_ACKS + _SIDES))
    def venue_status(self, event: OrderEvent) -> None:
        if self.venue_closed_as is None:
            self.reports.append((event, self.venue_cum))

    @rule(qty=st.integers(1, 15), cents=st.integers(1, 100_000))
    def venue_executes(self, qty: int, cents: int) -> None:
        if self.venue_closed_as is not None:
            return
        fill = min(D(qty), self.order.qty - self.venue_cum)
        self.venue_cum += fill
        self.executions.append((f"x{len(self.executions)}", fill, D(cents) / 100, self.venue_cum))
        complete = self.venue_cum == self.order.qty
        self.reports.append((E.FILL if complete else E.PARTIAL_FILL, self.venue_cum))
        if complete:
            self.venue_closed_as = S.FILLED

    @rule(event=st.sampled_from([*_CLOSES, E.REJECTED]))
    def venue_closes(self, event: OrderEvent) -> None:
        if self.venue_closed_as is not None or (event is E.REJECTED and self.venue_cum):
            return
        self.venue_closed_as = REPORTED_STATE[event]
        self.reports.append((event, self.venue_cum))

    # What reaches the order: any report or execution, any number of times, in any order.
    @rule(pick=st.integers(0, 10_000))
    def deliver_report(self, pick: int) -> None:
        if self.reports:
            event, cum = self.reports[pick % len(self.reports)]
            self.order.apply(event, venue_order_id="v-1", venue_filled_qty=cum)

    @rule(event=st.sampled_from(_NO_STATUS))
    def deliver_status_less_event(self, event: OrderEvent) -> None:
        self.order.apply(event, venue_order_id="v-1")

    @rule(pick=st.integers(0, 10_000), with_cum=st.booleans())
    def deliver_execution(self, pick: int, with_cum: bool) -> None:
        if not self.executions:
            return
        exec_id, qty, price, cum = self.executions[pick % len(self.executions)]
        result = self.order.apply_fill(exec_id, qty, price, cum_qty=cum if with_cum else None)
        assert (result.outcome is Outcome.DUPLICATE) == (exec_id in self.delivered)
        self.delivered.add(exec_id)

    @rule()
    def submit_times_out(self) -> None:
        if self.order.state is S.SUBMITTING:
            self.order.apply(E.SUBMIT_TIMEOUT)

    @invariant()
    def fills_counted_once_monotone_and_bounded(self) -> None:
        counted = sum((q for i, q, _, _ in self.executions if i in self.delivered), D(0))
        assert self.order.filled_qty == counted
        assert self.last_filled <= self.order.filled_qty <= self.order.qty
        self.last_filled = self.order.filled_qty
        assert self.order.seen_execution_ids == self.delivered
        assert len([e for e in self.order.log if e.execution_id]) == len(self.delivered)

    @invariant()
    def terminal_is_absorbing_and_truthful(self) -> None:
        state = self.order.state
        assert state not in PRE_SUBMIT
        if self.terminal_seen is not None:
            assert state is self.terminal_seen
        elif state in TERMINAL:
            self.terminal_seen = state
            assert state is self.venue_closed_as  # the order closed the way the venue did

    @invariant()
    def evidence_never_exceeds_the_venue(self) -> None:
        reported = self.order.reported_filled_qty
        assert reported is None or reported <= self.venue_cum


TestOrderVsVenue = OrderVsVenue.TestCase
TestOrderVsVenue.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)
