"""The compliance audit record (spec 4.1) and its builders: what a record holds and may say. Chaining and the
line codec are core/audit_chain.py; the verifier is core/audit_verify.py.

Pure: callers pass timestamps from the session clock; files are the sink's business (adapters/audit_jsonl.py).

Record = the spec 4.1 fields in spec order, then ``extra`` (context such as client_order_id, execution_id,
reason, operator), then the chain fields ``seq`` (per stream, from 1), ``prev_sha256`` (the previous record's
``sha256``; 64 zeros for the first record of a stream) and ``sha256``. ``sha256`` is the hex SHA-256 of the
canonical encoding of the record *without* the ``sha256`` member: msgspec JSON, struct fields in declaration
order, dict keys sorted, no whitespace. A line on disk is exactly the canonical encoding of the whole record
plus ``\\n``, so a verifier can re-encode each decoded line and compare bytes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Final, Literal, NoReturn

import msgspec

from core.limits import (
    RETENTION_FILLS_DAYS,
    RETENTION_HEALTH_DAYS,
    RETENTION_ORDERS_DAYS,
    RETENTION_RISK_DAYS,
    RETENTION_SIGNALS_DAYS,
)
from core.model import NS_PER_S, Direction, Side

# --- limits (our choice; candidates for core/limits.py) --------------------------------------------------
AUDIT_RECORD_MAX_BYTES: Final = 16_384  # one encoded line; keeps torn-tail repair and readers bounded
AUDIT_EXTRA_MAX_KEYS: Final = 32
AUDIT_EXTRA_KEY_MAX_CHARS: Final = 64

# --- vocabulary ---------------------------------------------------------------------------------------------
TRADING_EVENT_TYPES: Final = ("signal", "risk_check", "order", "fill", "cancel")  # spec 4.1
SYSTEM_EVENT_TYPES: Final = ("halt", "reset", "health", "reconcile", "alert")  # ours: the health stream
EventType = Literal[
    "signal", "risk_check", "order", "fill", "cancel", "halt", "reset", "health", "reconcile", "alert"
]
SystemKind = Literal["halt", "reset", "health", "reconcile", "alert"]
ActionTaken = Literal["pass", "reject", "resize", "halt"]
DirectionName = Literal["long", "short", "neutral"]

STREAM_SIGNALS: Final = "signals"
STREAM_RISK: Final = "risk"
STREAM_ORDERS: Final = "orders"
STREAM_FILLS: Final = "fills"
STREAM_HEALTH: Final = "health"
STREAMS: Final = (STREAM_SIGNALS, STREAM_RISK, STREAM_ORDERS, STREAM_FILLS, STREAM_HEALTH)  # spec 4.2
RUNNER_STARTED_EVENT: Final = "runner_started"  # extra.event of the health record a paper/live runner writes

RETENTION_DAYS: Final[Mapping[str, int]] = {
    STREAM_SIGNALS: RETENTION_SIGNALS_DAYS,
    STREAM_RISK: RETENTION_RISK_DAYS,
    STREAM_ORDERS: RETENTION_ORDERS_DAYS,
    STREAM_FILLS: RETENTION_FILLS_DAYS,
    STREAM_HEALTH: RETENTION_HEALTH_DAYS,
}
# The engine acts on these only after the record is on disk (write + fsync), spec 1.2 / 4.1.
DURABLE_STREAMS: Final = frozenset({STREAM_ORDERS, STREAM_FILLS})

STREAM_OF_EVENT: Final[Mapping[str, str]] = {
    "signal": STREAM_SIGNALS,
    "risk_check": STREAM_RISK,
    "order": STREAM_ORDERS,
    "cancel": STREAM_ORDERS,  # a cancel request is an order action; same 1-year retention
    "fill": STREAM_FILLS,
    **{kind: STREAM_HEALTH for kind in SYSTEM_EVENT_TYPES},
}

GENESIS_SHA256: Final = "0" * 64
_SHA_PATTERN: Final = "^[0-9a-f]{64}$"
# Always UTC with nanoseconds, so the text sorts like the instant and the file date is timestamp[:10].
_TIMESTAMP_PATTERN: Final = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$"
_TIMESTAMP_RE: Final = re.compile(_TIMESTAMP_PATTERN)
_FRACTION_PATTERN: Final = r"^\d+\.\d{0,8}[1-9]$"  # a fractional share quantity: up to 9 decimals, no trailing 0
_FRACTION_RE: Final = re.compile(_FRACTION_PATTERN)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

ExtraValue = str | int | float | bool | None


class AuditSchemaError(ValueError):
    """A record that does not fit the spec 4.1 schema (a programmer error on the writing side)."""


# --- the record ---------------------------------------------------------------------------------------------
class RiskCheckResult(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    passed: bool
    rules_evaluated: tuple[str, ...]
    action_taken: ActionTaken


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What happened: the spec 4.1 fields in spec order, plus ``extra`` context. Not yet chained."""

    timestamp: Annotated[str, msgspec.Meta(pattern=_TIMESTAMP_PATTERN)]
    event_type: EventType
    signal_id: str
    model_id: str
    symbol: str
    direction: DirectionName
    # Whole shares are an int (spec 4.1); a fractional quantity is its exact decimal string ("0.123456789"),
    # never a float.
    quantity: Annotated[int, msgspec.Meta(ge=0)] | Annotated[str, msgspec.Meta(pattern=_FRACTION_PATTERN)]
    risk_check_result: RiskCheckResult | None
    alpaca_order_id: str | None
    execution_price: Annotated[float, msgspec.Meta(gt=0)] | None
    slippage_bps: float | None
    latency_ms: Annotated[int, msgspec.Meta(ge=0)]
    extra: dict[str, ExtraValue] = {}


class ChainBody(AuditEntry, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The hashed part of a record: the entry plus its place in the stream."""

    seq: Annotated[int, msgspec.Meta(ge=1)]
    prev_sha256: Annotated[str, msgspec.Meta(pattern=_SHA_PATTERN)]


class AuditRecord(ChainBody, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One line of an audit stream."""

    sha256: Annotated[str, msgspec.Meta(pattern=_SHA_PATTERN)]


class ChainHead(msgspec.Struct, frozen=True, kw_only=True):
    """Where a stream's chain stands: the last record's seq and sha256 (seq 0 = empty stream)."""

    seq: int = 0
    sha256: str = GENESIS_SHA256


GENESIS: Final = ChainHead()

# The one canonical encoding: what is hashed, what is written, what a verifier compares bytes against.
CANONICAL_ENCODER: Final = msgspec.json.Encoder(order="deterministic")
_ENTRY_DECODER: Final = msgspec.json.Decoder(AuditEntry)


# --- time ---------------------------------------------------------------------------------------------------
def iso_from_ts_ns(ts_ns: int) -> str:
    """Session-clock nanoseconds -> ``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`` (UTC)."""
    if type(ts_ns) is not int or ts_ns < 0:
        raise AuditSchemaError(f"ts_ns must be a non-negative int, got {ts_ns!r}")
    seconds, nanos = divmod(ts_ns, NS_PER_S)
    try:
        moment = _EPOCH + timedelta(seconds=seconds)
    except OverflowError as exc:
        raise AuditSchemaError(f"ts_ns out of range: {ts_ns}") from exc
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{nanos:09d}Z"


def ts_ns_from_iso(timestamp: str) -> int:
    """Inverse of :func:`iso_from_ts_ns` (only that exact format is accepted)."""
    if not _TIMESTAMP_RE.match(timestamp):
        raise AuditSchemaError(f"timestamp not in YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ form: {timestamp!r}")
    moment = datetime.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    seconds = (moment - _EPOCH) // timedelta(seconds=1)
    return seconds * NS_PER_S + int(timestamp[20:29])


def record_date(entry: AuditEntry) -> date:
    """The session-clock (UTC) date of a record: which dated file it belongs to."""
    return date.fromisoformat(entry.timestamp[:10])


# --- retention ----------------------------------------------------------------------------------------------
def is_expired(stream: str, file_date: date, today: date) -> bool:
    """True once a file dated ``file_date`` is older than the stream's retention window (spec 4.2).

    A file is inside the window while ``today - file_date <= retention days``; only strictly older goes.
    """
    return (today - file_date).days > RETENTION_DAYS[stream]


# --- building and validating --------------------------------------------------------------------------------
def slippage_bps(side: Side | str, execution_price: Decimal, reference_price: Decimal) -> float:
    """Signed execution cost against a reference price: positive = worse than the reference."""
    if reference_price <= 0:
        raise AuditSchemaError(f"reference_price must be > 0, got {reference_price}")
    diff = execution_price - reference_price if Side(side) is Side.BUY else reference_price - execution_price
    return float((diff / reference_price * 10_000).quantize(Decimal("0.0001")))


def _whole_shares(quantity: int | Decimal, what: str = "quantity") -> int | str:
    """Whole shares as an int; a fractional quantity (fractional / notional sizing) as its exact decimal string."""
    if isinstance(quantity, bool) or not isinstance(quantity, int | Decimal):
        raise AuditSchemaError(f"{what} must be an int or Decimal, got {type(quantity).__name__}")
    if isinstance(quantity, Decimal) and not quantity.is_finite():
        raise AuditSchemaError(f"{what} must be a finite number of shares, got {quantity}")
    if quantity < 0:
        raise AuditSchemaError(f"{what} must be >= 0 (direction carries the sign), got {quantity}")
    if isinstance(quantity, Decimal) and quantity != quantity.to_integral():
        text = format(quantity, "f").rstrip("0")
        if not _FRACTION_RE.match(text):
            raise AuditSchemaError(f"{what} must have at most 9 decimals, got {quantity}")
        return text
    return int(quantity)


def audit_quantity(entry: AuditEntry) -> Decimal:
    """A record's quantity as an exact Decimal, whichever form it was written in."""
    return Decimal(entry.quantity)


def _extra_value(key: str, value: object) -> ExtraValue:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise AuditSchemaError(f"extra[{key!r}] must be finite, got {value}")
        return value
    if isinstance(value, str):
        return str(value)  # a StrEnum becomes its plain value
    if isinstance(value, Decimal):
        return str(value)  # exact, never through float
    kind = type(value).__name__
    raise AuditSchemaError(f"extra[{key!r}] must be str/int/float/bool/None/Decimal, got {kind}")


def _merge_extra(known: Mapping[str, object], extra: Mapping[str, object] | None) -> dict[str, ExtraValue]:
    merged: dict[str, ExtraValue] = {}
    for key, value in known.items():
        if value is not None and value != "":
            merged[key] = _extra_value(key, value)
    for key, value in (extra or {}).items():
        if key in merged:
            raise AuditSchemaError(f"extra[{key!r}] duplicates a builder argument")
        merged[key] = _extra_value(key, value)
    return merged


def _optional_float(name: str, value: Decimal | float | None) -> float | None:
    if value is None:
        return None
    as_float = float(value)
    if not math.isfinite(as_float):
        raise AuditSchemaError(f"{name} must be finite, got {value}")
    return as_float


def check_semantics(entry: AuditEntry) -> None:
    """Cross-field rules the types cannot say. Raises AuditSchemaError naming the rule."""
    kind = entry.event_type

    def fail(rule: str) -> NoReturn:
        raise AuditSchemaError(f"invalid {kind} record at {entry.timestamp}: {rule}")

    if len(entry.extra) > AUDIT_EXTRA_MAX_KEYS:
        fail(f"more than {AUDIT_EXTRA_MAX_KEYS} extra keys")
    for key in entry.extra:
        if not key or len(key) > AUDIT_EXTRA_KEY_MAX_CHARS:
            fail(f"extra key must be 1..{AUDIT_EXTRA_KEY_MAX_CHARS} chars, got {key!r}")
    for name in ("execution_price", "slippage_bps"):
        value = getattr(entry, name)
        if value is not None and not math.isfinite(value):
            fail(f"{name} must be finite")
    if kind in SYSTEM_EVENT_TYPES:
        if kind == "reset" and not (entry.extra.get("operator") and entry.extra.get("reason")):
            fail("a manual reset needs extra.operator and extra.reason")
        if kind == "halt" and not entry.extra.get("reason"):
            fail("a halt needs extra.reason")
        return
    if not entry.symbol:
        fail("symbol is empty")
    if kind in ("signal", "risk_check") and not (entry.signal_id and entry.model_id):
        fail("signal_id and model_id are required")
    if kind == "risk_check" and entry.risk_check_result is None:
        fail("risk_check_result is required")
    if kind in ("signal", "fill", "cancel") and entry.risk_check_result is not None:
        fail("risk_check_result belongs to risk_check (and optionally order) records")
    result = entry.risk_check_result
    if result is not None:
        if result.passed and result.action_taken in ("reject", "halt"):
            fail(f"passed=true contradicts action_taken={result.action_taken}")
        if not result.passed and result.action_taken == "pass":
            fail("passed=false contradicts action_taken=pass")
    if kind != "fill" and (entry.execution_price is not None or entry.slippage_bps is not None):
        fail("execution_price and slippage_bps belong to fill records")
    if kind == "fill":
        if not entry.alpaca_order_id or entry.execution_price is None or audit_quantity(entry) <= 0:
            fail("a fill needs alpaca_order_id, execution_price and quantity > 0")
        if not entry.extra.get("execution_id"):
            fail("a fill needs extra.execution_id (the de-duplication key)")
    if kind == "order" and not entry.extra.get("client_order_id"):
        fail("an order needs extra.client_order_id (the idempotency key)")
    if kind == "cancel" and not (entry.alpaca_order_id or entry.extra.get("client_order_id")):
        fail("a cancel needs alpaca_order_id or extra.client_order_id")


def validate_entry(entry: AuditEntry) -> AuditEntry:
    """Check an entry against the schema (types and constraints, as a reader would) and the semantic rules.

    Returns the normalised entry (what a reader decodes back). msgspec does not validate on construction,
    so this round-trips through the canonical encoding.
    """
    if isinstance(entry, ChainBody):
        raise AuditSchemaError("expected an unchained AuditEntry; the sink assigns seq and hashes")
    # JSON has no NaN/inf (msgspec writes null): refuse them rather than let the value change on reading.
    floats: list[tuple[str, ExtraValue]] = [("execution_price", entry.execution_price)]
    floats.append(("slippage_bps", entry.slippage_bps))
    floats += [(f"extra[{key!r}]", value) for key, value in sorted(entry.extra.items())]
    for name, value in floats:
        if isinstance(value, float) and not math.isfinite(value):
            raise AuditSchemaError(f"{name} must be finite, got {value}")
    try:
        normalised = _ENTRY_DECODER.decode(CANONICAL_ENCODER.encode(entry))
    except (msgspec.ValidationError, msgspec.EncodeError, TypeError) as exc:
        raise AuditSchemaError(f"invalid audit record: {exc}") from exc
    check_semantics(normalised)
    return normalised


def entry_from_mapping(data: Mapping[str, Any]) -> AuditEntry:
    """A dict from a caller (the AuditSink port takes dicts) -> a validated entry. Chain fields refused."""
    try:
        entry = msgspec.convert(dict(data), AuditEntry)
    except msgspec.ValidationError as exc:
        raise AuditSchemaError(f"invalid audit record: {exc}") from exc
    return validate_entry(entry)


def _entry(
    *,
    ts_ns: int,
    event_type: EventType,
    signal_id: str,
    model_id: str,
    symbol: str,
    direction: Direction | str,
    quantity: int | Decimal,
    latency_ms: int,
    extra: dict[str, ExtraValue],
    risk_check_result: RiskCheckResult | None = None,
    alpaca_order_id: str | None = None,
    execution_price: Decimal | float | None = None,
    slippage: float | None = None,
) -> AuditEntry:
    if isinstance(latency_ms, bool) or not isinstance(latency_ms, int):
        raise AuditSchemaError(f"latency_ms must be an int, got {latency_ms!r}")
    entry = AuditEntry(
        timestamp=iso_from_ts_ns(ts_ns),
        event_type=event_type,
        signal_id=signal_id,
        model_id=model_id,
        symbol=symbol,
        direction=str(direction),  # type: ignore[arg-type]  # checked by validate_entry
        quantity=_whole_shares(quantity),
        risk_check_result=risk_check_result,
        alpaca_order_id=alpaca_order_id,
        execution_price=_optional_float("execution_price", execution_price),
        slippage_bps=_optional_float("slippage_bps", slippage),
        latency_ms=latency_ms,
        extra=extra,
    )
    return validate_entry(entry)


def signal_record(
    *,
    ts_ns: int,
    signal_id: str,
    model_id: str,
    symbol: str,
    direction: Direction | str,
    quantity: int | Decimal,
    latency_ms: int,
    extra: Mapping[str, object] | None = None,
) -> AuditEntry:
    """A policy decision (spec 4.1 ``signal``); latency_ms = feature + inference time."""
    return _entry(
        ts_ns=ts_ns, event_type="signal", signal_id=signal_id, model_id=model_id, symbol=symbol,
        direction=direction, quantity=quantity, latency_ms=latency_ms, extra=_merge_extra({}, extra),
    )  # fmt: skip


def risk_result(result: RiskCheckResult | Mapping[str, Any]) -> RiskCheckResult:
    """Accept the risk engine's ``Decision.to_audit()`` dict or a RiskCheckResult."""
    if isinstance(result, RiskCheckResult):
        return result
    try:
        return msgspec.convert(dict(result), RiskCheckResult)
    except msgspec.ValidationError as exc:
        raise AuditSchemaError(f"invalid risk_check_result: {exc}") from exc


def risk_record(
    *,
    ts_ns: int,
    signal_id: str,
    model_id: str,
    symbol: str,
    direction: Direction | str,
    quantity: int | Decimal,
    result: RiskCheckResult | Mapping[str, Any],
    latency_ms: int,
    requested_quantity: int | Decimal | None = None,
    extra: Mapping[str, object] | None = None,
) -> AuditEntry:
    """A pre-trade risk decision; ``quantity`` is the approved quantity (0 when rejected)."""
    requested = None
    if requested_quantity is not None:
        requested = _whole_shares(requested_quantity, "requested_quantity")
    return _entry(
        ts_ns=ts_ns, event_type="risk_check", signal_id=signal_id, model_id=model_id, symbol=symbol,
        direction=direction, quantity=quantity, latency_ms=latency_ms, risk_check_result=risk_result(result),
        extra=_merge_extra({"requested_quantity": requested}, extra),
    )  # fmt: skip


def order_record(
    *,
    ts_ns: int,
    signal_id: str,
    model_id: str,
    symbol: str,
    direction: Direction | str,
    quantity: int | Decimal,
    client_order_id: str,
    latency_ms: int,
    alpaca_order_id: str | None = None,
    risk_check_result: RiskCheckResult | Mapping[str, Any] | None = None,
    extra: Mapping[str, object] | None = None,
) -> AuditEntry:
    """An order submission (before the send: alpaca_order_id None; after the ack: the venue's id)."""
    return _entry(
        ts_ns=ts_ns, event_type="order", signal_id=signal_id, model_id=model_id, symbol=symbol,
        direction=direction, quantity=quantity, latency_ms=latency_ms, alpaca_order_id=alpaca_order_id,
        risk_check_result=None if risk_check_result is None else risk_result(risk_check_result),
        extra=_merge_extra({"client_order_id": client_order_id}, extra),
    )  # fmt: skip


ORDER_SUBMITTED: Final = "submitted"  # extra.phase of an order record: the durable intent, before the send
ORDER_ACCEPTED: Final = "accepted"  # the venue took it (alpaca_order_id set)
ORDER_REJECTED: Final = "rejected"  # the venue refused it (extra.reason)


def order_outcome_record(
    *,
    ts_ns: int,
    signal_id: str,
    model_id: str,
    symbol: str,
    direction: Direction | str,
    quantity: int | Decimal,
    client_order_id: str,
    latency_ms: int,
    phase: str,
    alpaca_order_id: str | None = None,
    reason: str = "",
) -> AuditEntry:
    """The venue's answer to a submission, in the orders stream (spec 4.1): accepted (with the Alpaca order id)
    or rejected (with the reason); ``latency_ms`` from the send to the answer. Its ``extra.phase`` tells it from
    the submission record of the same client order id (``is_submission``)."""
    if phase not in (ORDER_ACCEPTED, ORDER_REJECTED):
        raise AuditSchemaError(f"an order outcome is {ORDER_ACCEPTED!r} or {ORDER_REJECTED!r}, got {phase!r}")
    extra: dict[str, ExtraValue] = {"client_order_id": client_order_id, "phase": phase}
    if reason:
        extra["reason"] = reason
    return _entry(
        ts_ns=ts_ns, event_type="order", signal_id=signal_id, model_id=model_id, symbol=symbol,
        direction=direction, quantity=quantity, latency_ms=latency_ms, alpaca_order_id=alpaca_order_id,
        extra=extra,
    )  # fmt: skip


def is_submission(event_type: str, extra: Mapping[str, object]) -> bool:
    """An order record that is a submission (not the venue's answer to one): what counts as an order placed."""
    return event_type == "order" and extra.get("phase", ORDER_SUBMITTED) == ORDER_SUBMITTED


def fill_record(
    *,
    ts_ns: int,
    signal_id: str,
    model_id: str,
    symbol: str,
    direction: Direction | str,
    quantity: int | Decimal,
    alpaca_order_id: str,
    execution_id: str,
    execution_price: Decimal,
    side: Side | str,
    latency_ms: int,
    reference_price: Decimal | None = None,
    client_order_id: str | None = None,
    extra: Mapping[str, object] | None = None,
) -> AuditEntry:
    """One execution. slippage_bps is computed against ``reference_price`` (e.g. the mid at signal time)."""
    slip = None if reference_price is None else slippage_bps(side, execution_price, reference_price)
    known: dict[str, object] = {
        "execution_id": execution_id,
        "client_order_id": client_order_id,
        "side": str(Side(side)),
        "reference_price": reference_price,
    }
    return _entry(
        ts_ns=ts_ns, event_type="fill", signal_id=signal_id, model_id=model_id, symbol=symbol,
        direction=direction, quantity=quantity, latency_ms=latency_ms, alpaca_order_id=alpaca_order_id,
        execution_price=execution_price, slippage=slip, extra=_merge_extra(known, extra),
    )  # fmt: skip


CANCEL_REQUESTED: Final = "requested"  # extra.phase of a cancel record: the decision, before the DELETE
CANCEL_ANSWERED: Final = "answered"  # the venue's answer to it (extra.error when not an acceptance)


def cancel_record(
    *,
    ts_ns: int,
    signal_id: str,
    model_id: str,
    symbol: str,
    quantity: int | Decimal,
    reason: str,
    latency_ms: int,
    alpaca_order_id: str | None = None,
    client_order_id: str | None = None,
    direction: Direction | str = Direction.NEUTRAL,
    phase: str = "requested",
    extra: Mapping[str, object] | None = None,
) -> AuditEntry:
    """A cancel: the decision (``phase`` requested, written before the DELETE leaves, so a process that dies
    with the cancel in flight still has it on record) or the venue's answer (``phase`` answered, ``latency_ms``
    from the decision to the answer, ``extra.error`` when it was not an acceptance). ``quantity`` is the open
    (leaves) quantity being cancelled."""
    if not reason:
        raise AuditSchemaError("a cancel record needs a reason (policy, halt, timeout, ...)")
    if phase not in (CANCEL_REQUESTED, CANCEL_ANSWERED):
        raise AuditSchemaError(f"a cancel record is {CANCEL_REQUESTED!r} or {CANCEL_ANSWERED!r}, got {phase!r}")
    return _entry(
        ts_ns=ts_ns, event_type="cancel", signal_id=signal_id, model_id=model_id, symbol=symbol,
        direction=direction, quantity=quantity, latency_ms=latency_ms, alpaca_order_id=alpaca_order_id,
        extra=_merge_extra({"client_order_id": client_order_id, "reason": reason, "phase": phase}, extra),
    )  # fmt: skip


def is_cancel_request(event_type: str, extra: Mapping[str, object]) -> bool:
    """A cancel record that is the decision (not the venue's answer to it): what counts as a cancel made.
    Records written before the two phases existed count as requests."""
    return event_type == "cancel" and extra.get("phase", CANCEL_REQUESTED) == CANCEL_REQUESTED


def system_record(
    kind: SystemKind,
    *,
    ts_ns: int,
    reason: str = "",
    operator: str = "",
    symbol: str = "",
    extra: Mapping[str, object] | None = None,
) -> AuditEntry:
    """Halt, manual reset (operator + reason required), health, reconcile or alert: the health stream."""
    if kind not in SYSTEM_EVENT_TYPES:
        raise AuditSchemaError(f"system kind must be one of {SYSTEM_EVENT_TYPES}, got {kind!r}")
    return _entry(
        ts_ns=ts_ns, event_type=kind, signal_id="", model_id="", symbol=symbol, direction=Direction.NEUTRAL,
        quantity=0, latency_ms=0, extra=_merge_extra({"reason": reason, "operator": operator}, extra),
    )  # fmt: skip


def stream_for(entry: AuditEntry) -> str:
    return STREAM_OF_EVENT[entry.event_type]
