"""The kill switch's lifecycle (spec 2.3): a trip cancels everything, latches, protects or liquidates, alerts;
then the system stays HALTED until an operator resets it, by name and with a reason. Nothing else leaves it.

Pure: ``handle`` returns the commands for the supervisor to carry out. The latch round-trips through a plain
dict (``to_state`` / ``from_state``) so the StateStore can persist it and a restarted process comes up halted.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.fsm_errors import IllegalTransition

MACHINE = "halt"
STATE_VERSION = 1


class HaltState(enum.StrEnum):
    ACTIVE = "active"
    HALTING = "halting"  # latched; cancel-all (and liquidation) under way
    HALTED = "halted"


class HaltTrigger(enum.StrEnum):
    DAILY_LOSS = "daily_loss"
    WEEKLY_LOSS = "weekly_loss"
    CONSECUTIVE_LOSSES = "consecutive_losses"
    CONNECTIVITY_LOST = "connectivity_lost"
    RECONCILIATION_MISMATCH = "reconciliation_mismatch"
    MANUAL = "manual"
    ACTOR_CRASH = "actor_crash"


H = HaltState


# --- events --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Trip:
    trigger: HaltTrigger
    reason: str
    ts_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HaltComplete:
    """The supervisor carried out the trip's commands (cancel-all confirmed, liquidation sent)."""

    ts_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ManualReset:
    operator: str
    reason: str
    ts_ns: int


HaltEvent = Trip | HaltComplete | ManualReset


# --- commands, in the order spec 2.3 lists the actions -------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelAllOrders:
    """DELETE /v2/orders (step 1)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SetHalted:
    """Persist the latch and close the order gate (step 2, the ``_halted = True`` of the spec)."""

    trigger: HaltTrigger
    reason: str
    ts_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LiquidateAll:
    """Close all positions (step 3, on_halt = "flatten")."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtectPositions:
    """Re-place a stop-loss for every open position (on_halt = "protect", after step 1: the cancel-all took the
    bracket legs with it). Runs before the latch is recorded so the halt record can say what is protected."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SendAlert:
    """Notify (step 4). ``ts_ns`` is the halt event's time, for the alert sink."""

    severity: str  # "info" | "warning" | "critical"
    key: str
    message: str
    ts_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ClearHalted:
    """Persist the release of the latch and open the order gate (after an audited manual reset)."""

    operator: str
    reason: str
    ts_ns: int


HaltCommand = CancelAllOrders | ProtectPositions | SetHalted | LiquidateAll | SendAlert | ClearHalted
ON_HALT_ACTIONS = ("cancel_all", "protect", "flatten")  # core.config RiskSection.on_halt


# --- the table -----------------------------------------------------------------------------------------

ROWS: dict[HaltState, dict[type[HaltEvent], HaltState]] = {
    H.ACTIVE: {Trip: H.HALTING},
    H.HALTING: {
        Trip: H.HALTING,  # why: more triggers may fire while halting; recorded, nothing more to do
        HaltComplete: H.HALTED,
    },
    H.HALTED: {
        Trip: H.HALTED,  # why: a trigger still true after the halt is recorded, not an error
        ManualReset: H.ACTIVE,  # the only way out, and only by a named operator with a reason
    },
}
TRANSITIONS: dict[tuple[HaltState, type[HaltEvent]], HaltState] = {
    (state, event_type): target for state, row in ROWS.items() for event_type, target in row.items()
}


def persisted_halted(halt: Mapping[str, Any]) -> bool:
    """Does a persisted latch (``HaltMachine.to_state()``; empty = never tripped) hold trading halted?"""
    return bool(halt.get("state", HaltState.ACTIVE.value) != HaltState.ACTIVE.value)


class InvalidReset(ValueError):
    """A manual reset without an operator name or a reason: refused, the system stays halted."""


class CorruptHaltState(ValueError):
    """A persisted latch that cannot be read. Callers must fail closed (come up halted), never open."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TripRecord:
    trigger: HaltTrigger
    reason: str
    ts_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ResetRecord:
    operator: str
    reason: str
    ts_ns: int


class HaltMachine:
    """The kill switch. ``handle`` is the only mutator."""

    def __init__(self, *, on_halt: str = "cancel_all", name: str = "kill_switch") -> None:
        if on_halt not in ON_HALT_ACTIONS:
            raise ValueError(f"on_halt must be one of {ON_HALT_ACTIONS}, got {on_halt!r}")
        self.name = name
        self.on_halt = on_halt
        self._state = H.ACTIVE
        self._trips: list[TripRecord] = []  # the current halt's trips, first one first
        self._last_reset: ResetRecord | None = None

    # --- reading --------------------------------------------------------------------------------------

    @property
    def state(self) -> HaltState:
        return self._state

    @property
    def is_trading_allowed(self) -> bool:
        return self._state is H.ACTIVE

    @property
    def trips(self) -> tuple[TripRecord, ...]:
        return tuple(self._trips)

    @property
    def first_trip(self) -> TripRecord | None:
        """What caused the current halt (None while ACTIVE)."""
        return self._trips[0] if self._trips else None

    @property
    def last_reset(self) -> ResetRecord | None:
        return self._last_reset

    # --- events ---------------------------------------------------------------------------------------

    def handle(self, event: HaltEvent) -> list[HaltCommand]:
        target = TRANSITIONS.get((self._state, type(event)))
        if target is None:
            raise IllegalTransition(
                machine=MACHINE, state=self._state, event=type(event).__name__, entity_id=self.name
            )
        if isinstance(event, Trip):
            return self._trip(event, target)
        if isinstance(event, HaltComplete):
            self._state = target
            return []
        return self._reset(event, target)

    def trip(self, trigger: HaltTrigger | str, reason: str, ts_ns: int) -> list[HaltCommand]:
        return self.handle(Trip(trigger=HaltTrigger(trigger), reason=reason, ts_ns=ts_ns))

    def halt_complete(self, ts_ns: int) -> list[HaltCommand]:
        return self.handle(HaltComplete(ts_ns=ts_ns))

    def manual_reset(self, operator: str, reason: str, ts_ns: int) -> list[HaltCommand]:
        return self.handle(ManualReset(operator=operator, reason=reason, ts_ns=ts_ns))

    def recovery_commands(self, ts_ns: int) -> list[HaltCommand]:
        """After a restart from persisted state: what the supervisor must (re)do before anything else.

        HALTING means the process died mid-halt, so the halt actions run again (cancel-all and liquidation
        are idempotent); HALTED re-asserts the latch. Either way an alert says the system came up halted.
        """
        first = self.first_trip
        if first is None:
            return []
        alert = SendAlert(
            severity="critical",
            key="halt.restart",
            message=f"restarted {self._state}: {first.trigger} ({first.reason}); manual reset required",
            ts_ns=ts_ns,
        )
        latch = SetHalted(trigger=first.trigger, reason=first.reason, ts_ns=first.ts_ns)
        if self._state is H.HALTING:
            return [CancelAllOrders(), *self._protection(), latch, *self._liquidation(), alert]
        return [latch, alert]

    # --- persistence ----------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        reset = self._last_reset
        return {
            "version": STATE_VERSION,
            "state": self._state.value,
            "trips": [
                {"trigger": t.trigger.value, "reason": t.reason, "ts_ns": t.ts_ns} for t in self._trips
            ],
            "last_reset": None
            if reset is None
            else {"operator": reset.operator, "reason": reset.reason, "ts_ns": reset.ts_ns},
        }

    @classmethod
    def from_state(
        cls, data: Mapping[str, Any], *, on_halt: str = "cancel_all", name: str = "kill_switch"
    ) -> HaltMachine:
        if data.get("version") != STATE_VERSION:
            raise CorruptHaltState(f"halt state version {data.get('version')!r}, expected {STATE_VERSION}")
        try:
            state = HaltState(data["state"])
            trips = [
                TripRecord(trigger=HaltTrigger(t["trigger"]), reason=str(t["reason"]), ts_ns=int(t["ts_ns"]))
                for t in data["trips"]
            ]
            raw_reset = data["last_reset"]
            reset = (
                None
                if raw_reset is None
                else ResetRecord(
                    operator=str(raw_reset["operator"]),
                    reason=str(raw_reset["reason"]),
                    ts_ns=int(raw_reset["ts_ns"]),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptHaltState(f"unreadable halt state: {exc!r}") from exc
        if (state is H.ACTIVE) != (not trips):
            raise CorruptHaltState(f"state {state} with {len(trips)} trips recorded")
        machine = cls(on_halt=on_halt, name=name)
        machine._state = state
        machine._trips = trips
        machine._last_reset = reset
        return machine

    # --- internals ------------------------------------------------------------------------------------

    def _liquidation(self) -> list[HaltCommand]:
        return [LiquidateAll()] if self.on_halt == "flatten" else []

    def _protection(self) -> list[HaltCommand]:
        return [ProtectPositions()] if self.on_halt == "protect" else []

    def _trip(self, event: Trip, target: HaltState) -> list[HaltCommand]:
        trigger = HaltTrigger(event.trigger)
        if self._state is H.ACTIVE:
            self._state = target
            self._trips = [TripRecord(trigger=trigger, reason=event.reason, ts_ns=event.ts_ns)]
            alert = SendAlert(
                severity="critical",
                key=f"halt.{trigger}",
                message=f"kill switch tripped by {trigger}: {event.reason}",
                ts_ns=event.ts_ns,
            )
            latch = SetHalted(trigger=trigger, reason=event.reason, ts_ns=event.ts_ns)
            return [CancelAllOrders(), *self._protection(), latch, *self._liquidation(), alert]
        # Absorbed: already halting or halted. Recorded; a trigger new to this halt is worth one alert.
        new_trigger = all(t.trigger is not trigger for t in self._trips)
        self._trips.append(TripRecord(trigger=trigger, reason=event.reason, ts_ns=event.ts_ns))
        if not new_trigger:
            return []
        message = f"{trigger} while {self._state}: {event.reason}"
        return [SendAlert(severity="warning", key=f"halt.{trigger}", message=message, ts_ns=event.ts_ns)]

    def _reset(self, event: ManualReset, target: HaltState) -> list[HaltCommand]:
        if not event.operator.strip() or not event.reason.strip():
            raise InvalidReset(
                f"manual reset needs an operator and a reason, got operator={event.operator!r} "
                f"reason={event.reason!r}"
            )
        first = self.first_trip
        self._state = target
        self._trips = []
        self._last_reset = ResetRecord(operator=event.operator, reason=event.reason, ts_ns=event.ts_ns)
        cause = f" (halted by {first.trigger})" if first is not None else ""
        return [
            ClearHalted(operator=event.operator, reason=event.reason, ts_ns=event.ts_ns),
            SendAlert(
                severity="warning",
                key="halt.reset",
                message=f"kill switch reset by {event.operator}: {event.reason}{cause}",
                ts_ns=event.ts_ns,
            ),
        ]
