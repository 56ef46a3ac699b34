"""A differential oracle for the order and halt machines: the `transitions` library interprets the same tables.

Our machines are hand-rolled interpreters of ``ROWS``: ``Order.apply`` resolves an event against the table, treats a
venue report with no edge as stale (ignored) once the order has left the process, and refuses everything else.
Here `transitions` builds an independent machine from the very same rows (plus those two written-down rules), and
hypothesis drives both with random event sequences: every step must end in the same state, and each must refuse
exactly what the other refuses. A bug in either interpreter (an edge taken that the table does not have, a stale
report that moves the state, a refusal that should not happen) shows up as a divergence.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from transitions import Machine, MachineError

from core.fsm_errors import IllegalTransition
from core.halt_fsm import ROWS as HALT_ROWS
from core.halt_fsm import HaltComplete, HaltMachine, HaltState, ManualReset, Trip
from core.order_fsm import PRE_SUBMIT, ROWS, VENUE_EVENTS, Order, OrderEvent, OrderState


class _Model:
    state: str


def order_oracle() -> Machine:
    """The order table as a `transitions` machine: its edges, then stale venue reports as internal no-ops."""
    model = _Model()
    machine = Machine(model=model, states=[s.value for s in OrderState], initial=OrderState.CREATED.value,
                      auto_transitions=False, ignore_invalid_triggers=False)
    for state, row in ROWS.items():
        for event, target in row.items():
            machine.add_transition(event.value, state.value, target.value)
        if state not in PRE_SUBMIT:
            for event in sorted(VENUE_EVENTS - set(row), key=lambda e: e.value):
                machine.add_transition(event.value, state.value, None)  # internal: a stale report is ignored
    return machine


def fire(machine: Machine, trigger: str) -> bool:
    """True if the oracle took the event, False if it refused it."""
    try:
        machine.model.trigger(trigger)
    except MachineError:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(list(OrderEvent)), max_size=25))
def test_the_order_machine_and_the_oracle_agree_on_every_sequence(events: list[OrderEvent]) -> None:
    ours = Order(order_id="o-1", client_order_id="c-1", symbol="NVDA", side="buy", qty=Decimal(10))  # type: ignore[arg-type]
    oracle = order_oracle()
    for event in events:
        try:
            ours.apply(event)
            accepted = True
        except IllegalTransition:
            accepted = False
        assert fire(oracle, event.value) is accepted, (event, ours.state)
        assert oracle.model.state == ours.state.value, (event, events)


def halt_oracle() -> Machine:
    model = _Model()
    machine = Machine(model=model, states=[s.value for s in HaltState], initial=HaltState.ACTIVE.value,
                      auto_transitions=False)
    for state, row in HALT_ROWS.items():
        for event_type, target in row.items():
            machine.add_transition(event_type.__name__, state.value, target.value)
    return machine


HALT_EVENTS = st.sampled_from([
    Trip(trigger="daily_loss", reason="r", ts_ns=1),  # type: ignore[arg-type]
    HaltComplete(ts_ns=2),
    ManualReset(operator="j.doe", reason="reviewed", ts_ns=3),
])


@settings(max_examples=300, deadline=None)
@given(st.lists(HALT_EVENTS, max_size=20))
def test_the_halt_machine_and_the_oracle_agree_on_every_sequence(events: list[object]) -> None:
    ours = HaltMachine()
    oracle = halt_oracle()
    for event in events:
        try:
            ours.handle(event)  # type: ignore[arg-type]
            accepted = True
        except IllegalTransition:
            accepted = False
        assert fire(oracle, type(event).__name__) is accepted, (event, ours.state)
        assert oracle.model.state == ours.state.value
