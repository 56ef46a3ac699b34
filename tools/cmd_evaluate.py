"""``ttlive evaluate MODEL``: walk-forward evaluation through the real engine against the fake venue over N
seeded replay dates from the model's held-out range; writes OUT/evaluation.{md,json,png} (tools/evaluate.py).

MODEL is ``default`` (the shipped policy) or a model directory written by ``ttlive train``. Judge your own policy
here before ``ttlive preflight`` and paper. Exit status: 0 done (every run's invariants held), 1 a run broke an
invariant, 2 bad input (unknown model, no contract, symbols without data, too few dates).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _symbols(text: str) -> tuple[str, ...]:
    symbols = tuple(s.strip().upper() for s in text.split(",") if s.strip())
    if not symbols:
        raise argparse.ArgumentTypeError("give at least one symbol, e.g. NVDA,ORCL")
    return symbols


def register(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="walk-forward evaluation of a policy through the engine against the fake",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="'default' or a model directory (model.json with a contract)")
    p.add_argument("--dates", type=_positive, default=20, help="replay dates (default 20)")
    p.add_argument("--seed", type=int, default=1, help="seed of the date choice and of each run (default 1)")
    p.add_argument("--symbols", type=_symbols, default=None, help="comma list (default: the model's symbols)")
    p.add_argument("--precision", choices=("fp32", "int8"), default="fp32")
    p.add_argument("--out", type=Path, default=None, help="report directory (default runs/evaluate/<model id>)")
    p.add_argument("--runs-dir", type=Path, default=None, help="where each date's run goes (default OUT/runs)")
    p.add_argument("--workers", type=_positive, default=1, help="processes (default 1: CPU is shared)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from tools.evaluate import EvaluateError, evaluate, plan, write_report

    logging.getLogger().setLevel(logging.ERROR)  # the runs' own warnings are in their audit trails

    try:
        chosen = plan(args.model, dates=args.dates, seed=args.seed, symbols=args.symbols, precision=args.precision)
    except EvaluateError as exc:
        print(f"ttlive evaluate: {exc}", file=sys.stderr)
        return 2
    out = args.out if args.out is not None else Path("runs") / "evaluate" / chosen.model_id
    print(f"evaluating {chosen.model_id} on {len(chosen.dates)} dates ({chosen.dates[0]} .. {chosen.dates[-1]}), "
          f"{', '.join(chosen.symbols)}, every {chosen.decision_interval_s:g} s; {args.workers} worker(s)",
          flush=True)
    ev = evaluate(chosen, out, workers=args.workers, runs_dir=args.runs_dir,
                  log=lambda line: print(line, flush=True))
    paths = write_report(ev, out)
    agg = ev.aggregate()
    print(f"total P&L {agg['total_pnl_usd']:+.2f} USD (benchmark {agg['total_benchmark_pnl_usd']:+.2f}), "
          f"{agg['halted_days']} halted day(s), {agg['invariant_violations']} invariant violation(s)")
    for path in paths.values():
        print(f"report: {path}")
    return 0 if agg["invariant_violations"] == 0 else 1
