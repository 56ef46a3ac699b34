"""``ttlive evaluate MODEL``: walk-forward evaluation of a policy through the real engine against the fake venue.

For N replay dates drawn (seeded) from the model's held-out range (its contract's ``training_data.held_out``;
without one, every date after its training data), each date runs as one simulated session: the real bars of
the model's symbols replayed by the fake venue, the whole engine (RiskGuard, kill switch, reconciliation, audit)
at the default risk limits, the policy at its contract's decision interval. The report reads the runs' reports
and audit trails only and states, per date and over all of them: P&L (against a passive benchmark sized like the
policy's maximum position), turnover and orders per day, halts by trigger, and the fills' slippage against the
0.5-2 bps the training execution model assumes. OUT/evaluation.md, .json and (matplotlib installed) .png; each
date's scenario is kept in OUT/scenarios/ so ``ttlive sim`` replays it.
"""

from __future__ import annotations

import concurrent.futures
import csv
import datetime as dt
import json
import random
import shutil
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

ASSUMED_SLIPPAGE_BPS: Final = (0.5, 2.0)  # the training execution model's seeded slippage band (spec 5.2)
START_CASH_USD: Final = "100000"
WARM_UP_DAYS: Final = 130  # trading days of data a date needs before it (correlation window + feature warm-up)
SECTORS: Final = {"NVDA": "semiconductors", "ORCL": "software", "YHOO": "internet"}
RANDOM_LABEL: Final = "ttlive-evaluate"


class EvaluateError(ValueError):
    """Bad input for an evaluation (exit 2): an unknown model, symbols without data, too few eligible dates."""


# --- what runs ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    model: str  # "default" or a model directory
    model_id: str
    symbols: tuple[str, ...]
    dates: tuple[str, ...]
    seed: int
    decision_interval_s: float
    date_range: tuple[str, str]
    precision: str = "fp32"
    training_costs: str = "1 bps half spread + 0.5-2 bps slippage per fill"  # what the model's training priced


def _daily(symbol: str) -> dict[str, tuple[float, float]]:
    """date -> (open, close) of the symbol's daily market file."""
    from adapters.fake.market import KNOWN_FILES, market_data_dir

    name = KNOWN_FILES.get(symbol)
    if name is None or not (market_data_dir() / name).is_file():
        raise EvaluateError(f"no daily market file for {symbol} (known: NVDA, ORCL, YHOO)")
    out: dict[str, tuple[float, float]] = {}
    with open(market_data_dir() / name, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            out[row["Date"]] = (float(row["Open"]), float(row["Close"]))
    return out


def plan(model: str, *, dates: int, seed: int, symbols: tuple[str, ...] | None = None,
         precision: str = "fp32") -> Plan:
    """The model's contract decides the symbols (unless given), the decision interval and the date range."""
    from adapters.fake.calendar import NyseCalendar
    from adapters.policy.contract import ContractError, load_contract
    from adapters.policy.onnx_policy import load_model_metadata, resolve_model_dir

    try:
        contract = load_contract(model)
        meta = load_model_metadata(resolve_model_dir(model))
        model_id = str(meta["model_id"])
    except (ContractError, OSError, ValueError) as exc:
        raise EvaluateError(str(exc)) from None
    chosen = tuple(symbols) if symbols else tuple(contract.symbols)
    daily = {s: _daily(s) for s in chosen}
    held = contract.training_data.held_out
    first = held[0] if held else (dt.date.fromisoformat(contract.training_data.last)
                                  + dt.timedelta(days=1)).isoformat()
    last = held[1] if len(held) > 1 else "2099-12-31"
    calendar = NyseCalendar()
    eligible = []
    for i in range(len(calendar)):
        date = calendar.session(i)[0]
        if not first <= date <= last:
            continue
        if all(date in d and sum(1 for k in d if k < date) >= WARM_UP_DAYS for d in daily.values()):
            eligible.append(date)
    if len(eligible) < dates:
        raise EvaluateError(f"only {len(eligible)} dates with data for {', '.join(chosen)} in {first} .. {last}, "
                            f"asked for {dates}")
    picked = sorted(random.Random(f"{RANDOM_LABEL}-dates:{seed}").sample(eligible, dates))
    return Plan(model=model, model_id=model_id, symbols=chosen, dates=tuple(picked), seed=seed,
                decision_interval_s=contract.decision_interval_s, date_range=(eligible[0], eligible[-1]),
                precision=precision, training_costs=training_costs(meta))


def training_costs(meta: dict[str, Any]) -> str:
    """The costs the model's training execution model priced, in words (model.json ``training``)."""
    execution = meta.get("training", {}).get("execution_model", {})
    low, high = execution.get("slippage_bps_min", "0.5"), execution.get("slippage_bps_max", "2.0")
    slip = f"{float(low):g}-{float(high):g} bps slippage per market fill"
    if float(execution.get("tick_usd", "0") or 0) > 0:
        return f"the venue's whole-cent touch (at least half a cent each side) + {slip}"
    return f"{float(execution.get('half_spread_bps', '1') or 1):g} bps half spread + {slip}"


def date_seed(seed: int, date: str) -> int:
    return random.Random(f"{RANDOM_LABEL}:{seed}:{date}").randrange(1, 1_000_000)


def scenario_text(p: Plan, date: str) -> str:
    """One date as a scenario file (``ttlive sim`` replays it; the policy's interval is the contract's)."""
    from adapters.fake.market import KNOWN_FILES

    instruments = "".join(f'[[instruments]]\nsymbol = "{s}"\nsector = "{SECTORS.get(s, s.lower())}"\n'
                          for s in p.symbols)
    files = ", ".join(f'{s} = "{KNOWN_FILES[s]}"' for s in p.symbols)
    model = "default" if Path(p.model).is_absolute() else p.model  # an absolute dir: set after parsing
    return (
        "schema_version = 1\n"
        f'name = "evaluate_{date.replace("-", "_")}"\n'
        f'description = "ttlive evaluate: {p.model_id} on {date} (seed {p.seed})"\n'
        f"seed = {date_seed(p.seed, date)}\n\n"
        f'[session]\nstart = "{date}"\ndays = 1\nbar_interval_s = 60\n\n'
        f'[account]\ntype = "margin_initial"\ncash_usd = "{START_CASH_USD}"\n\n'
        f"{instruments}\n"
        f'[market]\nsource = "replay"\nfiles = {{ {files} }}\n\n'
        f'[policy]\nkind = "onnx"\nmodel = "{model}"  # evaluated model: {p.model}\nprecision = "{p.precision}"\n'
        "# decision_interval_s unset: the model contract's\n"
    )


# --- one date ---------------------------------------------------------------------------------------------------


@dataclass
class DayResult:
    date: str
    seed: int
    pnl_usd: float
    return_bps: float
    benchmark_pnl_usd: float  # each symbol held at the max position (5% of equity) from open to close
    orders: int
    fills: int
    turnover: float  # traded notional / start equity
    halted: bool
    kill_trigger: str
    halt_alerts: dict[str, int]
    max_drawdown_pct: float
    slippage_bps: list[float] = field(default_factory=list)  # audited, vs the decision mid, per fill
    slippage_by_kind: dict[str, list[float]] = field(default_factory=dict)  # "market/day", "limit/gtc", ...
    invariant_violations: list[str] = field(default_factory=list)
    wall_s: float = 0.0


def run_date(p: Plan, date: str, scenario_dir: str, runs_dir: str) -> DayResult:
    """Run one date through the engine against the fake (sim.world.run_scenario) and read its records."""
    import msgspec

    from core.audit import is_submission
    from core.limits import MAX_POSITION_FRACTION
    from sim.invariants import audit_records
    from sim.scenario import parse_scenario
    from sim.world import run_scenario

    text = scenario_text(p, date)
    path = Path(scenario_dir) / f"{date}.toml"
    path.write_text(text, encoding="utf-8")
    scenario = parse_scenario(text, source=str(path))
    if scenario.policy.model != p.model:
        scenario = msgspec.structs.replace(scenario, policy=msgspec.structs.replace(scenario.policy, model=p.model))
    out = Path(runs_dir) / date
    report = run_scenario(scenario, out_dir=out, scenario_file=str(path))
    start, end = float(report.equity_start_usd), float(report.equity_end_usd)
    fills = audit_records(out / "audit", "fills")
    notional = sum(float(f["quantity"]) * float(f["execution_price"]) for f in fills)
    slippage = [float(f["slippage_bps"]) for f in fills if f.get("slippage_bps") is not None]
    kinds = {str(r["extra"]["client_order_id"]): f"{r['extra']['type']}/{r['extra']['time_in_force']}"
             for r in audit_records(out / "audit", "orders") if is_submission(r["event_type"], r["extra"])}
    by_kind: dict[str, list[float]] = {}
    for f in fills:
        if f.get("slippage_bps") is not None:
            kind = kinds.get(str(f["extra"].get("client_order_id") or ""), "bracket_leg")
            by_kind.setdefault(kind, []).append(float(f["slippage_bps"]))
    benchmark = 0.0
    for symbol in p.symbols:
        day_open, day_close = _daily(symbol)[date]
        benchmark += start * float(MAX_POSITION_FRACTION) * (day_close / day_open - 1.0)
    return DayResult(
        date=date, seed=scenario.seed, pnl_usd=round(end - start, 2),
        return_bps=round((end - start) / start * 10_000, 3), benchmark_pnl_usd=round(benchmark, 2),
        orders=report.orders_submitted, fills=report.fills, turnover=round(notional / start, 4),
        halted=report.halted, kill_trigger=report.kill_trigger,
        halt_alerts={k: v for k, v in sorted(report.alerts.items()) if k.startswith("halt.")},
        max_drawdown_pct=float(report.max_drawdown_pct), slippage_bps=slippage,
        slippage_by_kind=dict(sorted(by_kind.items())),
        invariant_violations=list(report.invariant_violations), wall_s=round(report.wall_seconds, 1),
    )


# --- all of them ------------------------------------------------------------------------------------------------


def _summary(values: list[float]) -> dict[str, float | None]:
    from tools.backtest import percentile

    data = sorted(values)
    if not data:
        return {"n": 0, "mean": None, "min": None, "p25": None, "median": None, "p75": None, "max": None}
    return {"n": len(data), "mean": round(statistics.fmean(data), 4), "min": data[0],
            "p25": round(percentile(data, 0.25), 4), "median": round(statistics.median(data), 4),
            "p75": round(percentile(data, 0.75), 4), "max": data[-1]}


@dataclass
class Evaluation:
    plan: Plan
    days: list[DayResult]

    def aggregate(self) -> dict[str, Any]:
        from tools.backtest import distribution

        pnl = [d.pnl_usd for d in self.days]
        bench = [d.benchmark_pnl_usd for d in self.days]
        slippage = [s for d in self.days for s in d.slippage_bps]
        triggers = Counter(d.kill_trigger for d in self.days if d.halted)
        std = statistics.stdev(pnl) if len(pnl) > 1 else 0.0
        return {
            "days": len(self.days),
            "total_pnl_usd": round(sum(pnl), 2),
            "total_benchmark_pnl_usd": round(sum(bench), 2),
            "days_beating_benchmark": sum(1 for d in self.days if d.pnl_usd > d.benchmark_pnl_usd),
            "winning_days": sum(1 for p in pnl if p > 0),
            "daily_pnl_usd": _summary(pnl),
            "daily_pnl_std_usd": round(std, 2),
            "annualised_sharpe_of_daily_pnl": round(statistics.fmean(pnl) / std * 252 ** 0.5, 3) if std else None,
            "orders_per_day": _summary([float(d.orders) for d in self.days]),
            "fills_per_day": _summary([float(d.fills) for d in self.days]),
            "turnover_per_day": _summary([d.turnover for d in self.days]),
            "halted_days": sum(1 for d in self.days if d.halted),
            "halts_by_trigger": dict(sorted(triggers.items())),
            "halt_alerts": dict(sorted(sum((Counter(d.halt_alerts) for d in self.days), Counter()).items())),
            "slippage_vs_decision_mid_bps": asdict(distribution(slippage, ASSUMED_SLIPPAGE_BPS)),
            "slippage_by_order_kind_bps": {
                kind: asdict(distribution([v for d in self.days for v in d.slippage_by_kind.get(kind, [])],
                                          ASSUMED_SLIPPAGE_BPS))
                for kind in sorted({k for d in self.days for k in d.slippage_by_kind})},
            "assumed_slippage_bps": list(ASSUMED_SLIPPAGE_BPS),
            "invariant_violations": sum(len(d.invariant_violations) for d in self.days),
        }


def evaluate(p: Plan, out: Path, *, workers: int = 1, runs_dir: Path | None = None,
             log: Any = print) -> Evaluation:
    scenario_dir = out / "scenarios"
    runs = runs_dir if runs_dir is not None else out / "runs"
    scenario_dir.mkdir(parents=True, exist_ok=True)
    runs.mkdir(parents=True, exist_ok=True)
    days: list[DayResult] = []
    if workers <= 1:
        for i, date in enumerate(p.dates, 1):
            day = run_date(p, date, str(scenario_dir), str(runs))
            log(f"[{i}/{len(p.dates)}] {date}: P&L {day.pnl_usd:+.2f} USD, {day.orders} orders, "
                f"{day.fills} fills{', HALTED ' + day.kill_trigger if day.halted else ''} ({day.wall_s:g} s)")
            days.append(day)
    else:
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(run_date, p, d, str(scenario_dir), str(runs)): d for d in p.dates}
            for future in concurrent.futures.as_completed(futures):
                day = future.result()
                log(f"{day.date}: P&L {day.pnl_usd:+.2f} USD, {day.orders} orders, {day.fills} fills")
                days.append(day)
    days.sort(key=lambda d: d.date)
    return Evaluation(p, days)


# --- the report -------------------------------------------------------------------------------------------------


def _fmt(value: object) -> str:
    return "-" if value is None else str(value)


def render_markdown(ev: Evaluation) -> str:
    p, agg = ev.plan, ev.aggregate()
    slip = agg["slippage_vs_decision_mid_bps"]
    low, high = ASSUMED_SLIPPAGE_BPS
    lines = [
        f"# Walk-forward evaluation: {p.model_id}",
        "",
        f"`ttlive evaluate {p.model} --dates {len(p.dates)} --seed {p.seed}`: {len(p.dates)} NYSE sessions drawn "
        f"(seeded) from {p.date_range[0]} .. {p.date_range[1]} (the model's held-out range), each replayed by the "
        f"fake venue on the real daily bars of {', '.join(p.symbols)} (intraday paths generated from them) and "
        f"traded by the whole engine at the default risk limits, ${START_CASH_USD} start, the policy at "
        f"{p.precision.upper()} deciding every {p.decision_interval_s:g} s (its contract). Benchmark: each symbol "
        "held at the maximum position (5% of equity) from the open to the close, no costs.",
        "",
        "## Summary",
        "",
        "| metric | value |",
        "|---|---|",
        f"| total P&L (USD) | {agg['total_pnl_usd']:+.2f} |",
        f"| total benchmark P&L (USD) | {agg['total_benchmark_pnl_usd']:+.2f} |",
        f"| days beating the benchmark | {agg['days_beating_benchmark']} of {agg['days']} |",
        f"| winning days | {agg['winning_days']} of {agg['days']} |",
        f"| daily P&L mean / median / std (USD) | {agg['daily_pnl_usd']['mean']} / "
        f"{agg['daily_pnl_usd']['median']} / {agg['daily_pnl_std_usd']} |",
        f"| annualised Sharpe of daily P&L ({agg['days']} days: mostly noise) | "
        f"{_fmt(agg['annualised_sharpe_of_daily_pnl'])} |",
        f"| orders per day min / median / max | {agg['orders_per_day']['min']:g} / "
        f"{agg['orders_per_day']['median']:g} / {agg['orders_per_day']['max']:g} |",
        f"| turnover per day (x equity) median / max | {agg['turnover_per_day']['median']} / "
        f"{agg['turnover_per_day']['max']} |",
        f"| halted days | {agg['halted_days']} |",
        f"| halts by trigger | {', '.join(f'{k}: {v}' for k, v in agg['halts_by_trigger'].items()) or 'none'} |",
        f"| fills | {slip['count']} |",
        f"| slippage vs decision mid (bps) mean / median / p5 / p95 | {_fmt(slip['mean'])} / {_fmt(slip['median'])}"
        f" / {_fmt(slip['p5'])} / {_fmt(slip['p95'])} |",
        f"| share of fills within the assumed {low:g}-{high:g} bps | {_fmt(slip['within_assumed_band'])} |",
        f"| invariant violations | {agg['invariant_violations']} |",
        "",
        "Slippage is signed (positive = worse than the mid when the order was planned) and includes the half "
        f"spread a marketable order crosses; training priced {p.training_costs}.",
        "",
        "| order kind | fills | mean | median | p5 | p95 | within the band |",
        "|---|---|---|---|---|---|---|",
        *[f"| {kind} | {d['count']} | {_fmt(d['mean'])} | {_fmt(d['median'])} | {_fmt(d['p5'])} | {_fmt(d['p95'])} "
          f"| {_fmt(d['within_assumed_band'])} |" for kind, d in agg["slippage_by_order_kind_bps"].items()],
        "",
        "## Per date",
        "",
        "| date | P&L (USD) | bps | benchmark (USD) | orders | fills | turnover | halted | median slip (bps) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for d in ev.days:
        med = round(statistics.median(d.slippage_bps), 3) if d.slippage_bps else None
        lines.append(f"| {d.date} | {d.pnl_usd:+.2f} | {d.return_bps:+.2f} | {d.benchmark_pnl_usd:+.2f} | "
                     f"{d.orders} | {d.fills} | {d.turnover} | {d.kill_trigger if d.halted else '-'} | "
                     f"{_fmt(med)} |")
    lines += ["", "Replay one date: `ttlive sim OUT/scenarios/DATE.toml` (seeds in evaluation.json).", ""]
    return "\n".join(lines)


def report_json(ev: Evaluation) -> bytes:
    data = {"plan": asdict(ev.plan), "aggregate": ev.aggregate(), "days": [asdict(d) for d in ev.days]}
    return json.dumps(data, indent=1, sort_keys=True, default=str).encode() + b"\n"


def render_png(ev: Evaluation, path: Path) -> bool:
    """Daily P&L vs benchmark, cumulative P&L, orders per day, slippage against the band. False: no matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(2, 2, figsize=(13, 8))
    x = np.arange(len(ev.days))
    labels = [d.date for d in ev.days]
    ax = axes[0][0]
    ax.bar(x - 0.2, [d.pnl_usd for d in ev.days], width=0.4, label="policy")
    ax.bar(x + 0.2, [d.benchmark_pnl_usd for d in ev.days], width=0.4, label="benchmark (5%/symbol, open->close)")
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_title("P&L per date (USD)")
    ax.legend(fontsize=8)
    ax = axes[0][1]
    ax.plot(x, np.cumsum([d.pnl_usd for d in ev.days]), marker="o", label="policy")
    ax.plot(x, np.cumsum([d.benchmark_pnl_usd for d in ev.days]), marker=".", ls="--", label="benchmark")
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
    ax.set_title("Cumulative P&L over the evaluated dates (USD)")
    ax.legend(fontsize=8)
    ax = axes[1][0]
    ax.hist([d.orders for d in ev.days], bins=min(15, max(3, len(ev.days))))
    ax.set_title("Orders per day")
    ax.set_xlabel("orders")
    ax.set_ylabel("dates")
    ax = axes[1][1]
    slippage = [s for d in ev.days for s in d.slippage_bps]
    if slippage:
        ax.hist(slippage, bins=40)
    low, high = ASSUMED_SLIPPAGE_BPS
    ax.axvspan(low, high, color="green", alpha=0.15, label=f"assumed {low:g}-{high:g} bps")
    ax.set_title("Slippage vs decision mid (bps, + = worse)")
    ax.legend(fontsize=8)
    fig.suptitle(f"ttlive evaluate {ev.plan.model_id}: {len(ev.days)} dates, seed {ev.plan.seed}")
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return True


def write_report(ev: Evaluation, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / "evaluation.md", "json": out / "evaluation.json"}
    paths["md"].write_text(render_markdown(ev), encoding="utf-8")
    paths["json"].write_bytes(report_json(ev))
    png = out / "evaluation.png"
    if render_png(ev, png):
        paths["png"] = png
    return paths


def drop_runs(runs: Path) -> None:
    shutil.rmtree(runs, ignore_errors=True)
