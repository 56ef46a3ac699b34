"""Spec 3.1 "batch inference: accumulate signals over a 100 ms window": one model call for every symbol whose
features arrived in the window. Pure: the caller passes ``now_s`` from its clock and sleeps until ``deadline_s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from core.limits import BATCH_WINDOW_S

MAX_BATCH_ROWS: Final = 256  # a full batch is released at once, without waiting out the window


@dataclass(frozen=True, slots=True)
class FeatureRequest:
    symbol: str
    features: NDArray[np.float32]  # float32 (n_features,)
    bar_ts_ns: int  # the bar the features end at (lets the actor drop a stale decision)
    requested_at_s: float


@dataclass(frozen=True, slots=True)
class SignalBatch:
    requests: tuple[FeatureRequest, ...]  # first-arrival order of the symbols
    features: NDArray[np.float32]  # float32 (len(requests), n_features), row i belongs to requests[i]
    opened_at_s: float
    released_at_s: float

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(request.symbol for request in self.requests)


class SignalBatcher:
    """Collects at most one request per symbol per window; a newer request for a symbol replaces the older one
    in its slot (the decision should use the freshest bar)."""

    def __init__(self, *, n_features: int, window_s: float = BATCH_WINDOW_S, max_rows: int = MAX_BATCH_ROWS) -> None:
        assert n_features > 0 and window_s > 0 and max_rows > 0
        self.n_features = n_features
        self.window_s = window_s
        self.max_rows = max_rows
        self._pending: dict[str, FeatureRequest] = {}
        self._opened_at_s: float | None = None

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def deadline_s(self) -> float | None:
        """When the open window must be released; None while nothing is pending."""
        return None if self._opened_at_s is None else self._opened_at_s + self.window_s

    def add(
        self, symbol: str, features: NDArray[np.float32], now_s: float, *, bar_ts_ns: int = 0
    ) -> SignalBatch | None:
        """Queue one request. Returns a batch when one is due: the previous window if it had already expired
        (the new request then opens the next window), or this window once it holds ``max_rows`` symbols."""
        if features.shape != (self.n_features,) or features.dtype != np.float32:
            raise ValueError(f"features must be float32 ({self.n_features},), got {features.dtype} {features.shape}")
        released = self.poll(now_s)
        if self._opened_at_s is None:
            self._opened_at_s = now_s
        request = FeatureRequest(symbol, features, bar_ts_ns, now_s)
        self._pending[symbol] = request  # dict keeps the first-arrival slot on replacement
        if released is None and len(self._pending) >= self.max_rows:
            return self._release(now_s)
        return released

    def poll(self, now_s: float) -> SignalBatch | None:
        """Release the window if its deadline has passed."""
        deadline = self.deadline_s
        if deadline is None or now_s < deadline:
            return None
        return self._release(now_s)

    def flush(self, now_s: float) -> SignalBatch | None:
        """Release whatever is pending now (shutdown, halt)."""
        return self._release(now_s) if self._pending else None

    def _release(self, now_s: float) -> SignalBatch:
        assert self._opened_at_s is not None and self._pending
        requests = tuple(self._pending.values())
        batch = SignalBatch(requests, np.stack([r.features for r in requests]), self._opened_at_s, now_s)
        self._pending = {}
        self._opened_at_s = None
        return batch
