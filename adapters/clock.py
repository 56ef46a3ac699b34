"""Clock and id-factory adapters: virtual (simulation) and real (paper/live) implementations of the ports.

In simulation the session clock is trio's clock (a MockClock) offset to the session's epoch, and ids come from a
seeded RNG, so a run replays byte for byte; live uses wall time and uuid4.
"""

from __future__ import annotations

import random
import time
import uuid

import trio


class TrioSessionClock:
    """Epoch-ns session time = ``start_ns`` + trio's (virtual) clock since ``bind()``."""

    def __init__(self, start_ns: int) -> None:
        self.start_ns = start_ns
        self._trio_zero: float | None = None

    def bind(self) -> None:
        """Anchor to the current trio time; call once inside the run."""
        self._trio_zero = trio.current_time()

    def now_ns(self) -> int:
        if self._trio_zero is None:
            self.bind()
        assert self._trio_zero is not None
        return self.start_ns + round((trio.current_time() - self._trio_zero) * 1e9)

    def trio_deadline(self, ts_ns: int) -> float:
        """The trio clock value at which session time reaches ``ts_ns``."""
        if self._trio_zero is None:
            self.bind()
        assert self._trio_zero is not None
        return self._trio_zero + (ts_ns - self.start_ns) / 1e9


class WallClock:
    def now_ns(self) -> int:
        return time.time_ns()


class SeededIds:
    """UUID-shaped ids from a seeded RNG: deterministic per seed, collision-free in practice."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"ids:{seed}")

    def new_id(self, kind: str) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))


class Uuid4Ids:
    def new_id(self, kind: str) -> str:
        return str(uuid.uuid4())
