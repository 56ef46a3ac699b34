"""`ttlive sim SCENARIO.toml [--seed N] [--out DIR]` and `ttlive sim --seeds 1..500 SCENARIO...` (a sweep).

Exit status: 0 every invariant and expectation held, 1 one failed (the replay command is printed), 2 bad input,
130 a sweep stopped by Ctrl-C (the runs in flight finish; what finished is summarized in OUT/sweep.json).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from core.config import ConfigError
from tools.exitcodes import EXIT_INTERRUPTED


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
    p.set_defaults(func=run)


def _load(path: str) -> Any:
    from sim.scenario import load_scenario

    return load_scenario(path)


@contextlib.contextmanager
def _log_to(path: Path) -> Iterator[None]:
    """Route this process's log records to ``path`` for the duration (a sweep's runs would interleave on the
    terminal); the previous handlers come back afterwards."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        handler.close()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def run_one(path: str, seed: int | None, out: str, progress: bool, log_to_file: bool = False,
            world_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One run in this process; returns the report as a dict (picklable for the pool). ``log_to_file``: the
    run's errors go to ``OUT/run.log`` instead of the terminal. ``world_options``: ``WorldOptions`` keywords
    (a swarm's deliberately broken engine)."""
    if log_to_file:
        with _log_to(Path(out) / "run.log"):
            return run_one(path, seed, out, progress, world_options=world_options)
    import msgspec

    from sim.world import WorldOptions, run_scenario

    logging.basicConfig(level=logging.ERROR, format="%(name)s %(levelname)s %(message)s")
    scenario = _load(path)
    options = WorldOptions(**(world_options or {}))
    if progress:
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task(f"{scenario.name}", total=1)

            def tick(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            options.progress = tick
            report = run_scenario(scenario, seed=seed, out_dir=out, scenario_file=path, options=options)
    else:
        report = run_scenario(scenario, seed=seed, out_dir=out, scenario_file=path, options=options)
    data: dict[str, Any] = msgspec.to_builtins(report)
    data["ok"] = report.ok
    return data


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
    try:
        for path in args.scenarios:
            _load(path)  # validate everything before running anything
    except ConfigError as exc:
        print(f"ttlive sim: {exc}", file=sys.stderr)
        return 2
    refused = claim_out(args)
    if refused is not None:
        print(f"ttlive sim: {refused}", file=sys.stderr)
        return 2
    if args.seeds is None:
        if len(args.scenarios) != 1:
            print("ttlive sim: give one scenario, or use --seeds for a sweep over several", file=sys.stderr)
            return 2
        report = run_one(args.scenarios[0], args.seed, args.out, progress=not args.quiet and sys.stderr.isatty())
        print_summary(report, args.out)
        return 0 if report["ok"] else 1
    return sweep(args)


def failed_run(path: str, seed: int, exc: BaseException) -> dict[str, Any]:
    return {"scenario": Path(path).stem, "seed": seed, "ok": False, "halted": False, "fills": 0,
            "wall_seconds": 0.0, "invariant_violations": [f"run raised {exc!r}"], "expectation_failures": [],
            "replay_command": f"ttlive sim {path} --seed {seed}"}


SUMMARY_KEYS = ("scenario", "seed", "ok", "halted", "kill_trigger", "fills", "orders_submitted", "wall_seconds",
                "invariant_violations", "expectation_failures", "replay_command")


def sweep(args: argparse.Namespace) -> int:
    """Every (scenario, seed) on a process pool (or Ray); a failure is printed with its replay command as soon
    as it is seen; at the end a table per scenario and ``OUT/sweep.json`` with every run's outcome."""
    import json

    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=False)
    jobs = [(path, seed) for path in args.scenarios for seed in args.seeds]

    def out_dir(path: str, seed: int) -> str:
        return str(Path(args.out) / Path(path).stem / f"seed-{seed}")

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
            ray = init_ray(args.workers)
        except ImportError as exc:
            print(f"ttlive sim: {exc}", file=sys.stderr)
            return 2
        remote = ray.remote(run_one)
        for result in ray.get([remote.remote(p, s, out_dir(p, s), False, True) for p, s in jobs]):
            seen(result)
    else:
        interrupted = _sweep_locally(args, jobs, out_dir, seen, console)
    results.sort(key=lambda r: (r["scenario"], r["seed"]))
    done = f"{len(results)} of {len(jobs)}" if interrupted else f"{len(jobs)}"
    table = Table(title=f"sweep: {done} runs, seeds {args.seeds[0]}..{args.seeds[-1]}")
    for col in ("scenario", "runs", "failed", "violations", "halted", "fills (mean)", "wall s (mean)"):
        table.add_column(col)
    by_scenario: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_scenario.setdefault(r["scenario"], []).append(r)
    failed_total = 0
    for name, rs in sorted(by_scenario.items()):
        failed = [r for r in rs if not r["ok"]]
        failed_total += len(failed)
        table.add_row(name, str(len(rs)), str(len(failed)), str(sum(len(r["invariant_violations"]) for r in rs)),
                      str(sum(1 for r in rs if r["halted"])), f"{sum(r['fills'] for r in rs) / len(rs):.1f}",
                      f"{sum(r['wall_seconds'] for r in rs) / len(rs):.2f}")
    console.print(table)
    summary = {
        "interrupted": interrupted,
        "jobs": len(jobs),
        "runs": len(results),
        "failed": failed_total,
        "invariant_violations": sum(len(r["invariant_violations"]) for r in results),
        "results": [{k: r.get(k) for k in SUMMARY_KEYS} for r in results],
    }
    summary_path = Path(args.out) / "sweep.json"
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    summary_path.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    console.print(f"{len(results)} runs, {failed_total} failed; summary: {summary_path}", soft_wrap=True)
    if interrupted:
        return EXIT_INTERRUPTED
    return 1 if failed_total else 0


def init_ray(workers: int) -> Any:
    """Ray, initialised: the cluster named by $RAY_ADDRESS (``ray://host:10001`` or ``auto``) when it is set, else a
    local instance with ``workers`` CPUs. Raises ImportError with an install hint without the ``ray`` extra."""
    try:
        import ray  # type: ignore[import-not-found]
    except ImportError:
        raise ImportError("--backend ray needs the 'ray' extra: pip install 'ttlive[ray]'") from None
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, ignore_reinit_error=True)
    else:
        # a local instance serves this machine only: it listens on loopback
        ray.init(num_cpus=workers, ignore_reinit_error=True, include_dashboard=False, _node_ip_address="127.0.0.1")
    return ray


def _ignore_sigint() -> None:
    """Pool workers leave Ctrl-C to the parent, which lets the runs in flight finish and drops the rest."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _sweep_locally(args: argparse.Namespace, jobs: list[tuple[str, int]], out_dir: Callable[[str, int], str],
                   seen: Callable[[dict[str, Any]], None], console: Any) -> bool:
    """Run ``jobs`` on a process pool, handing each result to ``seen`` as it completes. Ctrl-C stops the sweep:
    queued runs are dropped, runs in flight finish and are reported. Returns whether it was interrupted."""
    from rich.progress import Progress

    interrupted = False
    collected: set[concurrent.futures.Future[dict[str, Any]]] = set()

    def collect(future: concurrent.futures.Future[dict[str, Any]], job: tuple[str, int]) -> None:
        collected.add(future)
        try:
            seen(future.result())
        except Exception as exc:  # one broken run must not hide the other results
            seen(failed_run(*job, exc))

    with Progress(console=console, disable=args.quiet or not console.is_terminal) as bar:
        task = bar.add_task(f"sweep ({args.workers} workers)", total=len(jobs))
        pool = concurrent.futures.ProcessPoolExecutor(max_workers=args.workers, initializer=_ignore_sigint)
        futures = {pool.submit(run_one, p, s, out_dir(p, s), False, True): (p, s) for p, s in jobs}
        try:
            for future in concurrent.futures.as_completed(futures):
                collect(future, futures[future])
                bar.advance(task)
        except KeyboardInterrupt:
            interrupted = True
            console.print("interrupted: finishing the runs in flight, dropping the queued ones")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    for future, job in futures.items():
        if future not in collected and future.done() and not future.cancelled():
            collect(future, job)
    return interrupted
