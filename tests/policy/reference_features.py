"""The feature arithmetic exactly as first written (schema v1, before the hot-path rewrite): the test oracle.

core.features must produce the same bytes for every window; this copy is the straightforward computation the
optimised one is checked against, so it must not be "tidied" into sharing code with core.features.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.features import DEFAULT_SPEC, FeatureError, FeatureSpec, FloatArray, OhlcvWindow, Vector
from core.model import Bar

_EPS = 1e-12
_TRADING_DAYS_PER_YEAR = 252.0


def window_from_bars(bars: Sequence[Bar]) -> OhlcvWindow:
    def column(name: str) -> FloatArray:
        return np.array([float(getattr(bar, name)) for bar in bars], dtype=np.float64)

    return OhlcvWindow(column("open"), column("high"), column("low"), column("close"), column("volume"))


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
    deviations = values - values.sum() / values.shape[0]
    return float(np.sqrt(deviations.dot(deviations) / values.shape[0]))


def _zscore(values: FloatArray, clip: float) -> FloatArray:
    std = _std(values)
    if std < _EPS:
        return np.zeros_like(values)
    scores: FloatArray = np.clip((values - values.sum() / values.shape[0]) / std, -clip, clip)
    return scores


def _ema(values: FloatArray, span_bars: int) -> float:
    alpha = 2.0 / (span_bars + 1.0)
    ema = float(values[0])
    for value in values[1:]:
        ema = alpha * float(value) + (1.0 - alpha) * ema
    return ema


def _rsi(closes: FloatArray, period: int) -> float:
    changes = np.diff(closes[-(period + 1) :])
    gain = float(np.mean(np.maximum(changes, 0.0)))
    loss = float(np.mean(np.maximum(-changes, 0.0)))
    if loss < _EPS:
        rsi = 100.0 if gain >= _EPS else 50.0
    else:
        rsi = 100.0 - 100.0 / (1.0 + gain / loss)
    return (rsi - 50.0) / 50.0


def compute_market_features(bars: OhlcvWindow, spec: FeatureSpec = DEFAULT_SPEC) -> Vector:
    tail = _validated_tail(bars, spec)
    clip = spec.clip
    closes = tail.close
    log_returns = np.diff(np.log(closes))
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
    if not np.isfinite(position_fraction):
        raise FeatureError(f"position_fraction must be finite, got {position_fraction}")
    vector: Vector = np.empty(market.shape[0] + 1, dtype=np.float32)
    vector[:-1] = market
    vector[-1] = np.float32(min(max(position_fraction, -1.0), 1.0))
    return vector


def compute_features(bars: OhlcvWindow, position_fraction: float = 0.0, spec: FeatureSpec = DEFAULT_SPEC) -> Vector:
    return with_position(compute_market_features(bars, spec), position_fraction)
