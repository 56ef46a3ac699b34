"""The wall clock for paper and live (the simulation's clock is the fake venue's, sim.world.VenueClock)."""

from __future__ import annotations

import time


class WallClock:
    """``core.ports.Clock`` for paper and live trading only (never inside a simulation)."""

    def now_ns(self) -> int:
        return time.time_ns()
