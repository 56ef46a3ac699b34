"""The connection machine: every (state, event) pair, the reconnect schedule of spec 1.1/3.3, degraded polling
(spec 1.4), and a stateful fuzz that checks the schedule's promises under random drops, ticks and messages.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from core.connection_fsm import (
    EVENT_TYPES,
    GUARD_OUTCOMES,
    POLLING_INTERVAL_S,
    RESTORE_INTERVAL_S,
    ROWS,
    STALE_AFTER_S,
    TRANSITIONS,
    Authenticated,
    AuthFailed,
    Close,
    ConnCommand,
    Connect,
    Connected,
    ConnectFailed,
    ConnectionMachine,
    ConnEvent,
    ConnState,
    Disconnected,
    Fatal,
    Guard,
    HeartbeatTick,
    MarkLive,
    MessageReceived,
    PollRest,
    RaiseAlert,
    Resync,
    Resynced,
    ResyncFailed,
    SendAuth,
    SendSubscribe,
    SleepUntil,
    Start,
    Stop,
    Subscribed,
    SwitchToPolling,
    Wake,
    backoff_delay_s,
)
from core.fsm_errors import IllegalTransition
from core.limits import (
    HEARTBEAT_INTERVAL_S,
    HEARTBEAT_MISSED_TOLERANCE,
    RECONNECT_BACKOFF_BASE_S,
    RECONNECT_BACKOFF_CEILING_S,
    RECONNECT_MAX_RETRIES,
)

C = ConnState


def make_event(event_type: type[ConnEvent], now_s: float) -> ConnEvent:
    if event_type is Fatal:
        return Fatal(now_s=now_s, reason="insufficient subscription")
    return event_type(now_s=now_s)


class Driver:
    """Feeds a machine events at a clock it advances; keeps every command for assertions."""

    def __init__(self) -> None:
        self.machine = ConnectionMachine("trade_updates")
        self.now_s = 1000.0
        self.commands: list[ConnCommand] = []

    def send(
        self, event_type: type[ConnEvent], *, after_s: float = 0.0, **fields: object
    ) -> list[ConnCommand]:
        self.now_s += after_s
        event = event_type(now_s=self.now_s, **fields)  # type: ignore[call-arg]
        out = self.machine.handle(event)
        self.commands += out
        return out

    def wake_at_deadline(self) -> list[ConnCommand]:
        deadline = self.machine.next_deadline_s
        assert deadline is not None
        self.now_s = max(self.now_s, deadline)
        return self.send(Wake)

    def handshake(self) -> list[ConnCommand]:
        """Connected .. Resynced, from CONNECTING; returns the commands of the whole handshake."""
        out: list[ConnCommand] = []
        for event_type in (Connected, Authenticated, Subscribed, Resynced):
            out += self.send(event_type)
        return out


def drive_to(state: ConnState) -> Driver:
    d = Driver()
    if state is C.DISCONNECTED:
        return d
    if state is C.FAILED:
        d.send(Start)
        d.send(Fatal, reason="insufficient subscription")
        return d
    d.send(Start)
    path = [Connected, Authenticated, Subscribed, Resynced]
    order = [C.CONNECTING, C.AUTHENTICATING, C.SUBSCRIBING, C.RESYNCING, C.LIVE]
    if state in order:
        for event_type in path[: order.index(state)]:
            d.send(event_type)
    elif state is C.STALE:
        d.handshake()
        d.send(HeartbeatTick, after_s=STALE_AFTER_S)
    elif state is C.BACKOFF:
        d.send(ConnectFailed)  # retry 1: immediate
        d.send(ConnectFailed)  # retry 2: backoff
    elif state is C.POLLING:
        fail_until_polling(d)
    assert d.machine.state is state
    return d


def fail_until_polling(d: Driver) -> None:
    for _ in range(RECONNECT_MAX_RETRIES + 1):
        if d.machine.state is C.BACKOFF:
            d.wake_at_deadline()
        assert d.machine.state is C.CONNECTING
        d.send(ConnectFailed)
    assert d.machine.state is C.POLLING


# --- the table -----------------------------------------------------------------------------------------


def test_every_state_has_a_row_and_guards_have_outcomes() -> None:
    assert set(ROWS) == set(ConnState)
    used = {t for t in TRANSITIONS.values() if isinstance(t, Guard)}
    assert used == set(Guard) == set(GUARD_OUTCOMES)
    # Timers race transitions: absorbed everywhere, never an error.
    for state in ConnState:
        assert (state, HeartbeatTick) in TRANSITIONS and (state, Wake) in TRANSITIONS


@pytest.mark.parametrize(("state", "event_type"), list(itertools.product(ConnState, EVENT_TYPES)))
def test_table_pair(state: ConnState, event_type: type[ConnEvent]) -> None:
    d = drive_to(state)
    target = TRANSITIONS.get((state, event_type))
    event = make_event(event_type, d.now_s + 1.0)
    if target is None:
        with pytest.raises(IllegalTransition) as info:
            d.machine.handle(event)
        err = info.value
        assert (err.machine, err.state, err.event, err.entity_id) == (
            "connection",
            state,
            event_type.__name__,
            "trade_updates",
        )
        assert "trade_updates" in str(err) and state.value in str(err) and event_type.__name__ in str(err)
        assert d.machine.state is state
    elif isinstance(target, Guard):
        d.machine.handle(event)
        assert d.machine.state in GUARD_OUTCOMES[target]
    else:
        d.machine.handle(event)
        assert d.machine.state is target


# --- the happy path and the reconnect schedule ---------------------------------------------------------


def test_handshake_commands_in_order_and_live_only_after_resync() -> None:
    d = Driver()
    assert d.send(Start) == [Connect()]
    assert d.send(Connected) == [SendAuth()]
    assert d.send(Authenticated) == [SendSubscribe()]
    assert d.send(Subscribed) == [Resync()]
    assert d.machine.state is C.RESYNCING
    assert d.send(MessageReceived) == []  # buffered by the shell; still not live
    assert d.send(Resynced) == [MarkLive()]
    assert d.machine.state is C.LIVE and d.machine.retry_count == 0


def test_backoff_schedule_immediate_then_doubling_then_polling() -> None:
    assert backoff_delay_s(1) == 0.0
    assert backoff_delay_s(2) == RECONNECT_BACKOFF_BASE_S
    assert backoff_delay_s(3) == 2 * RECONNECT_BACKOFF_BASE_S
    assert backoff_delay_s(50) == RECONNECT_BACKOFF_CEILING_S
    with pytest.raises(ValueError):
        backoff_delay_s(0)

    d = drive_to(C.LIVE)
    d.send(Disconnected, after_s=5.0, code=1006)
    assert d.commands[-1] == Connect()  # first retry immediate, no sleep
    assert d.machine.state is C.CONNECTING and d.machine.retry_count == 1
    delays: list[float] = []
    for retry in range(2, RECONNECT_MAX_RETRIES + 1):
        out = d.send(ConnectFailed, after_s=0.25)
        assert d.machine.state is C.BACKOFF and d.machine.retry_count == retry
        (sleep,) = out
        assert isinstance(sleep, SleepUntil)
        delays.append(sleep.deadline_s - d.now_s)
        assert d.send(Wake, after_s=delays[-1] / 2) == []  # early: nothing
        assert d.wake_at_deadline() == [Connect()]
    assert delays == [backoff_delay_s(n) for n in range(2, RECONNECT_MAX_RETRIES + 1)]
    assert delays == sorted(delays) and max(delays) <= RECONNECT_BACKOFF_CEILING_S
    out = d.send(ConnectFailed)
    assert d.machine.state is C.POLLING and d.machine.degraded
    assert [type(c) for c in out] == [RaiseAlert, SwitchToPolling, PollRest, SleepUntil]
    assert isinstance(out[0], RaiseAlert) and out[0].severity == "critical"
    assert out[-1] == SleepUntil(deadline_s=d.now_s + POLLING_INTERVAL_S)


def test_polling_polls_every_interval_and_restores_on_the_slow_schedule() -> None:
    d = drive_to(C.POLLING)
    degraded_at = d.now_s
    polls = [degraded_at]
    restore_started = None
    while restore_started is None:
        out = d.wake_at_deadline()
        assert out[:2] == [PollRest(), SleepUntil(deadline_s=d.now_s + POLLING_INTERVAL_S)]
        polls.append(d.now_s)
        if Connect() in out:
            restore_started = d.now_s
    assert all(b - a == POLLING_INTERVAL_S for a, b in itertools.pairwise(polls))
    assert restore_started - degraded_at == RESTORE_INTERVAL_S
    # A poll falls due mid-handshake: polling goes on while the restore is tried.
    d.send(Connected)
    assert d.wake_at_deadline() == [PollRest(), SleepUntil(deadline_s=d.now_s + POLLING_INTERVAL_S)]
    assert d.machine.state is C.AUTHENTICATING
    # The restore fails: back to polling; the next restore is a full interval later.
    assert d.send(Disconnected, after_s=1.0) == []
    failed_at = d.now_s
    assert d.machine.state is C.POLLING and d.machine.retry_count == RECONNECT_MAX_RETRIES
    while Connect() not in d.wake_at_deadline():
        pass
    assert d.now_s - failed_at >= RESTORE_INTERVAL_S
    # This one works: live again, polling over, counter reset, an all-clear alert.
    out = d.handshake()
    assert out[-2:] == [
        MarkLive(),
        RaiseAlert(severity="info", key="stream.trade_updates.restored", message=out[-1].message),
    ]  # type: ignore[union-attr]
    assert d.machine.state is C.LIVE and not d.machine.degraded and d.machine.retry_count == 0
    assert d.send(Wake, after_s=POLLING_INTERVAL_S) == []  # the old poll timer fires into LIVE: absorbed
    d.send(Disconnected)
    assert d.commands[-1] == Connect() and d.machine.retry_count == 1  # immediate again after a reset


def test_heartbeats_two_missed_make_the_stream_stale_then_it_reconnects() -> None:
    d = drive_to(C.LIVE)
    assert d.send(HeartbeatTick, after_s=HEARTBEAT_INTERVAL_S) == []  # one missed
    d.send(MessageReceived, after_s=1.0)  # a pong: alive
    assert d.send(HeartbeatTick, after_s=STALE_AFTER_S - 1.5) == []
    assert d.machine.state is C.LIVE
    assert d.machine.next_deadline_s == d.now_s + 1.5
    out = d.send(HeartbeatTick, after_s=1.5)
    assert STALE_AFTER_S == HEARTBEAT_INTERVAL_S * HEARTBEAT_MISSED_TOLERANCE
    assert d.machine.state is C.STALE
    assert [type(c) for c in out] == [RaiseAlert, Close]
    assert d.send(MessageReceived) == []  # in flight before the close
    assert d.send(Disconnected) == [Connect()]  # then the usual immediate retry
    assert d.handshake()[-1] == MarkLive()


def test_auth_refused_repeatedly_is_fatal_but_a_success_resets_the_count() -> None:
    d = drive_to(C.AUTHENTICATING)
    for _ in range(RECONNECT_MAX_RETRIES):
        assert d.send(AuthFailed, reason="unauthorized")[-1] == Close()
        assert d.machine.state is C.STALE
        d.send(Disconnected)
        if d.machine.state is C.BACKOFF:
            d.wake_at_deadline()
        d.send(Connected)
    d.send(Authenticated)  # the sixth try works: the count of refusals starts over
    d.send(Subscribed)
    d.send(Resynced)
    d = drive_to(C.AUTHENTICATING)
    for attempt in range(RECONNECT_MAX_RETRIES + 1):
        d.send(AuthFailed)
        if attempt < RECONNECT_MAX_RETRIES:
            d.send(Disconnected)
            if d.machine.state is C.BACKOFF:
                d.wake_at_deadline()
            elif d.machine.state is C.POLLING:
                while d.machine.state is C.POLLING:
                    d.wake_at_deadline()
            d.send(Connected)
    assert d.machine.state is C.FAILED
    assert isinstance(d.commands[-1], RaiseAlert) and d.commands[-1].severity == "critical"


def test_resync_failure_closes_and_starts_over() -> None:
    d = drive_to(C.RESYNCING)
    assert d.send(ResyncFailed, reason="503")[-1] == Close()
    assert d.machine.state is C.STALE
    d.send(Disconnected)
    assert d.machine.state is C.CONNECTING


def test_fatal_fails_and_only_stop_leaves_failed() -> None:
    d = drive_to(C.LIVE)
    out = d.send(Fatal, reason="insufficient subscription")
    assert d.machine.state is C.FAILED and out[0] == Close()
    assert "insufficient subscription" in out[1].message  # type: ignore[union-attr]
    assert d.send(Disconnected) == []  # the close report of that socket
    with pytest.raises(IllegalTransition):
        d.send(Start)
    d.send(Stop)
    assert d.machine.state is C.DISCONNECTED
    assert d.send(Start) == [Connect()]


def test_connectivity_lost_since() -> None:
    d = Driver()
    assert d.machine.connectivity_lost_since_s is None
    d.send(Start)
    started = d.now_s
    assert d.machine.connectivity_lost_since_s == started  # never live yet counts as lost (fail closed)
    d.handshake()
    assert d.machine.connectivity_lost_since_s is None
    d.send(Disconnected, after_s=10.0)
    dropped = d.now_s
    d.send(ConnectFailed, after_s=1.0)
    d.wake_at_deadline()
    assert d.machine.connectivity_lost_since_s == dropped  # the first moment, not the latest failure
    d.send(Stop)
    assert d.machine.connectivity_lost_since_s is None  # stopped on purpose


def test_stop_from_anywhere_closes_and_resets() -> None:
    for state in ConnState:
        d = drive_to(state)
        d.send(Stop)
        assert d.machine.state is C.DISCONNECTED
        assert d.machine.retry_count == 0 and not d.machine.degraded and d.machine.next_deadline_s is None


# --- stateful fuzz -------------------------------------------------------------------------------------

_EPS_S = 1e-9  # float seconds: (t + 5) - t may come out a hair under 5
_RANDOM_EVENTS: list[type[ConnEvent]] = [t for t in EVENT_TYPES if t not in (Fatal, Stop)]
_FAILURES: dict[ConnState, type[ConnEvent]] = {
    C.CONNECTING: ConnectFailed,
    C.AUTHENTICATING: AuthFailed,
    C.SUBSCRIBING: Disconnected,
    C.RESYNCING: ResyncFailed,
    C.LIVE: Disconnected,
    C.STALE: Disconnected,
}
_PROGRESS: dict[ConnState, type[ConnEvent]] = {
    C.DISCONNECTED: Start,
    C.CONNECTING: Connected,
    C.AUTHENTICATING: Authenticated,
    C.SUBSCRIBING: Subscribed,
    C.RESYNCING: Resynced,
}


class ConnectionUnderChaos(RuleBasedStateMachine):
    """Random legal events at random times. The promises of the retry policy must hold throughout."""

    @initialize()
    def start(self) -> None:
        self.machine = ConnectionMachine("market_data")
        self.now_s = 0.0
        self._reset_cycle(from_start=True)
        self.since_connect: list[ConnCommand] = []
        self.last_poll_s: float | None = None
        self.last_restore_s: float | None = None
        self._feed(Start)

    def _reset_cycle(self, *, from_start: bool) -> None:
        self.cycle_connects = 0
        self.cycle_budget = RECONNECT_MAX_RETRIES + (1 if from_start else 0)
        self.cycle_delays: list[float] = []
        self.failures_in_cycle = 0

    def _feed(self, event_type: type[ConnEvent]) -> None:
        m = self.machine
        before, was_degraded, retries_before = m.state, m.degraded, m.retry_count
        out = m.handle(make_event(event_type, self.now_s))
        after = m.state
        for command in out:
            if isinstance(command, SleepUntil):
                assert command.deadline_s >= self.now_s, "never sleep until the past"
            if isinstance(command, Connect):
                self.since_connect = []
                if was_degraded or m.degraded:
                    if self.last_restore_s is not None:
                        assert self.now_s - self.last_restore_s >= RESTORE_INTERVAL_S - _EPS_S
                    self.last_restore_s = self.now_s
                else:
                    self.cycle_connects += 1
                    assert self.cycle_connects <= self.cycle_budget, "more retries than the budget"
            self.since_connect.append(command)
            if isinstance(command, PollRest):
                assert m.degraded
                if self.last_poll_s is not None:
                    assert self.now_s - self.last_poll_s >= POLLING_INTERVAL_S - _EPS_S
                self.last_poll_s = self.now_s
            if isinstance(command, MarkLive):
                kinds = [type(c) for c in self.since_connect]
                assert kinds.index(SendSubscribe) < kinds.index(Resync) < kinds.index(MarkLive)
        if after is C.BACKOFF and before is not C.BACKOFF:
            (sleep,) = out
            assert isinstance(sleep, SleepUntil)
            delay = sleep.deadline_s - self.now_s
            assert 0 < delay <= RECONNECT_BACKOFF_CEILING_S
            assert not self.cycle_delays or delay >= self.cycle_delays[-1], "backoff never shrinks"
            self.cycle_delays.append(delay)
        if m.retry_count == 1 and retries_before == 0:
            assert out == [Connect()], "the first retry is immediate"
        if after is C.LIVE and before is not C.LIVE:
            assert before is C.RESYNCING and out[0] == MarkLive()
            self._reset_cycle(from_start=False)
            self.last_poll_s = self.last_restore_s = None
        if after is C.POLLING and not was_degraded:
            assert retries_before == RECONNECT_MAX_RETRIES, "polling only once the retries are spent"
        if event_type is Stop and before is not C.DISCONNECTED:
            self._reset_cycle(from_start=True)
            self.last_poll_s = self.last_restore_s = None
        if after is C.FAILED:
            assert event_type is AuthFailed  # we never send Fatal here: only refusals can be fatal

    @rule(data=st.data(), dt=st.sampled_from([0.0, 0.1, 0.5, 1.0, 4.0, 5.0, 15.0, 29.0, 30.0, 31.0, 61.0]))
    def random_event(self, data: st.DataObject, dt: float) -> None:
        legal = [t for t in _RANDOM_EVENTS if (self.machine.state, t) in TRANSITIONS]
        event_type = data.draw(st.sampled_from(legal))
        self.now_s += dt
        self._feed(event_type)

    @rule(drop=st.booleans())
    def attempt_fails(self, drop: bool) -> None:
        failure = _FAILURES.get(self.machine.state)
        if failure is not None:
            self._feed(
                Disconnected if drop and (self.machine.state, Disconnected) in TRANSITIONS else failure
            )

    @rule(steps=st.integers(1, 5))
    def handshake_progresses(self, steps: int) -> None:
        for _ in range(steps):
            step = _PROGRESS.get(self.machine.state)
            if step is None:
                return
            self._feed(step)

    @precondition(lambda self: self.machine.state is C.POLLING)
    @rule()
    def restore_succeeds(self) -> None:
        while self.machine.state is C.POLLING:
            self.timer_fires(1)
        self.handshake_progresses(5)

    @rule(times=st.integers(1, 8))
    def timer_fires(self, times: int) -> None:
        for _ in range(times):
            deadline = self.machine.next_deadline_s
            if deadline is None or self.machine.state is C.LIVE:
                return
            self.now_s = max(self.now_s, deadline)
            self._feed(Wake)

    @invariant()
    def bounded_and_consistent(self) -> None:
        m = self.machine
        assert 0 <= m.retry_count <= RECONNECT_MAX_RETRIES
        assert (m.state is C.POLLING) <= m.degraded
        assert (m.connectivity_lost_since_s is None) == (m.state in (C.LIVE, C.DISCONNECTED))
        if m.state is C.BACKOFF:
            assert m.next_deadline_s is not None


TestConnectionUnderChaos = ConnectionUnderChaos.TestCase
TestConnectionUnderChaos.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
