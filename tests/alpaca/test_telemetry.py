"""Per-endpoint HDR latency histograms behind the Monitor port."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from adapters.alpaca.telemetry import LatencyTelemetry, timed


class _Recorder:
    def __init__(self) -> None:
        self.latencies: list[tuple[str, float]] = []
        self.counts: list[tuple[str, int]] = []

    def observe_latency(self, name: str, value_s: float) -> None:
        self.latencies.append((name, value_s))

    def incr(self, name: str, value: int = 1) -> None:
        self.counts.append((name, value))


def test_percentiles_per_name_and_forwarding() -> None:
    forward = _Recorder()
    telemetry = LatencyTelemetry(forward=forward)
    for ms in range(1, 101):  # 1..100 ms
        telemetry.observe_latency("GET /v2/account", ms / 1000)
    telemetry.observe_latency("POST /v2/orders", 0.250)
    telemetry.incr("retries", 2)
    summary = telemetry.summary("GET /v2/account")
    assert summary is not None and summary.count == 100
    assert summary.p50_s == pytest.approx(0.050, rel=0.01)
    assert summary.p95_s == pytest.approx(0.095, rel=0.01)
    assert summary.p99_s == pytest.approx(0.099, rel=0.01)
    assert summary.max_s == pytest.approx(0.100, rel=0.01)
    assert telemetry.names() == ["GET /v2/account", "POST /v2/orders"]
    assert sorted(telemetry.report()) == telemetry.names()
    assert telemetry.summary("nothing") is None
    assert len(forward.latencies) == 101 and forward.counts == [("retries", 2)]
    assert telemetry.counters == {"retries": 2}


async def test_timed_uses_the_trio_clock(autojump_clock: Any) -> None:
    telemetry = LatencyTelemetry()
    with timed(telemetry, "work"):
        await trio.sleep(2.5)
    with pytest.raises(ValueError), timed(telemetry, "work"):
        await trio.sleep(0.5)
        raise ValueError("also timed")
    summary = telemetry.summary("work")
    assert summary is not None and summary.count == 2
    assert summary.max_s == pytest.approx(2.5, rel=0.001)
