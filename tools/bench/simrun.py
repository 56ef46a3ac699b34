"""ttlive's side of the simulation benchmarks: runs scenarios through ``sim.world.run_scenario``, timed.

Two paths (``sim.world.WorldOptions.path``): "wire", the engine against the fake venue through the real Alpaca
adapter (what the issue 18 targets judge), and "ports", the same venue at the engine's ports
(``adapters.ports_venue``: the bulk backtest path).

Scenarios are written as TOML (the documented format) and loaded by the harness's own loader, so the bench
runs exactly what a user's scenario file would. Runs are shared between groups and kept inside a wall-time
budget: an optional run whose estimated cost does not fit is skipped and says so, never extrapolated.
"""

from __future__ import annotations

import importlib
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from tools.bench.common import Options, fmt
from tools.bench.data import BAR_INTERVAL_S, REPLAY_SYMBOLS, SECTORS, START_DATE, sessions
from tools.bench.nautilus import TtliveRun

GENERATED_SECTORS: Final = 10
DECISION_INTERVAL_S: Final = 300  # as scenarios/clean_day.toml: the rule policy decides on 5-minute bars
POLICY: Final = "rule"  # the EMA(12/26) crossover baseline (adapters/policy/rule_policy.py)
SIM_BUDGET_S: Final = 450.0  # all simulation runs of a full suite together (make bench must stay < 15 min)
ANCHOR: Final = (3, 1)  # (symbols, days) measured first; with (30, 1) it prices the other runs


@dataclass(frozen=True, slots=True)
class SimRun:
    ok: bool
    n_symbols: int
    days: int
    wall_s: float = 0.0
    sim_s: float = 0.0  # market seconds simulated (open sessions only)
    market_events: int = 0
    orders: int = 0
    fills: int = 0
    error: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    path: str = "wire"

    @property
    def speedup(self) -> float:
        return self.sim_s / self.wall_s if self.ok and self.wall_s > 0 else 0.0

    @property
    def events_per_s(self) -> float:
        return self.market_events / self.wall_s if self.ok and self.wall_s > 0 else 0.0

    def describe_speedup(self) -> str:
        if not self.ok:
            return f"not measured: {self.error}"
        return (
            f"{self.speedup:,.1f}x ({self.sim_s:,.0f} market-s in {self.wall_s:,.1f} wall-s; "
            f"{self.market_events:,} market events, {self.orders:,} orders)"
        )

    def describe_rate(self) -> str:
        if not self.ok:
            return f"not measured: {self.error}"
        return (
            f"{fmt(self.events_per_s)} events/s ({self.market_events:,} bars and quotes in "
            f"{self.wall_s:,.1f} s, {self.n_symbols} symbols x {self.days} day(s))"
        )


class EventCounter:
    """Counts the market events each engine receives, through the world's ``on_engine`` hook.

    It wraps the market stream's ``deliver`` callback (the hand-off into the engine's market channel); the
    engine itself keeps no such counter yet.
    """

    def __init__(self) -> None:
        self.bars = 0
        self.quotes = 0

    @property
    def events(self) -> int:
        return self.bars + self.quotes

    def hook(self, engine: Any) -> None:
        import trio

        from core.model import Bar

        stream = engine.market_stream
        serve = stream.serve

        async def counted_serve(deliver: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            async def counting(item: Any) -> None:
                if isinstance(item, Bar):
                    self.bars += 1
                else:
                    self.quotes += 1
                await deliver(item)

            await serve(counting, task_status=task_status)

        stream.serve = counted_serve


def harness() -> Any:
    """The sim.world module, or raise with a reason a reader understands."""
    try:
        world = importlib.import_module("sim.world")
    except ImportError as exc:
        raise RuntimeError(f"sim/world.py is not available ({exc})") from None
    if not hasattr(world, "run_scenario"):
        raise RuntimeError("sim/world.py has no run_scenario()")
    return world


def symbols_for(n_symbols: int) -> tuple[tuple[str, ...], dict[str, str], str]:
    """(symbols, sectors, market source): the real replay files for up to 3, a seeded generator beyond."""
    if n_symbols <= len(REPLAY_SYMBOLS):
        chosen = REPLAY_SYMBOLS[:n_symbols]
        return chosen, {s: SECTORS[s] for s in chosen}, "replay"
    chosen = tuple(f"S{i:03d}" for i in range(n_symbols))
    return chosen, {s: f"sector{i % GENERATED_SECTORS}" for i, s in enumerate(chosen)}, "generator"


def scenario_toml(name: str, n_symbols: int, days: int, *, seed: int) -> str:
    symbols, sectors, source = symbols_for(n_symbols)
    lines = [
        "schema_version = 1",
        f'name = "{name}"',
        f'description = "benchmark: {n_symbols} symbols, {days} day(s)"',
        f"seed = {seed}",
        "[session]",
        f'start = "{START_DATE}"',
        f"days = {days}",
        f"bar_interval_s = {BAR_INTERVAL_S}",
        "[account]",
        'type = "margin_initial"',
        'cash_usd = "1000000"',
    ]
    for symbol in symbols:
        lines += ["[[instruments]]", f'symbol = "{symbol}"', f'sector = "{sectors[symbol]}"']
    lines += ["[market]", f'source = "{source}"']
    if source == "replay":
        from adapters.fake.market import KNOWN_FILES

        files = ", ".join(f'{s} = "{KNOWN_FILES[s]}"' for s in symbols)
        lines.append(f"files = {{ {files} }}")
    lines += ["[policy]", f'kind = "{POLICY}"', f"decision_interval_s = {DECISION_INTERVAL_S}"]
    return "\n".join(lines) + "\n"


class SimBudget:
    """Shared runs and the wall time they may take, for one suite run."""

    def __init__(
        self, budget_s: float, seed: int, *, quick: bool = False, runner: Callable[..., SimRun] | None = None
    ) -> None:
        self.budget_s = budget_s
        self.seed = seed
        self.quick = quick  # one required run only: every optional run is skipped
        self.runner = runner or _run  # (n_symbols, days, *, seed) -> SimRun
        self.spent_s = 0.0
        self.runs: dict[tuple[int, int], SimRun] = {}  # wire path
        self.ports_runs: dict[tuple[int, int], SimRun] = {}  # ports path (priced like the wire: pessimistic)

    def estimate_s(self, n_symbols: int, days: int) -> float | None:
        """Linear in days and symbols, pessimistic: the slowest day seen on 3 symbols plus the per-symbol
        cost between the two one-day runs (None until both one-day runs exist)."""
        small, large = self.runs.get(ANCHOR), self.runs.get((30, 1))
        if small is None or large is None or not (small.ok and large.ok):
            return None
        base_day_s = max(r.wall_s / r.days for (n, _), r in self.runs.items() if n == ANCHOR[0] and r.ok)
        per_symbol_day = max(0.0, (large.wall_s - small.wall_s) / (30 - ANCHOR[0]))
        return days * (base_day_s + (n_symbols - ANCHOR[0]) * per_symbol_day)

    def run(self, n_symbols: int, days: int, *, optional: bool = True, path: str = "wire") -> SimRun:
        key = (n_symbols, days)
        runs = self.runs if path == "wire" else self.ports_runs
        if key in runs:
            return runs[key]
        if optional and self.quick:
            return SimRun(False, n_symbols, days, error="skipped: --quick runs one simulation only", path=path)
        remaining = self.budget_s - self.spent_s
        estimate = self.estimate_s(n_symbols, days)
        if optional and (remaining <= 0 or (estimate is not None and estimate > remaining)):
            why = f"estimated {estimate:,.0f} s" if estimate is not None else "the budget is spent"
            return SimRun(
                False,
                n_symbols,
                days,
                error=(
                    f"skipped: {why}, {max(0.0, remaining):,.0f} s left of the {self.budget_s:,.0f} s "
                    "simulation budget that keeps `make bench` under 15 minutes"
                ),
                path=path,
            )
        extra = {} if path == "wire" else {"path": path}
        result = self.runner(n_symbols, days, seed=self.seed, **extra)
        self.spent_s += result.wall_s
        runs[key] = result
        return result


_BUDGETS: dict[tuple[bool, int], SimBudget] = {}


def budget(options: Options) -> SimBudget:
    """One budget per (mode, seed) in this process: the groups of a suite run share their runs."""
    key = (options.quick, options.seed)
    if key not in _BUDGETS:
        _BUDGETS[key] = SimBudget(SIM_BUDGET_S, options.seed, quick=options.quick)
    return _BUDGETS[key]


def _run(n_symbols: int, days: int, *, seed: int, path: str = "wire") -> SimRun:
    name = f"bench_{n_symbols}sym_{days}d"
    counter = EventCounter()
    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the engine's warnings and alerts are the sim's business, not the bench's
    try:
        world = harness()
        from sim.scenario import load_scenario

        with tempfile.TemporaryDirectory(prefix="ttlive-bench-sim-") as tmp:
            toml = Path(tmp) / f"{name}.toml"
            toml.write_text(scenario_toml(name, n_symbols, days, seed=seed), encoding="utf-8")
            scenario = load_scenario(toml)
            options = world.WorldOptions(on_engine=counter.hook, path=path)
            started = time.perf_counter()
            report = world.run_scenario(scenario, seed=seed, out_dir=Path(tmp) / "out", options=options)
            wall_s = time.perf_counter() - started
    except Exception as exc:  # a failed run is reported as such, never turned into a number
        return SimRun(False, n_symbols, days, error=f"{exc.__class__.__name__}: {exc}", path=path)
    finally:
        quiet.setLevel(level)
    market_s = sum((s.close_ns - s.open_ns) / 1e9 for s in sessions(days))
    return SimRun(
        True,
        n_symbols,
        days,
        wall_s=wall_s,
        sim_s=market_s,
        market_events=counter.events,
        orders=int(report.orders_submitted),
        fills=int(report.fills),
        details={
            "virtual_s": report.sim_seconds,
            "invariant_violations": len(report.invariant_violations),
            "bars": counter.bars,
            "quotes": counter.quotes,
        },
        path=path,
    )


def nautilus_peer(options: Options, *, path: str = "wire") -> Any:
    """``ttlive_side`` for tools.bench.nautilus: ttlive's sim over the same bars, the rule (EMA) policy, on the
    wire path (the real adapter against the fake) or the ports path (the same venue at the engine's ports)."""

    def side(symbols: tuple[str, ...], days: int) -> TtliveRun:
        assert symbols == REPLAY_SYMBOLS[: len(symbols)], "the sim side replays the same files"
        run = budget(options).run(len(symbols), days, optional=False, path=path)
        if not run.ok:
            return TtliveRun(False, error=run.error)
        return TtliveRun(
            True,
            events=run.market_events,
            bars=int(run.details["bars"]),
            wall_s=run.wall_s,
            orders=run.orders,
            fills=run.fills,
            how=(f"`sim.world.run_scenario`, rule policy on {DECISION_INTERVAL_S // 60}-min bars"
                 + (", at the ports (`--path ports`)" if path == "ports" else "")),
        )

    return side
