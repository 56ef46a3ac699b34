"""One Alpaca deployment's connection states -> the engine's connectivity kill switch.

The trading stream, the market-data stream and REST reachability are sampled and every change is forwarded
to ``Engine.connectivity_changed`` (the supervisor times how long a channel stays down, spec 2.3). The runner
and the simulation world both run this one loop, so what trips the switch in a drill trips it live.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol

import trio

from core.engine.alarm import GridAlarm

HEALTHY_POLL_S: Final = 5.0  # every channel live: a change is seen within this
DEGRADED_POLL_S: Final = 1.0  # a channel down: second resolution for the > 30 s connectivity trip

Channels = tuple[tuple[str, str], ...]  # (channel, state) with channel in trading | market_data | rest


class ConnectivitySink(Protocol):
    started: trio.Event

    async def connectivity_changed(self, channel: str, state: str) -> None: ...


class _HasState(Protocol):
    @property
    def value(self) -> str: ...


class _Machine(Protocol):
    @property
    def state(self) -> _HasState: ...


class _Stream(Protocol):
    @property
    def machine(self) -> _Machine: ...


class _Http(Protocol):
    def unreachable(self) -> bool: ...


class _Rest(Protocol):
    @property
    def http(self) -> _Http: ...


def channel_states(rest: _Rest, trading: _Stream, market: _Stream) -> Channels:
    """Now: each stream's connection-machine state and REST ``live``/``lost`` (fresh failures only)."""
    return (
        ("trading", trading.machine.state.value),
        ("market_data", market.machine.state.value),
        ("rest", "lost" if rest.http.unreachable() else "live"),
    )


def _change_hooks(*sources: object) -> list[Callable[[Callable[[], None]], None]] | None:
    """Every source's ``on_change`` registration, or None if one has none (then the loop samples on time)."""
    hooks = [getattr(source, "on_change", None) for source in sources]
    return [hook for hook in hooks if callable(hook)] if all(callable(h) for h in hooks) else None


async def forward_connectivity(
    engine: ConnectivitySink,
    rest: _Rest,
    trading: _Stream,
    market: _Stream,
    *,
    on_sample: Callable[[Channels, float], None] | None = None,
) -> None:
    """Forward every state change, forever. ``on_sample(states, step_s)`` sees each sample and the time until
    the next one (the simulation counts seconds spent polling with it).

    While every channel is live, a state can only move when a stream's connection machine changes state or a
    REST call fails; both ring a ``GridAlarm`` (``on_change`` of the streams and of ``AlpacaHttp``), so the
    healthy samples that could only repeat the last one are skipped and a change is still seen at the 5 s
    sample instant the plain loop would have seen it at. Sources without ``on_change`` are sampled on time."""
    last: dict[str, str] = {}
    hooks = _change_hooks(trading, market, rest.http)
    alarm = GridAlarm()
    for hook in hooks or ():
        hook(alarm.ring)
    await engine.started.wait()
    while True:
        rung = alarm.rings
        states = channel_states(rest, trading, market)
        for name, state in states:
            if last.get(name) != state:
                last[name] = state
                await engine.connectivity_changed(name, state)
        healthy = all(state == "live" for _, state in states)
        step_s = HEALTHY_POLL_S if healthy else DEGRADED_POLL_S
        if on_sample is not None:
            on_sample(states, step_s)
        if healthy and hooks is not None:
            await alarm.sleep(step_s, due=alarm.rings != rung)  # a ring since the sample: look again on time
        else:
            await trio.sleep(step_s)
