"""Operator changes to a persisted latch (``ttlive kill``/``reset``, an idle runner's dashboard) and the manual
reset rule the supervisor shares: table tests on plain dicts, no files."""

from __future__ import annotations

from typing import Any

import pytest

from core.fsm_errors import IllegalTransition
from core.halt_fsm import ClearHalted, HaltMachine, HaltState, HaltTrigger, InvalidReset
from core.latch import LatchRefused, LatchRequestInvalid, change_latch, reset_latch
from core.triggers import KillSwitchMonitor

H = HaltState


def persisted(state: HaltState) -> dict[str, Any]:
    halt = HaltMachine()
    if state is not H.ACTIVE:
        halt.trip(HaltTrigger.DAILY_LOSS, "daily P&L -3.1%", 1)
    if state is H.HALTED:
        halt.halt_complete(2)
    monitor = KillSwitchMonitor()
    monitor.state.consecutive_losses = 4
    monitor.state.resync_pending = True
    return {"halt": halt.to_state(), "triggers": monitor.to_dict(), "orders": {"kept": True}}


def change(data: dict[str, Any], kind: str, operator: str = "alice", reason: str = "reviewed") -> tuple[Any, str]:
    return change_latch(data, kind, operator=operator, reason=reason, source="cli", route="state_file", now_ns=9)


@pytest.mark.parametrize("before", list(H))
def test_a_kill_latches_from_any_state_and_audits_where_it_came_from(before: HaltState) -> None:
    data = persisted(before)
    record, state = change(data, "kill")
    assert state == ("halting" if before is H.ACTIVE else before.value)
    assert HaltMachine.from_state(data["halt"]).state.value == state
    assert record.event_type == "halt"
    assert record.extra["from_state"] == before.value
    assert record.extra["trigger"] == "manual" and record.extra["state"] == state
    assert (record.extra["source"], record.extra["route"], record.extra["operator"]) == ("cli", "state_file", "alice")
    assert data["orders"] == {"kept": True}


def test_a_kill_needs_no_state_and_fails_closed_on_a_corrupt_latch() -> None:
    empty: dict[str, Any] = {}
    assert change(empty, "kill")[1] == "halting"
    corrupt: dict[str, Any] = {"halt": {"version": -1}}
    assert change(corrupt, "kill")[1] == "halting"
    assert HaltMachine.from_state(corrupt["halt"]).first_trip is not None


@pytest.mark.parametrize("before", [H.HALTING, H.HALTED])
def test_a_reset_releases_the_latch_and_rearms_the_triggers(before: HaltState) -> None:
    data = persisted(before)
    record, state = change(data, "reset")
    assert state == "active"
    assert record.event_type == "reset" and record.extra["from_state"] == before.value
    monitor = KillSwitchMonitor.from_dict(data["triggers"])
    assert monitor.state.consecutive_losses == 0 and not monitor.state.resync_pending


def test_refused_resets_change_nothing() -> None:
    active = persisted(H.ACTIVE)
    with pytest.raises(LatchRefused, match="not halted") as refused:
        change(active, "reset")
    assert not isinstance(refused.value, LatchRequestInvalid)
    corrupt: dict[str, Any] = {"halt": {"version": -1}}
    with pytest.raises(LatchRefused, match="unreadable"):
        change(corrupt, "reset")
    assert corrupt == {"halt": {"version": -1}}
    halted = persisted(H.HALTED)
    before = {**halted}
    with pytest.raises(LatchRequestInvalid):
        change(halted, "reset", operator=" ")
    assert halted == before


def test_reset_latch_rearms_only_after_the_machine_accepts() -> None:
    halt, monitor = HaltMachine(), KillSwitchMonitor()
    halt.trip(HaltTrigger.MANUAL, "desk", 1)
    monitor.state.consecutive_losses = 3
    with pytest.raises(IllegalTransition):  # still HALTING: the cancel-all has not finished
        reset_latch(halt, monitor, operator="alice", reason="ok", now_ns=2)
    halt.halt_complete(3)
    with pytest.raises(InvalidReset):
        reset_latch(halt, monitor, operator="alice", reason="", now_ns=4)
    assert monitor.state.consecutive_losses == 3 and halt.state is H.HALTED
    commands = reset_latch(halt, monitor, operator="alice", reason="ok", now_ns=5)
    assert isinstance(commands[0], ClearHalted)
    assert monitor.state.consecutive_losses == 0 and halt.state is H.ACTIVE
