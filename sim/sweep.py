"""Seed sweeps: every (scenario, seed) run on a local process pool or on Ray, each outcome handed back as it completes.

``run_one`` is the one way to run a scenario file in a process: ``ttlive sim`` (one run or a sweep), the swarm's
generated worlds and ``tools.scenario_hashes`` all go through it. ``tools.cmd_sim`` parses and prints.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import os
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

Job = tuple[str, int]  # (scenario file, seed)
Outcome = dict[str, Any]  # a run's report as a dict, with ``ok``

SUMMARY_KEYS = ("scenario", "seed", "ok", "halted", "kill_trigger", "fills", "orders_submitted", "wall_seconds",
                "invariant_violations", "expectation_failures", "replay_command")
SUMMARY_NAME = "sweep.json"


# --- one run --------------------------------------------------------------------------------------------------------

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


def run_one(path: str, seed: int | None, out: str, *, progress: Callable[[int, int], None] | None = None,
            log_to_file: bool = False, world_options: Mapping[str, Any] | None = None) -> Outcome:
    """One run in this process; returns the report as a dict (picklable for the pool). ``progress``: told
    (done, total) as the simulation advances. ``log_to_file``: the run's errors go to ``OUT/run.log`` instead of
    the terminal. ``world_options``: ``WorldOptions`` keywords (a swarm's deliberately broken engine)."""
    if log_to_file:
        with _log_to(Path(out) / "run.log"):
            return run_one(path, seed, out, progress=progress, world_options=world_options)
    import msgspec

    from sim.scenario import load_scenario
    from sim.world import WorldOptions, run_scenario

    logging.basicConfig(level=logging.ERROR, format="%(name)s %(levelname)s %(message)s")
    scenario = load_scenario(path)
    options = WorldOptions(**(world_options or {}))
    if progress is not None:
        options.progress = progress
    report = run_scenario(scenario, seed=seed, out_dir=out, scenario_file=path, options=options)
    data: Outcome = msgspec.to_builtins(report)
    data["ok"] = report.ok
    return data


def failed_run(path: str, seed: int, exc: BaseException) -> Outcome:
    """The outcome of a run that raised instead of reporting: a failure like any other."""
    return {"scenario": Path(path).stem, "seed": seed, "ok": False, "halted": False, "fills": 0,
            "wall_seconds": 0.0, "invariant_violations": [f"run raised {exc!r}"], "expectation_failures": [],
            "replay_command": f"ttlive sim {path} --seed {seed}"}


# --- many runs ------------------------------------------------------------------------------------------------------

def sweep_jobs(scenarios: Sequence[str], seeds: Sequence[int]) -> list[Job]:
    return [(path, seed) for path in scenarios for seed in seeds]


def run_dir(out: str, path: str, seed: int) -> str:
    """Where one sweep run writes: OUT/<scenario>/seed-N."""
    return str(Path(out) / Path(path).stem / f"seed-{seed}")


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


def ignore_sigint() -> None:
    """Pool workers leave Ctrl-C to the parent, which lets the runs in flight finish and drops the rest."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def sweep_on_ray(jobs: Sequence[Job], out: str, *, workers: int, seen: Callable[[Outcome], None],
                 world_options: Mapping[str, Any] | None = None) -> None:
    """Every job as a Ray task; outcomes handed to ``seen`` in job order. ImportError without the ``ray`` extra."""
    ray = init_ray(workers)
    remote = ray.remote(run_one)
    options = dict(world_options or {})
    for result in ray.get([remote.remote(p, s, run_dir(out, p, s), log_to_file=True, world_options=options)
                           for p, s in jobs]):
        seen(result)


def sweep_locally(jobs: Sequence[Job], out: str, *, workers: int, seen: Callable[[Outcome], None],
                  advanced: Callable[[], None] = lambda: None,
                  interrupting: Callable[[], None] = lambda: None,
                  world_options: Mapping[str, Any] | None = None) -> bool:
    """Run ``jobs`` on a process pool, handing each outcome to ``seen`` as it completes (then calling
    ``advanced``). Ctrl-C stops the sweep (``interrupting`` is told at once): queued runs are dropped, runs in
    flight finish and are reported. Returns whether it was interrupted. ``world_options``: every run's
    ``WorldOptions`` keywords (``{"path": "ports"}``: a bulk sweep at the engine's ports)."""
    interrupted = False
    collected: set[concurrent.futures.Future[Outcome]] = set()

    def collect(future: concurrent.futures.Future[Outcome], job: Job) -> None:
        collected.add(future)
        try:
            seen(future.result())
        except Exception as exc:  # one broken run must not hide the other results
            seen(failed_run(*job, exc))

    pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers, initializer=ignore_sigint)
    options = dict(world_options or {})
    futures = {pool.submit(run_one, p, s, run_dir(out, p, s), log_to_file=True, world_options=options): (p, s)
               for p, s in jobs}
    try:
        for future in concurrent.futures.as_completed(futures):
            collect(future, futures[future])
            advanced()
    except KeyboardInterrupt:
        interrupted = True
        interrupting()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    for future, job in futures.items():
        if future not in collected and future.done() and not future.cancelled():
            collect(future, job)
    return interrupted


def summarize(results: Sequence[Outcome], *, jobs: int, interrupted: bool) -> dict[str, Any]:
    """What ``OUT/sweep.json`` holds: the counts and every run's outcome (``results`` in the order given)."""
    return {
        "interrupted": interrupted,
        "jobs": jobs,
        "runs": len(results),
        "failed": sum(1 for r in results if not r["ok"]),
        "invariant_violations": sum(len(r["invariant_violations"]) for r in results),
        "results": [{k: r.get(k) for k in SUMMARY_KEYS} for r in results],
    }


def write_summary(out: str, summary: Mapping[str, Any]) -> Path:
    path = Path(out) / SUMMARY_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return path
