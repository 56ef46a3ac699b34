"""Issue 18 §5-6: where one simulated day's time goes, and what the CLI costs to start.

The profile is the stdlib's deterministic ``cProfile`` over ``sim.world.run_scenario`` of the 3-symbol minute-bar
day that section 2 times (no extra dependency; its per-call overhead inflates small functions, so read the
ranking, not the absolute seconds). Import times are fresh interpreters running ``ttlive --help`` and
``python -c 'import tools.cmd_sim'`` and the full ``sim.world`` import, median of a few runs.
"""

from __future__ import annotations

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
from typing import Final

from tools.bench import simrun
from tools.bench.common import REPO_ROOT, Options, Result, Section, fmt, table

TOP_N: Final = 25
IMPORT_RUNS: Final = 5


def _profile_day(seed: int) -> tuple[float, list[tuple[str, int, float, float]]]:
    """(wall seconds under the profiler, top functions: (where, calls, self s, cumulative s))."""
    world = simrun.harness()
    from sim.scenario import load_scenario

    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    profiler = cProfile.Profile()
    try:
        with tempfile.TemporaryDirectory(prefix="ttlive-bench-profile-") as tmp:
            path = Path(tmp) / "profile.toml"
            path.write_text(simrun.scenario_toml("bench_profile", 3, 1, seed=seed), encoding="utf-8")
            scenario = load_scenario(path)
            started = time.perf_counter()
            profiler.enable()
            world.run_scenario(scenario, seed=seed, out_dir=Path(tmp) / "out")
            profiler.disable()
            wall_s = time.perf_counter() - started
    finally:
        quiet.setLevel(level)
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
    keys = ("import_ttlive_help_s", "import_cmd_sim_s", "import_sim_world_s", "import_bare_python_s")
    results += [Result(name=key, unit="s", value=s) for key, (_label, s) in zip(keys, measured, strict=True)]
    return Section(key="profile", markdown="\n".join(md), results=results)
