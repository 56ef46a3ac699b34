"""Deterministic sample audit entries for the audit tests: one of each trading event per signal."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from core.audit import (
    AuditEntry,
    cancel_record,
    fill_record,
    order_record,
    risk_record,
    signal_record,
    system_record,
)

DAY_NS = 86_400 * 1_000_000_000
T0_NS = 1_704_205_800 * 1_000_000_000  # 2024-01-02T14:30:00Z, a session open
SYMBOLS = ("AAPL", "MSFT", "NVDA")


def trade_entries(i: int, ts_ns: int) -> list[AuditEntry]:
    """Signal -> risk -> order -> fill (and every third one a cancel) for signal number ``i``."""
    symbol = SYMBOLS[i % len(SYMBOLS)]
    common: dict[str, Any] = {
        "signal_id": f"sig-{i:04d}",
        "model_id": "ppo-v1",
        "symbol": symbol,
        "direction": "long",
    }
    out = [
        signal_record(ts_ns=ts_ns, quantity=10 + i, latency_ms=3, **common),
        risk_record(
            ts_ns=ts_ns + 1_000_000, quantity=10 + i, latency_ms=1, requested_quantity=10 + i,
            result={"passed": True, "rules_evaluated": ["position_limit"], "action_taken": "pass"}, **common,
        ),
        order_record(
            ts_ns=ts_ns + 2_000_000, quantity=10 + i, latency_ms=4, client_order_id=f"coid-{i:04d}",
            alpaca_order_id=f"oid-{i:04d}", extra={"type": "market", "side": "buy"}, **common,
        ),
        fill_record(
            ts_ns=ts_ns + 5_000_000, quantity=10 + i, latency_ms=9, alpaca_order_id=f"oid-{i:04d}",
            execution_id=f"exec-{i:04d}", execution_price=Decimal("187.25") + i, side="buy",
            reference_price=Decimal("187.20") + i, client_order_id=f"coid-{i:04d}", **common,
        ),
    ]  # fmt: skip
    if i % 3 == 2:
        out.append(cancel_record(
            ts_ns=ts_ns + 6_000_000, signal_id=common["signal_id"], model_id="ppo-v1", symbol=symbol,
            quantity=0, reason="policy", latency_ms=2, alpaca_order_id=f"oid-{i:04d}",
        ))  # fmt: skip
    return out


def session(n_signals: int, *, start_ns: int = T0_NS, step_ns: int = 60_000_000_000) -> list[AuditEntry]:
    """``n_signals`` trades ``step_ns`` apart, plus a health heartbeat: records for every stream."""
    out: list[AuditEntry] = []
    for i in range(n_signals):
        ts_ns = start_ns + i * step_ns
        out.extend(trade_entries(i, ts_ns))
        out.append(system_record("health", ts_ns=ts_ns + 7_000_000, extra={"queue_depth": i}))
    return out
