"""Sessions as the audit trail proves them: which paper/live sessions count, and the go-live size cap (spec 6).

A paper or live runner writes a ``session_completed`` health record when a session ends, saying whether it ran
open to close and whether its reconciliation stayed clean. Two decisions read those records, and only those:

* **Paper-phase evidence** (``ttlive preflight``): a paper session counts only if it ran open to close (started
  before the open, not interrupted, no actor crash) with clean reconciliation (at least one reconciliation, no
  mismatch, no reconciliation halt). A crashed or cut-short day is not evidence, however many ``runner_started``
  records it left.
* **The go-live cap** (``ttlive run --mode live``): for the first ``GO_LIVE_SESSIONS`` live sessions the config's
  ``risk.size_scale`` must be at most ``GO_LIVE_SIZE_SCALE``, unless an operator lifted the cap with an audited
  ``go_live_cap_lifted`` record (``ttlive lift-go-live-cap``). A live session counts once it ran open to close;
  a cut-short one does not, so the cap stays on longer, never shorter.

Pure functions over audit records: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Final

from core.audit import AuditEntry, record_date, system_record
from core.limits import GO_LIVE_SIZE_SCALE

SESSION_COMPLETED_EVENT: Final = "session_completed"  # extra.event of the record a runner writes at a session's end
GO_LIVE_CAP_LIFTED_EVENT: Final = "go_live_cap_lifted"  # extra.event of the operator's audited lift
GO_LIVE_SESSIONS: Final = 10  # spec 6: "reduced position sizes (25% of target)" for the first two weeks live


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionOutcome:
    """How one runner session ended, as the runner saw it."""

    mode: str
    session_date: str  # the trading day (YYYY-MM-DD, exchange calendar)
    open_to_close: bool  # started by the open, ran to the close + settle, not interrupted, no actor crash
    reconciliations: int  # reconciliations run during this session
    reconcile_mismatches: int  # mismatches found during this session
    reconciliation_halt: bool  # a reconciliation-mismatch trip during this session
    halted: bool  # the latch was not ACTIVE at the end
    orders: int
    fills: int

    @property
    def reconciliation_clean(self) -> bool:
        return self.reconciliations > 0 and self.reconcile_mismatches == 0 and not self.reconciliation_halt

    @property
    def counts(self) -> bool:
        """Is this session evidence (paper phase) and a step out of the go-live cap (live)?"""
        return self.open_to_close and self.reconciliation_clean


def session_completed_record(outcome: SessionOutcome, *, ts_ns: int) -> AuditEntry:
    extra: dict[str, object] = {
        "event": SESSION_COMPLETED_EVENT,
        "mode": outcome.mode,
        "session_date": outcome.session_date,
        "open_to_close": outcome.open_to_close,
        "reconciliations": outcome.reconciliations,
        "reconcile_mismatches": outcome.reconcile_mismatches,
        "reconciliation_halt": outcome.reconciliation_halt,
        "reconciliation_clean": outcome.reconciliation_clean,
        "halted": outcome.halted,
        "orders": outcome.orders,
        "fills": outcome.fills,
        "counts": outcome.counts,
    }
    verdict = "counts" if outcome.counts else "does not count"
    return system_record(
        "health", ts_ns=ts_ns, reason=f"{outcome.mode} session {outcome.session_date} ended ({verdict})", extra=extra
    )


def go_live_cap_lifted_record(*, ts_ns: int, operator: str, reason: str, sessions: int) -> AuditEntry:
    return system_record(
        "health",
        ts_ns=ts_ns,
        operator=operator,
        reason=reason,
        extra={"event": GO_LIVE_CAP_LIFTED_EVENT, "live_sessions": sessions},
    )


def _session_date(entry: AuditEntry) -> date:
    text = entry.extra.get("session_date")
    if isinstance(text, str):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    return record_date(entry)


def counted_sessions(health: Iterable[AuditEntry], mode: str) -> list[date]:
    """The distinct session dates of ``mode`` that ran open to close with clean reconciliation, sorted."""
    return sorted(
        {
            _session_date(r)
            for r in health
            if r.extra.get("event") == SESSION_COMPLETED_EVENT
            and r.extra.get("mode") == mode
            and r.extra.get("open_to_close") is True
            and r.extra.get("reconciliation_clean") is True
        }
    )


def cap_lifted(health: Iterable[AuditEntry]) -> AuditEntry | None:
    """The latest operator lift of the go-live cap, if any."""
    lifts = [r for r in health if r.extra.get("event") == GO_LIVE_CAP_LIFTED_EVENT]
    return lifts[-1] if lifts else None


def go_live_cap_problem(health: Iterable[AuditEntry], size_scale: Decimal) -> str | None:
    """Why a live run may not start with ``size_scale`` (None: it may)."""
    records = list(health)
    if size_scale <= GO_LIVE_SIZE_SCALE:
        return None
    done = len(counted_sessions(records, "live"))
    if done >= GO_LIVE_SESSIONS:
        return None
    if cap_lifted(records) is not None:
        return None
    return (
        f"risk.size_scale = {size_scale} but only {done} of the first {GO_LIVE_SESSIONS} live sessions have run "
        f"(open to close, clean reconciliation): live trading starts at size_scale <= {GO_LIVE_SIZE_SCALE} "
        "(spec 6); an operator may lift this with `ttlive lift-go-live-cap --operator NAME --reason TEXT`"
    )
