"""`ttlive sim SCENARIO.toml [--seed N] [--out DIR]` and `ttlive sim --seeds 1..500 SCENARIO...` (a sweep).

`--path ports` runs the engine on the fake venue at its ports (no wire: adapters.ports_venue), for bulk runs;
scenarios with faults that only exist on the wire are refused there (exit 2).

Exit status: 0 every invariant and expectation held, 1 one failed (the replay command is printed), 2 bad input,
130 a sweep stopped by Ctrl-C (the runs in flight finish; what finished is summarized in OUT/sweep.json).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

from core.config import ConfigError
from tools.exitcodes import EXIT_INTERRUPTED

INTERRUPTED_MESSAGE = "interrupted: finishing the runs in flight, dropping the queued ones"


def parse_seeds(text: str) -> list[int]:
    """"7", "1..500", "1,2,5..9" -> seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:\.\.\s*(\d+)\s*)?", part)
        if match is None:
            raise argparse.ArgumentTypeError(f"bad seed list {text!r}: use N, A..B or a comma list")
        lo = int(match[1])
        hi = int(match[2]) if match[2] else lo
        if hi < lo or hi - lo > 100_000:
            raise argparse.ArgumentTypeError(f"bad seed range {part!r}")
        seeds.extend(range(lo, hi + 1))
    return seeds


def claim_out(args: argparse.Namespace) -> str | None:
    """Settle ``--out`` (default runs/sim/<scenario>, ours to replace; runs/sweep for a sweep) and check a single
    run may use it (``adapters.rundir``); returns the refusal, or None. A sweep's per-seed dirs are its own."""
    from adapters.rundir import RunDirError, claim

    given = args.out is not None
    if not given:
        args.out = "runs/sweep" if args.seeds is not None else str(Path("runs/sim") / Path(args.scenarios[0]).stem)
    if args.seeds is not None:
        return None
    try:
        claim(Path(args.out), "sim", replace=args.fresh or not given).release()
    except RunDirError as exc:
        return str(exc)
    return None


def register(sub: Any) -> None:
    p = sub.add_parser("sim", help="run a simulated trading session (or a seed sweep) against the fake venue",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenarios", nargs="+", metavar="SCENARIO.toml")
    p.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    p.add_argument("--seeds", type=parse_seeds, default=None, help="sweep seeds, e.g. 1..500")
    p.add_argument("--out", default=None, help="output directory (default runs/sim/<scenario>; a sweep: runs/sweep)")
    p.add_argument("--fresh", action="store_true", help="replace an earlier sim run in --out (never a paper/live one)")
    from tools.cmd_audit import positive_int

    p.add_argument("--workers", type=positive_int, default=max(1, (os.cpu_count() or 2)), help="sweep processes")
    p.add_argument("--backend", choices=("local", "ray"), default="local", help="sweep backend")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--path", choices=("wire", "ports"), default="wire",
                   help="wire (default): through the real Alpaca adapter; ports: the same venue at the engine's "
                        "ports, no wire (bulk runs; wire-only faults refused)")
    from tools.cmd_run import add_contract_override

    add_contract_override(p)
    p.set_defaults(func=run)


def _load(path: str) -> Any:
    from sim.scenario import load_scenario

    return load_scenario(path)


def _world_options(args: argparse.Namespace) -> dict[str, Any]:
    return {} if args.path == "wire" else {"path": args.path}


def _check_path(args: argparse.Namespace) -> str | None:
    """On the ports path, every scenario's faults must exist without a wire: the refusal, or None."""
    if args.path != "ports":
        return None
    from adapters.fake.faults import FaultPlan
    from adapters.ports_venue import PortsPathError, check_plan

    for path in args.scenarios:
        try:
            check_plan(FaultPlan.from_toml_dict(_load(path).faults))
        except PortsPathError as exc:
            return f"{path}: {exc}"
    return None


def _run_with_bar(path: str, seed: int | None, out: str, world_options: dict[str, Any]) -> dict[str, Any]:
    """One run in this process with a transient progress bar on the terminal."""
    from rich.progress import Progress

    from sim.sweep import run_one

    with Progress(transient=True) as bar:
        task = bar.add_task(f"{_load(path).name}", total=1)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return run_one(path, seed, out, progress=tick, world_options=world_options)


def print_summary(report: dict[str, Any], out: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"{report['scenario']} (seed {report['seed']})", show_header=False)
    for key in ("orders_submitted", "venue_orders", "fills", "halted", "kill_trigger", "positions",
                "venue_positions", "equity_end_usd", "max_drawdown_pct", "reconnects", "rest_retries",
                "trace_sha256", "audit_sha256", "sim_seconds", "wall_seconds"):
        table.add_row(key, str(report[key]))
    console.print(table)
    for problem in report["invariant_violations"]:
        console.print(f"[red]INVARIANT[/red] {problem}")
    for problem in report["expectation_failures"]:
        console.print(f"[red]EXPECTATION[/red] {problem}")
    console.print(f"report: {Path(out) / 'report.json'}")
    if not report["ok"]:
        replay = f"{report['replay_command']} --out {out} --fresh"
        console.print(f"[bold red]FAILED[/bold red] replay with: {replay}", soft_wrap=True)
    else:
        console.print("[green]OK[/green]: every invariant and expectation held")


def run(args: argparse.Namespace) -> int:
    from adapters.policy.contract import ContractError, check_run

    try:
        for path in args.scenarios:
            scenario = _load(path)  # validate everything before running anything
            check = check_run(scenario.policy, [i.symbol for i in scenario.instruments], source=path,
                              overrides=tuple(getattr(args, "override_contract", ())))
            for line in check.lines():
                print(f"ttlive sim: {path}: model contract: {line}", file=sys.stderr)
    except (ConfigError, ContractError) as exc:
        print(f"ttlive sim: {exc}", file=sys.stderr)
        return 2
    refused = _check_path(args) or claim_out(args)
    if refused is not None:
        print(f"ttlive sim: {refused}", file=sys.stderr)
        return 2
    if args.seeds is None:
        if len(args.scenarios) != 1:
            print("ttlive sim: give one scenario, or use --seeds for a sweep over several", file=sys.stderr)
            return 2
        from sim.sweep import run_one

        path = args.scenarios[0]
        show = not args.quiet and sys.stderr.isatty()
        options = _world_options(args)
        report = (_run_with_bar(path, args.seed, args.out, options) if show
                  else run_one(path, args.seed, args.out, world_options=options))
        print_summary(report, args.out)
        return 0 if report["ok"] else 1
    return sweep(args)


def sweep(args: argparse.Namespace) -> int:
    """Every (scenario, seed) on a process pool (or Ray); a failure is printed with its replay command as soon
    as it is seen; at the end a table per scenario and ``OUT/sweep.json`` with every run's outcome."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from sim.sweep import summarize, sweep_jobs, sweep_locally, sweep_on_ray, write_summary

    console = Console(stderr=False)
    jobs = sweep_jobs(args.scenarios, args.seeds)
    results: list[dict[str, Any]] = []

    def seen(result: dict[str, Any]) -> None:
        results.append(result)
        if not result["ok"]:
            first = (result["invariant_violations"] + result["expectation_failures"])[0]
            # soft_wrap: a command is copied from the terminal, so it is never broken across lines
            console.print(f"[red]FAILED[/red] {result['scenario']} seed {result['seed']}: {first}", soft_wrap=True)
            console.print(f"  replay: {result['replay_command']}", soft_wrap=True)

    interrupted = False
    if args.backend == "ray":
        try:
            sweep_on_ray(jobs, args.out, workers=args.workers, seen=seen, world_options=_world_options(args))
        except ImportError as exc:
            print(f"ttlive sim: {exc}", file=sys.stderr)
            return 2
    else:
        with Progress(console=console, disable=args.quiet or not console.is_terminal) as bar:
            task = bar.add_task(f"sweep ({args.workers} workers)", total=len(jobs))
            interrupted = sweep_locally(
                jobs, args.out, workers=args.workers, seen=seen, advanced=lambda: bar.advance(task),
                interrupting=lambda: console.print(INTERRUPTED_MESSAGE), world_options=_world_options(args),
            )
    results.sort(key=lambda r: (r["scenario"], r["seed"]))
    done = f"{len(results)} of {len(jobs)}" if interrupted else f"{len(jobs)}"
    table = Table(title=f"sweep: {done} runs, seeds {args.seeds[0]}..{args.seeds[-1]}")
    for col in ("scenario", "runs", "failed", "violations", "halted", "fills (mean)", "wall s (mean)"):
        table.add_column(col)
    by_scenario: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_scenario.setdefault(r["scenario"], []).append(r)
    for name, rs in sorted(by_scenario.items()):
        failed = [r for r in rs if not r["ok"]]
        table.add_row(name, str(len(rs)), str(len(failed)), str(sum(len(r["invariant_violations"]) for r in rs)),
                      str(sum(1 for r in rs if r["halted"])), f"{sum(r['fills'] for r in rs) / len(rs):.1f}",
                      f"{sum(r['wall_seconds'] for r in rs) / len(rs):.2f}")
    console.print(table)
    summary = summarize(results, jobs=len(jobs), interrupted=interrupted)
    summary_path = write_summary(args.out, summary)
    console.print(f"{len(results)} runs, {summary['failed']} failed; summary: {summary_path}", soft_wrap=True)
    if interrupted:
        return EXIT_INTERRUPTED
    return 1 if summary["failed"] else 0
