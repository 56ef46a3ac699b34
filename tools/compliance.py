"""``ttlive compliance``'s shell (spec 4.4): pull and save the broker's records, read the audit trail from
disk, write the result. The reconciliation and daily P&L are ``core.compliance``; the weekly HTML review is
``tools.compliance_report``.

Broker records come through ``core.ports.BrokerRest`` (real Alpaca, or the fake venue of a finished run, which
``ttlive run`` saves next to its audit trail).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Final

import msgspec

from adapters.audit_jsonl import iter_records
from core.audit import STREAM_FILLS, STREAM_HEALTH, STREAM_ORDERS, STREAM_RISK
from core.audit_verify import Location
from core.compliance import AuditTrail, BrokerRecords, ComplianceResult
from core.ports import BrokerRest

ORDERS_FETCH_MAX: Final = 50_000  # status=all over the account's history; paged 500 at a time
BROKER_RECORDS_NAME: Final = "broker.json"


async def fetch_broker_records(
    rest: BrokerRest, *, source: str, now_ns: int, equity_points: Sequence[tuple[int, Decimal]] = ()
) -> BrokerRecords:
    """GET activities (FILL), orders (status=all), positions, portfolio history and the account."""
    activities = await rest.get_activities()
    orders = await rest.list_orders(status="all", limit=ORDERS_FETCH_MAX)
    positions = await rest.get_positions()
    history = await rest.get_portfolio_history()
    account = await rest.get_account()
    return BrokerRecords(
        source=source,
        fetched_at_ns=now_ns,
        activities=activities,
        orders=orders,
        positions=positions,
        portfolio_history=history,
        account=account,
        equity_points=list(equity_points),
    )


def save_records(path: Path, records: BrokerRecords) -> None:
    path.write_bytes(msgspec.json.format(msgspec.json.encode(records), indent=1) + b"\n")


def load_records(path: Path) -> BrokerRecords:
    return msgspec.json.decode(path.read_bytes(), type=BrokerRecords, strict=False)


# --- the audit trail ----------------------------------------------------------------------------------------


def load_audit(audit_dir: Path) -> AuditTrail:
    trail = AuditTrail()
    targets = {
        STREAM_FILLS: trail.fills,
        STREAM_ORDERS: trail.orders,
        STREAM_RISK: trail.risk,
        STREAM_HEALTH: trail.health,
    }

    def unreadable(location: Location, why: str) -> None:  # a damaged line is a finding, not a crash
        trail.unreadable.append(f"{location.file}:{location.line} ({why})")

    for stream, out in targets.items():
        out.extend(iter_records(audit_dir, stream, unreadable=unreadable))
    return trail


def encode_result(result: ComplianceResult) -> bytes:
    return msgspec.json.format(msgspec.json.encode(result), indent=2) + b"\n"


def write_reports(
    day: dt.date, records: BrokerRecords, trail: AuditTrail, out: Path
) -> tuple[ComplianceResult, Path, Path]:
    """Reconcile ``day`` (core.compliance) and write ``compliance-DAY.json`` and the week's HTML review under
    ``out``: what ``ttlive compliance`` writes, and what the paper/live runner writes after every session."""
    from core.compliance import check
    from tools.compliance_report import weekly_report_html

    result = check(day, records, trail)
    out.mkdir(parents=True, exist_ok=True)
    result_path = out / f"compliance-{day.isoformat()}.json"
    result_path.write_bytes(encode_result(result))
    year, week, _ = day.isocalendar()
    weekly_path = out / f"weekly-{year}-W{week:02d}.html"
    weekly_path.write_text(weekly_report_html(day, records, trail, result), encoding="utf-8")
    return result, result_path, weekly_path
