"""The one feature vector a policy sees, computed identically in TensorTrade training and in live inference.

Pure numpy over a window of OHLCV bars: every normalisation uses only the window itself (no global statistics,
no look-ahead), so a vector depends on nothing but the bars it was given and the current position.
"""

from __future__ import annotations

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
    """Five float64 arrays of equal length, oldest bar first."""

    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __len__(self) -> int:
        return int(self.close.shape[0])

    def tail(self, n_bars: int) -> OhlcvWindow:
        return OhlcvWindow(
            self.open[-n_bars:], self.high[-n_bars:], self.low[-n_bars:], self.close[-n_bars:], self.volume[-n_bars:]
        )


def window_from_bars(bars: Sequence[Bar]) -> OhlcvWindow:
    """Live path: Decimal bars -> float64 arrays (features are statistics, not money; float is fine here)."""

    def column(name: str) -> FloatArray:
        return np.array([float(getattr(bar, name)) for bar in bars], dtype=np.float64)

    return OhlcvWindow(column("open"), column("high"), column("low"), column("close"), column("volume"))


def feature_names(spec: FeatureSpec = DEFAULT_SPEC) -> list[str]:
    """Names in vector order; per-bar names carry the bar's offset from the newest bar ([0] is the newest)."""
    names: list[str] = []
    for feature in PER_BAR_FEATURES:
        names.extend(f"{feature}[{offset}]" for offset in range(-(spec.window_bars - 1), 1))
    names.extend(INDICATOR_FEATURES)
    names.extend(POSITION_FEATURES)
    assert len(names) == spec.n_features
    return names


def _validated_tail(bars: OhlcvWindow, spec: FeatureSpec) -> OhlcvWindow:
    lengths = {len(bars.open), len(bars.high), len(bars.low), len(bars.close), len(bars.volume)}
    if len(lengths) != 1:
        raise FeatureError(f"OHLCV arrays differ in length: {sorted(lengths)}")
    if len(bars) < spec.lookback_bars:
        raise FeatureError(f"need {spec.lookback_bars} bars, got {len(bars)}")
    tail = bars.tail(spec.lookback_bars)
    lowest_price = min(float(tail.open.min()), float(tail.low.min()), float(tail.close.min()))
    total = float(tail.open.sum() + tail.high.sum() + tail.low.sum() + tail.close.sum() + tail.volume.sum())
    if not np.isfinite(total):
        raise FeatureError("bars contain NaN or infinity")
    if not lowest_price > 0.0 or float(tail.volume.min()) < 0.0:
        raise FeatureError("prices must be > 0 and volume >= 0")
    if bool((tail.high < tail.low).any()):
        raise FeatureError("a bar has high < low")
    return tail


def _std(values: FloatArray) -> float:
    """Population standard deviation (ddof 0), without np.std's per-call overhead on short windows."""
    deviations = values - values.sum() / values.shape[0]
    return float(np.sqrt(deviations.dot(deviations) / values.shape[0]))


def _zscore(values: FloatArray, clip: float) -> FloatArray:
    std = _std(values)
    if std < _EPS:
        return np.zeros_like(values)
    scores: FloatArray = np.clip((values - values.sum() / values.shape[0]) / std, -clip, clip)
    return scores


def _ema(values: FloatArray, span_bars: int) -> float:
    """Exponential moving average seeded with the window's first value (so it depends on the window only)."""
    alpha = 2.0 / (span_bars + 1.0)
    ema = float(values[0])
    for value in values[1:]:
        ema = alpha * float(value) + (1.0 - alpha) * ema
    return ema


def _rsi(closes: FloatArray, period: int) -> float:
    """Cutler's RSI (simple means of the last ``period`` changes), scaled to [-1, 1]."""
    changes = np.diff(closes[-(period + 1) :])
    gain = float(np.mean(np.maximum(changes, 0.0)))
    loss = float(np.mean(np.maximum(-changes, 0.0)))
    if loss < _EPS:
        rsi = 100.0 if gain >= _EPS else 50.0
    else:
        rsi = 100.0 - 100.0 / (1.0 + gain / loss)
    return (rsi - 50.0) / 50.0


def compute_market_features(bars: OhlcvWindow, spec: FeatureSpec = DEFAULT_SPEC) -> Vector:
    """Everything but the position inputs: the part that depends only on bars (and so can be cached)."""
    tail = _validated_tail(bars, spec)
    clip = spec.clip
    closes = tail.close
    log_returns = np.diff(np.log(closes))  # window_bars values, oldest first
    sigma = _std(log_returns)
    scale = sigma if sigma >= _EPS else 1.0

    opens, highs, lows, volumes = tail.open[1:], tail.high[1:], tail.low[1:], tail.volume[1:]
    window_closes = closes[1:]
    ret_z = np.clip(log_returns / scale, -clip, clip)
    ranges = np.log(highs / lows)
    mean_range = float(ranges.sum()) / ranges.shape[0]
    range_rel = np.clip(ranges / mean_range - 1.0, -clip, clip) if mean_range >= _EPS else np.zeros_like(ranges)
    spans = highs - lows
    body = np.divide(window_closes - opens, spans, out=np.zeros_like(spans), where=spans > _EPS)
    volume_z = _zscore(np.log1p(volumes), clip)

    ema_gap = np.log(_ema(closes, spec.ema_fast_bars) / _ema(closes, spec.ema_slow_bars)) / scale
    vol_annual = _std(log_returns[-spec.vol_bars :]) * float(np.sqrt(_TRADING_DAYS_PER_YEAR))
    short_vol = _std(log_returns[-spec.short_vol_bars :])
    vol_ratio = short_vol / sigma - 1.0 if sigma >= _EPS else 0.0
    low_w, high_w = float(np.min(lows)), float(np.max(highs))
    close_in_range = 2.0 * (float(closes[-1]) - low_w) / (high_w - low_w) - 1.0 if high_w - low_w > _EPS else 0.0
    momentum_z = float(np.log(closes[-1] / closes[0])) / (scale * float(np.sqrt(spec.window_bars)))
    indicators = np.array(
        [
            _rsi(closes, spec.rsi_period),
            float(np.clip(ema_gap, -clip, clip)),
            min(vol_annual, clip),
            float(np.clip(vol_ratio, -clip, clip)),
            float(np.clip(close_in_range, -1.0, 1.0)),
            float(np.clip(momentum_z, -clip, clip)),
        ],
        dtype=np.float64,
    )
    market: Vector = np.concatenate([ret_z, range_rel, body, volume_z, indicators]).astype(np.float32)
    return market


def with_position(market: Vector, position_fraction: float) -> Vector:
    """Append the position inputs. ``position_fraction``: signed position value / allowed value, in [-1, 1]."""
    if not np.isfinite(position_fraction):
        raise FeatureError(f"position_fraction must be finite, got {position_fraction}")
    vector: Vector = np.empty(market.shape[0] + 1, dtype=np.float32)
    vector[:-1] = market
    vector[-1] = np.float32(min(max(position_fraction, -1.0), 1.0))
    return vector


def compute_features(
    bars: OhlcvWindow, position_fraction: float = 0.0, spec: FeatureSpec = DEFAULT_SPEC
) -> Vector:
    """The policy input: float32 of shape (spec.n_features,), from the last ``spec.lookback_bars`` bars."""
    vector = with_position(compute_market_features(bars, spec), position_fraction)
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
