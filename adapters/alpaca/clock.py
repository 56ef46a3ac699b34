"""Session clocks for the adapter's epoch conversions (X-Ratelimit-Reset, resync windows).

Live uses the wall clock; simulation maps trio's (virtual) clock onto the session start.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import trio


class WallClock:
    """``core.ports.Clock`` for paper and live trading only (never inside a simulation)."""

    def now_ns(self) -> int:
        return time.time_ns()


@dataclass(frozen=True, slots=True)
class TrioSessionClock:
    """``start_ns + trio.current_time()``: the same mapping the in-process fake venue uses."""

    start_ns: int

    def now_ns(self) -> int:
        return self.start_ns + round(trio.current_time() * 1e9)
