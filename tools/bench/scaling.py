"""Issue 11 §4: simulation wall time against symbols (3, 10, 30, 100) and session length (1, 5, 20 days).

Two lines through the grid (symbols at one day; days at three symbols), a table and a PNG. Runs the time
budget cannot afford, or that fail, are written as "not measured" and left out of the figure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from tools.bench import simrun
from tools.bench.common import Options, Section, fmt, table
from tools.bench.simrun import SimRun

SYMBOL_COUNTS: Final = (3, 10, 30, 100)
DAY_COUNTS: Final = (1, 5, 20)
FIGURE_NAME: Final = "bench-scaling.png"


def grid(options: Options) -> tuple[list[SimRun], list[SimRun]]:
    """Cheapest first, so a tight budget loses the most expensive points, not the cheap ones."""
    runs = simrun.budget(options)
    points = sorted({(n, 1) for n in SYMBOL_COUNTS} | {(3, d) for d in DAY_COUNTS}, key=lambda p: p[0] * p[1])
    done = {point: runs.run(*point) for point in points}
    return [done[(n, 1)] for n in SYMBOL_COUNTS], [done[(3, d)] for d in DAY_COUNTS]


def plot(by_symbols: list[SimRun], by_days: list[SimRun], path: Path) -> bool:
    """Two panels of wall seconds; False (no file written) when nothing was measured."""
    measured_s = [r for r in by_symbols if r.ok]
    measured_d = [r for r in by_days if r.ok]
    if not measured_s and not measured_d:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    left.plot([r.n_symbols for r in measured_s], [r.wall_s for r in measured_s], marker="o")
    left.set_xlabel("symbols (one session)")
    left.set_xscale("log")
    left.set_title("sim wall time vs symbols")
    right.plot([r.days for r in measured_d], [r.wall_s for r in measured_d], marker="o", color="tab:orange")
    right.set_xlabel("sessions (3 symbols)")
    right.set_title("sim wall time vs session length")
    for axis in (left, right):
        axis.set_ylabel("wall seconds")
        axis.grid(True, alpha=0.3)
        axis.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})  # no version stamp: the image depends on the data only
    plt.close(fig)
    return True


def _row(run: SimRun) -> tuple[str, ...]:
    if not run.ok:
        return (str(run.n_symbols), str(run.days), "not measured", run.error, "", "", "")
    return (
        str(run.n_symbols),
        str(run.days),
        f"{run.market_events:,}",
        fmt(run.wall_s, 2),
        f"{run.speedup:,.1f}x",
        fmt(run.events_per_s),
        f"{run.orders:,}",
    )


def run(options: Options) -> Section:
    by_symbols, by_days = grid(options)
    figure = options.out_dir / FIGURE_NAME
    drawn = plot(by_symbols, by_days, figure)
    header = ("symbols", "days", "market events", "wall s", "market-s per wall-s", "events/s", "orders")
    md = [
        "Wall time vs symbols (one session):",
        "",
        table(header, [_row(r) for r in by_symbols]),
        "Wall time vs session length (3 symbols):",
        "",
        table(header, [_row(r) for r in by_days]),
        "Same scenario shape as section 2 (rule policy, $1M margin account); up to 3 symbols replay the real "
        "files, more use the fake's seeded correlated generator (10 sectors). One run per point, shared "
        "with sections 2 and 3a: on this shared machine a point can move by 2x between runs, so read the "
        "trend, not the wiggles. Most of a simulated day's cost is fixed (per-second timers, the 60 s "
        "reconciliation, start-up and settlement), which is why the events/s grow with symbols.",
        "",
    ]
    if not drawn:
        figure.unlink(missing_ok=True)  # an older run's picture must not pass for this one's
        md += ["No figure: nothing was measured.", ""]
    return Section(key="scaling", markdown="\n".join(md), figures=[figure] if drawn else [])
