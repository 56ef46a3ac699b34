"""A periodic check that sleeps through the instants at which nothing it reads can have changed.

A loop that re-evaluates something every ``step_s`` (the supervisor's equity marks, the connectivity samples)
only learns something new at an instant after the data it reads moved. The writers ``ring()`` the alarm when
they change that data; asleep, a ring sets the wake-up to the first instant of the loop's own grid (start of
the sleep + k * step_s) at or after it, so the check runs exactly when the every-step loop would have seen the
change, and a quiet stretch costs no scheduler wake-ups at all.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import trio


class GridAlarm:
    def __init__(self) -> None:
        self.rings = 0  # ever-increasing: a reader notes it before reading, to know whether a ring came since
        self._scope: trio.CancelScope | None = None
        self._start_s = 0.0
        self._step_s = 1.0

    def ring(self) -> None:
        """Something the check reads changed (synchronous: safe from any task, never a checkpoint)."""
        self.rings += 1
        scope = self._scope
        if scope is not None and scope.deadline == math.inf:
            now_s = trio.current_time()
            k = max(1, math.ceil((now_s - self._start_s) / self._step_s))
            scope.deadline = self._start_s + k * self._step_s

    @contextmanager
    def wait_scope(self, step_s: float, *, due: bool) -> Iterator[trio.CancelScope]:
        """A cancel scope whose deadline is the grid's next instant if ``due`` (the check must run then), else
        infinity until a ring. The grid starts now."""
        assert step_s > 0, "the grid step must be positive"
        self._start_s, self._step_s = trio.current_time(), step_s
        with trio.CancelScope(deadline=self._start_s + step_s if due else math.inf) as scope:
            self._scope = scope
            try:
                yield scope
            finally:
                self._scope = None

    async def sleep(self, step_s: float, *, due: bool) -> None:
        """Sleep until the next grid instant if ``due``, else until the grid instant after the next ring."""
        with self.wait_scope(step_s, due=due):
            await trio.sleep_forever()
