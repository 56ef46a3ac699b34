"""What every actor shares: the ports, the config, the book, and the audit helper.

One object so actor constructors stay short; each actor still writes only its own part of the state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from core import audit as audit_records
from core.audit import AuditEntry
from core.config import EngineConfig
from core.engine.alarm import GridAlarm
from core.engine.state import EngineState
from core.model import AccountType
from core.ports import AlertSink, AuditSink, BrokerRest, Clock, IdFactory, Monitor, NullMonitor, StateStore

log = logging.getLogger("ttlive.engine")


@dataclass(slots=True)
class EngineContext:
    config: EngineConfig
    broker: BrokerRest
    clock: Clock
    ids: IdFactory
    alerts: AlertSink
    audit_sink: AuditSink
    store: StateStore
    state: EngineState
    account_type: AccountType
    model_id: str
    monitor: Monitor = field(default_factory=NullMonitor)
    session_start_ns: int = 0
    # Called for every trade the supervisor should know about (set by the system at wiring time).
    on_audit: Callable[[AuditEntry], None] | None = None
    # Rung by every writer of the ledger (marks, fills, adopted positions): the supervisor's idle equity tick
    # sleeps until then instead of re-reading an unchanged book every 5 s.
    book_alarm: GridAlarm = field(default_factory=GridAlarm)
    # Set once a graceful stop begins (Engine.begin_stop): no new decision from then on; what was decided
    # before still runs (in-flight submits, their retries and lookups, cancels) while the engine settles.
    stopping: bool = False

    def now_ns(self) -> int:
        return self.clock.now_ns()

    def now_s(self) -> float:
        return self.clock.now_ns() / 1e9

    def audit(self, entry: AuditEntry) -> None:
        """Durable before we act: the sink fsyncs order and fill records before returning (spec 4.1/4.2)."""
        self.audit_sink.write(entry)
        if self.on_audit is not None:
            self.on_audit(entry)

    def system(self, kind: Any, *, reason: str = "", operator: str = "", symbol: str = "",
               extra: dict[str, object] | None = None) -> None:
        self.audit(audit_records.system_record(
            kind, ts_ns=self.now_ns(), reason=reason, operator=operator, symbol=symbol, extra=extra,
        ))

    def book_changed(self) -> None:
        """The ledger's equity may have moved (call after a mark, a fill or an adopted position)."""
        self.book_alarm.ring()

    def persist(self) -> None:
        self.store.save(self.state.to_dict())

    def equity(self) -> Decimal:
        return self.state.ledger.equity_usd()
