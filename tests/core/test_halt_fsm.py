"""The kill switch: every (state, event) pair, the spec 2.3 action order, the audited reset, the persisted
latch, and a stateful check that nothing but a manual reset ever leaves HALTED (restarts included).
"""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from core.fsm_errors import IllegalTransition
from core.halt_fsm import (
    ROWS,
    TRANSITIONS,
    CancelAllOrders,
    ClearHalted,
    CorruptHaltState,
    HaltComplete,
    HaltEvent,
    HaltMachine,
    HaltState,
    HaltTrigger,
    InvalidReset,
    LiquidateAll,
    ManualReset,
    SendAlert,
    SetHalted,
    Trip,
)

H = HaltState
EVENT_TYPES: list[type[HaltEvent]] = [Trip, HaltComplete, ManualReset]


def make_event(event_type: type[HaltEvent], ts_ns: int = 5) -> HaltEvent:
    if event_type is Trip:
        return Trip(trigger=HaltTrigger.DAILY_LOSS, reason="daily P&L -3.1%", ts_ns=ts_ns)
    if event_type is HaltComplete:
        return HaltComplete(ts_ns=ts_ns)
    return ManualReset(operator="alice", reason="loss reviewed", ts_ns=ts_ns)


def machine_in(state: HaltState, *, liquidate: bool = False) -> HaltMachine:
    m = HaltMachine(on_halt="flatten" if liquidate else "cancel_all")
    if state is not H.ACTIVE:
        m.trip(HaltTrigger.WEEKLY_LOSS, "weekly P&L -5.2%", 1)
    if state is H.HALTED:
        m.halt_complete(2)
    assert m.state is state
    return m


def test_trigger_names_are_the_spec_ids() -> None:
    assert {t.value for t in HaltTrigger} == {
        "daily_loss",
        "weekly_loss",
        "consecutive_losses",
        "connectivity_lost",
        "reconciliation_mismatch",
        "manual",
        "actor_crash",
    }


def test_every_state_has_a_row_and_halted_is_left_only_by_manual_reset() -> None:
    assert set(ROWS) == set(HaltState)
    exits = {
        event
        for (state, event), target in TRANSITIONS.items()
        if state is H.HALTED and target is not H.HALTED
    }
    assert exits == {ManualReset}


@pytest.mark.parametrize(("state", "event_type"), list(itertools.product(HaltState, EVENT_TYPES)))
def test_table_pair(state: HaltState, event_type: type[HaltEvent]) -> None:
    m = machine_in(state)
    before = m.to_state()
    target = TRANSITIONS.get((state, event_type))
    if target is None:
        with pytest.raises(IllegalTransition) as info:
            m.handle(make_event(event_type))
        err = info.value
        assert (err.machine, err.state, err.event, err.entity_id) == (
            "halt",
            state,
            event_type.__name__,
            "kill_switch",
        )
        assert state.value in str(err) and event_type.__name__ in str(err) and "kill_switch" in str(err)
        assert m.to_state() == before
    else:
        m.handle(make_event(event_type))
        assert m.state is target
        assert m.is_trading_allowed == (target is H.ACTIVE)


def test_trip_commands_follow_spec_order_without_liquidation() -> None:
    m = HaltMachine()
    out = m.trip("daily_loss", "daily P&L -3.0%", 10)
    assert [type(c) for c in out] == [CancelAllOrders, SetHalted, SendAlert]
    assert out[1] == SetHalted(trigger=HaltTrigger.DAILY_LOSS, reason="daily P&L -3.0%", ts_ns=10)
    alert = out[2]
    assert isinstance(alert, SendAlert) and alert.severity == "critical" and alert.key == "halt.daily_loss"
    assert m.state is H.HALTING and not m.is_trading_allowed


def test_trip_commands_with_liquidation() -> None:
    out = HaltMachine(on_halt="flatten").trip(HaltTrigger.RECONCILIATION_MISMATCH, "AAPL 10 vs 12", 10)
    assert [type(c) for c in out] == [CancelAllOrders, SetHalted, LiquidateAll, SendAlert]


def test_unknown_trigger_is_refused() -> None:
    m = HaltMachine()
    with pytest.raises(ValueError):
        m.trip("bad_mood", "?", 1)
    assert m.state is H.ACTIVE


@pytest.mark.parametrize("state", [H.HALTING, H.HALTED])
def test_trips_while_halting_or_halted_are_absorbed_and_recorded(state: HaltState) -> None:
    m = machine_in(state, liquidate=True)
    out = m.trip(HaltTrigger.CONNECTIVITY_LOST, "no stream for 31 s", 3)
    assert [type(c) for c in out] == [SendAlert]  # a new trigger: one alert, no second cancel/liquidation
    assert out[0].severity == "warning"  # type: ignore[union-attr]
    assert m.trip(HaltTrigger.CONNECTIVITY_LOST, "no stream for 61 s", 4) == []  # same trigger: silent
    assert m.state is state
    assert [t.trigger for t in m.trips] == ["weekly_loss", "connectivity_lost", "connectivity_lost"]
    assert m.first_trip is not None and m.first_trip.trigger is HaltTrigger.WEEKLY_LOSS


def test_manual_reset_needs_operator_and_reason() -> None:
    for operator, reason in [("", "ok"), ("alice", ""), ("  ", "ok"), ("alice", " \t")]:
        m = machine_in(H.HALTED)
        before = m.to_state()
        with pytest.raises(InvalidReset):
            m.manual_reset(operator, reason, 9)
        assert m.state is H.HALTED and m.to_state() == before


def test_manual_reset_only_from_halted() -> None:
    for state in (H.ACTIVE, H.HALTING):
        m = machine_in(state)
        with pytest.raises(IllegalTransition):
            m.manual_reset("alice", "because", 9)
        assert m.state is state


def test_manual_reset_reopens_and_is_recorded() -> None:
    m = machine_in(H.HALTED)
    out = m.manual_reset("alice", "limits reviewed", 9)
    assert out[0] == ClearHalted(operator="alice", reason="limits reviewed", ts_ns=9)
    assert isinstance(out[1], SendAlert) and "alice" in out[1].message and "weekly_loss" in out[1].message
    assert m.state is H.ACTIVE and m.is_trading_allowed and m.trips == ()
    assert m.last_reset is not None and m.last_reset.operator == "alice"
    assert m.trip(HaltTrigger.MANUAL, "operator", 10)[0] == CancelAllOrders()  # it can trip again


@pytest.mark.parametrize("state", list(HaltState))
def test_state_round_trips_through_json(state: HaltState) -> None:
    m = machine_in(state)
    if state is H.HALTED:
        m.trip(HaltTrigger.ACTOR_CRASH, "policy actor died", 3)
    stored = json.loads(json.dumps(m.to_state()))
    restored = HaltMachine.from_state(stored)
    assert restored.to_state() == m.to_state()
    assert restored.state is state and restored.is_trading_allowed == (state is H.ACTIVE)
    assert restored.trips == m.trips


def test_restart_comes_up_halted_and_re_asserts_the_latch() -> None:
    halted = HaltMachine.from_state(machine_in(H.HALTED).to_state())
    out = halted.recovery_commands(ts_ns=100)
    assert [type(c) for c in out] == [SetHalted, SendAlert]
    assert halted.state is H.HALTED and not halted.is_trading_allowed
    with pytest.raises(IllegalTransition):
        halted.halt_complete(101)  # nothing automatic: only the reset leaves


def test_restart_mid_halt_redoes_the_halt_actions() -> None:
    halting = HaltMachine.from_state(machine_in(H.HALTING).to_state(), on_halt="flatten")
    out = halting.recovery_commands(ts_ns=100)
    assert [type(c) for c in out] == [CancelAllOrders, SetHalted, LiquidateAll, SendAlert]
    halting.halt_complete(101)
    assert halting.state is H.HALTED
    assert HaltMachine().recovery_commands(ts_ns=1) == []


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"version": 2, "state": "active", "trips": [], "last_reset": None},
        {"version": 1, "state": "paused", "trips": [], "last_reset": None},
        {"version": 1, "state": "halted", "trips": [], "last_reset": None},  # halted without a cause
        {"version": 1, "state": "active", "trips": [{"trigger": "manual", "reason": "x", "ts_ns": 1}]},
        {
            "version": 1,
            "state": "halted",
            "trips": [{"trigger": "nope", "reason": "x", "ts_ns": 1}],
            "last_reset": None,
        },
        {"version": 1, "state": "halted", "trips": [{"trigger": "manual"}], "last_reset": None},
    ],
)
def test_corrupt_state_is_refused(data: dict[str, object]) -> None:
    with pytest.raises(CorruptHaltState):
        HaltMachine.from_state(data)


class HaltWithoutReset(RuleBasedStateMachine):
    """Any sequence of trips, completions and restarts, with no manual reset: once tripped, never trading."""

    @initialize(liquidate=st.booleans())
    def start(self, liquidate: bool) -> None:
        self.machine = HaltMachine(on_halt="flatten" if liquidate else "cancel_all")
        self.liquidate = liquidate
        self.ts_ns = 0
        self.tripped = False
        self.cancel_alls = 0

    @rule(trigger=st.sampled_from(list(HaltTrigger)), reason=st.sampled_from(["", "x", "P&L -3%"]))
    def trip(self, trigger: HaltTrigger, reason: str) -> None:
        self.ts_ns += 1
        out = self.machine.trip(trigger, reason, self.ts_ns)
        self.cancel_alls += sum(isinstance(c, CancelAllOrders) for c in out)
        assert not any(isinstance(c, ClearHalted) for c in out)
        assert (LiquidateAll() in out) <= self.liquidate
        self.tripped = True

    @rule()
    def complete(self) -> None:
        if self.machine.state is H.HALTING:
            self.machine.halt_complete(self.ts_ns)

    @rule()
    def restart(self) -> None:
        self.machine = HaltMachine.from_state(
            json.loads(json.dumps(self.machine.to_state())), on_halt="flatten" if self.liquidate else "cancel_all"
        )
        self.machine.recovery_commands(self.ts_ns)

    @invariant()
    def latched(self) -> None:
        assert self.machine.is_trading_allowed == (not self.tripped)
        assert (self.machine.state is H.ACTIVE) == (not self.tripped)
        assert self.cancel_alls == (1 if self.tripped else 0)  # the halt actions fire once per halt


TestHaltWithoutReset = HaltWithoutReset.TestCase
TestHaltWithoutReset.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
