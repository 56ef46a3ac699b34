"""Issue 18 §1: how many runs an hour this machine gets through, the number that decides how many seeds we can
afford. Two measures on the local process pool (2 workers, what `make sweep` and `make swarm` use):

- the chaos sweep: `make sweep`'s scenarios (the Makefile's ``CHAOS`` list, each a fault plan, a crash or an
  operator action) over a few seeds, through ``sim.sweep.sweep_locally``, exactly as ``ttlive sim --seeds`` runs;
- the swarm: generated worlds (``sim.swarm.run_swarm``), each a random session, account, policy, limits and a
  random subset of every fault, judged by the always-on invariants.

Runs per hour is runs / wall time of the whole batch (pool start-up included) x 3600. A run that fails is counted
and named; it does not stop the measure.
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path
from typing import Final

from tools.bench.common import REPO_ROOT, Options, Result, Section, fmt, table

WORKERS: Final = 2
SWEEP_SEEDS: Final = (1, 2)
SWARM_RUNS: Final = 24
SWARM_SEED: Final = 18  # issue 18: any fixed seed; the same worlds every bench run


def chaos_scenarios(makefile: Path = REPO_ROOT / "Makefile") -> list[str]:
    """`make sweep`'s scenarios: the Makefile's CHAOS list (one place decides what the chaos sweep is)."""
    text = makefile.read_text(encoding="utf-8").replace("\\\n", " ")
    match = re.search(r"^CHAOS\s*:=\s*(.+)$", text, flags=re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{makefile}: no CHAOS := list")
    return [f"scenarios/{name}.toml" for name in match.group(1).split()]


def make_sweep_seeds(makefile: Path = REPO_ROOT / "Makefile") -> int:
    """How many seeds `make sweep` runs by default (the Makefile's ``SEEDS ?= a..b``)."""
    match = re.search(r"^SEEDS\s*\?=\s*(\d+)\.\.(\d+)\s*$", makefile.read_text(encoding="utf-8"), flags=re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{makefile}: no SEEDS ?= a..b")
    return int(match.group(2)) - int(match.group(1)) + 1


def _sweep(scenarios: list[str], seeds: tuple[int, ...]) -> tuple[float, int, list[str]]:
    """(wall seconds, runs, failed runs as "scenario seed") of one local sweep."""
    from sim.sweep import sweep_jobs, sweep_locally

    failed: list[str] = []
    done = 0

    def seen(outcome: dict[str, object]) -> None:
        nonlocal done
        done += 1
        if not outcome.get("ok"):
            failed.append(f"{outcome.get('scenario')} seed {outcome.get('seed')}")

    jobs = sweep_jobs([str(REPO_ROOT / s) for s in scenarios], list(seeds))
    with tempfile.TemporaryDirectory(prefix="ttlive-bench-sweep-") as out:
        started = time.perf_counter()
        sweep_locally(jobs, out, workers=WORKERS, seen=seen)
        wall_s = time.perf_counter() - started
    return wall_s, done, failed


def _swarm(runs: int) -> tuple[float, int, list[str]]:
    """(wall seconds, runs, failed worlds) of one local swarm batch, no shrinking."""
    from sim.swarm import SwarmSpec, run_swarm

    with tempfile.TemporaryDirectory(prefix="ttlive-bench-swarm-") as out:
        spec = SwarmSpec(out=Path(out), seed=SWARM_SEED, runs=runs, workers=WORKERS, shrink=False)
        started = time.perf_counter()
        summary = run_swarm(spec)
        wall_s = time.perf_counter() - started
    failed = [str(r["name"]) for r in summary["results"] if not r["ok"]]
    return wall_s, int(summary["runs"]), failed


def run(options: Options) -> Section:
    scenarios = chaos_scenarios()
    make_sweep_seeds_n = make_sweep_seeds()
    make_sweep_runs = len(scenarios) * make_sweep_seeds_n
    if options.quick:
        scenarios, seeds, swarm_runs = scenarios[:1], SWEEP_SEEDS[:1], 0  # a swarm world is often multi-day
    else:
        seeds, swarm_runs = SWEEP_SEEDS, SWARM_RUNS
    sweep_s, sweep_runs, sweep_failed = _sweep(scenarios, seeds)
    swarm_s, swarm_done, swarm_failed = _swarm(swarm_runs) if swarm_runs else (0.0, 0, [])
    sweep_rate = sweep_runs / sweep_s * 3600 if sweep_s > 0 else None
    swarm_rate = swarm_done / swarm_s * 3600 if swarm_s > 0 else None
    rows = [
        (f"chaos sweep: `make sweep`'s {len(scenarios)} scenario(s) x seeds {', '.join(map(str, seeds))}",
         f"{sweep_runs:,}", fmt(sweep_s, 1), fmt(sweep_rate), ", ".join(sweep_failed) or "none"),
        (f"swarm: {swarm_done} generated worlds (seed {SWARM_SEED})", f"{swarm_done:,}", fmt(swarm_s, 1),
         fmt(swarm_rate), ", ".join(swarm_failed) or "none")
        if swarm_runs else ("swarm", "", "", "not measured: skipped by --quick", ""),
    ]
    md = [
        table(("batch", "runs", "wall s", "runs per hour", "failed runs"), rows),
        "",
        f"Both on the local process pool with {WORKERS} workers, what `make sweep` and `make swarm` use. The chaos "
        "sweep runs `make sweep`'s scenarios (the Makefile's `CHAOS` list: each a fault plan, a crash or an "
        "operator action) through `sim.sweep.sweep_locally`, as `ttlive sim --seeds` does; the swarm runs "
        "generated worlds (`sim.swarm.run_swarm`: a random session, account, policy, limits and a random subset "
        "of every fault, judged by the always-on invariants). Runs per hour: runs / wall time of the whole batch "
        "(pool start-up included) x 3600. A failed run is named here; it does not stop the measure.",
        "",
        f"At these rates `make sweep` ({make_sweep_runs:,} runs: {make_sweep_seeds_n} seeds of each) takes "
        "about "
        f"{fmt(make_sweep_runs / sweep_rate * 60 if sweep_rate else None, 0)} minutes here"
        + (f", and `make swarm` (10,000 worlds) about {fmt(10_000 / swarm_rate, 1)} hours." if swarm_rate else "."),
    ]
    results = [
        Result(name="chaos_sweep_runs_per_hour", unit="runs/h", value=sweep_rate),
        Result(name="swarm_runs_per_hour", unit="runs/h", value=swarm_rate),
    ]
    return Section(key="sweeps", markdown="\n".join(md), results=results)
