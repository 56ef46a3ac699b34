"""Fault injection for the fake venue: the scenario's ``[faults]`` plan and its seeded runtime.

The only place faults live (architecture: "fault injection only in the fakes"): probabilities drawn from one
seeded RNG per opportunity, and timed events that the venue applies on its own clock.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from core.model import NS_PER_S

PROBABILITY_KEYS: Final = (
    "rest_429_p",
    "rest_5xx_p",
    "rest_timeout_after_accept_p",
    "rest_read_timeout_p",
    "trade_update_drop_p",
    "trade_update_duplicate_p",
    "trade_update_reorder_p",
    "market_data_drop_p",
)
STREAMS: Final = ("trading", "data")
CLOSE_CODES: Final = frozenset({1000, 1001, 1006, 1011})
# Kinds the venue carries out itself; the harness kinds (client_crash, manual_*) are kept in the plan
# for the simulation harness, which owns the engine process and the operator.
_VENUE_KIND_KEYS: Final[Mapping[str, frozenset[str]]] = {
    "ws_close": frozenset({"stream", "code", "duration_s"}),  # duration_s: reconnects refused meanwhile
    "ws_mute": frozenset({"stream", "duration_s"}),
    "eviction_406": frozenset({"stream", "duration_s"}),  # duration_s: new connections refused (406)
    "rest_outage": frozenset({"duration_s"}),
    "rest_slow": frozenset({"latency_ms", "duration_s"}),
    "rate_limit_storm": frozenset({"duration_s"}),
    "quote_stale": frozenset({"symbol", "duration_s"}),  # no symbol => every symbol
    "position_drift": frozenset({"symbol", "qty"}),
    "foreign_order": frozenset({"symbol", "qty"}),  # the user places a resting limit order (qty < 0: a sell)
    "venue_restart": frozenset({"duration_s"}),  # duration_s: REST 503 and streams refused meanwhile
    # Non-trade account activities (venue_faults.apply_account_activity): cash and corporate actions.
    "dividend": frozenset({"symbol", "amount"}),  # amount: dollars per share held
    "fee": frozenset({"amount"}),  # amount: dollars charged (> 0)
    "journal": frozenset({"amount"}),  # amount: dollars moved in (> 0) or out (< 0) of the account (JNLC)
    "interest": frozenset({"amount"}),  # amount: dollars of interest credited (> 0) or charged (< 0) (INT)
    "transfer": frozenset({"amount"}),  # amount: a deposit (> 0, CSD) or a withdrawal (< 0, CSW)
    "split": frozenset({"symbol", "ratio"}),  # ratio 2 = two for one; the venue's prices follow from then on
}
# Carried out by the simulation harness, not the venue. operator_stop: the operator stops the runner gracefully
# (Engine.begin_stop): no new decision for the rest of that session, what was decided still settles.
HARNESS_KINDS: Final = frozenset({"client_crash", "manual_kill", "manual_reset", "operator_stop"})
_HARNESS_KEYS: Final = frozenset({"duration_s", "operator", "reason"})
EVENT_KINDS: Final = frozenset(_VENUE_KIND_KEYS) | HARNESS_KINDS
_COMMON_EVENT_KEYS: Final = frozenset({"kind", "at", "at_ns", "day"})
_REQUIRED_KEYS: Final[Mapping[str, frozenset[str]]] = {
    "ws_mute": frozenset({"duration_s"}),
    "rest_outage": frozenset({"duration_s"}),
    "rest_slow": frozenset({"latency_ms", "duration_s"}),
    "rate_limit_storm": frozenset({"duration_s"}),
    "quote_stale": frozenset({"duration_s"}),
    "position_drift": frozenset({"symbol", "qty"}),
    "foreign_order": frozenset({"symbol", "qty"}),
    "dividend": frozenset({"symbol", "amount"}),
    "fee": frozenset({"amount"}),
    "journal": frozenset({"amount"}),
    "interest": frozenset({"amount"}),
    "transfer": frozenset({"amount"}),
    "split": frozenset({"symbol", "ratio"}),
}
_AT_RE: Final = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")
TRADE_UPDATE_FATES: Final = ("deliver", "drop", "duplicate", "reorder")
_5XX: Final = (
    (500, "internal server error"),
    (502, "bad gateway"),
    (503, "service unavailable"),
    (504, "gateway timeout"),
)


class FaultPlanError(ValueError):
    """A ``[faults]`` table that cannot be run: unknown key, bad value, missing key."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultEvent:
    """One timed fault. ``at`` is exchange wall time on trading session ``day`` (0 = first); ``at_ns`` wins."""

    kind: str
    at: str | None = None
    at_ns: int | None = None
    day: int = 0
    stream: str = "trading"
    code: int = 1006
    duration_s: float = 0.0
    latency_ms: int = 0
    symbol: str | None = None
    qty: Decimal | None = None
    operator: str = ""
    reason: str = ""
    amount: Decimal | None = None  # dividend / fee / journal dollars
    ratio: Decimal | None = None  # split

    @property
    def duration_ns(self) -> int:
        return round(self.duration_s * NS_PER_S)

    def seconds_of_day(self) -> int:
        assert self.at is not None
        match = _AT_RE.match(self.at)
        assert match is not None, self.at
        return int(match[1]) * 3600 + int(match[2]) * 60 + int(match[3] or 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultPlan:
    rest_429_p: float = 0.0
    rest_5xx_p: float = 0.0
    rest_timeout_after_accept_p: float = 0.0  # a POST/PATCH/DELETE is applied; its response is lost
    rest_read_timeout_p: float = 0.0  # a GET is answered into the void: the client times out
    trade_update_drop_p: float = 0.0
    trade_update_duplicate_p: float = 0.0
    trade_update_reorder_p: float = 0.0
    market_data_drop_p: float = 0.0
    one_stream_per_key: bool = False  # a second trading stream for the same key is refused with 406
    events: tuple[FaultEvent, ...] = field(default_factory=tuple)

    @classmethod
    def from_toml_dict(cls, table: Mapping[str, Any]) -> FaultPlan:
        """Build from a scenario's ``[faults]`` table; unknown keys and bad values raise FaultPlanError."""
        if not isinstance(table, Mapping):
            raise FaultPlanError("[faults] must be a table")
        allowed = {*PROBABILITY_KEYS, "one_stream_per_key", "events"}
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise FaultPlanError(f"[faults]: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
        probabilities = {key: _probability(table[key], f"faults.{key}") for key in PROBABILITY_KEYS if key in table}
        one_stream = table.get("one_stream_per_key", False)
        if not isinstance(one_stream, bool):
            raise FaultPlanError("faults.one_stream_per_key: expected true or false")
        raw_events = table.get("events", [])
        if not isinstance(raw_events, list):
            raise FaultPlanError("faults.events: expected an array of tables ([[faults.events]])")
        events = tuple(_event(raw, i) for i, raw in enumerate(raw_events))
        return cls(**probabilities, one_stream_per_key=one_stream, events=events)


def _probability(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FaultPlanError(f"{where}: expected a probability between 0 and 1, got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise FaultPlanError(f"{where}: probability {value!r} is outside [0, 1]")
    return float(value)


def _event(raw: Any, index: int) -> FaultEvent:
    where = f"faults.events[{index}]"
    if not isinstance(raw, Mapping):
        raise FaultPlanError(f"{where}: expected a table")
    kind = raw.get("kind")
    if kind not in EVENT_KINDS:
        raise FaultPlanError(f"{where}.kind: {kind!r} is not one of {', '.join(sorted(EVENT_KINDS))}")
    allowed = _COMMON_EVENT_KEYS | _VENUE_KIND_KEYS.get(kind, _HARNESS_KEYS)
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise FaultPlanError(f"{where}: unknown key {unknown[0]!r} for kind {kind!r}")
    missing = sorted(_REQUIRED_KEYS.get(kind, frozenset()) - set(raw))
    if missing:
        raise FaultPlanError(f"{where}: kind {kind!r} needs key {missing[0]!r}")
    if ("at" in raw) == ("at_ns" in raw):
        raise FaultPlanError(f"{where}: give exactly one of 'at' (\"HH:MM:SS\") or 'at_ns'")
    values: dict[str, Any] = {"kind": kind}
    if "at" in raw:
        if not isinstance(raw["at"], str) or not _AT_RE.match(raw["at"]):
            raise FaultPlanError(f'{where}.at: expected "HH:MM:SS" exchange time, got {raw["at"]!r}')
        values["at"] = raw["at"]
    if "at_ns" in raw:
        values["at_ns"] = _int(raw["at_ns"], f"{where}.at_ns", minimum=0)
    if "day" in raw:
        values["day"] = _int(raw["day"], f"{where}.day", minimum=0)
    if "stream" in raw:
        if raw["stream"] not in STREAMS:
            raise FaultPlanError(f"{where}.stream: expected one of {', '.join(STREAMS)}, got {raw['stream']!r}")
        values["stream"] = raw["stream"]
    if "code" in raw:
        code = _int(raw["code"], f"{where}.code", minimum=1000)
        if code not in CLOSE_CODES:
            raise FaultPlanError(f"{where}.code: expected one of {sorted(CLOSE_CODES)}, got {code}")
        values["code"] = code
    if "duration_s" in raw:
        duration = raw["duration_s"]
        if isinstance(duration, bool) or not isinstance(duration, (int, float)) or duration < 0:
            raise FaultPlanError(f"{where}.duration_s: expected seconds >= 0, got {duration!r}")
        values["duration_s"] = float(duration)
    if "latency_ms" in raw:
        values["latency_ms"] = _int(raw["latency_ms"], f"{where}.latency_ms", minimum=0)
    if "symbol" in raw:
        if not isinstance(raw["symbol"], str) or not raw["symbol"]:
            raise FaultPlanError(f"{where}.symbol: expected a symbol string")
        values["symbol"] = raw["symbol"]
    if "qty" in raw:
        values["qty"] = _decimal(raw["qty"], f"{where}.qty")
    for key in ("amount", "ratio"):
        if key in raw:
            values[key] = _decimal(raw[key], f"{where}.{key}")
            if key == "ratio" and values[key] < 0:
                raise FaultPlanError(f"{where}.ratio: expected a positive split ratio, got {raw[key]!r}")
    for key in ("operator", "reason"):
        if key in raw:
            if not isinstance(raw[key], str):
                raise FaultPlanError(f"{where}.{key}: expected a string")
            values[key] = raw[key]
    return FaultEvent(**values)


def _int(value: Any, where: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise FaultPlanError(f"{where}: expected an integer >= {minimum}, got {value!r}")
    return value


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise FaultPlanError(f'{where}: expected a decimal string like "-10", got {value!r}')
    try:
        parsed = Decimal(value)
    except InvalidOperation as exc:
        raise FaultPlanError(f"{where}: {value!r} is not a decimal") from exc
    if not parsed.is_finite() or parsed == 0:
        raise FaultPlanError(f"{where}: expected a non-zero finite quantity, got {value!r}")
    return parsed


@dataclass(frozen=True, slots=True)
class RestFault:
    """A REST reply the venue sends instead of applying the request."""

    status: int
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class _Window:
    event: FaultEvent
    start_ns: int
    end_ns: int


class FaultInjector:
    """The running plan: one ``random.Random`` for every probability, timed events on the venue clock.

    Every draw happens only when its probability is > 0, in the order the venue asks, so a plan without a
    fault consumes nothing and a given request/stream script always sees the same faults.
    """

    def __init__(self, plan: FaultPlan, *, seed: int, resolve_at_ns: Callable[[FaultEvent], int]) -> None:
        self.plan = plan
        self._rng = random.Random(f"ttlive-fake-venue-faults:{seed}")
        scheduled = [(resolve_at_ns(event), i, event) for i, event in enumerate(plan.events)]
        self._schedule: list[tuple[int, int, FaultEvent]] = sorted(scheduled, key=lambda item: item[:2])
        self._next_index = 0
        self._windows: list[_Window] = []
        self.fired: list[tuple[int, FaultEvent]] = []  # record: (venue ns, event) in firing order

    # --- timed events -------------------------------------------------------------------------------

    def next_event_ns(self) -> int | None:
        if self._next_index < len(self._schedule):
            return self._schedule[self._next_index][0]
        return None

    def pop_due(self, now_ns: int) -> list[FaultEvent]:
        """Events whose time has come (in schedule order); windowed kinds open their window here."""
        due: list[FaultEvent] = []
        while self._next_index < len(self._schedule) and self._schedule[self._next_index][0] <= now_ns:
            _, _, event = self._schedule[self._next_index]
            self._next_index += 1
            due.append(event)
            self.fired.append((now_ns, event))
            if event.duration_ns > 0 or event.kind == "quote_stale":
                self._windows.append(_Window(event, now_ns, now_ns + event.duration_ns))
        self._windows = [w for w in self._windows if w.end_ns > now_ns]
        return due

    def _active(self, kind: str, now_ns: int) -> list[_Window]:
        return [w for w in self._windows if w.event.kind == kind and w.start_ns <= now_ns < w.end_ns]

    def rest_fault(self, now_ns: int) -> RestFault | None:
        """Timed windows first (outage, restart, storm), then the per-request draws (429, then 5xx)."""
        if self._active("rest_outage", now_ns) or self._active("venue_restart", now_ns):
            return RestFault(503, 50310000, "service unavailable")
        if self._active("rate_limit_storm", now_ns):
            return RestFault(429, 42910000, "rate limit exceeded")
        if self._draw(self.plan.rest_429_p):
            return RestFault(429, 42910000, "rate limit exceeded")
        if self._draw(self.plan.rest_5xx_p):
            status, message = self._rng.choice(_5XX)
            return RestFault(status, status * 100_000 + 10_000, message)
        return None

    def drop_response_after_accept(self) -> bool:
        return self._draw(self.plan.rest_timeout_after_accept_p)

    def drop_read_response(self) -> bool:
        return self._draw(self.plan.rest_read_timeout_p)

    def rest_delay_s(self, now_ns: int) -> float:
        slow = self._active("rest_slow", now_ns)
        return max((w.event.latency_ms for w in slow), default=0) / 1000.0

    def stream_muted(self, stream: str, now_ns: int) -> bool:
        return any(w.event.stream == stream for w in self._active("ws_mute", now_ns))

    def stream_refusal(self, stream: str, now_ns: int) -> int | None:
        """Why a new connection on ``stream`` is refused right now: 406 (eviction) or a close code."""
        if any(w.event.stream == stream for w in self._active("eviction_406", now_ns)):
            return 406
        if self._active("venue_restart", now_ns):
            return 1006
        closing = [w for w in self._active("ws_close", now_ns) if w.event.stream == stream]
        return closing[0].event.code if closing else None

    def stale_since_ns(self, symbol: str, now_ns: int) -> int | None:
        """Start of a quote_stale window covering ``symbol`` (quotes are frozen at that instant)."""
        for window in self._windows:
            event = window.event
            if event.kind != "quote_stale" or event.symbol not in (None, symbol):
                continue
            if window.start_ns <= now_ns < window.end_ns:
                return window.start_ns
        return None

    # --- per-opportunity draws -------------------------------------------------------------------------

    def trade_update_fate(self) -> str:
        """One of ``TRADE_UPDATE_FATES`` for one trade_updates frame to one session."""
        if self._draw(self.plan.trade_update_drop_p):
            return "drop"
        if self._draw(self.plan.trade_update_duplicate_p):
            return "duplicate"
        if self._draw(self.plan.trade_update_reorder_p):
            return "reorder"
        return "deliver"

    def market_data_drop(self) -> bool:
        """For the data stream: drop this market-data message?"""
        return self._draw(self.plan.market_data_drop_p)

    def _draw(self, probability: float) -> bool:
        return probability > 0.0 and self._rng.random() < probability
