"""Issue 11 §3: NautilusTrader's backtest vs ttlive's simulation on the same minute bars and trivial strategy.

NautilusTrader runs ``nautilus_side.py`` in a child process with whichever Python has nautilus-trader (this
one, ``--nautilus-python`` or ``$TTLIVE_NAUTILUS_PYTHON``). Both sides run an EMA(12/26) long-only crossover:
the example ``EMACrossLongOnly`` there, ``RulePolicy`` (policy kind "rule") here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from tools.bench.common import Options, Result, Section, fmt, ratio, table
from tools.bench.data import BAR_INTERVAL_S, REPLAY_SYMBOLS, START_DATE, write_bars_csv

ENV_PYTHON: Final = "TTLIVE_NAUTILUS_PYTHON"
SIDE_SCRIPT: Final = Path(__file__).with_name("nautilus_side.py")
RUN_TIMEOUT_S: Final = 600.0
FAST_EMA, SLOW_EMA = 12, 26  # core.features' EMA pair, which RulePolicy crosses
TRADE_SIZE = 100


def find_python(options: Options) -> tuple[str | None, str]:
    """(interpreter, how it was found) or (None, why not)."""
    if options.nautilus_python:
        return options.nautilus_python, "--nautilus-python"
    if os.environ.get(ENV_PYTHON):
        return os.environ[ENV_PYTHON], f"${ENV_PYTHON}"
    if importlib.util.find_spec("nautilus_trader") is not None:
        return sys.executable, "this interpreter (bench extra)"
    return None, (
        f"nautilus-trader is not installed here (the `bench` extra) and neither --nautilus-python nor "
        f"${ENV_PYTHON} names a Python that has it"
    )


@dataclass(frozen=True, slots=True)
class NautilusRun:
    ok: bool
    data: dict[str, Any]
    error: str = ""

    @property
    def bars_per_s(self) -> float | None:
        if not self.ok or not self.data.get("run_s"):
            return None
        return float(self.data["bars"]) / float(self.data["run_s"])


def run_nautilus(python: str, bars_csv: Path, decision_interval_s: int) -> NautilusRun:
    command = [
        python,
        str(SIDE_SCRIPT),
        str(bars_csv),
        "--fast",
        str(FAST_EMA),
        "--slow",
        str(SLOW_EMA),
        "--trade-size",
        str(TRADE_SIZE),
        "--bar-interval-s",
        str(BAR_INTERVAL_S),
        "--decision-interval-s",
        str(decision_interval_s),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return NautilusRun(False, {}, f"{exc.__class__.__name__}: {exc}")
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return NautilusRun(False, {}, f"exit {done.returncode}: {' | '.join(tail)}")
    try:
        return NautilusRun(True, json.loads(done.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError) as exc:
        return NautilusRun(False, {}, f"unreadable output: {exc}")


@dataclass(frozen=True, slots=True)
class TtliveRun:
    ok: bool
    events: int = 0  # bars + quotes the engine received
    bars: int = 0
    wall_s: float = 0.0
    orders: int = 0
    fills: int = 0
    how: str = ""
    error: str = ""

    @property
    def bars_per_s(self) -> float | None:
        return self.bars / self.wall_s if self.ok and self.wall_s > 0 else None


def run(options: Options, ttlive_side: Any = None, *, decision_interval_s: int = 300,
        ports_side: Any = None) -> Section:
    """``ttlive_side(symbols, days) -> TtliveRun`` runs ttlive's sim of these bars (tools.bench.simrun) on the wire
    path; ``ports_side`` the same at the engine's ports (the bulk backtest path): a second row and ratio against
    the same NautilusTrader run."""
    days = options.n(5, 1)
    python, how = find_python(options)
    with tempfile.TemporaryDirectory(prefix="ttlive-bench-") as tmp:
        bars_csv = Path(tmp) / "bars.csv"
        n_bars = write_bars_csv(bars_csv, REPLAY_SYMBOLS, days, seed=options.seed)
        theirs = (
            run_nautilus(python, bars_csv, decision_interval_s) if python else NautilusRun(False, {}, how)
        )
    if ttlive_side is None:
        ours = TtliveRun(False, error="ttlive's simulation (sim/world.py) was not run")
    else:
        ours = ttlive_side(REPLAY_SYMBOLS, days)
    their_rate, our_rate = theirs.bars_per_s, ours.bars_per_s
    peer = f"nautilus_trader {theirs.data['version']}" if theirs.ok else "nautilus_trader"
    result = Result(
        name="nautilus_events_per_s_ratio",
        unit="bars/s",
        value=_round(our_rate),
        peer=peer,
        peer_value=_round(their_rate),
        ratio=ratio(our_rate, their_rate),
    )
    rows = []
    if theirs.ok:
        d = theirs.data
        rows.append(
            (
                f"NautilusTrader {d['version']} `BacktestEngine` (Python {d['python']}, numpy {d['numpy']})",
                f"{d['bars']:,} bars",
                fmt(their_rate),
                fmt(d["run_s"], 2),
                fmt(d["total_s"], 2),
                f"{d['orders']:,} / {d['filled_orders']:,}",
                "1.00x",
            )
        )
    else:
        rows.append(("NautilusTrader", "not measured", theirs.error, "", "", "", ""))
    rows.append(_ttlive_row(ours, their_rate))
    results = [result]
    ports = ports_side(REPLAY_SYMBOLS, days) if ports_side is not None else None
    if ports is not None:
        results.append(
            Result(
                name="nautilus_ports_ratio",
                unit="bars/s",
                value=_round(ports.bars_per_s),
                peer=peer,
                peer_value=_round(their_rate),
                ratio=ratio(ports.bars_per_s, their_rate),
            )
        )
        rows.append(_ttlive_row(ports, their_rate))
    md = [
        table(("side", "market data", "bars/s", "run s", "total s", "orders / fills", "vs Nautilus"), rows),
        "",
        f"Data: the fake venue's one-minute bars for {', '.join(REPLAY_SYMBOLS)}, {days} session(s) from "
        f"{START_DATE} ({n_bars:,} bars; real daily OHLC bridged to minutes with seed {options.seed}, the "
        "simulation's seed, so both sides see identical bars). Nautilus loads them from CSV; ttlive's "
        "simulation replays them through the fake venue, which also streams a quote per bar.",
        "",
        f"Strategy, both sides: EMA({FAST_EMA}) / EMA({SLOW_EMA}) long-only crossover on "
        f"{decision_interval_s // 60}-minute decision bars rolled up from the one-minute bars. Nautilus: its "
        f"example `EMACrossLongOnly`, {TRADE_SIZE} shares per entry, market orders, cash account, netting. "
        'ttlive: `RulePolicy` (policy kind "rule", hysteresis on the EMA gap), sized by target exposure '
        "through the risk guard. Nautilus' run time is `engine.run()` alone; its total adds importing it and "
        "building the engine. ttlive's time is the whole `run_scenario` call (start-up, pre-open, session, "
        "settlement). The ratio is bars per second of wall time, i.e. how fast each gets through the same "
        "session.",
        "",
    ]
    if theirs.ok and ours.ok:
        md += [_explain(theirs, ours), ""]
    else:
        md += ["Ratio not computed: one side was not measured. Nothing is estimated in its place.", ""]
    if ports is not None and ports.ok and theirs.ok:
        r = ratio(ports.bars_per_s, theirs.bars_per_s) or 0.0
        md += [
            f"At the engine's ports (`nautilus_ports_ratio`, the bulk backtest path `--path ports`): the same "
            "scenario, venue, engine, policy, risk guard, order machines, reconciliation and audit log, minus the "
            f"wire (no msgpack/JSON frames, WebSockets or httpx): {r:.3f}x NautilusTrader's rate"
            + (f", {1 / r:,.1f}x slower." if 0 < r < 1 else "."),
            "",
        ]
    return Section(key="nautilus", markdown="\n".join(md), results=results)


def _ttlive_row(ours: TtliveRun, their_rate: float | None) -> tuple[str, ...]:
    if not ours.ok:
        return ("ttlive sim", "not measured", ours.error, "", "", "", "")
    r = ratio(ours.bars_per_s, their_rate)
    return (
        f"ttlive sim ({ours.how})",
        f"{ours.bars:,} bars + {ours.events - ours.bars:,} quotes",
        fmt(ours.bars_per_s),
        fmt(ours.wall_s, 2),
        fmt(ours.wall_s, 2),
        f"{ours.orders:,} / {ours.fills:,}",
        f"{r:.3f}x" if r is not None else "n/a",
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _explain(theirs: NautilusRun, ours: TtliveRun) -> str:
    r = ratio(ours.bars_per_s, theirs.bars_per_s) or 0.0
    if r >= 1:
        lead = f"ttlive gets through the session {r:.2f}x as fast as NautilusTrader here."
    else:
        lead = (
            f"ttlive loses: it gets through the session at {r:.3f}x NautilusTrader's rate "
            f"({1 / r:,.0f}x slower)."
        )
    return (
        f"{lead} What explains it: NautilusTrader's engine is compiled (Cython/Rust) and hands each bar to "
        "a strategy callback in one process. ttlive's simulation runs the production system in virtual "
        "time: the fake venue (Python) publishes every bar and quote as Alpaca msgpack frames over in-memory "
        "WebSockets, the real adapter decodes them, the actors pass them over bounded trio channels, "
        "decisions run features, the policy and the risk guard, orders go through the order state machines "
        "and the REST adapter over an httpx transport into the venue, a reconciliation against the venue's "
        "REST runs every 60 s, and every decision is written to the audit log. That is the cost of testing "
        "the code that trades live; it is not a bulk backtester."
    )
