"""The engine's configuration schema (one TOML file), validated with clear errors; defaults documented here.

Parsing is pure (text in, struct out) so core stays I/O-free; tools/ reads the file. Unknown keys are errors that
name the file, the key and its line. Money and fractions are strings in TOML and Decimal here.
"""

from __future__ import annotations

import enum
import re
import tomllib
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from core import limits


class ConfigError(ValueError):
    """A configuration or scenario file is malformed; the message names file, key and problem."""


class Mode(enum.StrEnum):
    SIM = "sim"
    PAPER = "paper"
    LIVE = "live"


class InstrumentConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    symbol: str
    sector: str
    max_position_size: int | None = None  # spec 2.2 per-symbol cap in shares


class RiskSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    max_position_pct: str = str(limits.MAX_POSITION_FRACTION * 100)
    max_sector_pct: str = str(limits.MAX_SECTOR_FRACTION * 100)
    max_correlated_pct: str = str(limits.MAX_CORRELATED_FRACTION * 100)
    correlation_threshold: float = limits.CORRELATION_THRESHOLD
    correlation_window_days: int = limits.CORRELATION_WINDOW_DAYS
    daily_loss_halt_pct: str = str(limits.DAILY_LOSS_HALT_FRACTION * 100)
    weekly_loss_halt_pct: str = str(limits.WEEKLY_LOSS_HALT_FRACTION * 100)
    max_consecutive_losses: int = limits.MAX_CONSECUTIVE_LOSING_TRADES
    connectivity_lost_halt_s: float = limits.CONNECTIVITY_LOST_HALT_S
    size_scale: str = "1.0"  # go-live: "0.25" (spec 6)
    pdt_protection: bool = True
    liquidate_on_halt: bool = False  # spec 2.3 step 3 "optionally liquidate"


class ExecutionSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    brackets: bool = True  # spec 2.2: bracket legs on every entry
    stop_loss_pct: str = "2.0"
    take_profit_pct: str = "4.0"
    aggressive_cross_bps: str = "5"  # LIMIT_AGGRESSIVE: price this far through the far touch
    on_reject: str = "reprice_once"  # reprice_once | give_up
    depth_check_fraction: str = "1.0"  # orders larger than this x touch size are cut to the visible depth
    submit_timeout_s: float = limits.ORDER_SUBMIT_TIMEOUT_S


class PolicySection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: str = "onnx"  # onnx | rule
    model: str = "default"  # "default" = the shipped model; else a directory
    precision: str = "int8"  # int8 (production, spec 3.1) | fp32
    decision_interval_s: float = 60.0
    model_id: str = ""


class ReconcileSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    interval_s: float = limits.RECONCILE_INTERVAL_S
    tolerance_pct: str = str(limits.RECONCILE_TOLERANCE_FRACTION * 100)


class DashboardSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8765


class AuditSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    dir: str = "runs/latest/audit"


class AlertsSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    webhook_url: str = ""


class BrokerSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    paper_url: str = "https://paper-api.alpaca.markets"
    live_url: str = "https://api.alpaca.markets"
    data_url: str = "https://data.alpaca.markets"
    feed: str = "iex"
    credentials_file: str = ""  # optional TOML with key_id/secret_key; env vars win


class EngineConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    mode: Mode = Mode.SIM
    instruments: list[InstrumentConfig] = msgspec.field(
        default_factory=lambda: [
            InstrumentConfig(symbol="NVDA", sector="semiconductors"),
            InstrumentConfig(symbol="ORCL", sector="software"),
            InstrumentConfig(symbol="YHOO", sector="internet"),
        ]
    )
    risk: RiskSection = msgspec.field(default_factory=RiskSection)
    execution: ExecutionSection = msgspec.field(default_factory=ExecutionSection)
    policy: PolicySection = msgspec.field(default_factory=PolicySection)
    reconcile: ReconcileSection = msgspec.field(default_factory=ReconcileSection)
    dashboard: DashboardSection = msgspec.field(default_factory=DashboardSection)
    audit: AuditSection = msgspec.field(default_factory=AuditSection)
    alerts: AlertsSection = msgspec.field(default_factory=AlertsSection)
    broker: BrokerSection = msgspec.field(default_factory=BrokerSection)

    @property
    def symbols(self) -> list[str]:
        return [i.symbol for i in self.instruments]

    @property
    def sectors(self) -> dict[str, str]:
        return {i.symbol: i.sector for i in self.instruments}


def decimal_field(value: str, *, source: str, key: str, minimum: Decimal | None = None) -> Decimal:
    try:
        out = Decimal(value)
    except (InvalidOperation, TypeError):
        raise ConfigError(f"{source}: {key} must be a decimal string, got {value!r}") from None
    if not out.is_finite() or (minimum is not None and out < minimum):
        raise ConfigError(f"{source}: {key} must be a finite number >= {minimum}, got {value!r}")
    return out


def line_of(text: str, key: str) -> int | None:
    """Best-effort line number of dotted ``key`` in TOML ``text`` (tomllib reports none for schema errors)."""
    *sections, leaf = key.split(".")
    lines = text.splitlines()
    start = 0
    if sections:
        header = re.compile(rf"^\s*\[+\s*{re.escape('.'.join(sections))}\s*\]+")
        for number, line in enumerate(lines):
            if header.match(line):
                start = number
                break
    pattern = re.compile(rf"^\s*(\[+\s*)?{re.escape(leaf)}\b")
    for number, line in enumerate(lines[start:], start=start + 1):
        if pattern.match(line):
            return number
    return None


def decode_toml(text: str, type_: type[Any], *, source: str) -> Any:
    """Decode TOML text into ``type_`` with errors that name the file, the key and the line."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        return msgspec.convert(raw, type=type_, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        unknown = re.search(r"unknown field `([^`]+)`(?: - at `\$\.?([^`]*)`)?", message)
        if unknown:
            path = ".".join(p for p in (unknown.group(2) or "", unknown.group(1)) if p)
            path = re.sub(r"\[\d+\]", "", path)
            line = line_of(text, path)
            where = f" (line {line})" if line else ""
            raise ConfigError(f"{source}: unknown key '{path}'{where}") from None
        at = re.search(r"at `\$\.?([^`]*)`", message)
        key = at.group(1) if at else ""
        line = line_of(text, re.sub(r"\[\d+\]", "", key)) if key else None
        where = f" (line {line})" if line else ""
        raise ConfigError(f"{source}: bad value for '{key or '?'}'{where}: {message}") from None


def parse_config(text: str, *, source: str = "<config>") -> EngineConfig:
    config: EngineConfig = decode_toml(text, EngineConfig, source=source)
    validate_config(config, source=source)
    return config


def validate_config(config: EngineConfig, *, source: str) -> None:
    if not config.instruments:
        raise ConfigError(f"{source}: instruments must list at least one symbol")
    seen: set[str] = set()
    for inst in config.instruments:
        if not re.fullmatch(r"[A-Z][A-Z0-9.]{0,9}", inst.symbol):
            raise ConfigError(f"{source}: instruments.symbol {inst.symbol!r} is not a ticker")
        if inst.symbol in seen:
            raise ConfigError(f"{source}: instruments.symbol {inst.symbol!r} is listed twice")
        if not inst.sector.strip():
            raise ConfigError(f"{source}: instruments.sector is empty for {inst.symbol}")
        seen.add(inst.symbol)
    r = config.risk
    for key in ("max_position_pct", "max_sector_pct", "max_correlated_pct", "daily_loss_halt_pct",
                "weekly_loss_halt_pct"):
        value = decimal_field(getattr(r, key), source=source, key=f"risk.{key}", minimum=Decimal(0))
        if value > 100:
            raise ConfigError(f"{source}: risk.{key} is a percentage, got {value}")
    scale = decimal_field(r.size_scale, source=source, key="risk.size_scale", minimum=Decimal(0))
    if scale == 0 or scale > 1:
        raise ConfigError(f"{source}: risk.size_scale must be in (0, 1], got {r.size_scale}")
    if not 0 < r.correlation_threshold <= 1:
        raise ConfigError(f"{source}: risk.correlation_threshold must be in (0, 1]")
    e = config.execution
    for key in ("stop_loss_pct", "take_profit_pct", "aggressive_cross_bps", "depth_check_fraction"):
        decimal_field(getattr(e, key), source=source, key=f"execution.{key}", minimum=Decimal(0))
    if e.on_reject not in ("reprice_once", "give_up"):
        raise ConfigError(f"{source}: execution.on_reject must be reprice_once or give_up, got {e.on_reject!r}")
    if e.submit_timeout_s <= 0:
        raise ConfigError(f"{source}: execution.submit_timeout_s must be > 0")
    p = config.policy
    if p.kind not in ("onnx", "rule"):
        raise ConfigError(f"{source}: policy.kind must be onnx or rule, got {p.kind!r}")
    if p.precision not in ("int8", "fp32"):
        raise ConfigError(f"{source}: policy.precision must be int8 or fp32, got {p.precision!r}")
    if p.decision_interval_s <= 0:
        raise ConfigError(f"{source}: policy.decision_interval_s must be > 0")
    if config.reconcile.interval_s <= 0:
        raise ConfigError(f"{source}: reconcile.interval_s must be > 0")
    decimal_field(config.reconcile.tolerance_pct, source=source, key="reconcile.tolerance_pct", minimum=Decimal(0))
    if not 0 <= config.dashboard.port <= 65535:
        raise ConfigError(f"{source}: dashboard.port out of range")
