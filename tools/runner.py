"""The composition root of ``ttlive run``: one trading session, simulated (fake venue, virtual clock) or on
Alpaca's paper/live APIs, with the engine, audit trail, alerts, metrics and dashboard wired the same way.

Sim: ``sim.world.World`` on trio's MockClock (max speed, deterministic) or paced by a ``Pacer`` (``--speed
X``: X virtual seconds per wall second); the dashboard runs in its own wall-clock thread and reaches the
engine through ``LoopBridgeSource``. Paper/live: real adapters on the wall clock, one session (pre-open to
close + settle). The first Ctrl-C (or SIGTERM) settles and persists, then stops; a second one exits at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import math
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, Final, Protocol

import msgspec
import trio
import trio.testing

from adapters.audit_jsonl import SECRET_MIN_CHARS  # the audit sink refuses shorter secrets
from adapters.rundir import run_layout
from core.config import Checker, ConfigError, EngineConfig, Mode, PolicySection, for_mode, parse_config
from core.model import NS_PER_S as NS
from tools.exitcodes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK

log = logging.getLogger("ttlive.run")

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
SCENARIOS_DIR: Final = REPO_ROOT / "scenarios"
DEFAULT_SCENARIOS: Final = ("default.toml", "clean_day.toml")  # the first that exists is the default session
REPORT_NAME: Final = "report.json"
PREFLIGHT_NAME: Final = "preflight.json"
SETTLE_TIMEOUT_S: Final = 300.0  # engine-clock seconds for the final resync + reconciliation
PROGRESS_EVERY_S: Final = 600.0  # virtual seconds between progress reports
PACE_POLL_S: Final = 0.005  # wall seconds a paced sim waits when only I/O (no deadline) is pending
PACE_SLEEP_MAX_S: Final = 0.05  # a paced wait is cut in slices so a dashboard command is never kept waiting
PACE_MAX_LAG_S: Final = 1.0  # a paced sim that falls further behind wall time drops the debt (no bursts)
BROKER_CALL_TIMEOUT_S: Final = 60.0
SESSION_RETRY_S: Final = (30.0, 120.0, 600.0)  # wall seconds before retrying a session that failed to run



class RunError(Exception):
    """A session that cannot start as asked (bad input, missing credentials, live not cleared): exit 2."""


class RunUI(Protocol):
    """What the runner tells the operator; ``tools.cmd_run`` renders it with rich."""

    def info(self, text: str) -> None: ...
    def progress(self, done_s: int, total_s: int) -> None: ...
    def dashboard(self, url: str) -> None: ...


@dataclass
class RunSettings:
    mode: Mode = Mode.SIM
    config: EngineConfig = field(default_factory=EngineConfig)
    config_path: Path | None = None
    scenario_path: Path | None = None
    seed: int | None = None
    out_dir: Path | None = None
    dashboard: bool = True
    dashboard_port: int | None = None  # None: the config's port
    speed: float | None = None  # virtual seconds per wall second; None = as fast as possible
    linger_s: float = 0.0  # sim: keep serving the final state this long after the session
    token: str = ""  # TTLIVE_DASHBOARD_TOKEN
    live_confirmed: bool = False
    fresh: bool = False  # sim: replace an earlier sim run in the output directory (adapters.rundir)
    sessions: int = 0  # paper/live: stop after this many sessions (0: run session after session until stopped)
    contract_overrides: tuple[str, ...] = ()  # --override-contract: model-contract fields this run may differ in
    agent: str = "engine"  # --agent: the engine's policy actor decides, or "tensortrade" (a TradingEnv steps)


# --- files and gates ----------------------------------------------------------------------------------------


def load_config(path: Path | None, mode: Mode | None = None) -> EngineConfig:
    """The config file (or the defaults) running as ``mode`` (default: the file's); ConfigError names file, key
    and line. Beyond ``parse_config``: a policy model directory must exist and hold model.json."""
    if path is None:
        return for_mode(EngineConfig(), mode or Mode.SIM)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    from sim.scenario import check_policy_model

    config = parse_config(text, source=str(path), mode=mode)
    check_policy_model(Checker(str(path), text), config.policy)
    return config


def default_scenario() -> Path:
    for name in DEFAULT_SCENARIOS:
        if (SCENARIOS_DIR / name).is_file():
            return SCENARIOS_DIR / name
    raise RunError(f"no default scenario: none of {', '.join(DEFAULT_SCENARIOS)} in {SCENARIOS_DIR}")


def state_dir(config: EngineConfig) -> Path:
    """Where a configured runner keeps its engine state and preflight record (``adapters.rundir.run_layout``)."""
    return run_layout(config).directory


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def live_gate(*, confirmed: bool, config_path: Path | None, config: EngineConfig) -> None:
    """Live trading needs the flag, a config file and a passed preflight of exactly that file (RunError)."""
    if not confirmed:
        raise RunError("live trading needs --i-understand-live-trading as well as --mode live")
    if config_path is None:
        raise RunError("live trading needs --config FILE (the preflight record is tied to that file)")
    record_path = state_dir(config) / PREFLIGHT_NAME
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(
            f"no preflight record at {record_path}: run `ttlive preflight --config {config_path}` "
            "and make every check pass"
        ) from None
    except (OSError, ValueError) as exc:
        raise RunError(f"unreadable preflight record {record_path}: {exc}") from None
    if not isinstance(record, dict) or record.get("passed") is not True:
        raise RunError(f"the preflight record {record_path} did not pass: fix the failed checks and rerun it")
    if record.get("config_sha256") != file_sha256(config_path):
        raise RunError(f"{config_path} changed since the preflight passed: rerun `ttlive preflight`")
    go_live_gate(config)


def go_live_gate(config: EngineConfig) -> None:
    """Spec 6: the first live sessions run at the reduced size, counted from this runner's audit trail."""
    from core.sessions import go_live_cap_problem
    from tools.compliance import load_audit

    audit_dir = run_layout(config).audit_dir
    health = load_audit(audit_dir).health if audit_dir.is_dir() else []
    problem = go_live_cap_problem(health, Decimal(config.risk.size_scale))
    if problem is not None:
        raise RunError(problem)


def credentials(config: EngineConfig, purpose: str = "") -> Any:
    """Alpaca keys from the environment (preferred) or the config's credentials file; never printed."""
    from adapters.alpaca.config import ENV_KEY_ID, ENV_SECRET_KEY, Credentials
    from adapters.alpaca.config import ConfigError as AlpacaConfigError

    try:
        return Credentials.from_env()
    except AlpacaConfigError:
        pass
    if config.broker.credentials_file:
        try:
            return Credentials.from_file(config.broker.credentials_file)
        except AlpacaConfigError as exc:
            raise RunError(f"credentials: {exc}") from None
    raise RunError(
        f"{purpose or 'Alpaca'} needs Alpaca credentials: set {ENV_KEY_ID} and {ENV_SECRET_KEY} in "
        "the environment (or broker.credentials_file in the config)"
    )


def secrets_of(*values: str) -> list[str]:
    return sorted({v for v in values if v})


def check_contract(settings: RunSettings, policy: PolicySection, symbols: list[str]) -> Any:
    """The run against its model's contract (``adapters.policy.contract.check_run``); a mismatch that is not
    overridden is a RunError (exit 2) naming the field and both values."""
    from adapters.policy.contract import ContractError, check_run

    source = str(settings.config_path or settings.scenario_path or "the default session")
    try:
        return check_run(policy, symbols, overrides=settings.contract_overrides, source=source)
    except ContractError as exc:
        raise RunError(str(exc)) from None


def warn_contract(check: Any, ui: RunUI) -> None:
    for line in check.lines():
        log.warning("model contract: %s", line)
        ui.info(f"[yellow]model contract[/yellow]: {line}")


# --- the paced clock ----------------------------------------------------------------------------------------


class Pacer:
    """Paces a MockClock at ``speed`` virtual seconds per wall second: an autojump that waits for wall time.

    Like MockClock's autojump it jumps only to the next deadline and only when every task is idle, so
    work costs no virtual time (no spurious timeouts under load); it just never jumps ahead of wall time.
    Run ``serve`` as a task of a ``trio.run`` whose clock is ``self.clock`` (no autojump, rate 0).
    """

    def __init__(self, speed: float, *, wall: Callable[[], float] = time.monotonic) -> None:
        assert speed > 0 and math.isfinite(speed), speed
        self.speed = speed
        self.clock = trio.testing.MockClock()
        self._wall = wall

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        wall0, virtual0 = self._wall(), self.clock.current_time()
        task_status.started()
        while True:
            await trio.testing.wait_all_tasks_blocked()
            jump = trio.lowlevel.current_statistics().seconds_to_next_deadline
            if not 0 < jump < math.inf:
                await trio.to_thread.run_sync(time.sleep, PACE_POLL_S)  # waiting on I/O only: let it arrive
                continue
            target = self.clock.current_time() + jump
            allowed = virtual0 + (self._wall() - wall0) * self.speed
            if target > allowed:
                await trio.to_thread.run_sync(
                    time.sleep, min((target - allowed) / self.speed, PACE_SLEEP_MAX_S)
                )
                continue
            if allowed - target > PACE_MAX_LAG_S * self.speed:  # fell behind (CPU): forget the debt, no burst
                wall0, virtual0 = self._wall(), target
            self.clock.jump(jump)


# --- signals ------------------------------------------------------------------------------------------------


async def watch_signals(
    on_first: Callable[[], Awaitable[None]], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """First SIGINT/SIGTERM: ``on_first`` (graceful stop). Second: exit at once, without cleanup."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        count = 0
        async with trio.open_nursery() as nursery:
            async for _signum in signals:
                count += 1
                if count == 1:
                    log.warning("stopping: settling and persisting (press Ctrl-C again to exit at once)")
                    nursery.start_soon(on_first)
                else:
                    os._exit(EXIT_INTERRUPTED)


# --- sim ----------------------------------------------------------------------------------------------------


@dataclass
class SimOutcome:
    report: Any  # sim.report.Report
    out_dir: Path
    report_path: Path
    broker_path: Path | None
    interrupted: bool
    dashboard_url: str | None
    model_id: str = ""
    scenario_path: Path | None = None

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_OK if self.report.ok else EXIT_FAILED


def sim_scenario(settings: RunSettings) -> tuple[Any, Path]:
    """The scenario to run, with the engine sections of ``--config`` (or the shipped INT8 model) applied.

    The scenario defines the world (session, account, instruments, market, faults). The policy is the config's
    ``[policy]`` when a config file is given, else the shipped ONNX model at INT8 and the scenario's decision
    interval; a config file's ``[risk]``, ``[execution]`` and ``[reconcile]`` replace the scenario's too.
    """
    from sim.scenario import load_scenario

    path = settings.scenario_path or default_scenario()
    scenario = load_scenario(path)
    if settings.config_path is not None:
        c = settings.config
        scenario = msgspec.structs.replace(
            scenario, policy=c.policy, risk=c.risk, execution=c.execution, reconcile=c.reconcile
        )
    else:
        shipped = PolicySection(
            kind="onnx",
            model="default",
            precision=PolicySection().precision,  # the config default (FP32: see the model card)
            decision_interval_s=scenario.policy.decision_interval_s,  # unset: the model's (its contract)
            contract_override=list(scenario.policy.contract_override),
        )
        scenario = msgspec.structs.replace(scenario, policy=shipped)
    return scenario, path


def claim_dir(directory: Path, mode: Mode, *, replace: bool = False) -> Any:
    """``adapters.rundir.claim`` with its refusal as a RunError (exit 2)."""
    from adapters.rundir import RunDirError, claim

    try:
        return claim(directory, str(mode), replace=replace)
    except RunDirError as exc:
        raise RunError(str(exc)) from None


def anchor_trail(audit_dir: Path, ts_ns: int) -> None:
    """Session close: the chain heads go to the append-only anchor file (``ttlive audit verify`` checks them)."""
    from adapters.audit_jsonl import append_anchor

    try:
        append_anchor(audit_dir, ts_ns=ts_ns)
    except OSError as exc:  # the session's results stand; verify will say the tail is unanchored
        log.error("could not anchor the audit trail %s: %s", audit_dir, exc)


class SimRun:
    """One simulated session: world + optional dashboard thread + progress + graceful stop."""

    def __init__(self, settings: RunSettings, ui: RunUI) -> None:
        from adapters.dashboard.engine_source import EngineDashboardSource, LoopBridgeSource
        from sim.world import World, WorldOptions

        scenario, path = sim_scenario(settings)
        self.contract = check_contract(settings, scenario.policy, [i.symbol for i in scenario.instruments])
        self.settings = settings
        self.ui = ui
        self.scenario_path = path
        self.seed = scenario.seed if settings.seed is None else settings.seed
        layout = run_layout(settings.config, out_dir=settings.out_dir)
        self.out = layout.directory
        self.claim = claim_dir(self.out, Mode.SIM, replace=settings.fresh)
        capture = settings.config.capture.active(Mode.SIM)  # a sim records its wire only when asked to
        options = WorldOptions(capture=capture)
        if settings.agent == "tensortrade":  # the policy steps a TensorTrade env through the bridge (spec 5.1)
            from sim.bridge_world import BridgeWorld, bridge_scenario

            scenario = bridge_scenario(scenario)  # execution.brackets = false: TensorTrade mirrors its own orders
            self.world: World = BridgeWorld(scenario, self.seed, self.out, options, layout=layout)
        else:
            self.world = World(scenario, self.seed, self.out, options, layout=layout)
        self.source = EngineDashboardSource(
            mode="sim", clock=self.world.clock, alerts=self.world.dashboard_alerts
        )
        self.world.options.on_engine = self._on_engine
        self.bridge = LoopBridgeSource(self.source)
        self.pacer = Pacer(settings.speed) if settings.speed is not None else None
        self.interrupted = False
        self.records: Any = None
        self._world_scope = trio.CancelScope()
        self._contract_audited = False

    def _on_engine(self, engine: Any) -> None:
        """Each engine life of the world: the dashboard follows it; the first one audits the model contract."""
        from adapters.policy.contract import contract_record

        if not self._contract_audited:
            self._contract_audited = True
            warn_contract(self.contract, self.ui)
            engine.audit.write(contract_record(self.contract, engine.clock.now_ns()))
        self.source.attach(engine)

    def run(self) -> SimOutcome:
        from sim.determinism import seed_trio_scheduler
        from sim.report import encode_report
        from sim.world import build_report
        from tools.compliance import BROKER_RECORDS_NAME, save_records

        dashboard, url = self._start_dashboard()
        speed = self.settings.speed
        clock = self.pacer.clock if self.pacer is not None else trio.testing.MockClock(autojump_threshold=0)
        self.ui.info(
            f"session: {self.world.scenario.name} (seed {self.seed}) from {self.scenario_path}, model "
            f"{self.world.model.model_id}, speed {'max' if speed is None else f'{speed:g}x'}"
        )
        wall0 = time.perf_counter()
        try:
            seed_trio_scheduler(self.seed)
            trio.run(self._main, clock=clock)
            wall_s = time.perf_counter() - wall0
            report = build_report(self.world, scenario_file=str(self.scenario_path), wall_s=wall_s)
            report_path = self.out / REPORT_NAME
            report_path.write_bytes(encode_report(report))
            broker_path = None
            if self.records is not None:
                broker_path = self.out / BROKER_RECORDS_NAME
                save_records(broker_path, self.records)
            self.bridge.close()  # the loop is over: the dashboard serves the final state as it stands
            if dashboard is not None and self.settings.linger_s > 0 and not self.interrupted:
                self.ui.info(
                    f"dashboard keeps serving the final state for {self.settings.linger_s:g} s at {url}"
                )
                _linger(self.settings.linger_s)
            anchor_trail(self.world.audit_dir, self.world.record.end_ns)
        finally:
            self.bridge.close()
            if dashboard is not None:
                dashboard.stop()
            self.claim.release()
        return SimOutcome(
            report=report,
            out_dir=self.out,
            report_path=report_path,
            broker_path=broker_path,
            interrupted=self.interrupted,
            dashboard_url=url,
            model_id=self.world.model.model_id,
            scenario_path=self.scenario_path,
        )

    def _start_dashboard(self) -> tuple[Any, str | None]:
        s = self.settings
        if not (s.dashboard and s.config.dashboard.enabled):
            return None, None
        from adapters.dashboard.engine_source import DashboardThread
        from adapters.metrics import Metrics

        host = s.config.dashboard.host
        port = s.config.dashboard.port if s.dashboard_port is None else s.dashboard_port
        thread = DashboardThread(self.bridge, Metrics(), host=host, port=port, token=s.token)
        try:
            bound = thread.start()
        except (OSError, TimeoutError, BaseExceptionGroup) as exc:
            self.ui.info(
                f"dashboard not started ({type(exc).__name__}: port {port} on {host}); the session runs "
                "without it"
            )
            return None, None
        url = f"http://{host}:{bound}/"
        self.ui.dashboard(url)
        if s.speed is None and s.linger_s <= 0:
            self.ui.info(
                "max speed: the session will be over in seconds; use --speed 600 to watch it live, or "
                "--linger S to keep the final state up"
            )
        return thread, url

    async def _main(self) -> None:
        async with trio.open_nursery() as nursery:
            if self.pacer is not None:
                await nursery.start(self.pacer.serve)
            await nursery.start(self.bridge.serve)
            await nursery.start(watch_signals, self._graceful_stop)
            nursery.start_soon(self._report_progress)
            async with trio.open_nursery() as world_nursery:
                # its own task: World.run counts the nurseries its task still has open as leaked
                world_nursery.start_soon(self._run_world)
            self.records = await self._pull_broker_records()
            nursery.cancel_scope.cancel()

    async def _run_world(self) -> None:
        with self._world_scope:
            await self.world.run()

    async def _graceful_stop(self) -> None:
        self.interrupted = True
        engine = self.world.engine
        if engine is not None and engine.started.is_set() and not engine.stopped.is_set():
            engine.begin_stop("signal")
            with trio.move_on_after(SETTLE_TIMEOUT_S):
                await engine.settle()
        self._world_scope.cancel()

    async def _report_progress(self) -> None:
        from sim.world import PRE_OPEN_S

        start_ns = self.world.sessions[0][1] - PRE_OPEN_S * NS
        total = self.world.total_sim_s
        while True:
            done = max(0, min(total, int((self.world.clock.now_ns() - start_ns) / NS)))
            self.ui.progress(done, total)
            await trio.sleep(PROGRESS_EVERY_S)

    async def _pull_broker_records(self) -> Any:
        """Spec 4.4 pulls from the fake venue, through the real adapter, for ``ttlive compliance``."""
        from adapters.bootstrap import open_rest
        from tools.compliance import fetch_broker_records

        rest = open_rest(self.world.link, clock=self.world.clock)
        try:
            with trio.fail_after(BROKER_CALL_TIMEOUT_S):
                return await fetch_broker_records(
                    rest,
                    source="sim",
                    now_ns=self.world.clock.now_ns(),
                    equity_points=list(self.world.venue.account.equity_points),
                )
        except Exception as exc:  # the session's results stand without them; compliance says what is missing
            log.warning("could not pull the broker records for compliance: %s", exc)
            return None
        finally:
            with trio.CancelScope(shield=True):
                await rest.aclose()


def _linger(seconds: float) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        time.sleep(seconds)


# --- paper / live -------------------------------------------------------------------------------------------


@dataclass
class BrokerOutcome:
    exit_code: int
    out_dir: Path
    audit_dir: Path
    orders: int = 0
    fills: int = 0
    pnl_usd: Decimal | None = None
    halted: bool = False
    dashboard_url: str | None = None
    interrupted: bool = False
    sessions: int = 0  # sessions run to their end (paper/live)
    messages: list[str] = field(default_factory=list)


class BrokerRun:
    """Paper (or live) sessions, one after another, unattended: wait for the pre-open (Alpaca's clock: nights,
    weekends and holidays), start the engine from its persisted state (warm-up, resync, the daily and weekly
    windows roll), trade until the close, settle, audit how the session ended (core.sessions), write the day's
    compliance report, and wait for the next one. A session that fails to run (the broker unreachable at
    start-up) is retried after a back-off; a refusal (credentials, a safeguard that did not stick) ends the run,
    as do ``SESSION_RETRY_S`` failures in a row. ``settings.sessions`` bounds the count (0: until stopped)."""

    def __init__(self, settings: RunSettings, ui: RunUI) -> None:
        config = settings.config
        if settings.mode is Mode.LIVE:
            live_gate(confirmed=settings.live_confirmed, config_path=settings.config_path, config=config)
        self.contract = check_contract(settings, config.policy, config.symbols)
        if settings.agent == "tensortrade":
            from adapters.tensortrade.live import bracket_refusal

            refusal = bracket_refusal(config)
            if refusal is not None:
                raise RunError(refusal)
        self.agent: Any = None  # adapters.tensortrade.live.TensorTradeAgent with --agent tensortrade
        self._engine: Any = None  # the session's engine, once built
        self.settings = settings
        self.ui = ui
        self.credentials = credentials(config, f"{settings.mode} trading")
        self.layout = run_layout(config)
        self.secrets = secrets_of(
            self.credentials.key_id, self.credentials.secret_key, settings.token, config.alerts.webhook_url
        )
        short = [s for s in self.secrets if len(s) < SECRET_MIN_CHARS]
        if short:
            raise RunError(
                f"a configured secret is shorter than {SECRET_MIN_CHARS} characters: the audit trail "
                "cannot redact it safely (use a longer dashboard token)"
            )
        self.outcome = BrokerOutcome(exit_code=EXIT_OK, out_dir=self.layout.directory, audit_dir=self.layout.audit_dir)
        self._stop = trio.Event()
        self.claim = claim_dir(self.layout.directory, settings.mode)  # held until run() returns (or the process dies)

    def run(self) -> BrokerOutcome:
        from adapters.alerts import Redactor

        redact = Redactor(self.secrets)
        failures = 0
        try:
            while not self._stop.is_set():
                self.outcome.exit_code = EXIT_OK  # this session's; a failure (or Ctrl-C) below sets it
                try:
                    trio.run(self._main)
                except Exception as exc:  # broker refusals, safeguards that did not stick, actor crashes
                    group = exc.exceptions if isinstance(exc, BaseExceptionGroup) else (exc,)
                    self.outcome.exit_code = EXIT_FAILED
                    for error in group:
                        log.info("session failed", exc_info=error)  # the traceback goes to run.log only
                        self.outcome.messages.append(redact(f"session failed: {type(error).__name__}: {error}"))
                    if self._stop.is_set() or failures >= len(SESSION_RETRY_S) or not all(map(transient, group)):
                        break
                    self.ui.info(f"session failed; retrying in {SESSION_RETRY_S[failures]:g} s (Ctrl-C to stop)")
                    trio.run(self._pause, SESSION_RETRY_S[failures])
                    failures += 1
                    continue
                failures = 0
                self.outcome.sessions += 1
                if self.outcome.interrupted or 0 < self.settings.sessions <= self.outcome.sessions:
                    break
                if self.outcome.exit_code == EXIT_FAILED:
                    break  # an actor crash: the engine halted itself; an operator looks before it runs again
        finally:
            self.claim.release()
        return self.outcome

    async def _pause(self, seconds: float) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(watch_signals, self._graceful)
            with trio.move_on_after(seconds):
                await self._stop.wait()
            nursery.cancel_scope.cancel()

    async def _main(self) -> None:
        import httpx

        from adapters.alerts import AlertRouter, DashboardAlertSink, LogAlertSink, WebhookAlertSink
        from adapters.alpaca.clock import WallClock
        from adapters.alpaca.telemetry import LatencyTelemetry
        from adapters.bootstrap import BrokerLink, build_engine, capture_link, open_adapters, open_audit, open_store
        from adapters.dashboard.engine_source import EngineDashboardSource
        from adapters.dashboard.server import serve_dashboard
        from adapters.ids import Uuid4Ids
        from adapters.metrics import Metrics
        from adapters.policy.contract import contract_record
        from adapters.policy.decision import load_decision_model
        from core.audit import RUNNER_STARTED_EVENT as RUNNER_STARTED
        from core.audit import system_record
        from core.model import AccountType

        s, config = self.settings, self.settings.config
        clock = WallClock()
        metrics = Metrics()
        telemetry = LatencyTelemetry(forward=metrics)
        link = BrokerLink.alpaca(s.mode, config.broker, self.credentials)
        self.layout.directory.mkdir(parents=True, exist_ok=True)
        audit = open_audit(self.layout, secrets=self.secrets, fsync=True)
        warn_contract(self.contract, self.ui)
        audit.write(contract_record(self.contract, clock.now_ns()))
        link, capture = capture_link(link, self.layout, config, s.mode, secrets=self.secrets)  # [capture]
        self._capture = capture
        try:
            async with trio.open_nursery() as nursery, httpx.AsyncClient() as webhook_client:
                await nursery.start(watch_signals, self._graceful)
                dashboard_alerts = DashboardAlertSink()
                sinks: list[Any] = [LogAlertSink(), dashboard_alerts]
                if config.alerts.webhook_url:
                    webhook = WebhookAlertSink(config.alerts.webhook_url, client=webhook_client)
                    await nursery.start(webhook.serve)
                    sinks.append(webhook)
                alerts = AlertRouter(sinks, clock=clock, secrets=self.secrets, counter=metrics)
                adapters = open_adapters(link, clock=clock, telemetry=telemetry, symbols=config.symbols, alerts=alerts)
                try:
                    with trio.fail_after(BROKER_CALL_TIMEOUT_S):
                        account = await adapters.rest.get_account()
                        market_clock = await adapters.rest.get_clock()
                    account_type = AccountType.MARGIN_INITIAL if account.multiplier > 1 else AccountType.CASH
                    if s.agent == "tensortrade":
                        from adapters.tensortrade.live import TensorTradeAgent

                        self.agent = TensorTradeAgent(config)
                        model: Any = self.agent.engine_model
                    else:
                        model = load_decision_model(
                            config.policy.kind, config.policy.model, config.policy.precision
                        )
                    store = open_store(self.layout, fsync=True)
                    engine = build_engine(
                        config, adapters, clock=clock, ids=Uuid4Ids(), model=model, alerts=alerts, audit=audit,
                        store=store, account_type=account_type,
                    )
                    if self.agent is not None:
                        self.agent.attach(engine)
                    self._engine = engine  # a graceful stop tells it first (_graceful)
                    source = EngineDashboardSource(
                        mode=str(s.mode),
                        clock=clock,
                        alerts=dashboard_alerts,
                        engine=engine,
                        idle_command=partial(idle_latch, store, audit, clock),
                    )
                    if s.dashboard and config.dashboard.enabled:
                        port = config.dashboard.port if s.dashboard_port is None else s.dashboard_port
                        bound = await nursery.start(
                            serve_dashboard, source, metrics, config.dashboard.host, port, s.token
                        )
                        self.outcome.dashboard_url = f"http://{config.dashboard.host}:{bound}/"
                        self.ui.dashboard(self.outcome.dashboard_url)

                    def mark_started() -> None:  # preflight counts paper session days by this record
                        extra = {
                            "event": RUNNER_STARTED,
                            "mode": str(s.mode),
                            "model_id": self.agent.policy_model_id if self.agent is not None else model.model_id,
                            "agent": s.agent,
                            "config_sha256": file_sha256(s.config_path) if s.config_path else "",
                        }
                        audit.write(
                            system_record(
                                "health", ts_ns=clock.now_ns(), reason="runner started", extra=extra
                            )
                        )

                    await self._session(
                        nursery, engine, clock, market_clock, adapters.trading, adapters.market, mark_started,
                        audit.write, adapters.rest,
                    )
                    if self.agent is not None:
                        self.ui.info(self.agent.describe())
                    final = engine.snapshot()
                    self.outcome.orders = final.counters.orders_submitted
                    self.outcome.fills = final.counters.fills
                    self.outcome.halted = final.halted
                    if final.has_book:
                        self.outcome.pnl_usd = final.day_pl_usd
                    if final.session_date and not self.outcome.interrupted:
                        await self._daily_report(adapters.rest, clock, final.session_date)
                finally:
                    await adapters.aclose()
                nursery.cancel_scope.cancel()
        finally:
            audit.close()
            if capture is not None:
                capture.close()
            anchor_trail(self.layout.audit_dir, clock.now_ns())

    async def _session(
        self,
        nursery: trio.Nursery,
        engine: Any,
        clock: Any,
        market_clock: Any,
        trading: Any,
        market: Any,
        mark_started: Callable[[], None],
        audit_write: Callable[[Any], None],
        rest: Any,
    ) -> None:
        from adapters.alpaca.connectivity import forward_connectivity
        from sim.world import PRE_OPEN_S  # the daily runner's timing, as simulated

        now_ns = clock.now_ns()
        if not market_clock.is_open:
            start_ns = market_clock.next_open_ts_ns - PRE_OPEN_S * NS
            if start_ns > now_ns:
                self.ui.info(f"market closed: waiting for the pre-open at {_iso(start_ns)} (Ctrl-C to stop)")
                with trio.move_on_after((start_ns - now_ns) / NS):
                    await self._stop.wait()
                if self._stop.is_set():
                    return
        close_ns = market_clock.next_close_ts_ns
        self.ui.info(f"trading until {_iso(close_ns)} (then settle); Ctrl-C stops gracefully")
        scope = trio.CancelScope()

        async def run_engine(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with scope:
                await engine.run(task_status=task_status)

        mark_started()
        by_open = not market_clock.is_open  # started mid-session: not a whole session
        await nursery.start(run_engine)
        before = engine.snapshot()
        nursery.start_soon(forward_connectivity, engine, engine.broker, trading, market)
        agent_done = trio.Event()
        if self.agent is not None:
            nursery.start_soon(self._agent_session, now_ns, close_ns, agent_done)
        else:
            agent_done.set()
        with trio.move_on_after(max(0.0, (close_ns - clock.now_ns()) / NS)):
            await self._stop.wait()
        if not self._stop.is_set():  # after the close: the final resync and reconciliation, well before the next open
            settle_s = await settle_after_close_s(rest, close_ns)
            with trio.move_on_after(max(0.0, (close_ns + int(settle_s * NS) - clock.now_ns()) / NS)):
                await self._stop.wait()
        if engine.crash is None:
            with trio.move_on_after(SETTLE_TIMEOUT_S):
                await engine.settle()
        scope.cancel()
        with trio.move_on_after(BROKER_CALL_TIMEOUT_S):  # the episode ends with the engine (BridgeHost)
            await agent_done.wait()
        if engine.crash is not None:
            self.outcome.exit_code = EXIT_FAILED
            self.outcome.messages.append(f"engine stopped on an actor crash: {engine.crash!r}")
        open_to_close = by_open and not self._stop.is_set() and engine.crash is None
        mode = str(self.settings.mode)
        audit_write(session_record(engine.snapshot(), before, mode=mode, open_to_close=open_to_close))

    async def _daily_report(self, rest: Any, clock: Any, session_date: str) -> None:
        """The day's compliance reconciliation and weekly review (``ttlive compliance``), after the settle."""
        from tools.compliance import fetch_broker_records, load_audit, save_records, write_reports

        day = dt.date.fromisoformat(session_date)
        try:
            with trio.fail_after(BROKER_CALL_TIMEOUT_S):
                records = await fetch_broker_records(rest, source=str(self.settings.mode), now_ns=clock.now_ns())
            save_records(self.layout.directory / f"broker-{session_date}.json", records)
            result, path, _ = write_reports(
                day, records, load_audit(self.layout.audit_dir), self.layout.directory / "compliance"
            )
        except Exception as exc:  # the session stands without its report; say so
            log.info("daily compliance report failed", exc_info=exc)
            self.outcome.messages.append(f"no compliance report for {session_date}: {type(exc).__name__}")
            return
        verdict = "reconciled" if result.ok else f"{len(result.differences)} difference(s)"
        self.ui.info(f"compliance {session_date}: {verdict} ({path})")

    async def _agent_session(self, open_ns: int, close_ns: int, done: trio.Event) -> None:
        """The TensorTrade episode next to the engine; it ends with the session (or when the engine stops)."""
        try:
            await self.agent.run_session(open_ns=open_ns, close_ns=close_ns)
        finally:
            done.set()

    async def _graceful(self) -> None:
        capture = getattr(self, "_capture", None)
        engine = self._engine
        if not self._stop.is_set():
            # One step, nothing between: the engine decides nothing from here on, and a replay's window of decisions
            # ends at this record (what was decided before still runs, and is recorded, while the engine settles).
            if engine is not None:
                engine.begin_stop("signal")
            if capture is not None:
                decided = engine.decided_through_ns if engine is not None else None  # how far it had decided
                capture.write({"t": "stop", "reason": "stop requested (signal)", "decided_through_ns": decided})
        self.outcome.interrupted = True
        self.outcome.exit_code = EXIT_INTERRUPTED
        self._stop.set()


async def settle_after_close_s(rest: Any, close_ns: int) -> float:
    """How long to keep the engine up after the close: ``SETTLE_AFTER_CLOSE_S``, or a third of the break before
    the next open when that is shorter (a market whose days are squeezed into minutes, in drills)."""
    from sim.world import SETTLE_AFTER_CLOSE_S

    try:
        with trio.fail_after(BROKER_CALL_TIMEOUT_S):
            after = await rest.get_clock()
    except Exception:  # no answer: the usual settle; the next session's start reads the clock again
        return float(SETTLE_AFTER_CLOSE_S)
    return float(min(SETTLE_AFTER_CLOSE_S, max(0, after.next_open_ts_ns - close_ns) / NS / 3))


def transient(error: BaseException) -> bool:
    """A failure worth retrying unattended: the broker unreachable or slow (not a refusal: bad credentials, a
    safeguard that did not stick, a bug, which a retry would only repeat)."""
    from core.ports import BrokerError, BrokerUnavailable, RateLimited

    if isinstance(error, BrokerUnavailable | RateLimited | trio.TooSlowError | ConnectionError | TimeoutError):
        return True
    return isinstance(error, BrokerError) and error.retryable


def session_record(after: Any, before: Any, *, mode: str, open_to_close: bool) -> Any:
    """How the session ended, to audit (core.sessions): paper-phase evidence and the go-live cap count these.
    ``before``/``after`` are engine snapshots taken when the engine started and after it settled."""
    from core.halt_fsm import HaltState, HaltTrigger
    from core.sessions import SessionOutcome, session_completed_record

    start_ns = before.ts_ns
    outcome = SessionOutcome(
        mode=mode,
        session_date=after.session_date or before.session_date,
        open_to_close=open_to_close,
        reconciliations=after.counters.reconciliations - before.counters.reconciliations,
        reconcile_mismatches=after.counters.reconcile_mismatches - before.counters.reconcile_mismatches,
        reconciliation_halt=any(
            ts >= start_ns and trigger == HaltTrigger.RECONCILIATION_MISMATCH for ts, trigger, _ in after.trip_log
        ),
        halted=after.halt is not None and after.halt.state is not HaltState.ACTIVE,
        orders=after.counters.orders_submitted - before.counters.orders_submitted,
        fills=after.counters.fills - before.counters.fills,
    )
    return session_completed_record(outcome, ts_ns=after.ts_ns)


def idle_latch(store: Any, audit: Any, clock: Any, kind: str, actor: str, reason: str) -> None:
    """A dashboard kill/reset while the engine is not running: the persisted latch, audited, as
    ``ttlive kill``/``reset`` would (the runner holds the audit trail, so it writes the record)."""
    from adapters.dashboard.source import CommandRejected
    from core.latch import LatchRefused, change_latch
    from tools.cmd_control import latch_target

    try:
        data = latch_target(store, kind, store.path)  # as `ttlive kill`: no state (or a corrupt one) still latches
    except LatchRefused as exc:
        raise CommandRejected(str(exc)) from None
    try:
        record, _state = change_latch(
            data,
            kind,
            operator=actor,
            reason=reason,
            source="dashboard",
            route="idle_runner",
            now_ns=clock.now_ns(),
        )
    except LatchRefused as exc:
        raise CommandRejected(str(exc)) from None
    audit.write(record)
    store.save(data)


def _iso(ts_ns: int) -> str:
    return dt.datetime.fromtimestamp(ts_ns / NS, tz=dt.UTC).isoformat(timespec="seconds")

