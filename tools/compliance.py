"""Compliance reconciliation (spec 4.4) and the post-deployment reports (spec 6): the broker's own records
against our audit trail, for one date, with every difference listed; daily P&L and a weekly HTML review.

Broker records come through ``core.ports.BrokerRest`` (real Alpaca, or the fake venue of a finished run, which
``ttlive run`` saves next to its audit trail); the audit trail is read from disk. The checks are pure
functions.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import msgspec

from adapters.audit_jsonl import iter_lines
from core.audit import (
    STREAM_FILLS,
    STREAM_HEALTH,
    STREAM_ORDERS,
    STREAM_RISK,
    AuditRecord,
    decode_line,
    ts_ns_from_iso,
)
from core.engine.execution import fill_from_activity
from core.ledger import Ledger
from core.model import NS_PER_S as NS
from core.model import Account, Activity, BrokerOrder, Fill, Position, Side
from core.ports import BrokerRest

ORDERS_FETCH_MAX: Final = 50_000  # status=all over the account's history; paged 500 at a time
PRICE_TOLERANCE: Final = Decimal("0.000001")  # audit prices are JSON floats of the Decimal (spec 4.1 "float")
SIM_SLIPPAGE_BPS: Final = (0.5, 2.0)  # the simulation's slippage assumption (training env and fake venue)
BROKER_RECORDS_NAME: Final = "broker.json"
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


@dataclass
class AuditTrail:
    fills: list[AuditRecord] = field(default_factory=list)
    orders: list[AuditRecord] = field(default_factory=list)
    risk: list[AuditRecord] = field(default_factory=list)
    health: list[AuditRecord] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # "stream/file:line" of lines that do not decode


def load_audit(audit_dir: Path) -> AuditTrail:
    trail = AuditTrail()
    targets = {
        STREAM_FILLS: trail.fills,
        STREAM_ORDERS: trail.orders,
        STREAM_RISK: trail.risk,
        STREAM_HEALTH: trail.health,
    }
    for stream, out in targets.items():
        for location, line, _day, terminated in iter_lines(audit_dir, stream):
            if not terminated:
                trail.unreadable.append(f"{location.file}:{location.line} (unterminated)")
                continue
            try:
                out.append(decode_line(line))
            except Exception as exc:  # a damaged line is a finding, not a crash
                trail.unreadable.append(f"{location.file}:{location.line} ({type(exc).__name__})")
    return trail


def record_date(record: AuditRecord) -> dt.date:
    return dt.date.fromisoformat(record.timestamp[:10])


def utc_date(ts_ns: int) -> dt.date:
    return dt.datetime.fromtimestamp(ts_ns / NS, tz=dt.UTC).date()


def _extra_str(record: AuditRecord, key: str) -> str:
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
        audited.setdefault(_extra_str(record, "execution_id"), []).append(record)
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
        if record_date(record) == day and _extra_str(record, "execution_id") not in known:
            diffs.append(
                Difference(
                    kind="unknown_audited_fill",
                    subject=_extra_str(record, "execution_id"),
                    detail=f"fill record seq {record.seq} ({record.symbol} {record.quantity}) "
                    "has no FILL activity at the broker",
                )
            )
    audited_orders = {_extra_str(r, "client_order_id") for r in trail.orders if r.event_type == "order"}
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
    side = _extra_str(record, "side")
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
            _extra_str(record, "side"), Decimal(record.quantity)
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
        side = Side.SELL if _extra_str(record, "side").startswith("sell") else Side.BUY
        out.append(
            Fill(
                execution_id=_extra_str(record, "execution_id"),
                order_id=record.alpaca_order_id or "",
                client_order_id=_extra_str(record, "client_order_id"),
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
            1 for r in trail.orders if record_date(r) == day and r.event_type == "order"
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


def encode_result(result: ComplianceResult) -> bytes:
    return msgspec.json.format(msgspec.json.encode(result), indent=2) + b"\n"


# --- weekly performance report ------------------------------------------------------------------------------


@dataclass
class WeekStats:
    start: dt.date
    end: dt.date
    equity: list[tuple[int, Decimal]]
    slippage_bps: list[float]
    rejections_by_symbol: Counter[str]
    risk_triggers: Counter[str]  # binding rule of every resize/reject
    risk_actions: Counter[str]  # pass / resize / reject
    orders: int
    fills: int


def week_of(day: dt.date) -> tuple[dt.date, dt.date]:
    monday = day - dt.timedelta(days=day.weekday())
    return monday, day


def week_stats(day: dt.date, records: BrokerRecords, trail: AuditTrail) -> WeekStats:
    start, end = week_of(day)

    def inside(d: dt.date) -> bool:
        return start <= d <= end

    equity = [(ts, e) for ts, e in records.equity_points if inside(utc_date(ts))]
    if len(equity) < 2:  # no intraday series: the portfolio history's daily points
        equity = [
            (int(dt.datetime.combine(d, dt.time(20), tzinfo=dt.UTC).timestamp()) * NS, e)
            for d, e in history_points(records.portfolio_history)
            if inside(d)
        ]
    fills = [r for r in trail.fills if inside(record_date(r))]
    rejections: Counter[str] = Counter()
    for order in records.orders:
        if order.status == "rejected" and inside(utc_date(order.created_at_ns or order.submitted_at_ns or 0)):
            rejections[order.symbol] += 1
    for record in trail.health:
        if inside(record_date(record)) and record.extra.get("event") == "order_rejected":
            rejections[f"{record.symbol} (trade update)"] += 1
    triggers: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    for record in trail.risk:
        if not inside(record_date(record)) or record.risk_check_result is None:
            continue
        action = record.risk_check_result.action_taken
        actions[action] += 1
        if action != "pass":
            triggers[_extra_str(record, "binding_rule") or "(unnamed)"] += 1
    return WeekStats(
        start=start,
        end=end,
        equity=sorted(equity),
        slippage_bps=[r.slippage_bps for r in fills if r.slippage_bps is not None],
        rejections_by_symbol=rejections,
        risk_triggers=triggers,
        risk_actions=actions,
        orders=sum(1 for r in trail.orders if inside(record_date(r)) and r.event_type == "order"),
        fills=len(fills),
    )


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def charts(stats: WeekStats) -> dict[str, str]:
    """Base64 PNGs (matplotlib, Agg backend). Empty when matplotlib is not installed (it is a train extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    out: dict[str, str] = {}
    times: Any = [dt.datetime.fromtimestamp(ts / NS, tz=dt.UTC) for ts, _ in stats.equity]  # matplotlib dates
    values = [float(e) for _, e in stats.equity]
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(times, values, color="#1f6feb")
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    ax.set_title("Equity (USD)")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    out["equity"] = _png(fig)
    plt.close(fig)
    peak, drawdown = float("-inf"), []
    for v in values:
        peak = max(peak, v)
        drawdown.append((v / peak - 1) * 100 if peak > 0 else 0.0)
    fig, ax = plt.subplots(figsize=(8, 2.5))
    ax.fill_between(times, drawdown, 0, color="#d1242f", alpha=0.4)
    ax.set_title("Drawdown (%)")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    out["drawdown"] = _png(fig)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(8, 3))
    if stats.slippage_bps:
        ax.hist(stats.slippage_bps, bins=30, color="#8250df")
    ax.axvspan(*SIM_SLIPPAGE_BPS, color="#2da44e", alpha=0.2, label="simulation assumption 0.5-2 bps")
    ax.set_title("Slippage per fill (bps, positive = worse than the mid at signal time)")
    ax.legend()
    out["slippage"] = _png(fig)
    plt.close(fig)
    for key, counter, title in (
        ("rejections", stats.rejections_by_symbol, "Order rejections"),
        ("risk", stats.risk_triggers, "Risk-rule triggers (resize or reject)"),
    ):
        fig, ax = plt.subplots(figsize=(8, 2.5))
        labels = sorted(counter)
        ax.barh(labels or ["(none)"], [counter[k] for k in labels] or [0], color="#bf8700")
        ax.set_title(title)
        out[key] = _png(fig)
        plt.close(fig)
    return out


def _table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def slippage_summary(values: Sequence[float]) -> dict[str, str]:
    if not values:
        return {"fills with a reference price": "0"}
    lo, hi = SIM_SLIPPAGE_BPS
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return {
        "fills with a reference price": str(len(values)),
        "mean bps": f"{statistics.fmean(values):.2f}",
        "median bps": f"{statistics.median(values):.2f}",
        "p95 bps": f"{p95:.2f}",
        "inside the 0.5-2 bps assumption": f"{sum(lo <= v <= hi for v in values) / len(values) * 100:.1f}%",
        "worse than 2 bps": f"{sum(v > hi for v in values) / len(values) * 100:.1f}%",
    }


def weekly_report_html(
    day: dt.date, records: BrokerRecords, trail: AuditTrail, result: ComplianceResult
) -> str:
    stats = week_stats(day, records, trail)
    images = charts(stats)

    def img(key: str) -> str:
        if key not in images:
            return "<p class=muted>(chart unavailable: matplotlib is not installed)</p>"
        return f'<img alt="{key}" src="data:image/png;base64,{images[key]}">'

    pnl = result.daily_pnl
    diff_rows = [(d.kind, d.subject, d.detail) for d in result.differences] or [("none", "", "")]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ttlive weekly report {stats.start} .. {stats.end}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:60em}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:left}}
.muted{{color:#666}}img{{max-width:100%}}</style>
</head><body>
<h1>Weekly performance review, {stats.start} .. {stats.end}</h1>
<p class=muted>Source: {
        html.escape(records.source)
    } broker records and the audit trail. Spec 6 post-deployment
review; the compliance reconciliation of {html.escape(result.date)} is at the end.</p>
<h2>Activity</h2>{
        _table(
            [
                ("orders (audited)", stats.orders),
                ("fills (audited)", stats.fills),
                *sorted(stats.risk_actions.items()),
            ],
            ("what", "count"),
        )
    }
<h2>Equity</h2>{img("equity")}
<h2>Drawdown</h2>{img("drawdown")}
<h2>Slippage against the simulation's 0.5-2 bps assumption</h2>{img("slippage")}
{_table(sorted(slippage_summary(stats.slippage_bps).items()), ("measure", "value"))}
<h2>Rejection patterns</h2>{img("rejections")}
{_table(sorted(stats.rejections_by_symbol.items()), ("symbol", "rejections"))}
<h2>Risk-rule trigger frequency</h2>{img("risk")}
{_table(sorted(stats.risk_triggers.items()), ("binding rule", "resizes + rejects"))}
<h2>Daily P&amp;L reconciliation, {html.escape(pnl.date)}</h2>
{_table(sorted(msgspec.to_builtins(pnl).items()), ("measure", "value"))}
<h2>Compliance differences, {html.escape(result.date)}</h2>
{_table(diff_rows, ("kind", "subject", "detail"))}
</body></html>
"""
