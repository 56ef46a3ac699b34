"""The spec 3.2 retry matrix as a small pure policy: which failure is retried, how often, how long to wait.

The REST client asks ``RetryBudget.next_delay_s`` after every failed attempt; ``None`` means give up.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from core.limits import (
    RATE_LIMIT_MAX_WAIT_S,
    RETRY_BACKOFF_BASE_S,
    RETRY_BACKOFF_CEILING_S,
    SERVER_ERROR_MAX_RETRIES,
    TIMEOUT_MAX_RETRIES,
)

# Our choice, pending a home in core/limits.py: a 429 storm may hold a request for at most this many
# waits (each <= RATE_LIMIT_MAX_WAIT_S), i.e. ten full Alpaca windows, before the caller hears of it.
RATE_LIMIT_MAX_RETRIES = 10


class Failure(enum.Enum):
    TIMEOUT = "timeout"  # network timeout or transport error: the request may or may not have landed
    SERVER_ERROR = "server_error"  # 5xx
    RATE_LIMITED = "rate_limited"  # 429: not processed, wait for the window


MAX_RETRIES: dict[Failure, int] = {
    Failure.TIMEOUT: TIMEOUT_MAX_RETRIES,
    Failure.SERVER_ERROR: SERVER_ERROR_MAX_RETRIES,
    Failure.RATE_LIMITED: RATE_LIMIT_MAX_RETRIES,
}


def backoff_s(
    attempt: int, *, base_s: float = RETRY_BACKOFF_BASE_S, ceiling_s: float = RETRY_BACKOFF_CEILING_S
) -> float:
    """Exponential: base, 2*base, 4*base ... capped. ``attempt`` counts from 1."""
    assert attempt >= 1, "backoff attempts count from 1"
    return min(ceiling_s, base_s * 2.0 ** (attempt - 1))


@dataclass(slots=True)
class RetryBudget:
    """Counts retries per failure kind for one logical request (all attempts share one budget)."""

    used: dict[Failure, int] = field(default_factory=lambda: dict.fromkeys(Failure, 0))

    def next_delay_s(self, failure: Failure, *, reset_in_s: float | None = None) -> float | None:
        """Seconds to wait before the next attempt, or None when this kind's retries are spent.

        A 429 waits for the venue's window (``reset_in_s`` from X-Ratelimit-Reset) but never less than
        the exponential step, so a wrong or stale header cannot turn into a hot loop.
        """
        self.used[failure] += 1
        attempt = self.used[failure]
        if attempt > MAX_RETRIES[failure]:
            return None
        delay_s = backoff_s(attempt)
        if failure is Failure.RATE_LIMITED:
            delay_s = min(RATE_LIMIT_MAX_WAIT_S, max(delay_s, reset_in_s or 0.0))
        return delay_s

    @property
    def total_retries(self) -> int:
        return sum(self.used.values())
