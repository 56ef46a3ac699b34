"""The venue's request limiter: Alpaca's 200 requests/minute per key, as an exact integer token bucket.

Runs on the venue clock (never wall time), so the same request script meets the same 429s (alpaca-wire.md §6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from core.model import NS_PER_S

WINDOW_NS: Final = 60 * NS_PER_S  # the limit is per minute


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_epoch_s: int  # venue-clock epoch seconds at which the bucket is full again

    def headers(self) -> dict[str, str]:
        return {
            "X-Ratelimit-Limit": str(self.limit),
            "X-Ratelimit-Remaining": str(self.remaining),
            "X-Ratelimit-Reset": str(self.reset_epoch_s),
        }


class _Bucket:
    """Units: one request costs WINDOW_NS units and every nanosecond refills ``limit`` units."""

    __slots__ = ("capacity", "limit", "units", "updated_ns")

    def __init__(self, limit: int, now_ns: int) -> None:
        self.limit = limit
        self.capacity = limit * WINDOW_NS
        self.units = self.capacity
        self.updated_ns = now_ns

    def take(self, now_ns: int) -> RateDecision:
        assert now_ns >= self.updated_ns, "venue clock went backwards"
        self.units = min(self.capacity, self.units + (now_ns - self.updated_ns) * self.limit)
        self.updated_ns = now_ns
        allowed = self.units >= WINDOW_NS
        if allowed:
            self.units -= WINDOW_NS
        full_in_ns = -(-(self.capacity - self.units) // self.limit)
        reset_s = -(-(now_ns + full_in_ns) // NS_PER_S)
        return RateDecision(allowed, self.limit, self.units // WINDOW_NS, reset_s)


class RateLimiter:
    """One bucket per (API key, family); ``limit_per_min`` 0 disables limiting but keeps the headers."""

    def __init__(self, limit_per_min: int, *, nominal_limit: int) -> None:
        assert limit_per_min >= 0
        self._limit = limit_per_min
        self._nominal = nominal_limit
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def take(self, key: str, family: str, now_ns: int) -> RateDecision:
        if self._limit == 0:
            return RateDecision(True, self._nominal, self._nominal, -(-now_ns // NS_PER_S))
        bucket = self._buckets.get((key, family))
        if bucket is None:
            bucket = self._buckets[(key, family)] = _Bucket(self._limit, now_ns)
        return bucket.take(now_ns)
