"""`ttlive swarm --runs N | --minutes M [--seed S] [--workers W] [--backend local|ray] --out DIR`: swarm testing.

Run i generates a whole random world from the seed derive(S, i) (session, symbols, account, policy, limits and a
random subset of every fault), writes it to OUT/worlds/<name>.toml and runs it; only the always-on invariants
judge it. A failure is printed with its replay command as soon as it is seen, then shrunk to
OUT/worlds/<name>.min.toml. The summary counts what the runs exercised; OUT/swarm.json has it all.

Exit status: 0 every run passed, 1 a run failed, 2 bad input, 130 stopped by Ctrl-C (the runs in flight finish).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tools.exitcodes import EXIT_INTERRUPTED


def register(sub: Any) -> None:
    p = sub.add_parser("swarm", help="swarm testing: every run a randomly generated world, failures replayable",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--runs", type=int, default=None, help="number of worlds to run")
    budget.add_argument("--minutes", type=float, default=None, help="run worlds for this long (wall clock)")
    p.add_argument("--seed", type=int, default=1, help="the swarm's seed (default 1): run i uses derive(S, i)")
    p.add_argument("--workers", type=int, default=2, help="processes (or Ray CPUs for a local instance)")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local process pool, or Ray ($RAY_ADDRESS names an existing cluster)")
    p.add_argument("--out", required=True, help="output directory: worlds/, runs/ (failing runs), swarm.json")
    p.add_argument("--stop-on-failure", action="store_true", help="submit no more runs after the first failure")
    p.add_argument("--no-shrink", action="store_true", help="do not minimise failing worlds")
    p.add_argument("--keep", action="store_true", help="keep every run's report and audit (default: failing only)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--incident", type=Path, default=None,
                   help="seed every world with this recorded incident (a ttlive replay --to-scenario file)")
    p.add_argument("--break", dest="breakage", choices=("halt_gate",), default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from sim.swarm import SwarmSpec, run_swarm, validate

    spec = SwarmSpec(out=Path(args.out), seed=args.seed, runs=args.runs, minutes=args.minutes, workers=args.workers,
                     backend=args.backend, stop_on_failure=args.stop_on_failure, shrink=not args.no_shrink,
                     keep=args.keep, breakage=args.breakage, incident=args.incident)
    try:
        validate(spec)
    except ValueError as exc:
        print(f"ttlive swarm: {exc}", file=sys.stderr)
        return 2
    console = Console()
    try:
        summary = _run_with_progress(spec, console, quiet=args.quiet, run_swarm=run_swarm)
    except ImportError as exc:  # --backend ray without the extra
        print(f"ttlive swarm: {exc}", file=sys.stderr)
        return 2
    print_summary(summary, console)
    console.print(f"summary: {spec.out / 'swarm.json'}", soft_wrap=True)
    if summary["interrupted"]:
        return EXIT_INTERRUPTED
    return 1 if summary["failed"] else 0


def _run_with_progress(spec: Any, console: Any, *, quiet: bool, run_swarm: Any) -> dict[str, Any]:
    """The swarm under a progress bar; failures and shrunk worlds are printed as they come (soft_wrap: a command
    is copied from the terminal, so it is never broken across lines)."""
    from rich.progress import Progress

    with Progress(console=console, disable=quiet or not console.is_terminal) as bar:
        task = bar.add_task(f"swarm ({spec.workers} workers, {spec.backend})", total=spec.runs)

        def on_outcome(outcome: dict[str, Any]) -> None:
            bar.advance(task)
            if not outcome["ok"]:
                console.print(f"[red]FAILED[/red] {outcome['name']}: {outcome['violations'][0]}", soft_wrap=True)
                console.print(f"  replay: {outcome['replay']}", soft_wrap=True)

        def on_shrunk(result: dict[str, Any]) -> None:
            console.print(f"shrunk {result['name']} in {result['runs']} runs to {result['events']} events, "
                          f"{result['symbols']} symbols, {result['days']} day(s)", soft_wrap=True)
            console.print(f"  replay: {result['replay']}", soft_wrap=True)

        summary: dict[str, Any] = run_swarm(spec, on_outcome=on_outcome, on_shrunk=on_shrunk)
        return summary


def print_summary(summary: dict[str, Any], console: Any) -> None:
    """What the runs exercised: a swarm that halted nothing, retried nothing and reconnected nothing tested little."""
    from rich.table import Table

    head = Table(title=f"swarm: {summary['runs']} runs, {summary['failed']} failed", show_header=False)
    head.add_row("runs/hour", f"{summary['runs_per_hour']:.0f}")
    head.add_row("wall seconds", f"{summary['wall_seconds']:.1f}")
    head.add_row("halted at the end", str(summary["halted"]))
    for trigger, n in summary["halts"].items():
        head.add_row(f"kill switch: {trigger}", str(n))
    console.print(head)
    table = Table(title="exercised")
    for col in ("counter", "total", "runs"):
        table.add_column(col)
    for key, total in summary["counters"].items():
        table.add_row(key, f"{total:g}", str(summary["runs_with"][key]))
    for key, entry in summary["coverage"].items():
        table.add_row(f"coverage.{key}", str(entry["total"]), str(entry["runs"]))
    console.print(table)
    console.print(f"reproduce: {summary['command']}", soft_wrap=True)
