"""Operator changes to the kill-switch latch (spec 2.3): the manual reset rule, and a kill or reset of a persisted
latch while no engine runs (``ttlive kill``/``reset``, a dashboard command to an idle runner).

Pure: the caller loads the persisted state, writes the returned audit record, then saves the state. The engine's
supervisor applies the same reset rule (``reset_latch``) to its live machines.
"""

from __future__ import annotations

from typing import Any

from core.audit import AuditEntry, system_record
from core.fsm_errors import IllegalTransition
from core.halt_fsm import CorruptHaltState, HaltCommand, HaltMachine, HaltState, HaltTrigger, InvalidReset
from core.triggers import KillSwitchMonitor


class LatchRefused(Exception):
    """The latch change is refused and nothing changed (nothing to reset, an unreadable latch)."""


class LatchRequestInvalid(LatchRefused):
    """The request itself is at fault (a reset the halt machine rejects, no state named to reset)."""


def reset_latch(
    halt: HaltMachine, monitor: KillSwitchMonitor | None, *, operator: str, reason: str, now_ns: int
) -> list[HaltCommand]:
    """The audited manual reset: release the latch, then re-arm the triggers (forget the trip, the loss streak
    and a pending resync). Raises ``InvalidReset``/``IllegalTransition`` with both left untouched."""
    commands = halt.manual_reset(operator, reason, now_ns)
    if monitor is not None:
        monitor.rearm()
    return commands


def change_latch(
    data: dict[str, Any], kind: str, *, operator: str, reason: str, source: str, route: str, now_ns: int
) -> tuple[AuditEntry, str]:
    """Kill or reset the halt latch of a persisted engine state (``data`` is changed in place).

    Returns the audit record to write *before* saving ``data``, and the latch's new state. Raises
    ``LatchRefused`` when refused.
    """
    try:
        halt = HaltMachine.from_state(data["halt"]) if data.get("halt") else HaltMachine()
    except CorruptHaltState as exc:
        if kind == "reset":
            raise LatchRefused(f"the persisted halt latch is unreadable ({exc}); refusing to reset") from None
        halt = HaltMachine()  # fail closed: a fresh latch, tripped below
    before = halt.state
    extra: dict[str, object] = {"source": source, "route": route, "from_state": before.value}
    if kind == "kill":
        halt.trip(HaltTrigger.MANUAL, f"{source}: {reason}", now_ns)
        record = system_record(
            "halt",
            ts_ns=now_ns,
            reason=reason,
            operator=operator,
            extra={**extra, "trigger": "manual", "state": halt.state.value},
        )
    else:
        if before is HaltState.ACTIVE:
            raise LatchRefused("not halted: nothing to reset")
        if before is HaltState.HALTING:
            halt.halt_complete(now_ns)  # why: halted while down; the restart's resync settles open orders
        monitor = KillSwitchMonitor.from_dict(data["triggers"]) if data.get("triggers") else None
        try:
            reset_latch(halt, monitor, operator=operator, reason=reason, now_ns=now_ns)
        except (InvalidReset, IllegalTransition) as exc:
            raise LatchRequestInvalid(str(exc)) from None
        if monitor is not None:
            data["triggers"] = monitor.to_dict()
        record = system_record("reset", ts_ns=now_ns, reason=reason, operator=operator, extra=extra)
    data["halt"] = halt.to_state()
    return record, halt.state.value
