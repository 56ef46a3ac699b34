"""The one feature vector a policy sees, computed identically in TensorTrade training and in live inference.

Pure numpy over a window of OHLCV bars: every normalisation uses only the window itself (no global statistics,
no look-ahead), so a vector depends on nothing but the bars it was given and the current position.
"""

from __future__ import annotations

import math
import operator
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from core.limits import FEATURE_CACHE_TTL_S
from core.model import Bar

FEATURE_SCHEMA_VERSION: Final = 1  # bump on any change to names, order or arithmetic below
FEATURE_CACHE_MAX_ENTRIES: Final = 4_096  # bound on cached (symbol, bar) vectors; TODO move to core/limits.py

FloatArray = npt.NDArray[np.float64]
Vector = npt.NDArray[np.float32]

PER_BAR_FEATURES: Final = ("ret_z", "range_rel", "body", "volume_z")
INDICATOR_FEATURES: Final = ("rsi", "ema_gap_z", "vol_annual", "vol_ratio", "close_in_range", "momentum_z")
POSITION_FEATURES: Final = ("position_fraction",)
_EPS: Final = 1e-12
_TRADING_DAYS_PER_YEAR: Final = 252.0


class FeatureError(ValueError):
    """The bars cannot make a feature vector (too few, not finite, impossible prices)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureSpec:
    """Shape of the vector. Changing any field changes the schema: bump FEATURE_SCHEMA_VERSION."""

    window_bars: int = 32  # bars whose per-bar features enter the vector
    rsi_period: int = 14
    ema_fast_bars: int = 12
    ema_slow_bars: int = 26
    vol_bars: int = 20  # realised volatility horizon
    short_vol_bars: int = 8  # numerator of the volatility ratio
    clip: float = 5.0  # every z-like value is clipped to [-clip, clip]

    def __post_init__(self) -> None:
        longest = max(self.rsi_period, self.vol_bars, self.short_vol_bars)
        assert self.window_bars >= longest >= 2, "indicators must fit inside the window"
        assert self.ema_slow_bars > self.ema_fast_bars > 1

    @property
    def lookback_bars(self) -> int:
        """Bars needed: the window plus the bar before it (its close anchors the first return)."""
        return self.window_bars + 1

    @property
    def n_features(self) -> int:
        return self.window_bars * len(PER_BAR_FEATURES) + len(INDICATOR_FEATURES) + len(POSITION_FEATURES)


DEFAULT_SPEC: Final = FeatureSpec()


@dataclass(frozen=True, slots=True)
class OhlcvWindow:
    """Five float64 arrays of equal length, oldest bar first.

    ``block``, when set, is the (5, n) array whose rows the five arrays are (``window_from_bars`` and
    ``RollingWindow`` build one), so validation can reduce all five columns in one numpy call.
    """

    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    block: FloatArray | None = None

    def __len__(self) -> int:
        return int(self.close.shape[0])

    def tail(self, n_bars: int) -> OhlcvWindow:
        if self.block is not None:
            return _window_of(self.block[:, -n_bars:])
        return OhlcvWindow(
            self.open[-n_bars:], self.high[-n_bars:], self.low[-n_bars:], self.close[-n_bars:], self.volume[-n_bars:]
        )


_COLUMNS: Final = 5  # open, high, low, close, volume: the rows of a window's block


def _window_of(block: FloatArray) -> OhlcvWindow:
    """The rows of a (5, n) block whose rows are contiguous: five arrays sharing one allocation."""
    assert block.shape[0] == _COLUMNS and (block.shape[1] <= 1 or block.strides[1] == block.itemsize)
    return OhlcvWindow(block[0], block[1], block[2], block[3], block[4], block)


def window_from_bars(bars: Sequence[Bar]) -> OhlcvWindow:
    """Live path: Decimal bars -> float64 arrays (features are statistics, not money; float is fine here).

    Converts every bar of the window; the engine keeps a ``RollingWindow`` per symbol, which converts a bar once.
    """
    block = np.empty((_COLUMNS, len(bars)), dtype=np.float64)
    block[0] = [float(bar.open) for bar in bars]
    block[1] = [float(bar.high) for bar in bars]
    block[2] = [float(bar.low) for bar in bars]
    block[3] = [float(bar.close) for bar in bars]
    block[4] = [float(bar.volume) for bar in bars]
    return _window_of(block)


class RollingWindow:
    """One symbol's newest ``capacity`` bars as float64 rows, each bar converted from Decimal once.

    ``sync(bars)`` equals ``window_from_bars(list(bars)[-capacity:])`` for any sequence of bars: it remembers the
    bar objects it converted and, when the sequence's tail is its own tail plus k newer bars (the engine's
    append-only deque), converts only those k; anything else (a restart, a replaced bar) rebuilds it.
    """

    __slots__ = ("_block", "_end", "_held", "capacity")

    def __init__(self, capacity: int = DEFAULT_SPEC.lookback_bars) -> None:
        assert capacity >= 1
        self.capacity = capacity
        self._block: FloatArray = np.empty((_COLUMNS, 2 * capacity), dtype=np.float64)  # shifts left when full
        self._end = 0  # the live columns are _block[:, _end - len(_held) : _end]
        self._held: deque[Bar] = deque(maxlen=capacity)  # the bars behind the live columns, oldest first

    def __len__(self) -> int:
        return len(self._held)

    def push(self, bar: Bar) -> None:
        if self._end == self._block.shape[1]:
            keep = self.capacity - 1
            self._block[:, :keep] = self._block[:, self._end - keep : self._end]
            self._end = keep
        self._block[:, self._end] = (
            float(bar.open), float(bar.high), float(bar.low), float(bar.close), float(bar.volume)
        )
        self._end += 1
        self._held.append(bar)

    def clear(self) -> None:
        self._end = 0
        self._held.clear()

    def window(self) -> OhlcvWindow:
        """A copy of the live columns (later pushes do not change it)."""
        return _window_of(self._block[:, self._end - len(self._held) : self._end].copy())

    def sync(self, bars: Sequence[Bar]) -> OhlcvWindow:
        """The window over the newest ``capacity`` bars of ``bars``, converting only bars it has not seen."""
        total = len(bars)
        wanted = min(total, self.capacity)
        if isinstance(bars, list):
            tail = bars[total - wanted :]
        else:
            tail = [bars[i] for i in range(total - wanted, total)]  # a deque indexes near its ends in O(1)
        new = self._new_bars(tail)
        if new is None:
            self.clear()
            new = wanted
        for bar in tail[wanted - new :]:
            self.push(bar)
        assert len(self._held) == wanted
        return self.window()

    def _new_bars(self, tail: list[Bar]) -> int | None:
        """How many bars at the end of ``tail`` come after ours, or None when ``tail`` does not extend ours."""
        held = self._held
        if not held:
            return None
        last = held[-1]
        new = next((k for k, bar in enumerate(reversed(tail)) if bar is last), None)
        if new is None:
            return None
        overlap = len(tail) - new  # tail[:overlap] must be our newest `overlap` bars, object for object
        if overlap > len(held) or (overlap < len(held) and len(tail) < self.capacity):
            return None  # ours reach further back than the sequence does: it is not an extension of ours
        ours = list(held)[len(held) - overlap :]
        if not all(map(operator.is_, tail[:overlap], ours)):
            return None
        return new


def feature_names(spec: FeatureSpec = DEFAULT_SPEC) -> list[str]:
    """Names in vector order; per-bar names carry the bar's offset from the newest bar ([0] is the newest)."""
    names: list[str] = []
    for feature in PER_BAR_FEATURES:
        names.extend(f"{feature}[{offset}]" for offset in range(-(spec.window_bars - 1), 1))
    names.extend(INDICATOR_FEATURES)
    names.extend(POSITION_FEATURES)
    assert len(names) == spec.n_features
    return names


# The arithmetic below is schema v1 exactly as first written (tests/policy/reference_features.py keeps that
# version and the tests compare bytes): the same float64 expressions in the same order, minus temporaries and
# numpy's Python-level wrappers (np.clip, np.mean, ndarray.sum), which cost more than the arithmetic here.
_sum = np.add.reduce
_min = np.minimum.reduce
_max = np.maximum.reduce


def _validated_tail(bars: OhlcvWindow, spec: FeatureSpec) -> tuple[OhlcvWindow, FloatArray]:
    """The last ``lookback_bars`` bars, checked, and their high - low spans."""
    n_bars = len(bars.close)
    if not len(bars.open) == len(bars.high) == len(bars.low) == len(bars.volume) == n_bars:
        lengths = {len(bars.open), len(bars.high), len(bars.low), n_bars, len(bars.volume)}
        raise FeatureError(f"OHLCV arrays differ in length: {sorted(lengths)}")
    if n_bars < spec.lookback_bars:
        raise FeatureError(f"need {spec.lookback_bars} bars, got {n_bars}")
    tail = bars if n_bars == spec.lookback_bars else bars.tail(spec.lookback_bars)
    if tail.block is not None:  # one reduction per statistic for all five columns
        o_sum, h_sum, l_sum, c_sum, v_sum = _sum(tail.block, axis=1).tolist()
        if float(_min(tail.block, axis=None)) > 0.0:  # the usual case: every price and volume positive, so all pass
            o_min = l_min = c_min = v_min = 1.0
        else:
            o_min, _, l_min, c_min, v_min = _min(tail.block, axis=1).tolist()
    else:
        o_sum, h_sum, l_sum, c_sum, v_sum = (
            float(_sum(column)) for column in (tail.open, tail.high, tail.low, tail.close, tail.volume)
        )
        o_min, l_min, c_min, v_min = (float(_min(column)) for column in (tail.open, tail.low, tail.close, tail.volume))
    if not math.isfinite(o_sum + h_sum + l_sum + c_sum + v_sum):
        raise FeatureError("bars contain NaN or infinity")
    if not min(o_min, l_min, c_min) > 0.0 or v_min < 0.0:
        raise FeatureError("prices must be > 0 and volume >= 0")
    spans = tail.high - tail.low
    if float(_min(spans)) < 0.0:  # all finite here, so high - low < 0 exactly where high < low
        raise FeatureError("a bar has high < low")
    return tail, spans


def _mean_std(values: FloatArray) -> tuple[float, float]:
    """Mean and population standard deviation (ddof 0), without np.std's per-call overhead."""
    n = values.shape[0]
    mean = float(_sum(values)) / n
    deviations = values - mean
    return mean, math.sqrt(float(deviations.dot(deviations)) / n)


def _std(values: FloatArray) -> float:
    return _mean_std(values)[1]


def _rsi(closes: FloatArray, period: int) -> float:
    """Cutler's RSI (simple means of the last ``period`` changes), scaled to [-1, 1]."""
    recent = closes[-(period + 1) :]
    changes = recent[1:] - recent[:-1]  # np.diff
    moves = np.empty((2, period), dtype=np.float64)
    np.maximum(changes, 0.0, out=moves[0])
    np.negative(changes, out=moves[1])
    np.maximum(moves[1], 0.0, out=moves[1])
    gain_sum, loss_sum = _sum(moves, axis=1).tolist()
    gain, loss = gain_sum / period, loss_sum / period
    if loss < _EPS:
        rsi = 100.0 if gain >= _EPS else 50.0
    else:
        rsi = 100.0 - 100.0 / (1.0 + gain / loss)
    return (rsi - 50.0) / 50.0


def _clip(value: float, low: float, high: float) -> float:
    """``float(np.clip(value, low, high))`` for one value (NaN passes through, as np.clip lets it)."""
    return low if value < low else (high if value > high else value)


_SQRT_TRADING_DAYS: Final = math.sqrt(_TRADING_DAYS_PER_YEAR)


def _market_into(out: Vector, bars: OhlcvWindow, spec: FeatureSpec) -> None:
    """Write the market features into ``out[: n_features - 1]``: the per-bar blocks, then the indicators."""
    tail, all_spans = _validated_tail(bars, spec)
    clip = spec.clip
    n = spec.window_bars
    closes = tail.close
    # float64 scratch in the order ret_z | range_rel | volume_z | body, so one clip covers the first three
    scratch = np.empty(4 * n, dtype=np.float64)
    log_returns, ranges, volumes, body = scratch[:n], scratch[n : 2 * n], scratch[2 * n : 3 * n], scratch[3 * n :]
    log_closes = np.log(closes)
    np.subtract(log_closes[1:], log_closes[:-1], out=log_returns)  # np.diff(np.log(closes))
    _, sigma = _mean_std(log_returns)
    scale = sigma if sigma >= _EPS else 1.0
    vol_annual = _std(log_returns[-spec.vol_bars :]) * _SQRT_TRADING_DAYS
    short_vol = _std(log_returns[-spec.short_vol_bars :])
    log_returns /= scale  # ret_z before clipping

    highs, lows = tail.high[1:], tail.low[1:]
    np.divide(highs, lows, out=ranges)
    np.log(ranges, out=ranges)
    mean_range = float(_sum(ranges)) / n
    if mean_range >= _EPS:
        ranges /= mean_range
        ranges -= 1.0
    else:
        ranges[:] = 0.0
    np.log1p(tail.volume[1:], out=volumes)
    volume_mean, volume_std = _mean_std(volumes)
    if volume_std < _EPS:
        volumes[:] = 0.0
    else:
        volumes -= volume_mean
        volumes /= volume_std
    z_scores = scratch[: 3 * n]
    np.maximum(z_scores, -clip, out=z_scores)  # np.clip(., -clip, clip) is exactly min(max(., -clip), clip)
    np.minimum(z_scores, clip, out=z_scores)
    spans = all_spans[1:]
    if float(_min(spans)) > _EPS:
        np.divide(closes[1:] - tail.open[1:], spans, out=body)
    else:  # a bar without range has no body
        body[:] = 0.0
        np.divide(closes[1:] - tail.open[1:], spans, out=body, where=spans > _EPS)
    out[: 2 * n] = scratch[: 2 * n]
    out[2 * n : 3 * n] = body
    out[3 * n : 4 * n] = volumes

    close_list = closes.tolist()
    fast_alpha, slow_alpha = 2.0 / (spec.ema_fast_bars + 1.0), 2.0 / (spec.ema_slow_bars + 1.0)
    fast_keep, slow_keep = 1.0 - fast_alpha, 1.0 - slow_alpha
    fast = slow = close_list[0]  # EMAs seeded with the window's first close (so they depend on the window only)
    for value in close_list[1:]:
        fast = fast_alpha * value + fast_keep * fast
        slow = slow_alpha * value + slow_keep * slow
    ema_gap = float(np.log(fast / slow)) / scale
    vol_ratio = short_vol / sigma - 1.0 if sigma >= _EPS else 0.0
    low_w, high_w = float(_min(lows)), float(_max(highs))
    last_close = close_list[-1]
    close_in_range = 2.0 * (last_close - low_w) / (high_w - low_w) - 1.0 if high_w - low_w > _EPS else 0.0
    momentum_z = float(np.log(last_close / close_list[0])) / (scale * math.sqrt(n))
    first = 4 * n  # one element at a time: cheaper than numpy converting a tuple
    out[first] = _rsi(closes, spec.rsi_period)
    out[first + 1] = _clip(ema_gap, -clip, clip)
    out[first + 2] = min(vol_annual, clip)
    out[first + 3] = _clip(vol_ratio, -clip, clip)
    out[first + 4] = _clip(close_in_range, -1.0, 1.0)
    out[first + 5] = _clip(momentum_z, -clip, clip)
    assert len(INDICATOR_FEATURES) == 6


def compute_market_features(bars: OhlcvWindow, spec: FeatureSpec = DEFAULT_SPEC) -> Vector:
    """Everything but the position inputs: the part that depends only on bars (and so can be cached)."""
    market: Vector = np.empty(spec.n_features - len(POSITION_FEATURES), dtype=np.float32)
    _market_into(market, bars, spec)
    return market


def _position_input(position_fraction: float) -> float:
    if not math.isfinite(position_fraction):
        raise FeatureError(f"position_fraction must be finite, got {position_fraction}")
    return min(max(position_fraction, -1.0), 1.0)


def with_position(market: Vector, position_fraction: float) -> Vector:
    """Append the position inputs. ``position_fraction``: signed position value / allowed value, in [-1, 1]."""
    position = _position_input(position_fraction)
    vector: Vector = np.empty(market.shape[0] + 1, dtype=np.float32)
    vector[:-1] = market
    vector[-1] = position
    return vector


def compute_features(
    bars: OhlcvWindow, position_fraction: float = 0.0, spec: FeatureSpec = DEFAULT_SPEC
) -> Vector:
    """The policy input: float32 of shape (spec.n_features,), from the last ``spec.lookback_bars`` bars."""
    position = _position_input(position_fraction)
    vector: Vector = np.empty(spec.n_features, dtype=np.float32)
    _market_into(vector, bars, spec)
    vector[-1] = position
    assert vector.shape == (spec.n_features,) and vector.dtype == np.float32
    return vector


@dataclass(slots=True)
class _Entry:
    stored_at_s: float
    market: Vector


class FeatureCache:
    """Spec 3.1 "cache feature computations (TTL 1 s)", keyed by (symbol, last bar ts).

    Only the bar-derived part is cached; the position inputs are appended on every read so a fill is never
    hidden behind a cached vector. ``now_s`` comes from the caller's clock (virtual time in simulation).
    """

    def __init__(
        self,
        *,
        ttl_s: float = FEATURE_CACHE_TTL_S,
        max_entries: int = FEATURE_CACHE_MAX_ENTRIES,
        spec: FeatureSpec = DEFAULT_SPEC,
    ) -> None:
        assert ttl_s > 0 and max_entries > 0
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.spec = spec
        self.hits = 0
        self.misses = 0
        self._entries: dict[tuple[str, int], _Entry] = {}  # insertion order == store order

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, symbol: str, last_bar_ts_ns: int, now_s: float) -> Vector | None:
        key = (symbol, last_bar_ts_ns)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now_s - entry.stored_at_s >= self.ttl_s:
            del self._entries[key]
            return None
        return entry.market

    def store(self, symbol: str, last_bar_ts_ns: int, market: Vector, now_s: float) -> None:
        key = (symbol, last_bar_ts_ns)
        self._entries.pop(key, None)
        frozen = market.copy()
        frozen.setflags(write=False)
        self._entries[key] = _Entry(now_s, frozen)
        while len(self._entries) > self.max_entries:
            del self._entries[next(iter(self._entries))]  # oldest store first

    def features(
        self, symbol: str, last_bar_ts_ns: int, bars: OhlcvWindow, position_fraction: float, now_s: float
    ) -> Vector:
        """The full vector, computing the market part only when no fresh entry exists."""
        market = self.lookup(symbol, last_bar_ts_ns, now_s)
        if market is None:
            self.misses += 1
            market = compute_market_features(bars, self.spec)
            self.store(symbol, last_bar_ts_ns, market, now_s)
        else:
            self.hits += 1
        return with_position(market, position_fraction)

    def evict_expired(self, now_s: float) -> int:
        stale = [key for key, entry in self._entries.items() if now_s - entry.stored_at_s >= self.ttl_s]
        for key in stale:
            del self._entries[key]
        return len(stale)
