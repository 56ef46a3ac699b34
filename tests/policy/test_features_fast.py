"""The hot-path feature code equals the straightforward computation, byte for byte.

core.features computes schema v1 with fewer numpy calls and keeps a RollingWindow per symbol instead of
converting a whole window of Decimal bars per decision; tests/policy/reference_features.py is the arithmetic as
first written. Any difference in a single bit of a single feature is a failure: the model sees float32 inputs and
a flipped last bit can flip an argmax.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.tensortrade.env import load_daily_bars
from core.features import (
    DEFAULT_SPEC,
    FeatureError,
    OhlcvWindow,
    RollingWindow,
    compute_features,
    compute_market_features,
    window_from_bars,
)
from core.model import Bar
from tests.policy import reference_features as reference

FIELDS = ("open", "high", "low", "close", "volume")
LOOKBACK = DEFAULT_SPEC.lookback_bars


def as_bars(rows: list[tuple[float, float, float, float, float]], symbol: str = "X") -> list[Bar]:
    return [
        Bar(symbol=symbol, open=Decimal(repr(o)), high=Decimal(repr(h)), low=Decimal(repr(lo)),
            close=Decimal(repr(c)), volume=Decimal(repr(v)), ts_ns=i)
        for i, (o, h, lo, c, v) in enumerate(rows)
    ]


def same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def outcome(fn: object, *args: object) -> tuple[str, object]:
    """("ok", bytes) or ("error", message): errors must match as exactly as vectors do."""
    try:
        vector = fn(*args)  # type: ignore[operator]
    except FeatureError as exc:
        return "error", str(exc)
    return "ok", vector.tobytes()


# A bar: a close path step, then open/high/low around it; sometimes degenerate (no range, no volume, flat).
price_steps = st.floats(-0.08, 0.08, allow_nan=False)
bar_shape = st.tuples(
    price_steps,  # log return of the close
    st.floats(-0.03, 0.03, allow_nan=False),  # open vs close
    st.one_of(st.just(0.0), st.floats(0.0, 0.03)),  # wick up
    st.one_of(st.just(0.0), st.floats(0.0, 0.03)),  # wick down
    st.one_of(st.just(0.0), st.floats(0.0, 5e6), st.integers(0, 10**9).map(float)),
)


def rows_from(shapes: list[tuple[float, float, float, float, float]], start: float, decimals: int) -> list[tuple]:
    rows = []
    close = start
    for step, gap, up, down, volume in shapes:
        close = round(close * float(np.exp(step)), decimals) or 10.0**-decimals
        open_ = round(close * float(np.exp(gap)), decimals) or 10.0**-decimals
        high = round(max(open_, close) * (1.0 + up), decimals)
        low = round(min(open_, close) * (1.0 - down), decimals) or 10.0**-decimals
        rows.append((open_, high, max(low, 10.0**-decimals), close, volume))
    return rows


@settings(max_examples=300, deadline=None)
@given(
    shapes=st.lists(bar_shape, min_size=LOOKBACK - 2, max_size=LOOKBACK + 12),
    start=st.floats(0.5, 5_000.0),
    decimals=st.sampled_from([2, 4]),
    position=st.floats(-3.0, 3.0),
    flat=st.booleans(),
)
def test_vector_equals_the_reference_byte_for_byte(shapes: list, start: float, decimals: int, position: float,
                                                   flat: bool) -> None:
    if flat:  # a market that does not move at all for the whole window: every guard against /0 at once
        shapes = [(0.0, 0.0, 0.0, 0.0, v) for *_, v in shapes]
    rows = rows_from(shapes, start, decimals)
    bars = as_bars(rows)
    columns = [np.array(c, dtype=np.float64) for c in zip(*rows, strict=True)] if rows else [np.empty(0)] * 5
    separate = OhlcvWindow(*columns)  # the training path: five arrays, no shared block
    expected = outcome(reference.compute_features, reference.window_from_bars(bars), position)
    assert outcome(compute_features, window_from_bars(bars), position) == expected
    assert outcome(compute_features, separate, position) == expected
    rolling = RollingWindow()
    assert outcome(compute_features, rolling.sync(bars), position) == expected
    if expected[0] == "ok":
        assert same_bytes(compute_market_features(separate), reference.compute_market_features(separate))


@pytest.mark.parametrize("symbol", ["NVDA", "ORCL"])
def test_every_daily_window_of_the_training_data_equals_the_reference(symbol: str) -> None:
    """The data the shipped model was trained on, every window, through both the training and the live path."""
    data = load_daily_bars(symbol)
    live = RollingWindow()
    history: deque[Bar] = deque(maxlen=64)
    for i in range(LOOKBACK - 1, len(data)):
        window = data.window_ending_at(i)
        expected = reference.compute_features(window, 0.5)
        assert same_bytes(compute_features(window, 0.5), expected), (symbol, i)
        rows = list(zip(*(getattr(window, f)[-1:] for f in FIELDS), strict=True))
        history.append(as_bars([tuple(float(x) for x in rows[0])])[0])  # one new Decimal bar per step
        if len(history) >= LOOKBACK:
            synced = live.sync(history)
            assert same_bytes(synced.close, reference.window_from_bars(list(history)[-LOOKBACK:]).close)
            assert same_bytes(compute_features(synced, 0.5),
                              reference.compute_features(reference.window_from_bars(list(history)[-LOOKBACK:]), 0.5))


def test_bad_windows_fail_with_the_reference_message() -> None:
    rows = rows_from([(0.01, 0.0, 0.01, 0.01, 100.0)] * 40, 10.0, 2)
    cases = {
        "short": rows[:20],
        "nan": [*rows[:-1], (float("nan"),) * 5],
        "inf volume": [*rows[:-1], (*rows[-1][:4], float("inf"))],
        "zero close": [*rows[:-1], (*rows[-1][:3], 0.0, 1.0)],
        "negative volume": [*rows[:-1], (*rows[-1][:4], -1.0)],
        "high < low": [*rows[:-1], (10.0, 9.0, 11.0, 10.0, 1.0)],
        "overflowing sum": [(r[0], r[1], r[2], r[3], 1.7e308) for r in rows],
    }
    for name, case in cases.items():
        columns = [np.array(c, dtype=np.float64) for c in zip(*case, strict=True)]
        separate = OhlcvWindow(*columns)
        block = OhlcvWindow(*np.stack(columns))
        block = OhlcvWindow(*(block.open, block.high, block.low, block.close, block.volume), np.stack(columns))
        expected = outcome(reference.compute_features, separate, 0.0)
        assert expected[0] == "error", name
        assert outcome(compute_features, separate, 0.0) == expected, name
        assert outcome(compute_features, block, 0.0) == expected, name
    ragged = OhlcvWindow(*(np.ones(40) for _ in range(4)), np.ones(39))
    assert outcome(compute_features, ragged, 0.0) == outcome(reference.compute_features, ragged, 0.0)


def test_inputs_are_not_written() -> None:
    rows = rows_from([(0.01 * (-1) ** i, 0.002, 0.01, 0.01, 1e5 + i) for i in range(40)], 50.0, 2)
    window = window_from_bars(as_bars(rows))
    before = [getattr(window, f).copy() for f in FIELDS]
    compute_features(window, 0.1)
    assert all(same_bytes(getattr(window, f), b) for f, b in zip(FIELDS, before, strict=True))


def test_row_reductions_equal_one_dimensional_reductions() -> None:
    """Validation reduces a window's (5, n) block along rows; numpy must give the 1-D answers bit for bit."""
    rng = np.random.default_rng(11)
    for n in (33, 40, 64):
        block = rng.lognormal(3.0, 2.0, size=(5, 2 * n))[:, -n:]
        sums, mins = np.add.reduce(block, axis=1), np.minimum.reduce(block, axis=1)
        for row in range(5):
            assert sums[row].tobytes() == block[row].sum().tobytes()
            assert mins[row] == block[row].min()


# --- RollingWindow: any sequence of bars, the same floats as converting the tail afresh ----------------------


def make_bar(i: int, salt: int = 0) -> Bar:
    price = Decimal(100 + (i * 7 + salt) % 13) + Decimal(i % 100) / 100
    return Bar(symbol="X", open=price, high=price + 1, low=price - 1, close=price + Decimal("0.5"),
               volume=Decimal(1000 + i), ts_ns=i)


operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 40)),
        st.tuples(st.just("replace_last"), st.integers(0, 5)),
        st.tuples(st.just("replace_middle"), st.integers(1, 40)),
        st.tuples(st.just("restart"), st.integers(0, 60)),
        st.tuples(st.just("drop_left"), st.integers(1, 10)),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(ops=operations, capacity=st.sampled_from([1, 2, 5, LOOKBACK]), maxlen=st.sampled_from([None, 3, 40, 512]))
def test_rolling_window_equals_converting_the_tail(ops: list[tuple[str, int]], capacity: int,
                                                   maxlen: int | None) -> None:
    bars: deque[Bar] = deque(maxlen=maxlen)
    rolling = RollingWindow(capacity)
    made = 0
    for op, arg in ops:
        if op == "append":
            for _ in range(arg):
                bars.append(make_bar(made))
                made += 1
        elif op == "replace_last" and bars:
            bars[-1] = make_bar(made, salt=arg + 1)  # a corrected bar: a new object at the same place
            made += 1
        elif op == "replace_middle" and bars:
            bars[-min(arg, len(bars))] = make_bar(made, salt=3)
            made += 1
        elif op == "restart":  # the engine restarted: a new deque, maybe the same bars, maybe copies
            bars = deque((make_bar(made + i) for i in range(arg)), maxlen=maxlen)
            made += arg
        elif op == "drop_left" and bars:
            for _ in range(min(arg, len(bars))):
                bars.popleft()
        got = rolling.sync(bars)
        want = reference.window_from_bars(list(bars)[-capacity:])
        assert len(got) == len(want) == len(rolling)
        for f in FIELDS:
            assert same_bytes(getattr(got, f), getattr(want, f)), (op, f)
        assert got.block is not None and same_bytes(got.block, np.stack([getattr(want, f) for f in FIELDS]))


def test_rolling_window_converts_only_new_bars() -> None:
    converted: list[int] = []

    class CountingBar(Bar, frozen=True):
        def __getattribute__(self, name: str) -> object:
            if name == "close":
                converted.append(object.__getattribute__(self, "ts_ns"))
            return object.__getattribute__(self, name)

    history = [CountingBar(symbol="X", open=Decimal(10), high=Decimal(11), low=Decimal(9), close=Decimal(10),
                           volume=Decimal(5), ts_ns=i) for i in range(LOOKBACK + 3)]
    rolling = RollingWindow()
    rolling.sync(history[:LOOKBACK])
    assert len(converted) == LOOKBACK
    converted.clear()
    rolling.sync(history[: LOOKBACK + 1])
    rolling.sync(history[: LOOKBACK + 3])
    assert converted == [LOOKBACK, LOOKBACK + 1, LOOKBACK + 2]
    snapshot = rolling.window()
    rolling.push(history[0])
    assert snapshot.close[-1] == 10.0 and len(snapshot) == LOOKBACK  # a window is a copy, not a view
