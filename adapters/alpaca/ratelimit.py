"""Client-side pacing under Alpaca's 200 requests/minute: a token bucket with a priority queue.

Cancels and kill-switch calls jump the queue; a 429's reset time pauses everyone; nobody is dropped.
"""

from __future__ import annotations

import enum
import heapq
import math
from dataclasses import dataclass

import trio

from core.limits import CLIENT_REQUESTS_PER_MIN

_EPSILON = 1e-9


class Priority(enum.IntEnum):
    """Lower runs first. Kill-switch calls (cancel, cancel all, close all) must never wait behind data."""

    KILL_SWITCH = 0
    NORMAL = 1


@dataclass(slots=True)
class TokenBucket:
    """Sans-IO bucket: ``take(now_s)`` returns 0.0 when a token was taken, else the seconds to wait.

    ``pause_until(t)`` empties the bucket until ``t`` (the venue said 429 and when its window resets).
    """

    capacity: float
    refill_per_s: float
    tokens: float = -1.0
    updated_s: float | None = None
    paused_until_s: float = -math.inf

    def __post_init__(self) -> None:
        assert self.capacity >= 1 and self.refill_per_s > 0, "bucket needs capacity >= 1 and a refill rate"
        if self.tokens < 0:
            self.tokens = self.capacity

    @classmethod
    def per_minute(cls, requests_per_min: int = CLIENT_REQUESTS_PER_MIN) -> TokenBucket:
        return cls(capacity=float(requests_per_min), refill_per_s=requests_per_min / 60.0)

    def _refill(self, now_s: float) -> None:
        if self.updated_s is not None and now_s > self.updated_s:
            self.tokens = min(self.capacity, self.tokens + (now_s - self.updated_s) * self.refill_per_s)
        if self.updated_s is None or now_s > self.updated_s:
            self.updated_s = now_s

    def take(self, now_s: float) -> float:
        self._refill(now_s)
        if now_s < self.paused_until_s:
            return self.paused_until_s - now_s
        if self.tokens >= 1.0 - _EPSILON:  # why epsilon: float refill must not leave a 1e-16 wait forever
            self.tokens = max(0.0, self.tokens - 1.0)
            return 0.0
        return (1.0 - self.tokens) / self.refill_per_s

    def pause_until(self, until_s: float) -> None:
        """The venue's window is exhausted: no tokens before ``until_s``, then start from empty-ish."""
        if until_s > self.paused_until_s:
            self.paused_until_s = until_s
            self.tokens = min(self.tokens, 0.0)


class RateLimiter:
    """Queue of waiters ordered by (priority, arrival). The head takes tokens; the rest wait their turn.

    ``ticket`` lets a request that was answered 429 re-enter at its original place in line.
    """

    def __init__(self, bucket: TokenBucket | None = None) -> None:
        self.bucket = bucket or TokenBucket.per_minute()
        self._waiting: list[tuple[int, int]] = []
        self._next_ticket = 0
        self._changed = trio.Event()
        self.max_queue_depth = 0

    @property
    def queue_depth(self) -> int:
        return len(self._waiting)

    def new_ticket(self) -> int:
        self._next_ticket += 1
        return self._next_ticket

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def pause_until(self, until_s: float) -> None:
        self.bucket.pause_until(until_s)
        self._notify()

    async def acquire(self, priority: Priority = Priority.NORMAL, *, ticket: int | None = None) -> int:
        """Wait for a token; returns the ticket (pass it back to keep the place in line on a retry)."""
        entry = (int(priority), ticket if ticket is not None else self.new_ticket())
        heapq.heappush(self._waiting, entry)
        self.max_queue_depth = max(self.max_queue_depth, len(self._waiting))
        granted = False
        try:
            while True:
                changed = self._changed
                wait_s = math.inf
                if self._waiting[0] == entry:
                    wait_s = self.bucket.take(trio.current_time())
                    if wait_s == 0.0:
                        heapq.heappop(self._waiting)
                        granted = True
                        self._notify()
                        return entry[1]
                with trio.move_on_after(wait_s):
                    await changed.wait()
        finally:
            if not granted:
                self._waiting.remove(entry)
                heapq.heapify(self._waiting)
                self._notify()
