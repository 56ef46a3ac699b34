"""``ttlive preflight [--config FILE]``: the spec 6 pre-deployment checklist, each item exercised rather than
asserted, printed as a checklist; writes the preflight record that ``ttlive run --mode live`` requires.

The record (``<state dir>/preflight.json``) is tied to the config file's SHA-256: editing the config after a
pass needs a new preflight. Exit status: 0 every check passed, 1 at least one failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from core.config import ConfigError, EngineConfig
from tools.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_USAGE

PAPER_DAYS_MIN: Final = 10  # spec 6: "paper trading completed (2 weeks minimum)" = ten NYSE sessions
RECONNECT_SCENARIO: Final = "disconnect_storm.toml"
KILL_SCENARIO: Final = "manual_kill_reset.toml"
HTTP_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    passed: bool
    detail: str


def register(sub: Any) -> None:
    p = sub.add_parser(
        "preflight",
        help="run the pre-deployment checklist (spec 6) and record the result",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, default=None, help="engine config TOML (live needs the same file)")
    p.add_argument(
        "--paper-audit",
        type=Path,
        default=None,
        metavar="DIR",
        help="audit dir of the paper run (default: the config's audit dir)",
    )
    p.add_argument(
        "--reconnect-scenario",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"scenario with ws_close faults (default: scenarios/{RECONNECT_SCENARIO})",
    )
    p.add_argument(
        "--kill-scenario",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"scenario with a manual kill and reset (default: scenarios/{KILL_SCENARIO})",
    )
    p.set_defaults(func=run)


# --- the checks --------------------------------------------------------------------------------------------


def check_risk(config: EngineConfig) -> CheckResult:
    """The config validates, every symbol has a sector, and the guard resizes, rejects and passes as it
    must."""
    from core.model import AccountType, Direction, ExecutionAction, Signal
    from core.risk import Outcome, PortfolioView, RiskConfig, RiskGuard, UnknownSectorError

    try:
        risk = RiskConfig.from_engine_config(config)
        risk.validate_sectors(config.symbols)
    except (UnknownSectorError, ValueError) as exc:
        return CheckResult("RiskGuard configured and tested", False, str(exc))
    guard = RiskGuard(risk)
    price, equity = Decimal(100), Decimal(100_000)
    symbol = config.symbols[0]

    def view(**changes: Any) -> PortfolioView:
        base: dict[str, Any] = {
            "equity": equity,
            "last_equity": equity,
            "week_start_equity": equity,
            "cash": equity,
            "buying_power": equity,
            "account_type": AccountType.MARGIN_INITIAL,
            "prices": {s: price for s in config.symbols},
        }
        return PortfolioView(**{**base, **changes})

    def signal(qty: int) -> Signal:
        return Signal(
            signal_id="preflight",
            model_id="preflight",
            symbol=symbol,
            direction=Direction.LONG,
            quantity=Decimal(qty),
            action=ExecutionAction.MARKET,
            ts_ns=0,
        )

    cap = risk.position_fraction_cap * equity  # the go-live size_scale is part of the cap
    oversize = guard.evaluate_signal(signal(10_000), view())  # $1M against a few % of $100k
    small_qty = int((1 / risk.size_scale).to_integral_value(rounding="ROUND_CEILING"))  # >= 1 share scaled
    small = guard.evaluate_signal(signal(small_qty), view())
    halted = guard.evaluate_signal(signal(small_qty), view(halted=True))
    losing = guard.evaluate_signal(signal(small_qty), view(equity=equity * Decimal("0.95")))  # down 5% today
    problems = []
    if oversize.outcome is Outcome.PASS or oversize.approved_qty * price > cap:
        problems.append(f"a $1M order was not cut to the position limit (${cap}): {oversize.outcome}")
    if not small.passed or small.approved_qty < 1:
        problems.append(f"a {small_qty}-share order was refused: {small.outcome} {small.reasons}")
    if halted.passed:
        problems.append("an order was accepted while halted")
    if losing.passed:
        problems.append("an order was accepted past the daily loss limit")
    if problems:
        return CheckResult("RiskGuard configured and tested", False, "; ".join(problems))
    return CheckResult(
        "RiskGuard configured and tested",
        True,
        f"{len(guard.rules)} rules; $1M cut to {oversize.approved_qty} shares by "
        f"{oversize.binding_rule}; halt and daily-loss rejects hold",
    )


def check_credentials(config: EngineConfig) -> CheckResult:
    from tools.runner import RunError, credentials

    name = "Alpaca API credentials from the environment"
    try:
        creds = credentials(config)
    except RunError as exc:
        return CheckResult(name, False, str(exc))
    return CheckResult(name, True, f"key id {creds!r} (secret not shown)")


class ScenarioRuns:
    """Runs each drill scenario once (the reconnection and kill-switch checks may share one file)."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self._done: dict[Path, tuple[Any, Path]] = {}

    def get(self, path: Path) -> tuple[Any, Path]:
        key = path.resolve()
        if key not in self._done:
            from sim.scenario import load_scenario
            from sim.world import run_scenario

            out = self.work / f"drill-{len(self._done)}"
            report = run_scenario(load_scenario(path), out_dir=out, scenario_file=str(path))
            self._done[key] = (report, out)
        return self._done[key]


def check_reconnection(path: Path, runs: ScenarioRuns) -> CheckResult:
    name = "WebSocket reconnection tested (fake venue)"
    from sim.scenario import fault_plan, load_scenario

    try:
        kinds = {event.kind for event in fault_plan(load_scenario(path)).events}
        if "ws_close" not in kinds:
            return CheckResult(name, False, f"{path} has no ws_close fault to reconnect from")
        report, _out = runs.get(path)
    except (ConfigError, OSError) as exc:
        return CheckResult(name, False, str(exc))
    problems = report.invariant_violations + report.expectation_failures
    if problems or report.reconnects < 1:
        return CheckResult(
            name, False, f"{path.name}: {report.reconnects} reconnects; " + "; ".join(problems[:3])
        )
    return CheckResult(
        name, True, f"{path.name}: {report.reconnects} reconnects, {report.fills} fills, every invariant held"
    )


def check_kill_switch(path: Path, runs: ScenarioRuns) -> CheckResult:
    name = "Kill switch tested (manual trigger and reset)"
    from tools.compliance import load_audit

    try:
        report, out = runs.get(path)
    except (ConfigError, OSError) as exc:
        return CheckResult(name, False, str(exc))
    trail = load_audit(out / "audit")
    halts = [r for r in trail.health if r.event_type == "halt" and str(r.extra.get("trigger")) == "manual"]
    resets = [r for r in trail.health if r.event_type == "reset" and r.extra.get("operator")]
    problems = report.invariant_violations + report.expectation_failures
    if not halts:
        problems.append("no manual halt record in the audit trail")
    elif halts[0].extra.get("cancel_all_verified") is not True:
        problems.append("the halt's cancel-all was not verified (open orders may remain)")
    if not resets:
        problems.append("no audited manual reset (operator + reason)")
    if problems:
        return CheckResult(name, False, f"{path.name}: " + "; ".join(problems[:3]))
    return CheckResult(
        name,
        True,
        f"{path.name}: halted by the operator, cancel-all verified, reset by "
        f"{resets[0].extra.get('operator')}; every invariant held",
    )


def check_audit(config: EngineConfig) -> CheckResult:
    from adapters.audit_jsonl import AuditLockedError, JsonlAuditSink, verify_dir
    from core.audit import system_record

    name = "Audit logging pipeline verified"
    directory = Path(config.audit.dir)
    try:
        with JsonlAuditSink(directory, fsync=True) as sink:
            sink.write(
                system_record(
                    "health",
                    ts_ns=time.time_ns(),
                    reason="preflight: audit pipeline check",
                    extra={"event": "preflight_audit_check"},
                )
            )
    except AuditLockedError:
        return CheckResult(
            name, False, f"{directory} is open by a running engine; run preflight while it is down"
        )
    except OSError as exc:
        return CheckResult(name, False, f"{directory} is not writable: {exc}")
    report = verify_dir(directory)
    if not report.ok:
        first = next(str(p) for s in report.streams for p in s.problems)
        return CheckResult(name, False, f"{directory}: hash chain broken: {first}")
    records = sum(s.records for s in report.streams)
    return CheckResult(name, True, f"{directory}: wrote and fsynced a record; {records} records verified")


def check_dashboard(config: EngineConfig) -> CheckResult:
    import httpx
    import trio

    from adapters.alerts import DashboardAlertSink
    from adapters.alpaca.clock import WallClock
    from adapters.dashboard.engine_source import EngineDashboardSource
    from adapters.dashboard.server import TOKEN_ENV, serve_dashboard, token_from_env
    from adapters.dashboard.source import SNAPSHOT_KEYS
    from adapters.metrics import Metrics

    name = "Monitoring dashboard deployed"
    token = token_from_env()
    source = EngineDashboardSource(mode=str(config.mode), clock=WallClock(), alerts=DashboardAlertSink())
    host = config.dashboard.host
    found: dict[str, Any] = {}

    async def probe() -> None:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_dashboard, source, Metrics(), host, 0, token)
            async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=HTTP_TIMEOUT_S) as http:
                with trio.fail_after(HTTP_TIMEOUT_S):
                    found["state"] = await http.get("/api/state")
                    found["metrics"] = await http.get("/metrics")
            nursery.cancel_scope.cancel()

    try:
        trio.run(probe)
    except (OSError, httpx.HTTPError, trio.TooSlowError, BaseExceptionGroup) as exc:
        return CheckResult(name, False, f"could not serve and reach it on {host}: {type(exc).__name__}")
    state, metrics = found["state"], found["metrics"]
    if state.status_code != 200 or set(state.json()) != SNAPSHOT_KEYS or metrics.status_code != 200:
        return CheckResult(name, False, f"/api/state {state.status_code}, /metrics {metrics.status_code}")
    if not token:
        return CheckResult(
            name, False, f"reachable, but {TOKEN_ENV} is not set: its kill and reset are disabled"
        )
    return CheckResult(name, True, f"served on {host}, /api/state and /metrics answer; kill/reset token set")


def check_paper_history(directory: Path) -> CheckResult:
    """Distinct paper session dates that ran open to close with clean reconciliation (core.sessions)."""
    from core.sessions import SESSION_COMPLETED_EVENT, counted_sessions
    from tools.compliance import load_audit

    name = f"Paper trading completed ({PAPER_DAYS_MIN} sessions minimum)"
    if not directory.is_dir():
        return CheckResult(name, False, f"no paper audit trail at {directory}")
    trail = load_audit(directory)
    days = counted_sessions(trail.health, "paper")
    ended = sum(
        1
        for r in trail.health
        if r.extra.get("event") == SESSION_COMPLETED_EVENT and r.extra.get("mode") == "paper"
    )
    if len(days) < PAPER_DAYS_MIN:
        return CheckResult(
            name,
            False,
            f"{len(days)} paper session day(s) ran open to close with clean reconciliation in {directory} "
            f"({ended} session(s) ended in all); need {PAPER_DAYS_MIN}",
        )
    return CheckResult(name, True, f"{len(days)} clean paper session days, {days[0]} .. {days[-1]}")


# --- the command -------------------------------------------------------------------------------------------


def run_checks(
    args: argparse.Namespace, config: EngineConfig, work: Path, report: Callable[[CheckResult], None]
) -> list[CheckResult]:
    from tools.runner import SCENARIOS_DIR

    reconnect = args.reconnect_scenario or SCENARIOS_DIR / RECONNECT_SCENARIO
    kill = args.kill_scenario or SCENARIOS_DIR / KILL_SCENARIO
    runs = ScenarioRuns(work)
    checks: list[Callable[[], CheckResult]] = [
        lambda: check_risk(config),
        lambda: check_credentials(config),
        lambda: check_reconnection(reconnect, runs),
        lambda: check_audit(config),
        lambda: check_dashboard(config),
        lambda: check_kill_switch(kill, runs),
        lambda: check_paper_history(args.paper_audit or Path(config.audit.dir)),
    ]
    results = []
    for fn in checks:
        result = fn()
        report(result)
        results.append(result)
    return results


def run(args: argparse.Namespace) -> int:
    import logging

    from rich.console import Console

    from tools.runner import PREFLIGHT_NAME, file_sha256, load_config, state_dir

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"ttlive preflight: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for flag, path in (
        ("--reconnect-scenario", args.reconnect_scenario),
        ("--kill-scenario", args.kill_scenario),
    ):
        if path is not None and not path.is_file():
            print(f"ttlive preflight: {flag} {path}: file not found", file=sys.stderr)
            return EXIT_USAGE
    logging.basicConfig(level=logging.CRITICAL + 1)  # drills raise alerts on purpose; results say what failed
    console = Console()
    console.print(f"[bold]ttlive preflight[/bold] ({args.config or 'built-in defaults'}, mode {config.mode})")

    def show(result: CheckResult) -> None:
        mark = "[green]\u2714[/green]" if result.passed else "[red]\u2718[/red]"
        verdict = "PASS" if result.passed else "FAIL"
        console.print(f"{mark} {result.name}: {verdict} - {result.detail}", soft_wrap=True, highlight=False)

    with tempfile.TemporaryDirectory(prefix="ttlive-preflight-") as work:
        results = run_checks(args, config, Path(work), show)
    passed = all(r.passed for r in results)
    record = {
        "passed": passed,
        "config": str(args.config) if args.config else "",
        "config_sha256": file_sha256(args.config) if args.config else "",
        "ts": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),  # an operator's run, on the wall clock
        "checks": [asdict(r) for r in results],
    }
    target = state_dir(config)
    target.mkdir(parents=True, exist_ok=True)
    (target / PREFLIGHT_NAME).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    failed = sum(not r.passed for r in results)
    if passed:
        console.print(f"[green]all {len(results)} checks passed[/green]; record: {target / PREFLIGHT_NAME}")
        return EXIT_OK
    console.print(f"[red]{failed} of {len(results)} checks failed[/red]; record: {target / PREFLIGHT_NAME}")
    return EXIT_FAILED
