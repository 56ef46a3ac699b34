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
            decision_interval_s=scenario.policy.decision_interval_s,
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
        self.settings = settings
        self.ui = ui
        self.scenario_path = path
        self.seed = scenario.seed if settings.seed is None else settings.seed
        layout = run_layout(settings.config, out_dir=settings.out_dir)
        self.out = layout.directory
        self.claim = claim_dir(self.out, Mode.SIM, replace=settings.fresh)
        capture = settings.config.capture.active(Mode.SIM)  # a sim records its wire only when asked to
        self.world = World(scenario, self.seed, self.out, WorldOptions(capture=capture), layout=layout)
        self.source = EngineDashboardSource(
            mode="sim", clock=self.world.clock, alerts=self.world.dashboard_alerts
        )
        self.world.options.on_engine = self.source.attach
        self.bridge = LoopBridgeSource(self.source)
        self.pacer = Pacer(settings.speed) if settings.speed is not None else None
        self.interrupted = False
        self.records: Any = None
        self._world_scope = trio.CancelScope()

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
    messages: list[str] = field(default_factory=list)


class BrokerRun:
    """One paper (or live) session: pre-open start, trade until the close, settle, stop."""

    def __init__(self, settings: RunSettings, ui: RunUI) -> None:
        config = settings.config
        if settings.mode is Mode.LIVE:
            live_gate(confirmed=settings.live_confirmed, config_path=settings.config_path, config=config)
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

        try:
            trio.run(self._main)
        except Exception as exc:  # broker refusals, safeguards that did not stick, actor crashes
            group = exc.exceptions if isinstance(exc, BaseExceptionGroup) else (exc,)
            redact = Redactor(self.secrets)
            self.outcome.exit_code = EXIT_FAILED
            for error in group:
                log.info("session failed", exc_info=error)  # the traceback goes to run.log only
                self.outcome.messages.append(redact(f"session failed: {type(error).__name__}: {error}"))
        finally:
            self.claim.release()
        return self.outcome

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
        link, capture = capture_link(link, self.layout, config, s.mode, secrets=self.secrets)  # [capture]
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
                    model = load_decision_model(
                        config.policy.kind, config.policy.model, config.policy.precision
                    )
                    store = open_store(self.layout, fsync=True)
                    engine = build_engine(
                        config, adapters, clock=clock, ids=Uuid4Ids(), model=model, alerts=alerts, audit=audit,
                        store=store, account_type=account_type,
                    )
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
                            "model_id": model.model_id,
                            "config_sha256": file_sha256(s.config_path) if s.config_path else "",
                        }
                        audit.write(
                            system_record(
                                "health", ts_ns=clock.now_ns(), reason="runner started", extra=extra
                            )
                        )

                    await self._session(
                        nursery, engine, clock, market_clock, adapters.trading, adapters.market, mark_started
                    )
                    final = engine.snapshot()
                    self.outcome.orders = final.counters.orders_submitted
                    self.outcome.fills = final.counters.fills
                    self.outcome.halted = final.halted
                    if final.has_book:
                        self.outcome.pnl_usd = final.day_pl_usd
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
    ) -> None:
        from adapters.alpaca.connectivity import forward_connectivity
        from sim.world import PRE_OPEN_S, SETTLE_AFTER_CLOSE_S  # the daily runner's timing, as simulated

        now_ns = clock.now_ns()
        if not market_clock.is_open:
            start_ns = market_clock.next_open_ts_ns - PRE_OPEN_S * NS
            if start_ns > now_ns:
                self.ui.info(f"market closed: waiting for the pre-open at {_iso(start_ns)} (Ctrl-C to stop)")
                with trio.move_on_after((start_ns - now_ns) / NS):
                    await self._stop.wait()
                if self._stop.is_set():
                    return
        end_ns = market_clock.next_close_ts_ns + SETTLE_AFTER_CLOSE_S * NS
        self.ui.info(f"trading until {_iso(end_ns)} (close + settle); Ctrl-C stops gracefully")
        scope = trio.CancelScope()

        async def run_engine(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with scope:
                await engine.run(task_status=task_status)

        mark_started()
        await nursery.start(run_engine)
        nursery.start_soon(forward_connectivity, engine, engine.broker, trading, market)
        with trio.move_on_after(max(0.0, (end_ns - clock.now_ns()) / NS)):
            await self._stop.wait()
        if engine.crash is None:
            with trio.move_on_after(SETTLE_TIMEOUT_S):
                await engine.settle()
        scope.cancel()
        if engine.crash is not None:
            self.outcome.exit_code = EXIT_FAILED
            self.outcome.messages.append(f"engine stopped on an actor crash: {engine.crash!r}")

    async def _graceful(self) -> None:
        self.outcome.interrupted = True
        self.outcome.exit_code = EXIT_INTERRUPTED
        self._stop.set()


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

