"""Start-up recovery of the kill-switch latch from two witnesses: the persisted state and the audit trail.

Either can be lost (a deleted or corrupt ``state.json``, a restored backup); the latch must not be. Pure: the
composition root hands the engine a ``TrailLatch`` view of the trail (folded from its health records), and
``decide_start`` says whether to start halted and what to alert. Fail closed: when in doubt, halt.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from typing import Any, Protocol

from core.audit import AuditEntry
from core.halt_fsm import HaltTrigger

ENGINE_STARTED_REASON = "engine started"  # the health record every engine start writes (core.engine.system)
LATCH_EVENTS = ("halt", "reset")  # the system records that move the latch (supervisor, ttlive kill/reset)


class StateUnreadable(Exception):
    """A state store holds state it cannot read (corrupt, not JSON, unreadable file): start halted on it."""


@dataclass(frozen=True, slots=True)
class TrailLatch:
    """What the audit trail says about the latch: folded from every health record, oldest first."""

    engine_starts: int = 0  # engine-started records: an engine persisted state here before
    halted: bool = False  # the newest halt/reset record is a halt
    trigger: str = ""  # that halt's trigger (as recorded)
    reason: str = ""

    def fold(self, entry: AuditEntry) -> TrailLatch:
        """The view after one more record (anything but health records leaves it as it is)."""
        extra: Mapping[str, Any] = entry.extra
        if entry.event_type == "health" and extra.get("reason") == ENGINE_STARTED_REASON:
            return replace(self, engine_starts=self.engine_starts + 1)
        if entry.event_type == "halt":
            trigger, reason = str(extra.get("trigger", "")), str(extra.get("reason", ""))
            return replace(self, halted=True, trigger=trigger, reason=reason)
        if entry.event_type == "reset":
            return replace(self, halted=False, trigger="", reason="")
        return self


def fold_trail(entries: Iterable[AuditEntry]) -> TrailLatch:
    latch = TrailLatch()
    for entry in entries:
        latch = latch.fold(entry)
    return latch


class LatchSource(Protocol):
    """Port: the trail's latch view as of now (the JSONL sink keeps it current as it writes), and the executions it
    holds a fill record for (a process killed after a fill's record, before its state was saved, must not audit
    that fill a second time when the restart's resync brings it again)."""

    def latch(self) -> TrailLatch: ...

    def audited_executions(self) -> AbstractSet[str]: ...


@dataclass(frozen=True, slots=True)
class StartDecision:
    halt_reason: str = ""  # non-empty: latch a halt before anything else, for this reason
    halt_trigger: str = "manual"  # the trigger to record (the trail's own, when it has one)
    alert: str = ""  # non-empty: a critical alert to send at start-up


def decide_start(*, state_halted: bool | None, unreadable: str, trail: TrailLatch) -> StartDecision:
    """``state_halted`` None = no state file. A state that says halted is always trusted (it is already safe)."""
    trigger = trail.trigger if trail.trigger in {t.value for t in HaltTrigger} else HaltTrigger.MANUAL.value
    if unreadable:
        why = f"engine state unreadable ({unreadable})"
        return StartDecision(halt_reason=why, alert=f"{why}: started HALTED; inspect it and reset manually")
    if state_halted is None:
        if trail.halted:
            why = f"engine state missing while the audit trail holds an un-reset halt ({trail.reason})"
            return StartDecision(halt_reason=why, halt_trigger=trigger, alert=f"{why}: started HALTED")
        if trail.engine_starts:
            return StartDecision(alert="engine state missing although the audit trail shows earlier engine starts: "
                                       "rebuilt from the venue (the trail holds no un-reset halt)")
        return StartDecision()
    if not state_halted and trail.halted:
        why = f"engine state says active but the audit trail's last latch record is a halt ({trail.reason})"
        return StartDecision(halt_reason=why, halt_trigger=trigger, alert=f"{why}: started HALTED")
    return StartDecision()
