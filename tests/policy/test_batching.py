"""SignalBatcher: the 100 ms accumulation window (spec 3.1) under an injected clock."""

from __future__ import annotations

import numpy as np
import pytest

from adapters.policy.batching import SignalBatcher
from core.limits import BATCH_WINDOW_S


def vec(value: float, n: int = 4) -> np.ndarray:
    return np.full(n, value, dtype=np.float32)


def test_window_collects_symbols_and_releases_once_at_the_deadline() -> None:
    batcher = SignalBatcher(n_features=4)
    assert batcher.deadline_s is None and batcher.poll(5.0) is None
    assert batcher.add("NVDA", vec(1), now_s=10.0) is None
    assert batcher.deadline_s == pytest.approx(10.0 + BATCH_WINDOW_S)
    assert batcher.add("ORCL", vec(2), now_s=10.05) is None
    assert batcher.poll(10.0 + BATCH_WINDOW_S - 1e-9) is None  # not yet
    batch = batcher.poll(10.0 + BATCH_WINDOW_S)
    assert batch is not None
    assert batch.symbols == ("NVDA", "ORCL")
    assert batch.features.shape == (2, 4) and batch.features.dtype == np.float32
    assert np.array_equal(batch.features[:, 0], [1.0, 2.0])
    assert batch.opened_at_s == 10.0 and batch.released_at_s == pytest.approx(10.1)
    assert len(batcher) == 0 and batcher.deadline_s is None and batcher.poll(11.0) is None


def test_newer_request_for_a_symbol_replaces_the_older_in_its_slot() -> None:
    batcher = SignalBatcher(n_features=4)
    batcher.add("NVDA", vec(1), now_s=0.0, bar_ts_ns=1)
    batcher.add("ORCL", vec(2), now_s=0.01)
    batcher.add("NVDA", vec(3), now_s=0.02, bar_ts_ns=2)
    batch = batcher.poll(0.2)
    assert batch is not None and batch.symbols == ("NVDA", "ORCL")
    assert batch.features[0, 0] == 3.0 and batch.requests[0].bar_ts_ns == 2


def test_a_late_request_releases_the_expired_window_and_opens_the_next() -> None:
    batcher = SignalBatcher(n_features=4)
    batcher.add("NVDA", vec(1), now_s=0.0)
    released = batcher.add("ORCL", vec(2), now_s=0.25)  # nobody polled at 0.1
    assert released is not None and released.symbols == ("NVDA",)
    assert batcher.deadline_s == pytest.approx(0.25 + BATCH_WINDOW_S)
    follow = batcher.poll(0.35)
    assert follow is not None and follow.symbols == ("ORCL",)


def test_full_batch_is_released_without_waiting_and_flush_empties() -> None:
    batcher = SignalBatcher(n_features=4, max_rows=3)
    assert batcher.add("A", vec(1), now_s=0.0) is None
    assert batcher.add("B", vec(1), now_s=0.0) is None
    full = batcher.add("C", vec(1), now_s=0.001)
    assert full is not None and full.symbols == ("A", "B", "C")
    batcher.add("D", vec(1), now_s=0.002)
    flushed = batcher.flush(0.003)
    assert flushed is not None and flushed.symbols == ("D",)
    assert batcher.flush(0.004) is None


def test_wrong_shape_or_dtype_is_refused() -> None:
    batcher = SignalBatcher(n_features=4)
    with pytest.raises(ValueError):
        batcher.add("A", np.zeros(5, np.float32), now_s=0.0)
    with pytest.raises(ValueError):
        batcher.add("A", np.zeros(4, np.float64), now_s=0.0)
    assert len(batcher) == 0


async def test_batcher_under_trio_mock_clock(autojump_clock: object) -> None:
    """The way the engine's policy actor uses it: sleep until the deadline on the (virtual) trio clock."""
    import trio

    batcher = SignalBatcher(n_features=4)
    released: list[tuple[float, tuple[str, ...]]] = []
    start = trio.current_time()
    for i, symbol in enumerate(["AAA", "BBB", "CCC"]):
        batcher.add(symbol, vec(i), now_s=trio.current_time())
        await trio.sleep(0.03)
    deadline = batcher.deadline_s
    assert deadline is not None
    await trio.sleep_until(deadline)
    batch = batcher.poll(trio.current_time())
    assert batch is not None
    released.append((batch.released_at_s - start, batch.symbols))
    assert released == [(pytest.approx(BATCH_WINDOW_S), ("AAA", "BBB", "CCC"))]
