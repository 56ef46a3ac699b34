"""Scenario files (scenarios/*.toml): one simulated trading world, strictly validated.

Format: scenarios/FORMAT.md. Unknown keys are errors naming file, key and line; values are
checked with messages a user can act on. The engine-side keys reuse core.config's sections, so a scenario's
[risk] is literally the config file's [risk].
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import msgspec

from adapters.fake.accounts import StartingOrder
from adapters.fake.faults import HARNESS_KINDS, FaultPlan, FaultPlanError
from adapters.fake.market import market_data_dir
from adapters.fake.market_realistic import TICK_RATE_RANGE
from core import limits
from core.config import (
    Checker,
    ConfigError,
    EngineConfig,
    ExecutionSection,
    InstrumentConfig,
    PolicySection,
    ReconcileSection,
    RiskSection,
    decode_toml,
    validate_config,
)

SCHEMA_VERSION = 1


class SessionSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    start: str = "2014-06-02"
    days: int = 1
    bar_interval_s: int = 60
    # "always_open" (replayed captures): one window of duration_s from start_time (UTC) on start, market open
    calendar: Literal["nyse", "always_open"] = "nyse"
    start_time: str = "00:00:00"
    duration_s: int = 0


class PositionSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A position the account already holds when the session starts (a real account's book)."""

    symbol: str
    qty: str  # signed decimal string: negative is a short (margin accounts only)
    avg_entry_price: str


class OpenOrderSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An order open at the account when the session starts (``[[account.orders]]``; Alpaca's field names)."""

    symbol: str
    side: Literal["buy", "sell"]
    type: Literal["market", "limit", "stop", "stop_limit", "trailing_stop"]
    time_in_force: Literal["day", "gtc"] = "gtc"
    client_order_id: str
    qty: str | None = None  # a decimal string (fractional allowed where Alpaca allows it: day orders)
    notional: str | None = None  # instead of qty: a dollar-amount order
    limit_price: str | None = None
    stop_price: str | None = None
    trail_price: str | None = None
    trail_percent: str | None = None
    order_class: Literal["simple", "bracket", "oto", "oco"] = "simple"
    take_profit_limit_price: str | None = None
    stop_loss_stop_price: str | None = None

    def starting_order(self) -> StartingOrder:
        def dec(value: str | None) -> Decimal | None:
            return None if value is None else Decimal(value)

        return StartingOrder(
            symbol=self.symbol, side=self.side, type=self.type, time_in_force=self.time_in_force,
            client_order_id=self.client_order_id, qty=dec(self.qty), notional=dec(self.notional),
            limit_price=dec(self.limit_price), stop_price=dec(self.stop_price), trail_price=dec(self.trail_price),
            trail_percent=dec(self.trail_percent), order_class="" if self.order_class == "simple" else self.order_class,
            take_profit_limit_price=dec(self.take_profit_limit_price),
            stop_loss_stop_price=dec(self.stop_loss_stop_price),
        )


class AccountSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    type: Literal["cash", "margin_initial", "margin_experienced"] = "margin_initial"
    cash_usd: str = "100000"
    pattern_day_trader: bool = False
    positions: list[PositionSpec] = msgspec.field(default_factory=list)
    orders: list[OpenOrderSpec] = msgspec.field(default_factory=list)

    def starting_book(self) -> tuple[tuple[str, Decimal, Decimal], ...]:
        return tuple((p.symbol, Decimal(p.qty), Decimal(p.avg_entry_price)) for p in self.positions)

    def starting_orders(self) -> tuple[StartingOrder, ...]:
        return tuple(o.starting_order() for o in self.orders)


class RegimeSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    at: str
    kind: Literal["calm", "trend", "flash_crash"]
    size_pct: float = 0.0
    duration_s: int = 600


class MarketSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    source: Literal["replay", "generator", "recorded"] = "replay"
    files: dict[str, str] = msgspec.field(default_factory=dict)
    drift_bps_per_day: float = 0.0
    vol_pct_per_day: float = 2.0
    correlation: float | list[list[float]] = 0.3
    spread_bps: float = 2.0
    regimes: list[RegimeSpec] = msgspec.field(default_factory=list)
    ticks: Literal["bar", "realistic"] | None = None  # None: the front-end's default (FORMAT.md, "Ticks")
    tick_rate: float = 1.0


class ExpectSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    halted: bool | None = None
    kill_trigger: str | None = None
    min_fills: int | None = None
    max_fills: int | None = None
    min_orders: int | None = None
    max_drawdown_pct: str | None = None
    min_alerts: dict[str, int] = msgspec.field(default_factory=dict)  # alert key -> at least N
    min_reconnects: int | None = None
    min_polling_s: float | None = None
    min_retries: int | None = None
    min_binding_rules: dict[str, int] = msgspec.field(default_factory=dict)  # risk rule id -> RESIZE/REJECT count


class ReplaySpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A replayed capture's venue answers (``adapters.fake.replay_plan``): a JSON file beside the scenario."""

    plan: str


class Scenario(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    schema_version: int
    name: str
    description: str = ""
    seed: int = 1
    session: SessionSpec = msgspec.field(default_factory=SessionSpec)
    account: AccountSpec = msgspec.field(default_factory=AccountSpec)
    instruments: list[InstrumentConfig] = msgspec.field(default_factory=list)
    market: MarketSpec = msgspec.field(default_factory=MarketSpec)
    policy: PolicySection = msgspec.field(default_factory=lambda: PolicySection(kind="rule"))
    risk: RiskSection = msgspec.field(default_factory=RiskSection)
    execution: ExecutionSection = msgspec.field(default_factory=ExecutionSection)
    reconcile: ReconcileSection = msgspec.field(default_factory=ReconcileSection)
    faults: dict[str, Any] = msgspec.field(default_factory=dict)  # validated by adapters.fake.faults
    expect: ExpectSpec = msgspec.field(default_factory=ExpectSpec)
    replay: ReplaySpec | None = None

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            instruments=list(self.instruments),
            risk=self.risk,
            execution=self.execution,
            policy=self.policy,
            reconcile=self.reconcile,
        )

    @property
    def start_date(self) -> dt.date:
        return dt.date.fromisoformat(self.session.start)


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: scenario file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read scenario: {exc}") from None
    return with_data_paths(parse_scenario(text, source=str(path)), path.parent)


def with_data_paths(scenario: Scenario, base: Path) -> Scenario:
    """A replayed capture's data files (recorded bars, the venue plan) as paths from the scenario's directory."""
    if scenario.market.source != "recorded" and scenario.replay is None:
        return scenario
    market = scenario.market
    if market.source == "recorded":
        market = msgspec.structs.replace(market, files={s: str(base / f) for s, f in market.files.items()})
    replay = scenario.replay
    if replay is not None:
        replay = ReplaySpec(plan=str(base / replay.plan))
    return msgspec.structs.replace(scenario, market=market, replay=replay)


def parse_scenario(text: str, *, source: str = "<scenario>") -> Scenario:
    scenario: Scenario = decode_toml(text, Scenario, source=source)
    validate_scenario(scenario, source=source, text=text)
    return scenario


def fault_plan(s: Scenario) -> FaultPlan:
    return FaultPlan.from_toml_dict(s.faults)


def parse_hhmmss(value: str, *, source: str, key: str) -> dt.time:
    if not re.fullmatch(r"\d{2}:\d{2}:\d{2}", value):
        raise ConfigError(f"{source}: {key} must be HH:MM:SS, got {value!r}")
    try:
        return dt.time.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{source}: {key} is not a valid time: {value!r}") from None


def validate_scenario(s: Scenario, *, source: str, text: str = "") -> None:
    """Every value in its documented range (core.limits), market files inside the data directory and covering
    the session: a bad scenario fails at load (exit 2), never as a traceback or a silently empty run."""
    check = Checker(source, text)
    if s.schema_version != SCHEMA_VERSION:
        check.fail("schema_version", f"must be {SCHEMA_VERSION}, got {s.schema_version}")
    if not re.fullmatch(r"[a-z0-9_\-]+", s.name):
        check.fail("name", f"must be lower_snake_case, got {s.name!r}")
    check.integer("seed", s.seed, limits.SCENARIO_SEED_RANGE)
    start = _session_start(check, s.session.start)
    check.integer("session.days", s.session.days, limits.SESSION_DAYS_RANGE)
    if s.session.bar_interval_s not in (1, 5, 10, 15, 30, 60, 300):
        check.fail("session.bar_interval_s", "must be one of 1,5,10,15,30,60,300")
    check.decimal("account.cash_usd", s.account.cash_usd, limits.ACCOUNT_CASH_RANGE_USD)
    if not s.instruments:
        check.fail("instruments", "[[instruments]] must list at least one symbol")
    _check_positions(check, s)
    _check_open_orders(check, s)
    validate_config(s.engine_config(), source=source, text=text)
    check_policy_model(check, s.policy)
    _check_session_window(check, s)
    _check_market(check, s, start)
    _check_faults(check, s)
    if s.expect.max_drawdown_pct is not None:
        check.decimal("expect.max_drawdown_pct", s.expect.max_drawdown_pct, limits.RISK_PCT_RANGE)


def check_policy_model(check: Checker, policy: PolicySection) -> None:
    """An ONNX policy's model directory (checked relative and '..'-free by the config loader) must hold
    model.json: a typo fails at load, not as a traceback when the engine is built."""
    from adapters.policy.onnx_policy import resolve_model_dir

    model = policy.model
    if policy.kind == "onnx" and not (resolve_model_dir(model) / "model.json").is_file():
        check.fail("policy.model", f"{model!r} is not a model directory (no model.json)")


def _session_start(check: Checker, text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        check.fail("session.start", f"must be YYYY-MM-DD, got {text!r}")


def _check_market(check: Checker, s: Scenario, start: dt.date) -> None:
    m = s.market
    check.number("market.drift_bps_per_day", m.drift_bps_per_day, limits.MARKET_DRIFT_RANGE_BPS_PER_DAY)
    check.number("market.vol_pct_per_day", m.vol_pct_per_day, limits.MARKET_VOL_RANGE_PCT_PER_DAY)
    check.number("market.spread_bps", m.spread_bps, limits.MARKET_SPREAD_RANGE_BPS)
    check.number("market.tick_rate", m.tick_rate, TICK_RATE_RANGE)
    rows = m.correlation if isinstance(m.correlation, list) else [[m.correlation]]
    for row in rows:
        for value in row:
            check.number("market.correlation", value, limits.MARKET_CORRELATION_RANGE)
    for regime in m.regimes:
        parse_hhmmss(regime.at, source=check.source, key="market.regimes.at")
        check.number("market.regimes.size_pct", regime.size_pct, limits.REGIME_SIZE_RANGE_PCT)
        check.integer("market.regimes.duration_s", regime.duration_s, limits.REGIME_DURATION_RANGE_S)
    if m.source == "recorded":
        _check_recorded(check, s)
        return
    if m.source != "replay":
        return
    symbols = [i.symbol for i in s.instruments]
    missing = sorted(set(symbols) - set(m.files))
    if missing:
        check.fail("market.files", f"has no file for {', '.join(missing)}")
    extra = sorted(set(m.files) - set(symbols))
    if extra:
        check.fail("market.files", f"names symbols not in instruments: {', '.join(extra)}")
    for symbol, name in sorted(m.files.items()):
        check.relative_path(f"market.files.{symbol}", name)
        path = market_data_dir() / name
        if not path.is_file():
            check.fail(f"market.files.{symbol}", f"{name!r} is not a file in the market data directory {path.parent}")
        first, last = market_span(str(path))
        if not first <= start <= last:
            check.fail("session.start", f"{start} is outside the data of {name} ({first} .. {last})")


def _check_recorded(check: Checker, s: Scenario) -> None:
    """A replayed capture: its bar files beside the scenario, one per instrument, on an always-open window."""
    base = Path(check.source).parent
    symbols = [i.symbol for i in s.instruments]
    if sorted(s.market.files) != sorted(symbols):
        check.fail("market.files", "a recorded market needs exactly one file per instrument")
    from adapters.fake.market_recorded import RecordedBarsError, read_bars
    from adapters.fake.replay_plan import ReplayPlan, ReplayPlanError

    for symbol, name in sorted(s.market.files.items()):
        check.relative_path(f"market.files.{symbol}", name)
        if not (base / name).is_file():
            check.fail(f"market.files.{symbol}", f"{name!r} is not a file beside the scenario ({base})")
        try:
            read_bars(base / name)  # a bad row fails here, naming file and line, not mid-run
        except RecordedBarsError as exc:
            check.fail(f"market.files.{symbol}", str(exc))
    if s.replay is not None:
        check.relative_path("replay.plan", s.replay.plan)
        if not (base / s.replay.plan).is_file():
            check.fail("replay.plan", f"{s.replay.plan!r} is not a file beside the scenario ({base})")
        try:
            ReplayPlan.load(base / s.replay.plan)
        except ReplayPlanError as exc:
            check.fail("replay.plan", str(exc))


def _check_session_window(check: Checker, s: Scenario) -> None:
    if s.session.calendar != "always_open":
        if s.session.duration_s or s.session.start_time != "00:00:00":
            check.fail("session.duration_s", "start_time and duration_s are for calendar = \"always_open\" only")
        return
    parse_hhmmss(s.session.start_time, source=check.source, key="session.start_time")
    check.integer("session.duration_s", s.session.duration_s, limits.REPLAY_WINDOW_RANGE_S)
    if s.session.days != 1:
        check.fail("session.days", "an always_open window is one day")


@functools.lru_cache(maxsize=64)
def market_span(path: str) -> tuple[dt.date, dt.date]:
    """First and last date of a market file (daily or minute CSV, date first): read from its ends only."""
    with open(path, "rb") as handle:
        handle.readline()  # the header
        first_line = handle.readline()
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - 4096))
        last_line = handle.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    try:
        return tuple(dt.date.fromisoformat(line.split(b",", 1)[0].decode()) for line in (first_line, last_line))  # type: ignore[return-value]
    except (ValueError, UnicodeDecodeError):
        raise ConfigError(f"{path}: not a market file (no YYYY-MM-DD in its first column)") from None


def _check_positions(check: Checker, s: Scenario) -> None:
    symbols = {i.symbol for i in s.instruments}
    seen: set[str] = set()
    for position in s.account.positions:
        key = f"account.positions.{position.symbol}"
        if position.symbol not in symbols:
            check.fail(key, f"{position.symbol!r} is not in [[instruments]] (the fake venue only prices those)")
        if position.symbol in seen:
            check.fail(key, "listed twice")
        seen.add(position.symbol)
        qty = check.decimal(f"{key}.qty", position.qty, limits.STARTING_POSITION_QTY_RANGE)
        if qty == 0:
            check.fail(f"{key}.qty", "must not be 0 (leave the position out)")
        if qty < 0 and s.account.type == "cash":
            check.fail(f"{key}.qty", "a cash account cannot hold a short position")
        check.decimal(f"{key}.avg_entry_price", position.avg_entry_price, limits.STARTING_POSITION_PRICE_RANGE_USD)


def _check_open_orders(check: Checker, s: Scenario) -> None:
    symbols = {i.symbol for i in s.instruments}
    seen: set[str] = set()
    for n, order in enumerate(s.account.orders):
        key = f"account.orders[{n}]"
        if order.symbol not in symbols:
            check.fail(f"{key}.symbol", f"{order.symbol!r} is not in [[instruments]] (the fake only prices those)")
        if not order.client_order_id.strip() or len(order.client_order_id) > 128 or order.client_order_id in seen:
            check.fail(f"{key}.client_order_id", "must be non-empty, <= 128 characters and unique")
        seen.add(order.client_order_id)
        if (order.qty is None) == (order.notional is None):
            check.fail(key, "give exactly one of qty and notional")
        if order.qty is not None:
            check.decimal(f"{key}.qty", order.qty, (Decimal("0.000000001"), limits.STARTING_POSITION_QTY_RANGE[1]))
        if order.notional is not None:
            check.decimal(f"{key}.notional", order.notional, (Decimal(1), limits.ACCOUNT_CASH_RANGE_USD[1]))
        for field in ("limit_price", "stop_price", "trail_price", "take_profit_limit_price", "stop_loss_stop_price"):
            value = getattr(order, field)
            if value is not None:
                check.decimal(f"{key}.{field}", value, limits.STARTING_POSITION_PRICE_RANGE_USD)
        if order.trail_percent is not None:
            check.decimal(f"{key}.trail_percent", order.trail_percent, (Decimal("0.01"), Decimal(100)))


def _check_faults(check: Checker, s: Scenario) -> None:
    try:
        plan = FaultPlan.from_toml_dict(s.faults)
    except (FaultPlanError, ValueError, TypeError, ArithmeticError) as exc:
        raise ConfigError(f"{check.source}: {exc}") from None
    symbols = [i.symbol for i in s.instruments]
    for event in plan.events:
        if not 0 <= event.day < s.session.days:
            check.fail("faults.events", f"day {event.day} is outside the session (days are 0-based)")
        if event.kind in ("position_drift", "foreign_order", "dividend", "split") and event.symbol not in symbols:
            check.fail("faults.events", f"{event.kind} needs a symbol from instruments")
        if event.kind == "manual_reset" and not (event.operator.strip() and event.reason.strip()):
            check.fail("faults.events", "manual_reset needs operator and reason")
        if event.kind in HARNESS_KINDS and event.at is None and s.session.calendar != "always_open":
            check.fail("faults.events", f"{event.kind} needs 'at'")  # at_ns: replayed captures only
