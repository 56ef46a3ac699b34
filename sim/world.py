"""A simulated trading world: fake venue + real adapter + engine, in virtual time, from a scenario and a seed.

The engine talks to the fake through the wire (the real adapter over an in-process httpx transport and in-memory
WebSockets), so chaos scenarios test the code that runs live; ``WorldOptions(path="ports")`` runs the same venue and
engine without the wire (``adapters.ports_venue``: bulk backtests; wire-only faults are refused there). Every session
day starts the engine at the pre-open from its persisted state, as a daily runner would; harness events (crash,
manual kill/reset) act on it from outside.
Same scenario + seed => byte-identical audit files and trace hash, in any process (see sim/determinism.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import msgspec
import trio
import trio.testing

from adapters.alerts import AlertRouter, DashboardAlertSink, LogAlertSink
from adapters.alpaca.config import Credentials
from adapters.alpaca.connectivity import Channels, forward_connectivity
from adapters.alpaca.telemetry import LatencyTelemetry
from adapters.audit_jsonl import JsonlAuditSink
from adapters.bootstrap import (
    Adapters,
    BrokerLink,
    PortsLink,
    build_engine,
    open_adapters,
    open_audit,
    open_store,
)
from adapters.fake.calendar import AlwaysOpenCalendar, ArraySessionCalendar, NyseCalendar, ns_at
from adapters.fake.faults import HARNESS_KINDS, FaultEvent, FaultPlan
from adapters.fake.inprocess import InProcessVenue
from adapters.fake.market_spec import market_from_spec
from adapters.fake.venue import Venue, VenueConfig
from adapters.ids import SeededIds
from adapters.policy.decision import load_decision_model
from adapters.rundir import RunLayout, claim, run_layout
from adapters.state_store import FileStateStore
from core.engine.system import Engine
from core.halt_fsm import persisted_halted
from core.model import NS_PER_S as NS
from core.model import AccountType
from core.ports import DecisionModel
from sim.determinism import seed_trio_scheduler
from sim.invariants import check_expectations, check_invariants
from sim.report import Report, encode_report
from sim.scenario import Scenario

if TYPE_CHECKING:
    from adapters.ports_venue import PortAdapters

log = logging.getLogger("ttlive.sim")
PRE_OPEN_S = 300  # the engine starts five minutes before the open (model warm-up, resync)
SETTLE_AFTER_CLOSE_S = 120  # after the close: final resync and reconciliation
LIVE_ENOUGH = frozenset({"live", "polling", "resyncing"})  # a stream that delivers (or REST stands in for it)
SIM_KEY = Credentials(key_id="PKSIMULATION0001", secret_key="sim-secret-not-real-0001")
BASE_URL = "http://fake-alpaca"


class VenueClock:
    """``core.ports.Clock`` on the venue's session clock: the mapping the in-process front-end uses."""

    def __init__(self, front: InProcessVenue) -> None:
        self._front = front

    def now_ns(self) -> int:
        return self._front.session_ns()


@dataclass
class WorldOptions:
    """Knobs for tests and tools; a scenario run from the CLI uses the defaults."""

    break_idempotency: bool = False  # a deliberately broken engine: retries with a fresh client order id
    break_halt_gate: bool = False  # a deliberately broken engine: its REST retries ignore the kill switch's gate
    progress: Callable[[int, int], None] | None = None  # (sim seconds done, total)
    on_engine: Callable[[Engine], None] | None = None  # the dashboard hooks in here
    fsync_audit: bool = False  # simulation: durability is not what is measured
    # "wire": the engine talks to the fake through the real Alpaca adapter (chaos scenarios, the swarm);
    # "ports": the same venue straight at the engine's ports, no wire (bulk backtests; adapters.ports_venue).
    path: str = "wire"
    capture: bool = False  # record the wire (adapters.capture) in the run's capture/, on the virtual clock
    # trio instruments (observers: they see task steps, they do not change scheduling); tools.bench times
    # each task's steps with one to show where a simulated day's time goes
    instruments: tuple[trio.abc.Instrument, ...] = ()


@dataclass
class WorldRecord:
    """What the world saw, for invariants and the report (engine state survives restarts via the store)."""

    engines: list[Engine] = field(default_factory=list)
    trips: list[tuple[int, str, str]] = field(default_factory=list)
    resets: list[tuple[int, str, str]] = field(default_factory=list)
    halt_intervals: list[tuple[int, int | None]] = field(default_factory=list)
    reconnects: int = 0
    polling_s: float = 0.0
    polling_periods: int = 0
    rest_retries: int = 0
    crashes: int = 0
    channel_overflows: list[str] = field(default_factory=list)
    leaked_tasks: int = 0
    end_ns: int = 0
    equity_points: list[tuple[int, Decimal]] = field(default_factory=list)
    # The order gate as the venue saw it: (ts_ns, venue request-log length, venue order-log length, halted) at
    # every latch (halted=True) and reset, so "nothing after the latch" is exact to the request, not the instant.
    gate_changes: list[tuple[int, int, int, bool]] = field(default_factory=list)
    crash_windows: list[tuple[int, int]] = field(default_factory=list)  # (killed at, restarted at)
    stop_windows: list[tuple[int, int]] = field(default_factory=list)  # operator_stop: (stopped at, session end)
    # Samples where a stream was neither live nor polling: (ts_ns, channel, state), for the liveness check.
    stream_outages: list[tuple[int, str, str]] = field(default_factory=list)


def git_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def session_calendar(scenario: Scenario) -> ArraySessionCalendar:
    """NYSE sessions (every shipped scenario), or a market open around the clock (replayed captures)."""
    return AlwaysOpenCalendar() if scenario.session.calendar == "always_open" else NyseCalendar()


def session_days(scenario: Scenario, calendar: ArraySessionCalendar) -> list[tuple[str, int, int]]:
    if scenario.session.calendar == "always_open":
        # One window: the engine starts at start_time (UTC) and stops duration_s later (open/close are placed
        # so that open - PRE_OPEN_S and close + SETTLE_AFTER_CLOSE_S are exactly those two instants).
        start_ns = ns_at(scenario.session.start, scenario.session.start_time, tz=ZoneInfo("UTC"))
        end_ns = start_ns + scenario.session.duration_s * NS
        return [(scenario.session.start, start_ns + PRE_OPEN_S * NS, end_ns - SETTLE_AFTER_CLOSE_S * NS)]
    start = ns_at(scenario.session.start, "00:00:00")
    sessions = calendar.sessions_between(start, start + (scenario.session.days * 3 + 10) * 86_400 * NS)
    sessions = [s for s in sessions if s[1] >= start][: scenario.session.days]
    if len(sessions) < scenario.session.days:
        raise ValueError(f"not enough NYSE sessions from {scenario.session.start} for {scenario.session.days} days")
    return sessions


def harness_events(plan: FaultPlan, sessions: list[tuple[str, int, int]]) -> list[tuple[int, FaultEvent]]:
    out = []
    for event in plan.events:
        if event.kind not in HARNESS_KINDS:
            continue
        if event.at_ns is not None:  # a replayed capture's operator action, at its recorded instant
            out.append((event.at_ns, event))
            continue
        assert event.at is not None
        date = sessions[event.day][0]
        out.append((ns_at(date, event.at), event))
    return sorted(out, key=lambda item: (item[0], item[1].kind))


class World:
    def __init__(self, scenario: Scenario, seed: int, out_dir: Path, options: WorldOptions, *,
                 layout: RunLayout | None = None) -> None:
        self.scenario = scenario
        self.seed = seed
        self.out_dir = out_dir
        self.options = options
        self.record = WorldRecord()
        self.calendar = session_calendar(scenario)
        self.sessions = session_days(scenario, self.calendar)
        self.plan = FaultPlan.from_toml_dict(scenario.faults)
        config = scenario.engine_config()
        self.config = config
        self.market = market_from_spec(
            scenario.market, symbols=config.symbols, sectors=config.sectors, seed=seed,
            bar_interval_s=scenario.session.bar_interval_s, start_date=scenario.session.start,
            calendar=self.calendar,
        )
        start_ns = self.sessions[0][1] - PRE_OPEN_S * NS
        self.venue = Venue(
            VenueConfig(seed=seed, account_type=scenario.account.type, cash_usd=Decimal(scenario.account.cash_usd),
                        pattern_day_trader=scenario.account.pattern_day_trader, faults=self.plan,
                        rate_limit_per_min=200, positions=scenario.account.starting_book(),
                        non_fractionable=frozenset(i.symbol for i in scenario.instruments if not i.fractionable),
                        orders=scenario.account.starting_orders()),
            market=self.market, calendar=self.calendar, start_ns=start_ns,
        )
        if scenario.replay is not None:  # a replayed capture: the venue answers as recorded (replay_plan)
            from adapters.fake.replay_plan import attach_plan

            attach_plan(self.venue, scenario.replay.plan)
        self.front = InProcessVenue(self.venue)
        self.clock = VenueClock(self.front)
        self.telemetry = LatencyTelemetry()
        self.dashboard_alerts = DashboardAlertSink()
        self.alert_log: list[tuple[int, str, str]] = []
        self.layout = layout or run_layout(out_dir=out_dir)  # ttlive run passes its configured layout
        self.audit_dir = self.layout.audit_dir
        self.state_path = self.layout.state_path
        self.link = BrokerLink.in_process(self.front, SIM_KEY, BASE_URL)  # also for one-off pulls (runner)
        self.engine_link: BrokerLink | PortsLink = self.link
        if options.path == "ports":
            if options.break_idempotency or options.break_halt_gate:
                raise ValueError("the deliberately broken engines break the wire adapter: run them on the wire path")
            self.engine_link = PortsLink.over(self.front, SIM_KEY)
        elif options.path != "wire":
            raise ValueError(f"world path must be 'wire' or 'ports', got {options.path!r}")
        self.model: DecisionModel = load_decision_model(config.policy.kind, config.policy.model,
                                                        config.policy.precision)
        self.engine: Engine | None = None
        self._engine_scope: trio.CancelScope | None = None
        self.total_sim_s = int((self.sessions[-1][2] - start_ns) / NS) + SETTLE_AFTER_CLOSE_S

    # --- composition ---------------------------------------------------------------------------------------

    def build_engine(self, audit: JsonlAuditSink, alerts: AlertRouter,
                     store: FileStateStore) -> tuple[Engine, Adapters | PortAdapters]:
        """One engine life on the in-process fake, assembled by the composition root like every other run."""
        adapters = open_adapters(self.engine_link, clock=self.clock, telemetry=self.telemetry,
                                 symbols=self.config.symbols, bar_interval_s=self.scenario.session.bar_interval_s,
                                 alerts=alerts)
        if self.options.break_idempotency:
            from sim.breakage import break_idempotent_retries

            assert isinstance(adapters, Adapters)  # World.__init__ refuses breakage on the ports path
            break_idempotent_retries(adapters.rest, self.link)
        if self.options.break_halt_gate:
            from sim.breakage import break_halt_gate

            assert isinstance(adapters, Adapters)
            break_halt_gate(adapters.rest)
        engine = build_engine(self.config, adapters, clock=self.clock, ids=SeededIds(self.seed), model=self.model,
                              alerts=alerts, audit=audit, store=store,
                              account_type=AccountType(self.scenario.account.type))
        engine.halt_observers.append(self.gate_changed)
        return engine, adapters

    def gate_changed(self, halted: bool) -> None:
        self.record.gate_changes.append(
            (self.clock.now_ns(), len(self.venue.request_log), len(self.venue.order_log), halted))

    async def run(self) -> None:
        async with trio.open_nursery() as root:
            await root.start(self.front.serve)
            alerts = AlertRouter([LogAlertSink(), self.dashboard_alerts, _Recorder(self.alert_log)],
                                 clock=self.clock, secrets=[SIM_KEY.secret_key])
            audit = open_audit(self.layout, secrets=[SIM_KEY.secret_key], fsync=self.options.fsync_audit)
            store = open_store(self.layout, fsync=False)
            events = harness_events(self.plan, self.sessions)
            capture = self.open_capture()
            try:
                for index, (_date, open_ns, close_ns) in enumerate(self.sessions):
                    await self.sleep_until_ns(open_ns - PRE_OPEN_S * NS)
                    todays = [(t, e) for t, e in events if e.day == index]
                    await self.run_session_day(root, audit, alerts, store, open_ns, close_ns, todays)
            finally:
                audit.close()
                if capture is not None:
                    capture.close()
            self.record.end_ns = self.clock.now_ns()
            root.cancel_scope.cancel()
        self.record.leaked_tasks = len(trio.lowlevel.current_task().child_nurseries)

    def open_capture(self) -> Any:
        """With ``options.capture``: the wire recorded on the virtual clock (inside trio.run), like a paper run."""
        if not self.options.capture:
            return None
        from adapters.bootstrap import open_capture
        from core.config import CaptureSection, Mode

        secrets = [SIM_KEY.key_id, SIM_KEY.secret_key]
        writer = open_capture(self.layout, CaptureSection(enabled=True), Mode.SIM, secrets=secrets,
                              config=self.config, clock_ns=self.clock.now_ns, account_type=self.scenario.account.type,
                              audit_dir=str(self.audit_dir),
                              seed=self.seed,
                              session=f"sim-{self.scenario.name}-{self.seed}")
        if writer is not None:
            self.link = self.link.captured(writer)
            if isinstance(self.engine_link, BrokerLink):  # the ports path has no wire to record
                self.engine_link = self.link
        return writer

    async def sleep_until_ns(self, ts_ns: int) -> None:
        now = self.clock.now_ns()
        if ts_ns > now:
            await trio.sleep((ts_ns - now) / NS)
        if self.options.progress is not None:
            self.options.progress(int((self.clock.now_ns() - (self.sessions[0][1] - PRE_OPEN_S * NS)) / NS),
                                  self.total_sim_s)

    async def run_session_day(self, root: trio.Nursery, audit: JsonlAuditSink, alerts: AlertRouter,
                              store: FileStateStore, open_ns: int, close_ns: int,
                              events: list[tuple[int, FaultEvent]]) -> None:
        end_ns = close_ns + SETTLE_AFTER_CLOSE_S * NS
        pending = list(events)
        stopped = ""  # an operator's graceful stop this session: a restarted engine decides nothing either
        while True:
            engine, adapters = self.build_engine(audit, alerts, store)
            crashed_until: int | None = None
            async with trio.open_nursery() as day:
                scope = trio.CancelScope()
                self.engine = engine
                self.record.engines.append(engine)
                if self.options.on_engine is not None:
                    self.options.on_engine(engine)

                async def run_engine(engine: Engine = engine, scope: trio.CancelScope = scope,
                                     task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                    with scope:
                        try:
                            await engine.run(task_status=task_status)
                        except Exception as exc:  # recorded as a violation; the world itself goes on
                            log.error("engine failed: %r", exc)
                            engine.crash = engine.crash or exc
                            task_status.started()

                await day.start(run_engine)
                if stopped:
                    engine.begin_stop(stopped)
                day.start_soon(self.watch_connectivity, engine, adapters)
                # Harness events of this engine's lifetime, then the close.
                while pending and pending[0][0] <= end_ns:
                    at_ns, event = pending.pop(0)
                    await self.sleep_until_ns(at_ns)
                    if event.kind == "manual_kill":
                        await engine.kill(event.reason or "scenario manual kill", source="scenario")
                    elif event.kind == "manual_reset":
                        await engine.reset(event.operator, event.reason)
                    elif event.kind == "operator_stop":
                        stopped = event.reason or "scenario operator stop"
                        self.record.stop_windows.append((at_ns, end_ns))
                        engine.begin_stop(stopped)
                    elif event.kind == "client_crash":
                        # A hard kill: no shutdown path runs, nothing is flushed beyond what already was.
                        self.record.crashes += 1
                        scope.cancel()
                        crashed_until = at_ns + int(max(event.duration_s, 1.0) * NS)
                        self.record.crash_windows.append((at_ns, crashed_until))
                        break
                    await trio.sleep(0)
                if crashed_until is None:
                    await self.sleep_until_ns(end_ns)
                    if engine.started.is_set() and engine.crash is None:
                        with trio.move_on_after(300):
                            await engine.settle()
                    self.collect(engine, adapters)
                    scope.cancel()
                else:
                    self.collect(engine, adapters)
                day.cancel_scope.cancel()
            await adapters.aclose()
            if crashed_until is None:
                return
            await self.sleep_until_ns(crashed_until)

    async def watch_connectivity(self, engine: Engine, adapters: Adapters | PortAdapters) -> None:
        """The runner's connectivity loop (stream + REST states -> the kill switch), counting polling seconds."""

        was_polling = False

        def count_polling(states: Channels, step_s: float) -> None:
            nonlocal was_polling
            polling = dict(states)["trading"] == "polling"
            if polling:
                self.record.polling_s += step_s
                self.record.polling_periods += not was_polling
            was_polling = polling
            for channel, state in states:
                if channel != "rest" and state not in LIVE_ENOUGH:
                    self.record.stream_outages.append((self.clock.now_ns(), channel, state))

        await forward_connectivity(engine, adapters.rest, adapters.trading, adapters.market, on_sample=count_polling)

    def collect(self, engine: Engine, adapters: Adapters | PortAdapters) -> None:
        trading, market = adapters.trading, adapters.market
        self.record.reconnects += max(0, trading.connects - 1) + max(0, market.connects - 1)
        self.record.rest_retries = sum(
            n for name, n in self.telemetry.counters.items()
            if name.startswith("alpaca.rest") and name.rsplit(".", 1)[-1] in ("timeout", "server_error", "rate_limited")
        )
        snapshot = engine.snapshot()
        self.record.trips.extend(snapshot.trip_log)
        self.record.resets.extend(snapshot.reset_log)
        self.record.equity_points.extend(snapshot.equity_curve)


class _Recorder:
    """An alert sink that records (ts, severity, key) for the report and the expectations."""

    name = "recorder"

    def __init__(self, log_: list[tuple[int, str, str]]) -> None:
        self.log = log_

    async def deliver(self, alert: Any) -> None:
        self.log.append((int(getattr(alert, "ts_ns", 0)), str(getattr(alert, "severity", "")),
                         str(getattr(alert, "key", ""))))


def audit_sha256(audit_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(audit_dir.rglob("*.jsonl")):
        digest.update(str(path.relative_to(audit_dir)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def trace_sha256(world: World) -> str:
    """Hash of what crossed the wire, from the venue's own records (decoded, not raw frames)."""
    venue = world.venue
    trace = {
        "orders": [msgspec.to_builtins(o) for o in venue.order_log],
        "fills": [msgspec.to_builtins(f) for f in venue.fills],
        "external_fills": [msgspec.to_builtins(f) for f in venue.external_fills],
        "requests": [msgspec.to_builtins(r) for r in venue.request_log],
        "events": [msgspec.to_builtins(e) for e in venue.event_log],
    }
    return hashlib.sha256(json.dumps(trace, sort_keys=True, default=str).encode()).hexdigest()


def run_scenario(scenario: Scenario, *, seed: int | None = None, out_dir: str | Path, scenario_file: str = "",
                 options: WorldOptions | None = None) -> Report:
    """Run one scenario in virtual time and write ``out_dir/report.json`` next to the audit streams.

    ``out_dir`` is claimed for the run (``adapters.rundir``): an earlier sim run there is replaced (callers pass
    directories they own: tests, sweeps, swarms); any other run there, or a held lock, raises RunDirError."""
    seed = scenario.seed if seed is None else seed
    with claim(Path(out_dir), "sim", replace=True) as held:
        return run_world(World(scenario, seed, held.directory, options or WorldOptions()), scenario_file=scenario_file)


def fresh_out_dir(out_dir: str | Path) -> Path:
    """``out_dir``, created, with an earlier sim run's state, report and audit streams cleared (never another
    mode's: see ``adapters.rundir.claim``)."""
    with claim(Path(out_dir), "sim", replace=True) as held:
        return held.directory


def run_world(world: World, *, scenario_file: str = "") -> Report:
    """Run a built world (``World`` or a subclass) in virtual time; write and return its report."""
    wall0 = time.perf_counter()
    seed_trio_scheduler(world.seed)
    trio.run(world.run, clock=trio.testing.MockClock(autojump_threshold=0), instruments=world.options.instruments)
    report = build_report(world, scenario_file=scenario_file, wall_s=time.perf_counter() - wall0)
    (world.out_dir / "report.json").write_bytes(encode_report(report))
    return report


def _qty_text(qty: Decimal) -> str:
    """A quantity as plain decimal text without trailing zeros (whole shares print as before: "144")."""
    return format(qty.normalize(), "f")


def build_report(world: World, *, scenario_file: str, wall_s: float) -> Report:
    scenario, venue, record = world.scenario, world.venue, world.record
    state = json.loads(world.state_path.read_text()) if world.state_path.exists() else {}
    ledger = state.get("ledger", {})
    # One rendering for both books: equal quantities print equal ("119.90676", never "119.906760000").
    engine_positions = {s: _qty_text(Decimal(v[0])) for s, v in sorted(ledger.get("holdings", {}).items())
                        if Decimal(v[0]) != 0}
    venue_positions = {s: _qty_text(p.qty) for s, p in sorted(venue.account.positions.items()) if p.qty != 0}
    violations = check_invariants(world, engine_positions, venue_positions, state)
    halt = state.get("halt", {})
    halted = persisted_halted(halt)
    trips = halt.get("trips", [])
    kill_trigger = trips[0]["trigger"] if trips else (record.trips[-1][1] if record.trips else "")
    start_equity = Decimal(scenario.account.cash_usd)
    end_equity = venue.account.equity(venue_marks(venue))
    lows = [e for _, e in record.equity_points] + [end_equity]
    max_dd = max(Decimal(0), (start_equity - min(lows)) / start_equity * 100) if lows else Decimal(0)
    alerts: dict[str, int] = {}
    for _, _, key in world.alert_log:
        alerts[key] = alerts.get(key, 0) + 1
    counters = state.get("counters", {})
    coids = [o.client_order_id for o in venue.order_log]
    duplicates = len(coids) - len(set(coids))
    binding: dict[str, int] = {}
    from sim.invariants import audit_records

    for rec in audit_records(world.audit_dir, "risk"):
        rule = rec.get("extra", {}).get("binding_rule")
        if rule:
            binding[rule] = binding.get(rule, 0) + 1
    report = Report(
        scenario=scenario.name, scenario_file=scenario_file, seed=world.seed, git_revision=git_revision(),
        trace_sha256=trace_sha256(world), audit_sha256=audit_sha256(world.audit_dir),
        invariant_violations=violations, expectation_failures=[],
        orders_submitted=int(counters.get("orders_submitted", 0)),
        venue_orders=len(venue.order_log), duplicate_client_order_ids=duplicates,
        fills=int(counters.get("fills", 0)), halted=halted, kill_trigger=kill_trigger,
        positions=engine_positions, venue_positions=venue_positions,
        equity_start_usd=str(start_equity), equity_end_usd=str(end_equity.quantize(Decimal("0.01"))),
        max_drawdown_pct=str(max_dd.quantize(Decimal("0.001"))), alerts=dict(sorted(alerts.items())),
        counters={k: int(v) for k, v in sorted(counters.items())}, reconnects=record.reconnects,
        polling_s=record.polling_s, rest_retries=record.rest_retries, crashes=record.crashes,
        binding_rules=dict(sorted(binding.items())),
        sim_seconds=float(world.total_sim_s), wall_seconds=round(wall_s, 3),
        replay_command=f"ttlive sim {scenario_file or scenario.name + '.toml'} --seed {world.seed}",
    )
    report.coverage = coverage(world, counters)
    report.expectation_failures = check_expectations(scenario, report)
    return report


def coverage(world: World, counters: dict[str, Any]) -> dict[str, int]:
    """What this run exercised, counted from the venue's and the world's records (and the engine's counters for
    what only it can know: an ambiguous submit, a submission settled after the latch)."""
    from sim.invariants import gate_windows

    requests = world.venue.request_log
    record = world.record
    return {
        "halts": len(gate_windows(world)),
        "resets": sum(1 for change in record.gate_changes if not change[3]),
        "ambiguous_submits": int(counters.get("orders_ambiguous", 0)),
        "ambiguous_resolved": int(counters.get("ambiguous_resolved", 0)),
        "halt_inflight_resolved": int(counters.get("halt_inflight_resolved", 0)),
        "post_halt_fills": int(counters.get("post_halt_fills", 0)),
        "reconcile_adoptions": int(counters.get("reconcile_adoptions", 0)),
        "rate_limited_429": sum(1 for r in requests if r.status == 429),
        "server_errors_5xx": sum(1 for r in requests if r.status >= 500),
        "reconnects": record.reconnects,
        "polling_periods": record.polling_periods,
        "crashes_recovered": record.crashes if not any(e.crash for e in record.engines) else 0,
        "stream_outage_samples": len(record.stream_outages),
    }


def venue_marks(venue: Venue) -> dict[str, Decimal]:
    marks = getattr(venue, "_marks", {})
    return dict(marks)
