"""One stream's connection lifecycle (trade_updates or market data): connect, auth, subscribe, resync, live,
and the way back after a drop (spec 1.1, 1.4, 3.3). Pure: it owns no clock, never sleeps, returns commands.

The shell (the adapter) carries the commands out and reports what happened as events, each stamped with
``now_s`` from its clock. Contract with the shell:

* one ``Connect`` opens one socket; the shell answers ``Connected`` or ``ConnectFailed``; after ``Connected``
  it reports exactly one ``Disconnected`` for that socket, whether the peer dropped it or we sent ``Close``;
* ``SleepUntil(deadline_s)`` arms the machine's one timer (replacing any earlier one); when it fires the
  shell reports ``Wake``. ``HeartbeatTick`` comes from the shell's own heartbeat loop (it pings every
  ``HEARTBEAT_INTERVAL_S``; pongs and frames are ``MessageReceived``). Timers race transitions, so a
  ``Wake`` or ``HeartbeatTick`` is legal in every state and does nothing where it means nothing;
* ``Resync`` = REST-fetch what the stream may have missed, answered by ``Resynced`` or ``ResyncFailed``.
  Every path to LIVE is SendSubscribe -> Subscribed -> Resync -> Resynced -> MarkLive: a stream only counts
  as live again after a resubscribe and a REST resync (the stream never replays what it lost).

Retry policy: the first retry after a failure is immediate, then ``RECONNECT_BACKOFF_BASE_S`` doubling,
capped at ``RECONNECT_BACKOFF_CEILING_S``, at most ``RECONNECT_MAX_RETRIES`` retries. Then POLLING (degraded:
REST every ``POLLING_INTERVAL_S``) while a restore is tried every ``RECONNECT_BACKOFF_CEILING_S``: after the
retry budget is spent we keep knocking at the backoff ceiling. Reaching LIVE resets the counter. FAILED is
only for the fatal: an explicit ``Fatal`` (e.g. insufficient subscription) or credentials refused more than
``RECONNECT_MAX_RETRIES`` times in a row (polling REST with the same keys would fail too).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from core.fsm_errors import IllegalTransition
from core.limits import (
    HEARTBEAT_INTERVAL_S,
    HEARTBEAT_MISSED_TOLERANCE,
    POLLING_INTERVAL_S,
    RECONNECT_BACKOFF_BASE_S,
    RECONNECT_BACKOFF_CEILING_S,
    RECONNECT_MAX_RETRIES,
)

MACHINE = "connection"
STALE_AFTER_S = HEARTBEAT_INTERVAL_S * HEARTBEAT_MISSED_TOLERANCE  # spec 3.3: two missed heartbeats
RESTORE_INTERVAL_S = RECONNECT_BACKOFF_CEILING_S  # restore attempts while POLLING, at the backoff ceiling


class ConnState(enum.StrEnum):
    DISCONNECTED = "disconnected"  # not started, or stopped on purpose
    CONNECTING = "connecting"
    AUTHENTICATING = "authenticating"
    SUBSCRIBING = "subscribing"
    RESYNCING = "resyncing"  # subscribed; REST resync running before we call it live
    LIVE = "live"
    STALE = "stale"  # the connection is unusable (heartbeats missed, auth refused, resync failed): closing it
    BACKOFF = "backoff"  # waiting out a retry delay
    POLLING = "polling"  # degraded: retries exhausted, REST polling, restores tried on a slow schedule
    FAILED = "failed"  # fatal; only Stop leaves it


C = ConnState

# While POLLING, a restore attempt walks these states with polling still running (``degraded`` stays true).
HANDSHAKE: frozenset[ConnState] = frozenset({C.CONNECTING, C.AUTHENTICATING, C.SUBSCRIBING, C.RESYNCING})


# --- events (past tense: what the shell observed) ---------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Start:
    now_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Connected:
    now_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectFailed:
    now_s: float
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Authenticated:
    now_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthFailed:
    now_s: float
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscribed:
    now_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Resynced:
    now_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ResyncFailed:
    now_s: float
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReceived:
    """Any frame or pong: proof of life."""

    now_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatTick:
    now_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Wake:
    """The deadline of the last ``SleepUntil`` arrived."""

    now_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnected:
    now_s: float
    code: int = 1006
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Stop:
    now_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Fatal:
    """Nothing a retry can fix (insufficient subscription, account disabled...)."""

    now_s: float
    reason: str


ConnEvent = (
    Start
    | Connected
    | ConnectFailed
    | Authenticated
    | AuthFailed
    | Subscribed
    | Resynced
    | ResyncFailed
    | MessageReceived
    | HeartbeatTick
    | Wake
    | Disconnected
    | Stop
    | Fatal
)
EVENT_TYPES: tuple[type[ConnEvent], ...] = (
    Start,
    Connected,
    ConnectFailed,
    Authenticated,
    AuthFailed,
    Subscribed,
    Resynced,
    ResyncFailed,
    MessageReceived,
    HeartbeatTick,
    Wake,
    Disconnected,
    Stop,
    Fatal,
)


# --- commands (imperative: what the shell must do, in list order) ------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Connect:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class SendAuth:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class SendSubscribe:
    """Subscribe to everything this stream carries (trade_updates, or all bars/quotes symbols)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Resync:
    """REST-fetch orders/positions (or backfill bars) that the stream may have missed, then report back."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SleepUntil:
    deadline_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SwitchToPolling:
    """The stream is degraded: consumers rely on REST polling until ``MarkLive``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PollRest:
    """Poll the REST equivalent of the stream once, now."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RaiseAlert:
    severity: str  # "info" | "warning" | "critical"
    key: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkLive:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Close:
    pass


ConnCommand = (
    Connect
    | SendAuth
    | SendSubscribe
    | Resync
    | SleepUntil
    | SwitchToPolling
    | PollRest
    | RaiseAlert
    | MarkLive
    | Close
)


# --- the table -------------------------------------------------------------------------------------------


class Guard(enum.StrEnum):
    """A table entry whose target depends on counters and time; ``GUARD_OUTCOMES`` lists where it can lead."""

    RETRY = "retry"  # the attempt failed or the stream dropped: immediate retry, backoff, or polling
    AUTH_REFUSED = "auth_refused"  # close and retry, unless refused too many times in a row
    STALE_CHECK = "stale_check"  # two heartbeats without a sign of life -> STALE
    BACKOFF_OVER = "backoff_over"  # the backoff deadline passed -> connect
    POLL_DUE = "poll_due"  # poll REST; when a restore is due, start one


GUARD_OUTCOMES: dict[Guard, frozenset[ConnState]] = {
    Guard.RETRY: frozenset({C.CONNECTING, C.BACKOFF, C.POLLING}),
    Guard.AUTH_REFUSED: frozenset({C.STALE, C.FAILED}),
    Guard.STALE_CHECK: frozenset({C.LIVE, C.STALE}),
    Guard.BACKOFF_OVER: frozenset({C.BACKOFF, C.CONNECTING}),
    Guard.POLL_DUE: frozenset({C.POLLING, C.CONNECTING}),
}

Target = ConnState | Guard


def _ticks(state: ConnState) -> dict[type[ConnEvent], Target]:
    """Timers race transitions: a heartbeat or wake that means nothing here is absorbed."""
    return {HeartbeatTick: state, Wake: state}


def _exits(state: ConnState) -> dict[type[ConnEvent], Target]:
    return {Stop: C.DISCONNECTED, Fatal: C.FAILED, **_ticks(state)}


# One row per state, every state listed.
ROWS: dict[ConnState, dict[type[ConnEvent], Target]] = {
    C.DISCONNECTED: {
        Start: C.CONNECTING,
        Stop: C.DISCONNECTED,
        Disconnected: C.DISCONNECTED,  # why: the close report of the socket our Stop closed
        **_ticks(C.DISCONNECTED),
    },
    C.CONNECTING: {Connected: C.AUTHENTICATING, ConnectFailed: Guard.RETRY, **_exits(C.CONNECTING)},
    C.AUTHENTICATING: {
        Authenticated: C.SUBSCRIBING,
        AuthFailed: Guard.AUTH_REFUSED,
        Disconnected: Guard.RETRY,
        MessageReceived: C.AUTHENTICATING,
        **_exits(C.AUTHENTICATING),
    },
    C.SUBSCRIBING: {
        Subscribed: C.RESYNCING,
        Disconnected: Guard.RETRY,
        MessageReceived: C.SUBSCRIBING,
        **_exits(C.SUBSCRIBING),
    },
    C.RESYNCING: {
        Resynced: C.LIVE,
        ResyncFailed: C.STALE,  # why: we cannot vouch for the stream without a resync; start over
        Disconnected: Guard.RETRY,
        MessageReceived: C.RESYNCING,  # the shell buffers these until LIVE
        **_exits(C.RESYNCING),
    },
    C.LIVE: {
        MessageReceived: C.LIVE,
        Disconnected: Guard.RETRY,
        **_exits(C.LIVE),
        HeartbeatTick: Guard.STALE_CHECK,
    },
    C.STALE: {
        Disconnected: Guard.RETRY,
        MessageReceived: C.STALE,  # frames already in flight when we sent Close
        **_exits(C.STALE),
    },
    C.BACKOFF: {**_exits(C.BACKOFF), Wake: Guard.BACKOFF_OVER},
    C.POLLING: {**_exits(C.POLLING), Wake: Guard.POLL_DUE},
    C.FAILED: {
        Stop: C.DISCONNECTED,  # why: an operator may stop, fix the cause and Start again
        Disconnected: C.FAILED,  # the close report of the socket we closed on the way in
        **_ticks(C.FAILED),
    },
}
TRANSITIONS: dict[tuple[ConnState, type[ConnEvent]], Target] = {
    (state, event_type): target for state, row in ROWS.items() for event_type, target in row.items()
}


def backoff_delay_s(retry: int) -> float:
    """Delay before reconnect attempt ``retry`` (1-based): 0 for the first, then base doubling, capped."""
    if retry < 1:
        raise ValueError(f"retry numbers start at 1, got {retry}")
    if retry == 1:
        return 0.0  # spec 3.3 "Immediate + exponential backoff"
    return min(RECONNECT_BACKOFF_CEILING_S, RECONNECT_BACKOFF_BASE_S * 2.0 ** (retry - 2))


class ConnectionMachine:
    """The machine for one stream. ``handle`` is the only mutator; everything else reads."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._state = C.DISCONNECTED
        self._retry_count = 0  # reconnect attempts since the stream was last LIVE (or started)
        self._auth_refusals = 0  # consecutive AuthFailed
        self._degraded = False  # POLLING, or a restore attempt started from POLLING
        self._deadline_s: float | None = None  # the armed timer (backoff end, or next poll)
        self._restore_at_s: float | None = None
        self._last_heard_s = 0.0
        self._lost_since_s: float | None = None

    # --- reading --------------------------------------------------------------------------------------

    @property
    def state(self) -> ConnState:
        return self._state

    @property
    def retry_count(self) -> int:
        return self._retry_count

    @property
    def degraded(self) -> bool:
        return self._degraded

    @property
    def next_deadline_s(self) -> float | None:
        """When time alone next changes something: the armed timer, or in LIVE the moment it goes stale."""
        if self._state is C.LIVE:
            return self._last_heard_s + STALE_AFTER_S
        return self._deadline_s

    @property
    def connectivity_lost_since_s(self) -> float | None:
        """Since when the stream has not been LIVE (None while LIVE or stopped). A stream that was started and
        has never been LIVE counts as lost since its Start: failing closed is the safe side (spec 2.3)."""
        return self._lost_since_s

    # --- events ---------------------------------------------------------------------------------------

    def handle(self, event: ConnEvent) -> list[ConnCommand]:
        target = TRANSITIONS.get((self._state, type(event)))
        if target is None:
            raise IllegalTransition(
                machine=MACHINE, state=self._state, event=type(event).__name__, entity_id=self.name
            )
        if isinstance(target, Guard):
            return self._guarded(target, event)
        if target is self._state:
            return self._in_place(event)
        return self._enter(target, event)

    # --- internals ------------------------------------------------------------------------------------

    def _in_place(self, event: ConnEvent) -> list[ConnCommand]:
        """A self-loop: proof of life, or a timer; while degraded a due poll still runs mid-handshake."""
        if isinstance(event, MessageReceived):
            self._last_heard_s = event.now_s
        elif isinstance(event, Wake) and self._state in HANDSHAKE and self._degraded:
            return self._poll_if_due(event.now_s)
        return []

    def _guarded(self, guard: Guard, event: ConnEvent) -> list[ConnCommand]:
        now_s = event.now_s
        if guard is Guard.RETRY:
            return self._retry(event)
        if guard is Guard.AUTH_REFUSED:
            self._auth_refusals += 1
            if self._auth_refusals > RECONNECT_MAX_RETRIES:
                return self._enter(C.FAILED, event)
            return self._enter(C.STALE, event)
        if guard is Guard.STALE_CHECK:
            if now_s - self._last_heard_s >= STALE_AFTER_S:
                return self._enter(C.STALE, event)
            return []
        if guard is Guard.BACKOFF_OVER:
            if self._deadline_s is not None and now_s < self._deadline_s:
                return []  # a Wake queued before the current timer was armed
            self._deadline_s = None
            return self._enter(C.CONNECTING, event)
        # Guard.POLL_DUE
        commands = self._poll_if_due(now_s)
        if self._restore_at_s is not None and now_s >= self._restore_at_s:
            self._restore_at_s = None
            commands += self._enter(C.CONNECTING, event)
        return commands

    def _poll_if_due(self, now_s: float) -> list[ConnCommand]:
        if self._deadline_s is not None and now_s < self._deadline_s:
            return []
        self._deadline_s = now_s + POLLING_INTERVAL_S
        return [PollRest(), SleepUntil(deadline_s=self._deadline_s)]

    def _retry(self, event: ConnEvent) -> list[ConnCommand]:
        now_s = event.now_s
        self._leave_live(now_s)
        if self._degraded:  # a restore attempt failed: back to polling, try again later
            self._state = C.POLLING
            self._restore_at_s = now_s + RESTORE_INTERVAL_S
            return []  # the poll timer is still armed
        if self._retry_count < RECONNECT_MAX_RETRIES:
            self._retry_count += 1
            delay_s = backoff_delay_s(self._retry_count)
            if delay_s == 0:
                return self._enter(C.CONNECTING, event)
            self._state = C.BACKOFF
            self._deadline_s = now_s + delay_s
            return [SleepUntil(deadline_s=self._deadline_s)]
        self._state = C.POLLING
        self._degraded = True
        self._restore_at_s = now_s + RESTORE_INTERVAL_S
        self._deadline_s = now_s + POLLING_INTERVAL_S
        return [
            RaiseAlert(
                severity="critical",
                key=f"stream.{self.name}.degraded",
                message=f"{self.name}: {RECONNECT_MAX_RETRIES} reconnects failed; polling REST every "
                f"{POLLING_INTERVAL_S:g} s",
            ),
            SwitchToPolling(),
            PollRest(),
            SleepUntil(deadline_s=self._deadline_s),
        ]

    def _leave_live(self, now_s: float) -> None:
        if self._state is C.LIVE:
            self._lost_since_s = now_s

    def _enter(self, state: ConnState, event: ConnEvent) -> list[ConnCommand]:
        """Move to ``state`` and return its entry commands."""
        now_s = event.now_s
        self._leave_live(now_s)
        self._state = state
        if state is C.CONNECTING:
            if isinstance(event, Start):
                self._lost_since_s = now_s
            return [Connect()]
        if state is C.AUTHENTICATING:
            return [SendAuth()]
        if state is C.SUBSCRIBING:
            self._auth_refusals = 0
            return [SendSubscribe()]
        if state is C.RESYNCING:
            return [Resync()]
        if state is C.LIVE:
            restored = self._degraded
            self._retry_count = 0
            self._degraded = False
            self._deadline_s = self._restore_at_s = self._lost_since_s = None
            self._last_heard_s = now_s
            if not restored:
                return [MarkLive()]
            alert = RaiseAlert(
                severity="info", key=f"stream.{self.name}.restored", message=f"{self.name}: live"
            )
            return [MarkLive(), alert]
        if state is C.STALE:
            cause = {
                HeartbeatTick: "heartbeats missed",
                AuthFailed: "auth refused",
                ResyncFailed: "resync failed",
            }
            message = f"{self.name}: {cause.get(type(event), 'unusable')}; reconnecting"
            return [RaiseAlert(severity="warning", key=f"stream.{self.name}.stale", message=message), Close()]
        if state is C.FAILED:
            self._degraded = False
            self._deadline_s = self._restore_at_s = None
            reason = getattr(event, "reason", "") or type(event).__name__
            alert = RaiseAlert(
                severity="critical", key=f"stream.{self.name}.failed", message=f"{self.name}: {reason}"
            )
            return [Close(), alert]
        if state is C.DISCONNECTED:
            self._retry_count = self._auth_refusals = 0
            self._degraded = False
            self._deadline_s = self._restore_at_s = self._lost_since_s = None
            return [Close()]
        raise AssertionError(f"{state} is entered only through a guard")  # BACKOFF, POLLING
