"""The connectivity loop the runner and the simulation share: changes only, second resolution while down."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import trio

from adapters.alpaca.connectivity import DEGRADED_POLL_S, HEALTHY_POLL_S, Channels, forward_connectivity


@dataclass
class _State:
    value: str = "live"


@dataclass
class _Machine:
    state: _State = field(default_factory=_State)


@dataclass
class _Stream:
    machine: _Machine = field(default_factory=_Machine)


@dataclass
class _Http:
    down: bool = False

    def unreachable(self) -> bool:
        return self.down


@dataclass
class _Rest:
    http: _Http = field(default_factory=_Http)


@dataclass
class _Engine:
    started: trio.Event = field(default_factory=trio.Event)
    changes: list[tuple[float, str, str]] = field(default_factory=list)

    async def connectivity_changed(self, channel: str, state: str) -> None:
        self.changes.append((trio.current_time(), channel, state))


async def test_forwards_changes_only_and_polls_faster_while_a_channel_is_down(autojump_clock: Any) -> None:
    engine, rest, trading, market = _Engine(), _Rest(), _Stream(), _Stream()
    samples: list[tuple[float, Channels, float]] = []

    def on_sample(states: Channels, step_s: float) -> None:
        samples.append((trio.current_time(), states, step_s))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: forward_connectivity(engine, rest, trading, market, on_sample=on_sample))
        await trio.sleep(3)
        assert samples == [], "nothing is sampled before the engine has started"
        engine.started.set()
        t0 = trio.current_time()
        await trio.sleep(12)  # healthy: samples at +0, +5, +10
        assert [round(t - t0) for t, _, _ in samples] == [0, 5, 10]
        assert {step for _, _, step in samples} == {HEALTHY_POLL_S}
        assert [(c, s) for _, c, s in engine.changes] == [("trading", "live"), ("market_data", "live"),
                                                          ("rest", "live")]
        trading.machine.state.value = "reconnecting"
        rest.http.down = True
        await trio.sleep(4.5)  # seen at +15, then every second
        trading.machine.state.value = "live"  # at +16.5
        await trio.sleep(6)
        nursery.cancel_scope.cancel()

    changes = [(round(t - t0), c, s) for t, c, s in engine.changes[3:]]
    assert changes == [(15, "trading", "reconnecting"), (15, "rest", "lost"), (17, "trading", "live")]
    down = [round(t - t0) for t, _, step in samples if step == DEGRADED_POLL_S]
    assert down[:5] == [15, 16, 17, 18, 19]  # REST is still lost: the loop keeps second resolution


@dataclass
class _RingingStream(_Stream):
    listeners: list[Any] = field(default_factory=list)

    def on_change(self, callback: Any) -> None:
        self.listeners.append(callback)

    def set(self, value: str) -> None:
        self.machine.state.value = value
        for listener in self.listeners:
            listener()


@dataclass
class _RingingHttp(_Http):
    listeners: list[Any] = field(default_factory=list)

    def on_change(self, callback: Any) -> None:
        self.listeners.append(callback)

    def set_down(self, down: bool) -> None:
        self.down = down
        for listener in self.listeners:
            listener()


async def test_healthy_samples_are_skipped_but_changes_are_seen_on_the_same_grid(autojump_clock: Any) -> None:
    """With change hooks the loop sleeps while all is live, and wakes at the 5 s sample instant after a change:
    the same instants (and forwarded changes) as the polling loop above, without the idle samples."""
    engine, trading, market = _Engine(), _RingingStream(), _RingingStream()
    rest = _Rest(http=_RingingHttp())
    samples: list[tuple[float, Channels, float]] = []

    def on_sample(states: Channels, step_s: float) -> None:
        samples.append((trio.current_time(), states, step_s))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: forward_connectivity(engine, rest, trading, market, on_sample=on_sample))
        engine.started.set()
        await trio.sleep(0)
        t0 = trio.current_time()
        await trio.sleep(12)
        assert [round(t - t0) for t, _, _ in samples] == [0], "quiet and healthy: one sample, then none"
        await trio.sleep(0.5)
        trading.set("stale")  # at +12.5: seen at +15, as the polling loop would
        trading.set("live")  # gone before the next sample: never forwarded, as with polling
        await trio.sleep(10)
        market.set("reconnecting")  # at +22.5: seen at +25
        assert isinstance(rest.http, _RingingHttp)
        rest.http.set_down(True)
        await trio.sleep(4)  # +26.5: degraded, samples every second
        market.set("live")
        rest.http.set_down(False)  # at +26.5: seen at +27
        await trio.sleep(20)
        nursery.cancel_scope.cancel()

    changes = [(round(t - t0, 1), c, s) for t, c, s in engine.changes[3:]]
    assert changes == [(25.0, "market_data", "reconnecting"), (25.0, "rest", "lost"), (27.0, "market_data", "live"),
                       (27.0, "rest", "live")]
    assert [round(t - t0, 1) for t, _, _ in samples] == [0, 15, 25, 26, 27]
    assert [step for _, _, step in samples] == [HEALTHY_POLL_S, HEALTHY_POLL_S, DEGRADED_POLL_S, DEGRADED_POLL_S,
                                                HEALTHY_POLL_S]
