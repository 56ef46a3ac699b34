"""Pre-production validation (spec 5.3): replay an agent through the engine against the fake venue, compare
each simulated fill with what the next bar says would have executed, and write a drift report.

Two ways to run the agent: the scenario's policy inside the engine (``sim.world.run_scenario``), or a
TensorTrade agent through the environment bridge (``sim.bridge_world``: same world, the engine's policy silent, the
agent's orders entering at the risk actor). The report reads only records - the audit streams and bars from
GET /v2/stocks/bars - so it judges the engine from the outside: DIR/drift_report.md (tables), .png (charts)
and .json (the numbers).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Final

import msgspec
import trio
import trio.testing

from adapters.ports_venue import PATHS
from core.audit import is_submission, slippage_bps
from core.model import NS_PER_S as NS
from core.model import Bar, Side
from sim.report import Report
from sim.scenario import Scenario
from sim.world import (
    BASE_URL,
    SIM_KEY,
    VenueClock,
    WorldOptions,
    run_scenario,
    session_days,
)

ASSUMED_SLIPPAGE_BPS: Final = (0.5, 2.0)  # spec 5.2 "0.5-2 bps typical": the band the report measures against
REFERENCE_BARS: Final = 1  # "what would have executed": the next bar's open; VWAP over this many next bars
BARS_TIMEFRAME: Final = "1Min"
AGENTS: Final = ("engine", "tensortrade")


# --- records ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FillRow:
    """One audited execution, joined with the order it belongs to."""

    ts_ns: int
    symbol: str
    side: str  # buy | sell
    qty: Decimal  # whole shares, or exact fractional ones
    price: Decimal
    decision_mid: Decimal | None  # audit reference_price: the mid when the order was planned (None: a leg)
    slippage_vs_mid_bps: float | None  # as audited
    client_order_id: str
    signal_id: str
    order_kind: str  # "market/day", "limit/day", "limit/gtc", ... or "bracket_leg"


@dataclass(frozen=True, slots=True)
class OrderRow:
    client_order_id: str
    symbol: str
    side: str
    qty: Decimal
    order_kind: str


def _ts_ns(timestamp: str) -> int:
    from core.audit import ts_ns_from_iso

    return ts_ns_from_iso(timestamp)


def read_audit(audit_dir: Path) -> tuple[list[OrderRow], list[FillRow]]:
    """Orders and fills from the audit streams (hash-chained JSONL, spec 4.1), in file order."""
    from sim.invariants import audit_records

    orders = [
        OrderRow(client_order_id=str(r["extra"]["client_order_id"]), symbol=r["symbol"],
                 side=str(r["extra"]["side"]), qty=Decimal(r["quantity"]),
                 order_kind=f"{r['extra']['type']}/{r['extra']['time_in_force']}")
        for r in audit_records(audit_dir, "orders") if is_submission(r["event_type"], r["extra"])
    ]
    kinds = {o.client_order_id: o.order_kind for o in orders}
    fills = []
    for r in audit_records(audit_dir, "fills"):
        extra = r["extra"]
        coid = str(extra.get("client_order_id") or "")
        mid = extra.get("reference_price")
        fills.append(FillRow(
            ts_ns=_ts_ns(r["timestamp"]), symbol=r["symbol"], side=str(extra["side"]), qty=Decimal(r["quantity"]),
            price=Decimal(repr(r["execution_price"])), decision_mid=Decimal(mid) if mid is not None else None,
            slippage_vs_mid_bps=r["slippage_bps"], client_order_id=coid, signal_id=r["signal_id"],
            order_kind=kinds.get(coid, "bracket_leg"),
        ))
    return orders, fills


# --- bars ---------------------------------------------------------------------------------------------------


def session_window_ns(scenario: Scenario) -> tuple[int, int]:
    """(first open, last close) of the scenario's sessions."""
    from adapters.fake.calendar import NyseCalendar

    sessions = session_days(scenario, NyseCalendar())
    return sessions[0][1], sessions[-1][2]


def bars_timeframe(scenario: Scenario) -> str:
    return f"{max(1, scenario.session.bar_interval_s // 60)}Min"


def fetch_bars_from_fake(scenario: Scenario, seed: int, start_ns: int, end_ns: int) -> dict[str, list[Bar]]:
    """GET /v2/stocks/bars from a fresh fake venue over the same market (same spec, same seed) as the run,
    its clock set after ``end_ns`` so every bar of the window has completed."""
    from adapters.bootstrap import BrokerLink, open_data
    from adapters.fake.calendar import NyseCalendar
    from adapters.fake.inprocess import InProcessVenue
    from adapters.fake.market_spec import market_from_spec
    from adapters.fake.venue import Venue, VenueConfig

    calendar = NyseCalendar()
    config = scenario.engine_config()
    session = scenario.session
    market = market_from_spec(scenario.market, symbols=config.symbols, sectors=config.sectors, seed=seed,
                              bar_interval_s=session.bar_interval_s, start_date=session.start,
                              calendar=calendar)
    venue = Venue(VenueConfig(seed=seed, rate_limit_per_min=0), market=market, calendar=calendar,
                  start_ns=end_ns + 3600 * NS)
    front = InProcessVenue(venue)

    async def fetch() -> dict[str, list[Bar]]:
        data = open_data(BrokerLink.in_process(front, SIM_KEY, BASE_URL), clock=VenueClock(front))
        try:
            return await data.get_bars(config.symbols, start_ts_ns=start_ns, end_ts_ns=end_ns,
                                       timeframe=bars_timeframe(scenario))
        finally:
            await data.aclose()

    return trio.run(fetch, clock=trio.testing.MockClock(autojump_threshold=0))


def fetch_bars_from_alpaca(symbols: Sequence[str], start_ns: int, end_ns: int,
                           timeframe: str = BARS_TIMEFRAME) -> dict[str, list[Bar]]:
    """The same request against Alpaca's market data (credentials from APCA_API_KEY_ID /
    APCA_API_SECRET_KEY)."""
    from adapters.alpaca.clock import WallClock
    from adapters.alpaca.config import Credentials
    from adapters.bootstrap import BrokerLink, open_data
    from core.config import BrokerSection, Mode

    async def fetch() -> dict[str, list[Bar]]:
        link = BrokerLink.alpaca(Mode.PAPER, BrokerSection(), Credentials.from_env())
        data = open_data(link, clock=WallClock())
        try:
            with trio.fail_after(120):
                return await data.get_bars(symbols, start_ts_ns=start_ns, end_ts_ns=end_ns,
                                           timeframe=timeframe)
        finally:
            await data.aclose()

    return trio.run(fetch)


# --- drift arithmetic (pure) --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FillDrift:
    """A simulated fill beside what the next bars say would have executed."""

    fill: FillRow
    reference_ts_ns: int | None  # start of the next bar (None: no bar after the fill)
    next_open: Decimal | None
    next_vwap: Decimal | None
    slippage_vs_next_open_bps: float | None
    slippage_vs_next_vwap_bps: float | None


def typical_vwap(bars: Sequence[Bar]) -> Decimal | None:
    """Volume-weighted typical price (H+L+C)/3 of the bars: the VWAP a bar series allows (no trade prints)."""
    if not bars:
        return None
    volume = sum((b.volume for b in bars), Decimal(0))
    typical = [(b.high + b.low + b.close) / 3 for b in bars]
    if volume <= 0:
        return sum(typical, Decimal(0)) / len(typical)
    return sum((t * b.volume for t, b in zip(typical, bars, strict=True)), Decimal(0)) / volume


def next_bar_index(bars: Sequence[Bar], ts_ns: int) -> int:
    """Index of the first bar starting at or after ``ts_ns`` (bars sorted by start); len(bars) if none."""
    lo, hi = 0, len(bars)
    while lo < hi:
        mid = (lo + hi) // 2
        if bars[mid].ts_ns < ts_ns:
            lo = mid + 1
        else:
            hi = mid
    return lo


def drift_for(fill: FillRow, bars: Sequence[Bar], reference_bars: int = REFERENCE_BARS) -> FillDrift:
    i = next_bar_index(bars, fill.ts_ns)
    following = list(bars[i:i + reference_bars])
    if not following:
        return FillDrift(fill, None, None, None, None, None)
    next_open = following[0].open
    raw_vwap = typical_vwap(following)
    assert raw_vwap is not None
    vwap = raw_vwap.quantize(Decimal("0.0001"))  # the reported value is the one slippage is measured against
    return FillDrift(
        fill=fill, reference_ts_ns=following[0].ts_ns, next_open=next_open, next_vwap=vwap,
        slippage_vs_next_open_bps=slippage_bps(Side(fill.side), fill.price, next_open),
        slippage_vs_next_vwap_bps=slippage_bps(Side(fill.side), fill.price, vwap),
    )


@dataclass(frozen=True, slots=True)
class Distribution:
    count: int
    mean: float | None
    median: float | None
    p5: float | None
    p95: float | None
    min: float | None
    max: float | None
    within_assumed_band: float | None  # share of values inside ASSUMED_SLIPPAGE_BPS (inclusive)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on an ascending sequence."""
    assert sorted_values and 0.0 <= q <= 1.0
    position = (len(sorted_values) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def distribution(values: Sequence[float | None],
                 band: tuple[float, float] = ASSUMED_SLIPPAGE_BPS) -> Distribution:
    data = sorted(v for v in values if v is not None)
    if not data:
        return Distribution(0, None, None, None, None, None, None, None)
    inside = sum(1 for v in data if band[0] <= v <= band[1])
    return Distribution(
        count=len(data), mean=round(statistics.fmean(data), 4), median=round(statistics.median(data), 4),
        p5=round(percentile(data, 0.05), 4), p95=round(percentile(data, 0.95), 4), min=data[0], max=data[-1],
        within_assumed_band=round(inside / len(data), 4),
    )


@dataclass(frozen=True, slots=True)
class FillRate:
    order_kind: str
    orders: int
    filled: int  # orders with at least one execution
    fill_rate: float


def fill_rates(orders: Sequence[OrderRow], fills: Sequence[FillRow]) -> list[FillRate]:
    filled = {f.client_order_id for f in fills}
    by_kind: dict[str, list[OrderRow]] = {}
    for order in orders:
        by_kind.setdefault(order.order_kind, []).append(order)
    out = []
    for kind, rows in sorted(by_kind.items()):
        n_filled = sum(1 for o in rows if o.client_order_id in filled)
        out.append(FillRate(kind, len(rows), n_filled, round(n_filled / len(rows), 4)))
    return out


@dataclass(frozen=True, slots=True)
class EquityPoint:
    ts_ns: int
    simulated_usd: Decimal
    reference_usd: Decimal  # the same fills at the next bar's open: what a bar backtest would have booked


def equity_curves(drifts: Sequence[FillDrift], bars: dict[str, list[Bar]], start_cash_usd: Decimal,
                  bar_ns: int) -> list[EquityPoint]:
    """Cash + positions marked at each bar close, once with the simulated prices, once with the references."""
    events = sorted(drifts, key=lambda d: (d.fill.ts_ns, d.fill.client_order_id))
    closes = sorted({(b.ts_ns + bar_ns, symbol, b.close) for symbol, series in bars.items() for b in series})
    cash_sim = cash_ref = start_cash_usd
    position: dict[str, Decimal] = {}
    mark: dict[str, Decimal] = {}
    out: list[EquityPoint] = []
    i = 0
    for ts_ns, symbol, close in closes:
        while i < len(events) and events[i].fill.ts_ns <= ts_ns:
            drift = events[i]
            fill = drift.fill
            signed = Decimal(fill.qty) if fill.side == "buy" else -Decimal(fill.qty)
            reference = drift.next_open if drift.next_open is not None else fill.price
            cash_sim -= signed * fill.price
            cash_ref -= signed * reference
            position[fill.symbol] = position.get(fill.symbol, Decimal(0)) + signed
            i += 1
        mark[symbol] = close
        held = sum((q * mark.get(s, Decimal(0)) for s, q in sorted(position.items())), Decimal(0))
        if out and out[-1].ts_ns == ts_ns:
            out.pop()  # one point per instant, after every symbol's close at it
        out.append(EquityPoint(ts_ns, cash_sim + held, cash_ref + held))
    return out


@dataclass
class DriftReport:
    scenario: str
    seed: int
    agent: str
    days: int
    start_equity_usd: str
    engine_end_equity_usd: str  # the run's own report (venue account at the end)
    simulated_end_equity_usd: str  # rebuilt here from fills and bar closes
    reference_end_equity_usd: str
    drift_usd: str  # simulated - reference: what the microstructure cost against a next-open backtest
    orders: int
    fills: int
    fills_without_reference: int
    slippage_vs_decision_mid_bps: Distribution
    slippage_vs_next_open_bps: Distribution
    slippage_vs_next_vwap_bps: Distribution
    fill_rates: list[FillRate]
    cent_bps_at_median_price: float | None  # the price grid alone: a one-tick miss costs this much
    assumed_slippage_bps: tuple[float, float] = ASSUMED_SLIPPAGE_BPS
    invariant_violations: list[str] = field(default_factory=list)
    drifts: list[FillDrift] = field(default_factory=list, repr=False)
    curve: list[EquityPoint] = field(default_factory=list, repr=False)


def cent_bps(fills: Sequence[FillRow]) -> float | None:
    """One cent in bps of the median fill price: the tick size alone can exceed a 0.5-2 bps assumption."""
    if not fills:
        return None
    median = statistics.median(f.price for f in fills)
    return round(float(Decimal("0.01") / median * 10_000), 4)


def build_drift_report(*, scenario: Scenario, seed: int, agent: str, run: Report, orders: Sequence[OrderRow],
                       fills: Sequence[FillRow], bars: dict[str, list[Bar]]) -> DriftReport:
    ordered = {s: sorted(series, key=lambda b: b.ts_ns) for s, series in sorted(bars.items())}
    drifts = [drift_for(f, ordered.get(f.symbol, [])) for f in fills]
    bar_ns = max(60, scenario.session.bar_interval_s) * NS
    start = Decimal(scenario.account.cash_usd)
    curve = equity_curves(drifts, ordered, start, bar_ns)
    sim_end = curve[-1].simulated_usd if curve else start
    ref_end = curve[-1].reference_usd if curve else start
    cent = Decimal("0.01")
    return DriftReport(
        scenario=scenario.name, seed=seed, agent=agent, days=scenario.session.days,
        start_equity_usd=str(start), engine_end_equity_usd=run.equity_end_usd,
        simulated_end_equity_usd=str(sim_end.quantize(cent)),
        reference_end_equity_usd=str(ref_end.quantize(cent)),
        drift_usd=str((sim_end - ref_end).quantize(cent)), orders=len(orders), fills=len(fills),
        fills_without_reference=sum(1 for d in drifts if d.next_open is None),
        slippage_vs_decision_mid_bps=distribution([f.slippage_vs_mid_bps for f in fills]),
        slippage_vs_next_open_bps=distribution([d.slippage_vs_next_open_bps for d in drifts]),
        slippage_vs_next_vwap_bps=distribution([d.slippage_vs_next_vwap_bps for d in drifts]),
        fill_rates=fill_rates(orders, fills), cent_bps_at_median_price=cent_bps(fills),
        invariant_violations=list(run.invariant_violations),
        drifts=drifts, curve=curve,
    )


# --- output -------------------------------------------------------------------------------------------------


def _fmt(value: object) -> str:
    return "-" if value is None else str(value)


def _utc(ts_ns: int) -> str:
    from core.audit import iso_from_ts_ns

    return iso_from_ts_ns(ts_ns)[:19].replace("T", " ")


def render_markdown(report: DriftReport, *, max_fill_rows: int = 200) -> str:
    band = f"{report.assumed_slippage_bps[0]:g}-{report.assumed_slippage_bps[1]:g} bps"
    lines = [
        f"# Drift report: {report.scenario} (seed {report.seed}, {report.days} day(s), agent {report.agent})",
        "",
        "Simulated fills (fake venue: spread, 0.5-2 bps seeded slippage, passive fill probability) against",
        "what the next bar says would have executed: its open, and its VWAP (volume-weighted (H+L+C)/3 over "
        f"{REFERENCE_BARS} bar).",
        "Slippage is signed: positive = worse than the reference for the order's side.",
        "",
        "## Summary",
        "",
        "| metric | value |",
        "|---|---|",
        f"| orders | {report.orders} |",
        f"| fills | {report.fills} |",
        f"| fills without a next bar | {report.fills_without_reference} |",
        f"| of which bracket-leg fills (no decision mid) | "
        f"{sum(1 for d in report.drifts if d.fill.order_kind == 'bracket_leg')} |",
        f"| start equity (USD) | {report.start_equity_usd} |",
        f"| end equity, engine run (USD) | {report.engine_end_equity_usd} |",
        f"| end equity, rebuilt from fills (USD) | {report.simulated_end_equity_usd} |",
        f"| end equity, fills at next open (USD) | {report.reference_end_equity_usd} |",
        f"| drift: simulated - reference (USD) | {report.drift_usd} |",
        f"| one cent at the median fill price (bps) | {_fmt(report.cent_bps_at_median_price)} |",
        f"| invariant violations | {len(report.invariant_violations)} |",
        "",
        f"## Slippage distribution (bps) vs the {band} assumption",
        "",
        "| reference | n | mean | median | p5 | p95 | min | max | share within assumption |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, dist in (("decision mid (audited)", report.slippage_vs_decision_mid_bps),
                       ("next bar open", report.slippage_vs_next_open_bps),
                       ("next bar VWAP", report.slippage_vs_next_vwap_bps)):
        lines.append(f"| {name} | {dist.count} | {_fmt(dist.mean)} | {_fmt(dist.median)} | {_fmt(dist.p5)} | "
                     f"{_fmt(dist.p95)} | {_fmt(dist.min)} | {_fmt(dist.max)} | "
                     f"{_fmt(dist.within_assumed_band)} |")
    lines += ["", "## Fill rate by order type", "", "| order type/tif | orders | filled | fill rate |",
              "|---|---|---|---|"]
    lines += [f"| {r.order_kind} | {r.orders} | {r.filled} | {r.fill_rate} |" for r in report.fill_rates]
    lines += ["", "## Fills", "",
              "| time (UTC) | symbol | side | qty | kind | fill | decision mid | next open | next VWAP | "
              "slip vs mid | slip vs next open |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in report.drifts[:max_fill_rows]:
        f = d.fill
        lines.append(f"| {_utc(f.ts_ns)} | {f.symbol} | {f.side} | {f.qty} | {f.order_kind} | {f.price} | "
                     f"{_fmt(f.decision_mid)} | {_fmt(d.next_open)} | {_fmt(d.next_vwap)} | "
                     f"{_fmt(f.slippage_vs_mid_bps)} | {_fmt(d.slippage_vs_next_open_bps)} |")
    if len(report.drifts) > max_fill_rows:
        more = len(report.drifts) - max_fill_rows
        lines.append(f"| ... {more} more in drift_report.json | | | | | | | | | | |")
    if report.invariant_violations:
        lines += ["", "## Invariant violations of the run", ""]
        lines += [f"- {v}" for v in report.invariant_violations]
    return "\n".join(lines) + "\n"


def report_json(report: DriftReport) -> bytes:
    data = asdict(report)
    data["drifts"] = [
        {**asdict(d.fill), **{k: v for k, v in asdict(d).items() if k != "fill"}} for d in report.drifts
    ]
    data["curve"] = [asdict(p) for p in report.curve]
    return json.dumps(data, indent=1, sort_keys=True, default=str).encode() + b"\n"


def render_png(report: DriftReport, path: Path) -> None:
    """Equity curve (simulated vs reference), slippage histogram against the assumed band, fill scatter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    ax = axes[0]
    if report.curve:  # plotted in trading time (bar by bar): nights and weekends take no room
        x = np.arange(len(report.curve))
        ax.plot(x, [float(p.simulated_usd) for p in report.curve], label="simulated fills", lw=1.2)
        ax.plot(x, [float(p.reference_usd) for p in report.curve], label="fills at next bar open", lw=1.0,
                ls="--")
        stamps = [_utc(p.ts_ns) for p in report.curve]
        for i in range(1, len(stamps)):
            if stamps[i][:10] != stamps[i - 1][:10]:
                ax.axvline(i, color="grey", lw=0.6, ls=":")
        ticks = np.linspace(0, len(stamps) - 1, min(6, len(stamps))).astype(int)
        ax.set_xticks(ticks, [stamps[i][5:16] for i in ticks], rotation=30, ha="right")
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    ax.set_title("Equity curve (bar by bar, UTC)")
    ax.set_ylabel("USD")
    ax.legend(loc="best", fontsize=8)

    ax = axes[1]
    mid = [d.fill.slippage_vs_mid_bps for d in report.drifts if d.fill.slippage_vs_mid_bps is not None]
    nxt = [d.slippage_vs_next_open_bps for d in report.drifts if d.slippage_vs_next_open_bps is not None]
    values = mid + nxt
    if values:
        bins = np.linspace(min(values) - 0.5, max(values) + 0.5, 30)
        ax.hist(mid, bins=bins, alpha=0.6, label="vs decision mid")
        ax.hist(nxt, bins=bins, alpha=0.6, label="vs next bar open")
    low, high = report.assumed_slippage_bps
    ax.axvspan(low, high, color="green", alpha=0.15, label=f"assumed {low:g}-{high:g} bps")
    ax.set_title("Slippage distribution")
    ax.set_xlabel("bps (positive = worse)")
    ax.set_ylabel("fills")
    ax.legend(loc="best", fontsize=8)

    ax = axes[2]
    pairs = [(float(d.next_open), float(d.fill.price), d.fill.side)
             for d in report.drifts if d.next_open is not None]
    for side, color in (("buy", "tab:blue"), ("sell", "tab:red")):
        xs = [x for x, _, s in pairs if s == side]
        ys = [y for _, y, s in pairs if s == side]
        ax.scatter(xs, ys, s=14, color=color, label=side)
    if pairs:
        lo = min(min(x, y) for x, y, _ in pairs)
        hi = max(max(x, y) for x, y, _ in pairs)
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, label="simulated = reference")
    ax.set_title("Simulated vs reference fill price")
    ax.set_xlabel("next bar open (USD)")
    ax.set_ylabel("simulated fill (USD)")
    ax.legend(loc="best", fontsize=8)
    fig.suptitle(f"{report.scenario} seed {report.seed}: drift {report.drift_usd} USD over {report.fills} "
                 "fills")
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def write_outputs(report: DriftReport, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {kind: out / f"drift_report.{kind}" for kind in ("md", "png", "json")}
    paths["md"].write_text(render_markdown(report), encoding="utf-8")
    paths["json"].write_bytes(report_json(report))
    render_png(report, paths["png"])
    return paths


# --- the whole backtest -------------------------------------------------------------------------------------


@dataclass
class BacktestResult:
    run: Report
    drift: DriftReport
    paths: dict[str, Path]


def run_backtest(scenario: Scenario, *, seed: int | None = None, days: int | None = None, out_dir: str | Path,
                 agent: str = "engine", bars_source: str = "fake", scenario_file: str = "",
                 path: str = "wire") -> BacktestResult:
    """Run the scenario (its own policy through the engine, or a TensorTrade agent through the bridge), then
    compare its fills with the bars and write DIR/drift_report.{md,png,json}; the run itself is in DIR/run.
    ``path``: "wire" (the real Alpaca adapter against the fake) or "ports" (the same venue at the engine's ports,
    ``adapters.ports_venue``; engine agent only; a scenario with wire-only faults raises ``PortsPathError``)."""
    if agent not in AGENTS:
        raise ValueError(f"agent must be one of {AGENTS}, got {agent!r}")
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, got {path!r}")
    if path == "ports" and agent != "engine":
        raise ValueError("the ports path runs the engine agent only")
    if days is not None:
        session = msgspec.structs.replace(scenario.session, days=days)
        scenario = msgspec.structs.replace(scenario, session=session)
    seed = scenario.seed if seed is None else seed
    out = Path(out_dir)
    run_dir = out / "run"
    if agent == "engine":
        run = run_scenario(scenario, seed=seed, out_dir=run_dir, scenario_file=scenario_file,
                           options=WorldOptions(path=path))
    else:
        from sim.bridge_world import run_bridge_scenario

        run, _world = run_bridge_scenario(scenario, seed=seed, out_dir=run_dir, scenario_file=scenario_file)
    orders, fills = read_audit(run_dir / "audit")
    first_open, last_close = session_window_ns(scenario)
    symbols = scenario.engine_config().symbols
    if bars_source == "fake":
        bars = fetch_bars_from_fake(scenario, seed, first_open, last_close)
    elif bars_source == "alpaca":
        bars = fetch_bars_from_alpaca(symbols, first_open, last_close, bars_timeframe(scenario))
    else:
        raise ValueError(f"bars_source must be fake or alpaca, got {bars_source!r}")
    drift = build_drift_report(scenario=scenario, seed=seed, agent=agent, run=run, orders=orders, fills=fills,
                               bars=bars)
    return BacktestResult(run=run, drift=drift, paths=write_outputs(drift, out))
