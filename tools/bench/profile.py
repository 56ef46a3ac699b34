"""Issue 18 §5-6: where one simulated day's time goes, and what the CLI costs to start.

The by-task table times every trio task step of that day with a trio instrument (an observer: the run is the same
run, hashes and all) and books it to the task, the engine's actors by name: a day's cost sits in a few periodic
tasks, whatever trades. The profile is the stdlib's deterministic ``cProfile`` over ``sim.world.run_scenario``
of the 3-symbol minute-bar day that section 2 times (no extra dependency; its per-call overhead inflates small
functions, so read the ranking, not the absolute seconds). Import times are fresh interpreters running
``ttlive --help`` and ``python -c 'import tools.cmd_sim'`` and the full ``sim.world`` import, median of a few runs.
"""

from __future__ import annotations

import collections
import cProfile
import io
import logging
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import trio

from tools.bench import simrun
from tools.bench.common import REPO_ROOT, Options, Result, Section, fmt, table

TOP_N: Final = 25
IMPORT_RUNS: Final = 5
TASK_ROWS: Final = 16


class TaskTimer(trio.abc.Instrument):
    """Times every trio task step of a run and books it to a readable name for the task (an observer: trio
    instruments do not change scheduling, so the run is the one section 2 times)."""

    def __init__(self) -> None:
        self.steps: collections.Counter[str] = collections.Counter()
        self.seconds: collections.Counter[str] = collections.Counter()
        self._labels: dict[Any, str] = {}
        self._started = 0.0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task not in self._labels:
            self._labels[task] = task_label(task)
        self._started = time.perf_counter()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        elapsed = time.perf_counter() - self._started
        label = self._labels.get(task, task.name)
        self.steps[label] += 1
        self.seconds[label] += elapsed


def task_label(task: trio.lowlevel.Task) -> str:
    """The task's function, with the engine actor's name (core.engine.system runs each actor in one supervising
    wrapper) and the end of a WebSocket a reader task serves."""
    name = task.name
    frame = getattr(task.coro, "cr_frame", None)
    local = frame.f_locals if frame is not None else {}
    if name.endswith("Engine._supervised"):
        return f"engine actor `{local.get('name', '?')}`"
    if name.endswith("WebSocketConnection._reader_task"):
        end = "engine (client)" if getattr(local.get("self"), "is_client", False) else "fake venue (server)"
        return f"trio-websocket reader task, {end} end"
    return "`" + ".".join(name.split(".")[-2:]) + "`"


def _run_day(seed: int, *, instruments: tuple[trio.abc.Instrument, ...] = (),
             profiler: cProfile.Profile | None = None) -> float:
    """Wall seconds of ``run_scenario`` of section 2's 3-symbol day, with trio instruments or a profiler on."""
    world = simrun.harness()
    from sim.scenario import load_scenario

    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory(prefix="ttlive-bench-day-") as tmp:
            path = Path(tmp) / "day.toml"
            path.write_text(simrun.scenario_toml("bench_day", 3, 1, seed=seed), encoding="utf-8")
            scenario = load_scenario(path)
            options = world.WorldOptions(instruments=instruments)
            started = time.perf_counter()
            if profiler is not None:
                profiler.enable()
            try:
                world.run_scenario(scenario, seed=seed, out_dir=Path(tmp) / "out", options=options)
            finally:
                if profiler is not None:
                    profiler.disable()
            return time.perf_counter() - started
    finally:
        quiet.setLevel(level)


def _time_tasks(seed: int) -> tuple[float, TaskTimer]:
    """(wall seconds of run_scenario with the timer on, the timer) for the day the profile runs."""
    timer = TaskTimer()
    return _run_day(seed, instruments=(timer,)), timer


def _profile_day(seed: int) -> tuple[float, list[tuple[str, int, float, float]]]:
    """(wall seconds under the profiler, top functions: (where, calls, self s, cumulative s))."""
    profiler = cProfile.Profile()
    wall_s = _run_day(seed, profiler=profiler)
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = []
    for (filename, line, name), (_cc, calls, self_s, cum_s, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{_short(filename)}:{line} {name}" if line else name
        rows.append((where, calls, self_s, cum_s))
    rows.sort(key=lambda r: r[2], reverse=True)
    return wall_s, rows[:TOP_N]


def _short(filename: str) -> str:
    path = Path(filename)
    parts = path.parts
    if "site-packages" in parts:
        return "/".join(parts[parts.index("site-packages") + 1:])
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return path.name


def _import_time(args: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(args, cwd=REPO_ROOT, capture_output=True, check=True, timeout=120)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(options: Options) -> Section:
    wall_s, top = _profile_day(options.seed)
    tasks_wall_s, timer = _time_tasks(options.seed)
    in_steps_s = sum(timer.seconds.values())
    total_steps = sum(timer.steps.values())
    task_rows = [
        (label, f"{timer.steps[label]:,}", fmt(seconds, 3), f"{100 * seconds / tasks_wall_s:.1f} %",
         fmt(1e6 * seconds / timer.steps[label]))
        for label, seconds in timer.seconds.most_common(TASK_ROWS)
    ]
    rest_s = sum(seconds for _label, seconds in timer.seconds.most_common()[TASK_ROWS:])
    task_rows.append(("all other tasks", "", fmt(rest_s, 3), f"{100 * rest_s / tasks_wall_s:.1f} %", ""))
    task_rows.append(("outside task steps: trio's scheduler and clock, building the world, the report", "",
                      fmt(tasks_wall_s - in_steps_s, 3), f"{100 * (tasks_wall_s - in_steps_s) / tasks_wall_s:.1f} %",
                      ""))
    reconciler = "engine actor `reconciler`"
    runs = options.n(IMPORT_RUNS, 1)
    python = sys.executable
    ttlive = str(Path(python).with_name("ttlive"))
    imports = [
        ("`ttlive --help`", [ttlive, "--help"] if Path(ttlive).exists() else [python, "-m", "tools.cli", "--help"]),
        ("`import tools.cmd_sim` (what `ttlive sim` loads before it parses)", [python, "-c", "import tools.cmd_sim"]),
        ("`import sim.world` (the whole simulation stack)", [python, "-c", "import sim.world"]),
        ("bare interpreter (`python -c pass`), for reference", [python, "-c", "pass"]),
    ]
    measured = [(label, _import_time(cmd, runs)) for label, cmd in imports]
    md = [
        f"By task: the same day without the profiler, each trio task step timed ({fmt(tasks_wall_s, 2)} s of "
        f"`run_scenario` with the timer on; {total_steps:,} task steps). The engine's actors are named; one step "
        "is one run of a task between two waits:",
        "",
        table(("task", "steps", "s", "share of the run", "µs per step"), task_rows),
        "",
        f"Top {TOP_N} functions by self time in `run_scenario` of one 3-symbol minute-bar day under cProfile "
        f"({fmt(wall_s, 2)} s with the profiler on):",
        "",
        table(("function", "calls", "self s", "cumulative s"),
              [(f"`{where}`", f"{calls:,}", fmt(self_s, 3), fmt(cum_s, 3)) for where, calls, self_s, cum_s in top]),
        "",
        f"Start-up (fresh interpreter, median of {runs}):",
        "",
        table(("command", "wall s"), [(label, fmt(s, 3)) for label, s in measured]),
        "",
        (__doc__ or "").strip().split("\n\n", 1)[1].replace("\n", " "),
    ]
    results = [Result(name="profile_day_wall_s_under_cprofile", unit="s", value=wall_s)]
    results += [
        Result(name="profile_day_task_steps", unit="steps", value=float(total_steps)),
        Result(name="profile_day_reconciler_share", unit="%",
               value=100 * timer.seconds[reconciler] / tasks_wall_s if tasks_wall_s > 0 else None),
        Result(name="profile_day_reconciler_s", unit="s", value=timer.seconds[reconciler]),
        Result(name="profile_day_timed_wall_s", unit="s", value=tasks_wall_s),
    ]
    keys = ("import_ttlive_help_s", "import_cmd_sim_s", "import_sim_world_s", "import_bare_python_s")
    results += [Result(name=key, unit="s", value=s) for key, (_label, s) in zip(keys, measured, strict=True)]
    return Section(key="profile", markdown="\n".join(md), results=results)
