"""``ttlive run``: trading sessions. With no arguments, the default simulated session (the shipped model
against the in-process fake venue on real bars) runs at full speed and ends with a summary; no credentials
needed. ``--mode paper|live`` runs unattended, session after session (waits for each open, settles after each
close, writes the day's compliance report, sleeps through nights, weekends and holidays) until stopped or
``--sessions N`` have run.

Exit status: 0 done (sim: every invariant and expectation held), 1 the session failed, 2 bad input or a
session that may not start (paper without credentials, live without confirmation and a passed preflight), 130
stopped by Ctrl-C after settling. ``--speed X`` paces a simulation at X virtual seconds per wall second so the
dashboard can be watched; at full speed the dashboard is served during the (seconds-long) run and ``--linger
S`` keeps it up with the final state afterwards.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.config import ConfigError, Mode

LOG_NAME = "run.log"


def parse_speed(text: str) -> float | None:
    """ "max" (as fast as possible) or a positive number of virtual seconds per wall second."""
    if text.strip().lower() == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--speed is 'max' or a number > 0, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"--speed must be > 0, got {text!r}")
    return value


def parse_port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535 (0 = any free port), got {value}")
    return value


def non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="run a trading session: simulated (default), paper or live",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config", type=Path, default=None, help="engine config TOML (default: built-in defaults)"
    )
    p.add_argument(
        "--mode",
        choices=[m.value for m in Mode],
        default=None,
        help="sim (default), paper or live; overrides the config's mode",
    )
    p.add_argument(
        "--i-understand-live-trading",
        dest="live_confirmed",
        action="store_true",
        help="required with --mode live (and a passed `ttlive preflight` for the same config)",
    )
    p.add_argument(
        "--scenario", type=Path, default=None, help="sim: scenario TOML (default: the default session)"
    )
    p.add_argument("--seed", type=int, default=None, help="sim: override the scenario's seed")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="sim: output directory (default: the parent of the config's audit dir, runs/sim/latest)",
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="sim: replace an earlier sim run in the output directory (never a paper/live one)",
    )
    p.add_argument("--no-dashboard", action="store_true", help="do not serve the dashboard")
    p.add_argument(
        "--dashboard-port", type=parse_port, default=None, help="dashboard port (0 = any free port)"
    )
    p.add_argument(
        "--speed",
        type=parse_speed,
        default=None,
        metavar="X",
        help="sim: virtual seconds per wall second, or 'max' (default)",
    )
    p.add_argument(
        "--linger",
        type=non_negative,
        default=0.0,
        metavar="S",
        help="sim: keep serving the dashboard S seconds after the session ends",
    )
    p.add_argument(
        "--sessions",
        type=int,
        default=0,
        metavar="N",
        help="paper/live: stop after N sessions (default 0: session after session until stopped)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")
    add_contract_override(p)
    p.add_argument(
        "--agent",
        choices=("engine", "tensortrade"),
        default="engine",
        help="who decides: the engine's policy actor (default), or the same policy as a TensorTrade agent "
        "stepping a TradingEnv on AlpacaDataFeed/AlpacaExchange/AlpacaBroker (needs execution.brackets = false "
        "in paper/live; the sim turns bracket legs off)",
    )
    p.set_defaults(func=run)


def add_contract_override(p: argparse.ArgumentParser) -> None:
    """``--override-contract FIELD`` (repeatable): run although FIELD differs from the model's contract."""
    from core.config import CONTRACT_OVERRIDABLE

    p.add_argument(
        "--override-contract",
        action="append",
        default=[],
        choices=CONTRACT_OVERRIDABLE,
        metavar="FIELD",
        help="run although FIELD differs from the model contract (audited as a warning); "
        f"one of {', '.join(CONTRACT_OVERRIDABLE)}; the config's policy.contract_override does the same",
    )


class ConsoleUI:
    """Progress and notices: a rich progress bar on a terminal, a line per 10% otherwise."""

    def __init__(self, *, quiet: bool) -> None:
        from rich.console import Console

        self.console = Console()
        self.quiet = quiet
        self._bar: Any = None
        self._task: Any = None
        self._last_decile = -1

    def info(self, text: str) -> None:
        self.console.print(text, soft_wrap=True, highlight=False)

    def dashboard(self, url: str) -> None:
        print(f"dashboard: {url}", flush=True)  # one plain line: scripts and tests read the URL from it

    def progress(self, done_s: int, total_s: int) -> None:
        if self.quiet or total_s <= 0:
            return
        if self.console.is_terminal:
            if self._bar is None:
                from rich.progress import Progress

                self._bar = Progress(transient=True, console=self.console)
                self._bar.start()
                self._task = self._bar.add_task("simulated session", total=total_s)
            self._bar.update(self._task, completed=done_s, total=total_s)
            return
        decile = done_s * 10 // total_s
        if decile != self._last_decile:
            self._last_decile = decile
            print(f"progress: {decile * 10}% of {total_s} simulated seconds", flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _log_to(directory: Path, *, console_level: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(console_level)
    console.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    file = logging.FileHandler(directory / LOG_NAME, mode="w", encoding="utf-8")
    file.setLevel(logging.INFO)
    file.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root.handlers[:] = [console, file]
    for chatty in ("httpx", "httpcore"):  # a line per request would bury what matters
        logging.getLogger(chatty).setLevel(logging.WARNING)


def settings_from(args: argparse.Namespace) -> Any:
    from adapters.dashboard.server import token_from_env
    from tools.runner import RunError, RunSettings, load_config

    config = load_config(args.config, Mode(args.mode) if args.mode is not None else None)
    mode = config.mode
    if mode is not Mode.SIM:
        given = [
            flag
            for flag, value in (
                ("--scenario", args.scenario),
                ("--seed", args.seed),
                ("--out", args.out),
                ("--speed", args.speed),
            )
            if value is not None
        ]
        if args.linger:
            given.append("--linger")
        if args.fresh:
            given.append("--fresh")
        if given:
            raise RunError(f"{', '.join(given)} only apply to --mode sim")
    if args.sessions < 0:
        raise RunError(f"--sessions must be >= 0, got {args.sessions}")
    if mode is Mode.SIM and args.sessions:
        raise RunError("--sessions applies to --mode paper|live (a simulation runs its scenario's days)")
    if mode is not Mode.LIVE and args.live_confirmed:
        raise RunError("--i-understand-live-trading only applies to --mode live")
    if args.scenario is not None and not args.scenario.is_file():
        raise RunError(f"{args.scenario}: scenario file not found")
    return RunSettings(
        mode=mode,
        config=config,
        config_path=args.config,
        scenario_path=args.scenario,
        seed=args.seed,
        out_dir=args.out,
        dashboard=not args.no_dashboard,
        dashboard_port=args.dashboard_port,
        speed=args.speed,
        linger_s=args.linger,
        token=token_from_env(),
        live_confirmed=args.live_confirmed,
        sessions=args.sessions,
        # why: with no --out and no --config the directory is the default sim one, ours to replace (`make run`)
        fresh=args.fresh or (args.out is None and args.config is None),
        contract_overrides=tuple(args.override_contract),
        agent=args.agent,
    )


def run(args: argparse.Namespace) -> int:
    from tools.exitcodes import EXIT_USAGE
    from tools.runner import RunError

    try:
        settings = settings_from(args)
    except (ConfigError, RunError) as exc:
        print(f"ttlive run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    ui = ConsoleUI(quiet=args.quiet)
    try:
        if settings.mode is Mode.SIM:
            return _run_sim(settings, ui)
        return _run_broker(settings, ui)
    except (ConfigError, RunError) as exc:
        print(f"ttlive run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        ui.close()


def _run_sim(settings: Any, ui: ConsoleUI) -> int:
    from tools.runner import SimRun

    run = SimRun(settings, ui)  # claims the output directory (RunError) before the log goes there
    _log_to(run.out, console_level=logging.ERROR)
    outcome = run.run()
    ui.close()
    report = outcome.report
    pnl = Decimal(report.equity_end_usd) - Decimal(report.equity_start_usd)
    rows = [
        ("orders submitted", str(report.orders_submitted)),
        ("venue orders", str(report.venue_orders)),
        ("fills", str(report.fills)),
        ("P&L (USD)", f"{pnl:+.2f}"),
        ("equity end (USD)", report.equity_end_usd),
        ("max drawdown", f"{report.max_drawdown_pct}%"),
        ("halted", f"{report.halted}" + (f" ({report.kill_trigger})" if report.kill_trigger else "")),
        (
            "invariants",
            "held" if not report.invariant_violations else f"{len(report.invariant_violations)} broken",
        ),
        ("audit dir", str(outcome.out_dir / "audit")),
        ("report", str(outcome.report_path)),
        ("broker records", str(outcome.broker_path) if outcome.broker_path else "(not pulled)"),
        ("dashboard", outcome.dashboard_url or "(off)"),
        ("wall seconds", f"{report.wall_seconds:.1f}"),
    ]
    if settings.agent == "tensortrade":
        hosts = getattr(run.world, "hosts", [])
        rows.insert(0, ("agent", f"tensortrade: {sum(h.steps_delivered for h in hosts)} decisions on the engine's "
                                 f"bars, {sum(h.signals_sent for h in hosts)} signals sent"))
    _table(ui, f"ttlive run: {report.scenario} (seed {report.seed}, model {outcome.model_id})", rows)
    for problem in report.invariant_violations:
        ui.console.print(f"[red]INVARIANT[/red] {problem}", soft_wrap=True)
    for problem in report.expectation_failures:
        ui.console.print(f"[red]EXPECTATION[/red] {problem}", soft_wrap=True)
    if outcome.interrupted:
        ui.console.print("[yellow]stopped by the operator[/yellow] after settling and persisting")
    elif report.ok:
        ui.console.print("[green]OK[/green]: session complete, every invariant and expectation held")
    else:
        replay = replay_command(settings, outcome)
        ui.console.print(f"[bold red]FAILED[/bold red]: replay with {replay}", soft_wrap=True)
    return int(outcome.exit_code)


def replay_command(settings: Any, outcome: Any) -> str:
    """The ``ttlive run`` that reruns exactly this session: scenario, seed and the config whose engine sections
    replaced the scenario's (the report's own replay line knows only the scenario)."""
    import shlex

    parts = ["ttlive", "run", "--scenario", str(outcome.scenario_path), "--seed", str(outcome.report.seed)]
    if settings.config_path is not None:
        parts += ["--config", str(settings.config_path)]
    parts += ["--out", str(outcome.out_dir), "--fresh", "--no-dashboard"]
    return shlex.join(parts)


def _run_broker(settings: Any, ui: ConsoleUI) -> int:
    from tools.runner import BrokerRun, state_dir

    run = BrokerRun(settings, ui)  # raises RunError (credentials, live gate) before anything is opened
    _log_to(state_dir(settings.config), console_level=logging.WARNING)
    outcome = run.run()
    rows = [
        ("mode", str(settings.mode)),
        ("sessions", str(outcome.sessions)),
        ("orders submitted", str(outcome.orders)),
        ("fills", str(outcome.fills)),
        ("P&L today (USD)", f"{outcome.pnl_usd:+.2f}" if outcome.pnl_usd is not None else "-"),
        ("halted", str(outcome.halted)),
        ("audit dir", str(outcome.audit_dir)),
        ("state dir", str(outcome.out_dir)),
        ("dashboard", outcome.dashboard_url or "(off)"),
    ]
    _table(ui, f"ttlive run ({settings.mode})", rows)
    for message in outcome.messages:
        ui.console.print(f"[red]{message}[/red]", soft_wrap=True)
    return outcome.exit_code


def _table(ui: ConsoleUI, title: str, rows: list[tuple[str, str]]) -> None:
    from rich.table import Table

    table = Table(title=title, show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in rows:
        table.add_row(key, value)
    ui.console.print(table)
