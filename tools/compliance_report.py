"""The weekly performance review (spec 6) as one self-contained HTML page: the week's equity, drawdown,
slippage against the simulation's assumption, rejections and risk-rule triggers, then the day's compliance
reconciliation. ``ttlive compliance`` writes it next to the result (tools/cmd_compliance.py).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import msgspec

from core.audit import is_submission, record_date
from core.compliance import AuditTrail, BrokerRecords, ComplianceResult, extra_str, history_points, utc_date
from core.model import NS_PER_S as NS

SIM_SLIPPAGE_BPS: Final = (0.5, 2.0)  # the simulation's slippage assumption (training env and fake venue)


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
            triggers[extra_str(record, "binding_rule") or "(unnamed)"] += 1
    return WeekStats(
        start=start,
        end=end,
        equity=sorted(equity),
        slippage_bps=[r.slippage_bps for r in fills if r.slippage_bps is not None],
        rejections_by_symbol=rejections,
        risk_triggers=triggers,
        risk_actions=actions,
        orders=sum(1 for r in trail.orders if inside(record_date(r)) and is_submission(r.event_type, r.extra)),
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
