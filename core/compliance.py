"""Compliance reconciliation (spec 4.4) and daily P&L (spec 6): the broker's own records against our audit
trail, for one date, with every difference listed. Pure: the records and the trail come in already read.

``tools.compliance`` pulls and loads them, ``tools.compliance_report`` renders the weekly report; the checks are here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import msgspec

from core.audit import AuditRecord, is_submission, record_date, ts_ns_from_iso
from core.engine.execution import fill_from_activity
from core.ledger import Ledger
from core.model import NS_PER_S as NS
from core.model import Account, Activity, BrokerOrder, Fill, Position, Side

PRICE_TOLERANCE: Final = Decimal("0.000001")  # audit prices are JSON floats of the Decimal (spec 4.1 "float")
ZERO: Final = Decimal(0)


class BrokerRecords(msgspec.Struct, kw_only=True):
    """The four spec 4.4 pulls (plus the account), as one file: ``<run dir>/broker.json``."""

    source: str  # sim | paper | live
    fetched_at_ns: int
    activities: list[Activity]
    orders: list[BrokerOrder]
    positions: list[Position]
    portfolio_history: dict[str, Any]
    account: Account | None = None
    equity_points: list[tuple[int, Decimal]] = []  # intraday equity when the broker offers it (the fake does)


@dataclass
class AuditTrail:
    """The audit records compliance compares, by stream (``tools.compliance.load_audit`` reads them)."""

    fills: list[AuditRecord] = field(default_factory=list)
    orders: list[AuditRecord] = field(default_factory=list)
    risk: list[AuditRecord] = field(default_factory=list)
    health: list[AuditRecord] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # "stream/file:line" of lines that do not decode


# --- reading records ----------------------------------------------------------------------------------------


def utc_date(ts_ns: int) -> dt.date:
    return dt.datetime.fromtimestamp(ts_ns / NS, tz=dt.UTC).date()


def extra_str(record: AuditRecord, key: str) -> str:
    value = record.extra.get(key)
    return "" if value is None else str(value)


def _signed(side: str, qty: Decimal) -> Decimal:
    return -qty if side.lower().startswith("sell") else qty


# --- reconciliation -----------------------------------------------------------------------------------------


class Difference(msgspec.Struct, frozen=True, kw_only=True):
    kind: str  # missing_audit_fill | duplicate_audit_fill | unknown_audited_fill | fill_mismatch |
    #           missing_audit_order | position_mismatch | unreadable_audit_line
    subject: str  # execution id, client order id, symbol, file:line
    detail: str


def order_index(orders: Iterable[BrokerOrder]) -> dict[str, BrokerOrder]:
    """Every order by venue id, bracket legs included (their fills carry the leg's id)."""
    out: dict[str, BrokerOrder] = {}
    for order in orders:
        out[order.id] = order
        for leg in order.legs:
            out[leg.id] = leg
    return out


def broker_fills(records: BrokerRecords) -> list[Fill]:
    """FILL activities as fills (execution id from the activity id, as the engine's resync reads them)."""
    by_id = order_index(records.orders)
    out = []
    for activity in records.activities:
        order = by_id.get(activity.order_id)
        out.append(fill_from_activity(activity, order.client_order_id if order is not None else ""))
    return out


def reconcile(day: dt.date, records: BrokerRecords, trail: AuditTrail) -> list[Difference]:
    """Every difference between the broker's records for ``day`` and the audit trail (empty = reconciled).

    Fills: each FILL activity of the day has exactly one fill record with its execution id, same symbol, side,
    quantity and price; each fill record of the day is a FILL activity the broker knows. Orders: each order
    created that day (bracket legs ride on their entry's record) has an order record with its client order id.
    Positions: the broker's positions now equal the signed sum of every audited fill (the account is assumed
    to have started flat when the trail started and to be traded by this system only).
    """
    diffs: list[Difference] = [
        Difference(kind="unreadable_audit_line", subject=where, detail="line does not decode")
        for where in trail.unreadable
    ]
    audited: dict[str, list[AuditRecord]] = {}
    for record in trail.fills:
        audited.setdefault(extra_str(record, "execution_id"), []).append(record)
    day_fills = [f for f in broker_fills(records) if utc_date(f.ts_ns) == day]
    known = {f.execution_id for f in broker_fills(records)}
    for fill in day_fills:
        matches = audited.get(fill.execution_id, [])
        if not matches:
            diffs.append(
                Difference(
                    kind="missing_audit_fill",
                    subject=fill.execution_id,
                    detail=f"{fill.side} {fill.qty} {fill.symbol} @ {fill.price} (order "
                    f"{fill.order_id}) has no fill record",
                )
            )
            continue
        if len(matches) > 1:
            diffs.append(
                Difference(
                    kind="duplicate_audit_fill",
                    subject=fill.execution_id,
                    detail=f"{len(matches)} fill records for one execution",
                )
            )
        diffs.extend(_compare_fill(fill, matches[0]))
    for record in trail.fills:
        if record_date(record) == day and extra_str(record, "execution_id") not in known:
            diffs.append(
                Difference(
                    kind="unknown_audited_fill",
                    subject=extra_str(record, "execution_id"),
                    detail=f"fill record seq {record.seq} ({record.symbol} {record.quantity}) "
                    "has no FILL activity at the broker",
                )
            )
    audited_orders = {extra_str(r, "client_order_id") for r in trail.orders if is_submission(r.event_type, r.extra)}
    for order in records.orders:
        created = order.created_at_ns or order.submitted_at_ns
        if created and utc_date(created) != day:
            continue
        if order.client_order_id not in audited_orders:
            diffs.append(
                Difference(
                    kind="missing_audit_order",
                    subject=order.client_order_id,
                    detail=f"order {order.id} {order.side} {order.qty} {order.symbol} "
                    f"({order.status}) has no order record",
                )
            )
    diffs.extend(_compare_positions(records.positions, trail.fills))
    return diffs


def _compare_fill(fill: Fill, record: AuditRecord) -> list[Difference]:
    problems = []
    side = extra_str(record, "side")
    if record.symbol != fill.symbol:
        problems.append(f"symbol {record.symbol} vs broker {fill.symbol}")
    if side and side != fill.side.value:
        problems.append(f"side {side} vs broker {fill.side.value}")
    if Decimal(record.quantity) != fill.qty:
        problems.append(f"quantity {record.quantity} vs broker {fill.qty}")
    price = Decimal(str(record.execution_price)) if record.execution_price is not None else None
    if price is None or abs(price - fill.price) > PRICE_TOLERANCE * max(fill.price, Decimal(1)):
        problems.append(f"price {price} vs broker {fill.price}")
    if record.alpaca_order_id not in (None, fill.order_id):
        problems.append(f"order {record.alpaca_order_id} vs broker {fill.order_id}")
    return (
        [Difference(kind="fill_mismatch", subject=fill.execution_id, detail="; ".join(problems))]
        if problems
        else []
    )


def audited_positions(fills: Iterable[AuditRecord]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for record in fills:
        out[record.symbol] = out.get(record.symbol, ZERO) + _signed(
            extra_str(record, "side"), Decimal(record.quantity)
        )
    return {s: q for s, q in sorted(out.items()) if q != 0}


def _compare_positions(positions: Sequence[Position], fills: Sequence[AuditRecord]) -> list[Difference]:
    broker = {p.symbol: p.qty for p in positions if p.qty != 0}
    ours = audited_positions(fills)
    return [
        Difference(
            kind="position_mismatch",
            subject=symbol,
            detail=f"broker {broker.get(symbol, ZERO)} vs audited fills {ours.get(symbol, ZERO)}",
        )
        for symbol in sorted(set(broker) | set(ours))
        if broker.get(symbol, ZERO) != ours.get(symbol, ZERO)
    ]


# --- daily P&L ----------------------------------------------------------------------------------------------


class DailyPnl(msgspec.Struct, kw_only=True):
    date: str
    fills_broker: int
    fills_audit: int
    realized_pl_broker_usd: str  # the day's closing trades, average cost, replayed from the broker's FILLs
    realized_pl_audit_usd: str  # the same from the audit trail's fill records
    realized_difference_usd: str
    unrealized_pl_broker_usd: (
        str | None
    )  # broker positions (as of the pull), when the date is the pull's date
    equity_end_usd: str | None  # portfolio history: last equity of the date
    equity_change_usd: (
        str | None
    )  # against the previous point (or the account's last_equity on its first day)


def _realized_on(day: dt.date, fills: Iterable[Fill]) -> tuple[Decimal, int]:
    """Replay fills (oldest first) through the engine's own ledger; realized P&L booked on ``day``."""
    ledger = Ledger(cash_usd=ZERO)
    realized, count = ZERO, 0
    for fill in sorted(fills, key=lambda f: (f.ts_ns, f.execution_id)):
        booked = ledger.apply_fill(fill)
        if booked is not None and utc_date(fill.ts_ns) == day:
            realized += booked.realized_pl
            count += 1
    return realized, count


def audit_fills(trail: AuditTrail) -> list[Fill]:
    out = []
    for record in trail.fills:
        if record.execution_price is None:
            continue
        side = Side.SELL if extra_str(record, "side").startswith("sell") else Side.BUY
        out.append(
            Fill(
                execution_id=extra_str(record, "execution_id"),
                order_id=record.alpaca_order_id or "",
                client_order_id=extra_str(record, "client_order_id"),
                symbol=record.symbol,
                side=side,
                qty=Decimal(record.quantity),
                price=Decimal(str(record.execution_price)),
                ts_ns=_record_ns(record),
            )
        )
    return out


def _record_ns(record: AuditRecord) -> int:
    return ts_ns_from_iso(record.timestamp)


def history_points(history: dict[str, Any]) -> list[tuple[dt.date, Decimal]]:
    stamps = history.get("timestamp") or []
    equities = history.get("equity") or []
    out = []
    for ts, equity in zip(stamps, equities, strict=False):
        if equity is None:
            continue
        out.append((dt.datetime.fromtimestamp(int(ts), tz=dt.UTC).date(), Decimal(str(equity))))
    return out


def daily_pnl(day: dt.date, records: BrokerRecords, trail: AuditTrail) -> DailyPnl:
    broker_realized, broker_count = _realized_on(day, broker_fills(records))
    audit_realized, audit_count = _realized_on(day, audit_fills(trail))
    unrealized = None
    if utc_date(records.fetched_at_ns) == day:
        unrealized = str(
            sum((p.unrealized_pl or ZERO for p in records.positions), ZERO).quantize(Decimal("0.01"))
        )
    points = history_points(records.portfolio_history)
    end = [e for d, e in points if d == day]
    before = [e for d, e in points if d < day]
    equity_end = end[-1] if end else None
    previous = (
        before[-1] if before else (records.account.last_equity if records.account is not None else None)
    )
    change = (equity_end - previous) if equity_end is not None and previous is not None else None
    return DailyPnl(
        date=day.isoformat(),
        fills_broker=broker_count,
        fills_audit=audit_count,
        realized_pl_broker_usd=str(broker_realized.quantize(Decimal("0.01"))),
        realized_pl_audit_usd=str(audit_realized.quantize(Decimal("0.01"))),
        realized_difference_usd=str((audit_realized - broker_realized).quantize(Decimal("0.01"))),
        unrealized_pl_broker_usd=unrealized,
        equity_end_usd=str(equity_end.quantize(Decimal("0.01"))) if equity_end is not None else None,
        equity_change_usd=str(change.quantize(Decimal("0.01"))) if change is not None else None,
    )


# --- the result ---------------------------------------------------------------------------------------------


class ComplianceResult(msgspec.Struct, kw_only=True):
    date: str
    source: str
    differences: list[Difference]
    daily_pnl: DailyPnl
    counts: dict[str, int]  # what was compared

    @property
    def ok(self) -> bool:
        return not self.differences


def check(day: dt.date, records: BrokerRecords, trail: AuditTrail) -> ComplianceResult:
    counts = {
        "fill_activities": sum(1 for a in records.activities if utc_date(a.ts_ns) == day),
        "audit_fill_records": sum(1 for r in trail.fills if record_date(r) == day),
        "orders": sum(
            1 for o in records.orders if utc_date(o.created_at_ns or o.submitted_at_ns or 0) == day
        ),
        "audit_order_records": sum(
            1 for r in trail.orders if record_date(r) == day and is_submission(r.event_type, r.extra)
        ),
        "positions": sum(1 for p in records.positions if p.qty != 0),
    }
    return ComplianceResult(
        date=day.isoformat(),
        source=records.source,
        differences=reconcile(day, records, trail),
        daily_pnl=daily_pnl(day, records, trail),
        counts=counts,
    )
