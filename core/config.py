"""The engine's configuration schema (one TOML file), validated with clear errors; defaults documented here.

Parsing is pure (text in, struct out) so core stays I/O-free; tools/ reads the file. Unknown keys are errors that
name the file, the key and its line. Money and fractions are strings in TOML and Decimal here.
"""

from __future__ import annotations

import enum
import math
import re
import tomllib
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal, NoReturn

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
    fractionable: bool = True  # Alpaca's asset flag: false = whole shares only, whatever execution.sizing says


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
    liquidate_on_halt: bool = False  # legacy spelling of on_halt = "flatten" (spec 2.3 step 3 "optionally liquidate")
    # What a halt does to the book once every order is cancelled (spec 2.3 step 1): "cancel_all" leaves the
    # positions as they are (the spec's default; bracket stop legs die with the cancel), "protect" re-places a
    # stop-loss for every open position (core.protect), "flatten" closes them all (step 3).
    on_halt: Literal["cancel_all", "protect", "flatten"] = "cancel_all"
    protect_stop_pct: str = "2.0"  # protect: the stop sits this far beyond the worse of avg entry and last price

    @property
    def halt_action(self) -> str:
        """The one answer to "what does a halt do to the positions": ``on_halt``, or flatten for the legacy key."""
        return "flatten" if self.liquidate_on_halt else self.on_halt


class ExecutionSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    brackets: bool = True  # spec 2.2: bracket legs on every entry
    stop_loss_pct: str = "2.0"
    take_profit_pct: str = "4.0"
    aggressive_cross_bps: str = "5"  # LIMIT_AGGRESSIVE: price this far through the far touch
    on_reject: str = "reprice_once"  # reprice_once | give_up
    depth_check_fraction: str = "1.0"  # orders larger than this x touch size are cut to the visible depth
    submit_timeout_s: float = limits.ORDER_SUBMIT_TIMEOUT_S
    # How a policy's target becomes an order size: "whole" shares (rounded down), "fractional" shares (9
    # decimals, on fractionable instruments) or "notional" (a dollar amount for entries; Alpaca picks the shares).
    # Fractional and notional orders are simple market day orders (Alpaca's rule): such an entry has no bracket.
    sizing: str = "whole"
    # The protective exit of an entry: "stop" (the bracket's stop-loss) or "trailing_stop" (a gtc trailing stop
    # at trail_percent below the high-water mark, placed once the entry has filled; the take-profit is dropped).
    protective_exit: str = "stop"
    trail_percent: str = "2.0"


class PolicySection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: str = "onnx"  # onnx | rule
    model: str = "default"  # "default" = the shipped model; else a directory
    precision: str = "fp32"  # fp32 (default: faster at batch 1, batch-independent; see the model card) | int8
    # Unset (None): the model's, from its contract (adapters.policy.contract.resolve_policy) - the one default.
    decision_interval_s: float | None = None
    model_id: str = ""
    # Contract fields this run may differ in (CONTRACT_OVERRIDABLE); the run is then audited with a warning.
    contract_override: list[str] = msgspec.field(default_factory=list)

    @property
    def interval_s(self) -> float:
        """The decision interval an engine runs at; the composition root resolves an unset one first."""
        if self.decision_interval_s is None:
            raise ConfigError("policy.decision_interval_s is unset: the composition root sets the model's "
                              "(adapters.policy.contract.resolve_config) before an engine runs")
        return self.decision_interval_s


CONTRACT_OVERRIDABLE: Final = ("decision_interval_s",)  # model-contract fields a config may override


class ReconcileSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    interval_s: float = limits.RECONCILE_INTERVAL_S
    tolerance_pct: str = str(limits.RECONCILE_TOLERANCE_FRACTION * 100)
    # Open orders at the account that ttlive did not place: "ignore" leaves them working (audited), "cancel"
    # cancels each one it sees (audited), for an account the policy must own alone.
    foreign_orders: Literal["ignore", "cancel"] = "ignore"


class DashboardSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8765


MODE_PLACEHOLDER = "{mode}"  # in audit.dir: the mode the engine runs in (see for_mode)


class AuditSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    dir: str = f"runs/{MODE_PLACEHOLDER}/latest/audit"


class AlertsSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    webhook_url: str = ""


class BrokerSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    paper_url: str = "https://paper-api.alpaca.markets"
    live_url: str = "https://api.alpaca.markets"
    data_url: str = "https://data.alpaca.markets"
    feed: str = "iex"
    credentials_file: str = ""  # optional TOML with key_id/secret_key; env vars win


class CaptureSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Wire capture beside the audit trail (adapters.capture): ``enabled`` unset = on for paper, off for live
    (opt-in) and for simulations (their hashes do not depend on it)."""

    enabled: bool | None = None
    max_mb: float = 64.0  # per session, compressed; past it only a "limit" record
    keep_sessions: int = 20  # capture files kept in the run directory (oldest deleted first)

    def active(self, mode: Mode) -> bool:
        return (mode is Mode.PAPER) if self.enabled is None else self.enabled


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
    capture: CaptureSection = msgspec.field(default_factory=CaptureSection)

    @property
    def symbols(self) -> list[str]:
        return [i.symbol for i in self.instruments]

    @property
    def sectors(self) -> dict[str, str]:
        return {i.symbol: i.sector for i in self.instruments}


class Checker:
    """Range and shape checks for one loaded file: every error names the file, the key and (found) its line.

    The one place a loader turns "this value is unsafe" into a ConfigError; the ranges live in core.limits.
    """

    def __init__(self, source: str, text: str = "") -> None:
        self.source = source
        self.text = text

    def fail(self, key: str, message: str) -> NoReturn:
        line = line_of(self.text, re.sub(r"\[\d+\]", "", key)) if self.text else None
        where = f" (line {line})" if line else ""
        raise ConfigError(f"{self.source}: {key} {message}{where}")

    def number(self, key: str, value: object, bounds: tuple[float, float]) -> float:
        """A finite int/float within ``bounds`` (inclusive); bools are not numbers here."""
        low, high = bounds
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(key, f"must be a number, got {value!r}")
        if not (math.isfinite(value) and low <= value <= high):
            self.fail(key, f"must be a finite number in [{low:g}, {high:g}], got {value!r}")
        return float(value)

    def integer(self, key: str, value: object, bounds: tuple[int, int]) -> int:
        low, high = bounds
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"must be an integer, got {value!r}")
        if not low <= value <= high:
            self.fail(key, f"must be an integer in [{low}, {high}], got {value!r}")
        return value

    def decimal(self, key: str, value: object, bounds: tuple[Decimal, Decimal]) -> Decimal:
        """A decimal string (money and fractions never go through float) within ``bounds``."""
        low, high = bounds
        try:
            out = Decimal(value) if isinstance(value, str) else None
        except (InvalidOperation, ValueError):
            out = None
        if out is None:
            self.fail(key, f"must be a decimal string, got {value!r}")
        if not (out.is_finite() and low <= out <= high):
            self.fail(key, f"must be a finite number in [{low}, {high}], got {value!r}")
        return out

    def choice(self, key: str, value: object, allowed: tuple[str, ...]) -> None:
        if value not in allowed:
            self.fail(key, f"must be one of {', '.join(allowed)}, got {value!r}")

    def relative_path(self, key: str, value: str) -> None:
        """A path that stays inside the directory it is resolved against: no root, no '..', no control chars."""
        parts = value.replace("\\", "/").split("/")
        if (not value.strip() or value.startswith(("/", "~")) or re.match(r"^[A-Za-z]:", value)
                or ".." in parts or any(ord(ch) < 32 or ord(ch) == 127 for ch in value)):
            self.fail(key, f"must be a relative path inside its directory (no '/', '~', '..' prefix), got {value!r}")

    def http_url(self, key: str, value: str, *, allow_empty: bool = False) -> None:
        if allow_empty and value == "":
            return
        if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+(/[^\s]*)?", value):
            self.fail(key, f"must be an http:// or https:// URL, got {value!r}")


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


def parse_config(text: str, *, source: str = "<config>", mode: Mode | None = None) -> EngineConfig:
    """Parse and validate; ``mode`` (a ``--mode`` flag) overrides the file's before ``{mode}`` is expanded."""
    config: EngineConfig = decode_toml(text, EngineConfig, source=source)
    validate_config(config, source=source, text=text)
    return for_mode(config, mode or config.mode)


def for_mode(config: EngineConfig, mode: Mode) -> EngineConfig:
    """``config`` running as ``mode``: ``{mode}`` in the audit dir becomes the mode, so sim, paper and live
    state live apart by default (runs/sim/latest, runs/paper/latest, runs/live/latest)."""
    audit = AuditSection(dir=config.audit.dir.replace(MODE_PLACEHOLDER, str(mode)))
    return msgspec.structs.replace(config, mode=mode, audit=audit)


def validate_config(config: EngineConfig, *, source: str, text: str = "") -> None:
    """Every engine value in its documented range (core.limits): a bad one fails at load, never at run time."""
    check = Checker(source, text)
    _check_instruments(check, config.instruments)
    _check_risk(check, config.risk)
    _check_execution(check, config.execution)
    _check_policy(check, config.policy)
    check.number("reconcile.interval_s", config.reconcile.interval_s, limits.RECONCILE_INTERVAL_RANGE_S)
    check.decimal("reconcile.tolerance_pct", config.reconcile.tolerance_pct, limits.RECONCILE_TOLERANCE_RANGE_PCT)
    check.integer("dashboard.port", config.dashboard.port, limits.DASHBOARD_PORT_RANGE)
    check.http_url("alerts.webhook_url", config.alerts.webhook_url, allow_empty=True)
    for key in ("paper_url", "live_url", "data_url"):
        check.http_url(f"broker.{key}", getattr(config.broker, key))
    check.number("capture.max_mb", config.capture.max_mb, limits.CAPTURE_MAX_MB_RANGE)
    check.integer("capture.keep_sessions", config.capture.keep_sessions, limits.CAPTURE_KEEP_SESSIONS_RANGE)
    if not config.audit.dir.strip() or "\0" in config.audit.dir:
        check.fail("audit.dir", "must name a directory")


def _check_instruments(check: Checker, instruments: list[InstrumentConfig]) -> None:
    if not instruments:
        check.fail("instruments", "must list at least one symbol")
    seen: set[str] = set()
    for inst in instruments:
        if not re.fullmatch(r"[A-Z][A-Z0-9.]{0,9}", inst.symbol):
            check.fail("instruments.symbol", f"{inst.symbol!r} is not a ticker")
        if inst.symbol in seen:
            check.fail("instruments.symbol", f"{inst.symbol!r} is listed twice")
        if not inst.sector.strip():
            check.fail("instruments.sector", f"is empty for {inst.symbol}")
        if inst.max_position_size is not None:
            check.integer("instruments.max_position_size", inst.max_position_size,
                          limits.MAX_POSITION_SIZE_RANGE_SHARES)
        seen.add(inst.symbol)


def _check_risk(check: Checker, r: RiskSection) -> None:
    for key in ("max_position_pct", "max_sector_pct", "max_correlated_pct", "daily_loss_halt_pct",
                "weekly_loss_halt_pct"):
        check.decimal(f"risk.{key}", getattr(r, key), limits.RISK_PCT_RANGE)
    check.decimal("risk.size_scale", r.size_scale, limits.SIZE_SCALE_RANGE)
    check.number("risk.correlation_threshold", r.correlation_threshold, limits.CORRELATION_THRESHOLD_RANGE)
    check.integer("risk.correlation_window_days", r.correlation_window_days, limits.CORRELATION_WINDOW_RANGE_DAYS)
    check.integer("risk.max_consecutive_losses", r.max_consecutive_losses, limits.MAX_CONSECUTIVE_LOSSES_RANGE)
    check.number("risk.connectivity_lost_halt_s", r.connectivity_lost_halt_s, limits.CONNECTIVITY_LOST_HALT_RANGE_S)
    check.decimal("risk.protect_stop_pct", r.protect_stop_pct, limits.PROTECT_STOP_RANGE_PCT)
    if r.liquidate_on_halt and r.on_halt != "cancel_all" and r.on_halt != "flatten":
        check.fail("risk.liquidate_on_halt", f"= true contradicts on_halt = {r.on_halt!r}: drop liquidate_on_halt "
                   "(it is the old spelling of on_halt = \"flatten\")")


def _check_execution(check: Checker, e: ExecutionSection) -> None:
    check.decimal("execution.stop_loss_pct", e.stop_loss_pct, limits.STOP_LOSS_RANGE_PCT)
    check.decimal("execution.take_profit_pct", e.take_profit_pct, limits.TAKE_PROFIT_RANGE_PCT)
    check.decimal("execution.aggressive_cross_bps", e.aggressive_cross_bps, limits.AGGRESSIVE_CROSS_RANGE_BPS)
    check.decimal("execution.depth_check_fraction", e.depth_check_fraction, limits.DEPTH_CHECK_RANGE_FRACTION)
    check.choice("execution.on_reject", e.on_reject, ("reprice_once", "give_up"))
    check.number("execution.submit_timeout_s", e.submit_timeout_s, limits.SUBMIT_TIMEOUT_RANGE_S)
    check.choice("execution.sizing", e.sizing, SIZING_MODES)
    check.choice("execution.protective_exit", e.protective_exit, PROTECTIVE_EXITS)
    check.decimal("execution.trail_percent", e.trail_percent, TRAIL_PERCENT_RANGE)


SIZING_MODES = ("whole", "fractional", "notional")
PROTECTIVE_EXITS = ("stop", "trailing_stop")
TRAIL_PERCENT_RANGE = (Decimal("0.1"), Decimal("50"))  # Alpaca: 0 < trail_percent < 100; ours stays sane


def _check_policy(check: Checker, p: PolicySection) -> None:
    check.choice("policy.kind", p.kind, ("onnx", "rule"))
    check.choice("policy.precision", p.precision, ("int8", "fp32"))
    if p.decision_interval_s is not None:
        check.number("policy.decision_interval_s", p.decision_interval_s, limits.DECISION_INTERVAL_RANGE_S)
    for name in p.contract_override:
        check.choice("policy.contract_override", name, CONTRACT_OVERRIDABLE)
    if p.model != "default":
        check.relative_path("policy.model", p.model)
