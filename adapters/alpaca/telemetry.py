"""Per-endpoint latency histograms (HDR) and counters for the Alpaca adapter, behind ``core.ports.Monitor``.

Durations are measured with ``trio.current_time()`` so simulation reports virtual latency, never wall time.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import trio
from hdrh.histogram import HdrHistogram

from core.ports import Monitor

log = logging.getLogger("ttlive.alpaca.telemetry")

_LOWEST_US = 1
_HIGHEST_US = 600_000_000  # 10 minutes: longer than any retried call can take
_SIGNIFICANT_DIGITS = 3


RECENT_WINDOW = 512  # REST calls in the rolling p95 window (at most)
RECENT_WINDOW_S = 300.0  # ... and only those of the last five minutes: an alert describes now, not the morning


@dataclass(frozen=True, slots=True)
class LatencySummary:
    count: int
    p50_s: float
    p95_s: float
    p99_s: float
    max_s: float


class LatencyTelemetry:
    """A ``Monitor`` that keeps one HDR histogram per name and a counter table.

    ``forward`` (another Monitor, e.g. Prometheus) receives every observation too.
    """

    def __init__(self, forward: Monitor | None = None, *, recent_window: int = RECENT_WINDOW) -> None:
        self._histograms: dict[str, HdrHistogram] = {}
        self.counters: dict[str, int] = {}
        self._forward = forward
        self._recent: deque[tuple[float, float]] = deque(maxlen=recent_window)  # (trio time, latency s)

    def observe_latency(self, name: str, value_s: float) -> None:
        hist = self._histograms.get(name)
        if hist is None:
            hist = self._histograms[name] = HdrHistogram(_LOWEST_US, _HIGHEST_US, _SIGNIFICANT_DIGITS)
        value_us = min(_HIGHEST_US, max(_LOWEST_US, round(value_s * 1e6)))
        hist.record_value(value_us)
        if name.startswith("alpaca.rest"):
            self._recent.append((trio.current_time(), value_s))
        if self._forward is not None:
            self._forward.observe_latency(name, value_s)

    def incr(self, name: str, value: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + value
        if self._forward is not None:
            self._forward.incr(name, value)

    def recent_rest_p95_ms(self) -> float:
        """p95 of the last ``recent_window`` REST calls (spec 4.3 alert input). Cheap: a sort of a small
        window, where an HDR percentile walk costs milliseconds and the monitor asks every few seconds."""
        horizon = trio.current_time() - RECENT_WINDOW_S
        while self._recent and self._recent[0][0] < horizon:
            self._recent.popleft()
        if not self._recent:
            return 0.0
        ordered = sorted(v for _, v in self._recent)
        return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000

    def names(self) -> list[str]:
        return sorted(self._histograms)

    def summary(self, name: str) -> LatencySummary | None:
        hist = self._histograms.get(name)
        if hist is None or hist.get_total_count() == 0:
            return None

        def pct(p: float) -> float:
            return float(hist.get_value_at_percentile(p)) / 1e6

        return LatencySummary(
            count=int(hist.get_total_count()),
            p50_s=pct(50),
            p95_s=pct(95),
            p99_s=pct(99),
            max_s=float(hist.get_max_value()) / 1e6,
        )

    def report(self) -> dict[str, LatencySummary]:
        return {name: s for name in self.names() if (s := self.summary(name)) is not None}


@contextmanager
def timed(monitor: Monitor, name: str) -> Iterator[None]:
    """Observe the (trio-clock) duration of the block, also when it raises."""
    start_s = trio.current_time()
    try:
        yield
    finally:
        monitor.observe_latency(name, trio.current_time() - start_s)
