"""Scenario files (scenarios/*.toml): one simulated trading world, strictly validated.

Format: ../shared/docs/scenario-format.md. Unknown keys are errors naming file, key and line; values are
checked with messages a user can act on. The engine-side keys reuse core.config's sections, so a scenario's
[risk] is literally the config file's [risk].
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import msgspec

from adapters.fake.faults import HARNESS_KINDS, FaultPlan, FaultPlanError
from core.config import (
    ConfigError,
    EngineConfig,
    ExecutionSection,
    InstrumentConfig,
    PolicySection,
    ReconcileSection,
    RiskSection,
    decimal_field,
    decode_toml,
    validate_config,
)

SCHEMA_VERSION = 1


class SessionSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    start: str = "2014-06-02"
    days: int = 1
    bar_interval_s: int = 60


class AccountSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    type: Literal["cash", "margin_initial", "margin_experienced"] = "margin_initial"
    cash_usd: str = "100000"
    pattern_day_trader: bool = False


class RegimeSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    at: str
    kind: Literal["calm", "trend", "flash_crash"]
    size_pct: float = 0.0
    duration_s: int = 600


class MarketSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    source: Literal["replay", "generator"] = "replay"
    files: dict[str, str] = msgspec.field(default_factory=dict)
    drift_bps_per_day: float = 0.0
    vol_pct_per_day: float = 2.0
    correlation: float | list[list[float]] = 0.3
    spread_bps: float = 2.0
    regimes: list[RegimeSpec] = msgspec.field(default_factory=list)


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
    return parse_scenario(text, source=str(path))


def parse_scenario(text: str, *, source: str = "<scenario>") -> Scenario:
    scenario: Scenario = decode_toml(text, Scenario, source=source)
    validate_scenario(scenario, source=source)
    return scenario


def _probability(value: float, *, source: str, key: str) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{source}: {key} is a probability in [0, 1], got {value}")


def fault_plan(s: Scenario) -> FaultPlan:
    return FaultPlan.from_toml_dict(s.faults)


def parse_hhmmss(value: str, *, source: str, key: str) -> dt.time:
    if not re.fullmatch(r"\d{2}:\d{2}:\d{2}", value):
        raise ConfigError(f"{source}: {key} must be HH:MM:SS, got {value!r}")
    try:
        return dt.time.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{source}: {key} is not a valid time: {value!r}") from None


def validate_scenario(s: Scenario, *, source: str) -> None:
    if s.schema_version != SCHEMA_VERSION:
        raise ConfigError(f"{source}: schema_version must be {SCHEMA_VERSION}, got {s.schema_version}")
    if not re.fullmatch(r"[a-z0-9_\-]+", s.name):
        raise ConfigError(f"{source}: name must be lower_snake_case, got {s.name!r}")
    if s.seed < 0:
        raise ConfigError(f"{source}: seed must be >= 0")
    try:
        dt.date.fromisoformat(s.session.start)
    except ValueError:
        raise ConfigError(f"{source}: session.start must be YYYY-MM-DD, got {s.session.start!r}") from None
    if not 1 <= s.session.days <= 260:
        raise ConfigError(f"{source}: session.days must be 1..260, got {s.session.days}")
    if s.session.bar_interval_s not in (1, 5, 10, 15, 30, 60, 300):
        raise ConfigError(f"{source}: session.bar_interval_s must be one of 1,5,10,15,30,60,300")
    cash = decimal_field(s.account.cash_usd, source=source, key="account.cash_usd", minimum=Decimal(1))
    if cash > Decimal("1e9"):
        raise ConfigError(f"{source}: account.cash_usd is implausibly large: {cash}")
    if not s.instruments:
        raise ConfigError(f"{source}: [[instruments]] must list at least one symbol")
    validate_config(s.engine_config(), source=source)
    symbols = [i.symbol for i in s.instruments]
    if s.market.source == "replay":
        missing = sorted(set(symbols) - set(s.market.files))
        if missing:
            raise ConfigError(f"{source}: market.files has no file for {', '.join(missing)}")
        extra = sorted(set(s.market.files) - set(symbols))
        if extra:
            raise ConfigError(f"{source}: market.files names symbols not in instruments: {', '.join(extra)}")
    for regime in s.market.regimes:
        parse_hhmmss(regime.at, source=source, key="market.regimes.at")
    try:
        plan = FaultPlan.from_toml_dict(s.faults)
    except FaultPlanError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    for event in plan.events:
        if not 0 <= event.day < s.session.days:
            raise ConfigError(f"{source}: faults.events day {event.day} is outside the session (days are 0-based)")
        if event.kind == "position_drift" and event.symbol not in symbols:
            raise ConfigError(f"{source}: faults.events position_drift needs a symbol from instruments")
        if event.kind == "manual_reset" and not (event.operator.strip() and event.reason.strip()):
            raise ConfigError(f"{source}: faults.events manual_reset needs operator and reason")
        if event.kind in HARNESS_KINDS and event.at is None:
            raise ConfigError(f"{source}: faults.events {event.kind} needs 'at'")
    if s.expect.max_drawdown_pct is not None:
        decimal_field(s.expect.max_drawdown_pct, source=source, key="expect.max_drawdown_pct", minimum=Decimal(0))
