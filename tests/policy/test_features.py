"""core.features: shape and names, no look-ahead, window-only normalisation, input validation, cache TTL."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.features import (
    DEFAULT_SPEC,
    FEATURE_SCHEMA_VERSION,
    FeatureCache,
    FeatureError,
    OhlcvWindow,
    compute_features,
    compute_market_features,
    feature_names,
    window_from_bars,
)
from core.limits import FEATURE_CACHE_TTL_S
from core.model import Bar

N = DEFAULT_SPEC.n_features


def random_bars(n: int, seed: int = 0) -> OhlcvWindow:
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
    open_ = close * np.exp(rng.normal(0.0, 0.01, n))
    high = np.maximum(open_, close) * (1.0 + rng.uniform(0.0, 0.02, n))
    low = np.minimum(open_, close) * (1.0 - rng.uniform(0.0, 0.02, n))
    volume = rng.integers(100_000, 5_000_000, n).astype(np.float64)
    return OhlcvWindow(open_, high, low, close, volume)


def test_shape_dtype_and_names() -> None:
    vector = compute_features(random_bars(40), 0.5)
    names = feature_names()
    assert vector.shape == (N,) and vector.dtype == np.float32
    assert len(names) == N == len(set(names)) == 4 * 32 + 6 + 1
    assert names[0] == "ret_z[-31]" and names[31] == "ret_z[0]" and names[-1] == "position_fraction"
    assert vector[-1] == np.float32(0.5)
    assert FEATURE_SCHEMA_VERSION == 1


FIELDS = ("open", "high", "low", "close", "volume")


def head(bars: OhlcvWindow, n: int) -> OhlcvWindow:
    return OhlcvWindow(*(getattr(bars, f)[:n] for f in FIELDS))


def test_only_the_last_lookback_bars_matter() -> None:
    bars = random_bars(200, seed=3)
    tail = bars.tail(DEFAULT_SPEC.lookback_bars)
    assert np.array_equal(compute_features(bars, 0.1), compute_features(tail, 0.1))
    other = random_bars(200, seed=4)
    spliced = OhlcvWindow(*(np.concatenate([getattr(other, f)[:-33], getattr(tail, f)]) for f in FIELDS))
    assert np.array_equal(compute_features(spliced, 0.1), compute_features(bars, 0.1))


def test_a_later_bar_changes_nothing_before_it() -> None:
    """No look-ahead: the vector at bar i is a function of bars <= i only."""
    bars = random_bars(80, seed=5)
    shocked = OhlcvWindow(*(getattr(bars, f).copy() for f in FIELDS))
    shocked.close[51:] *= 3.0
    shocked.high[51:] *= 3.0
    assert np.array_equal(compute_features(head(bars, 51)), compute_features(head(shocked, 51)))
    assert not np.array_equal(compute_features(head(bars, 52)), compute_features(head(shocked, 52)))


def test_normalisation_is_scale_free() -> None:
    """Window-only normalisation: prices x 7 and volume x 1000 give (nearly) the same vector."""
    bars = random_bars(40, seed=6)
    scaled = OhlcvWindow(bars.open * 7, bars.high * 7, bars.low * 7, bars.close * 7, bars.volume * 1000)
    base, other = compute_features(bars), compute_features(scaled)
    vol_annual = feature_names().index("vol_annual")
    volume_cols = [i for i, n in enumerate(feature_names()) if n.startswith("volume_z")]
    mask = np.ones(N, bool)
    mask[volume_cols] = False  # log1p(volume) is not exactly scale-free; checked loosely below
    assert np.allclose(base[mask], other[mask], atol=1e-4)
    assert np.allclose(base[volume_cols], other[volume_cols], atol=0.05)
    assert base[vol_annual] > 0


def test_flat_market_gives_zeros_not_nans() -> None:
    flat = np.full(40, 10.0)
    vector = compute_features(OhlcvWindow(flat, flat, flat, flat, np.zeros(40)), -0.25)
    assert np.all(np.isfinite(vector))
    assert np.count_nonzero(vector[:-1]) == 0
    assert vector[-1] == np.float32(-0.25)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: OhlcvWindow(b.open[:20], b.high[:20], b.low[:20], b.close[:20], b.volume[:20]), "need 33"),
        (lambda b: OhlcvWindow(b.open, b.high, b.low, b.close[:-1], b.volume), "differ in length"),
        (lambda b: OhlcvWindow(b.open, b.high, b.low, np.where(np.arange(40) == 39, np.nan, b.close), b.volume),
         "NaN"),
        (lambda b: OhlcvWindow(b.open, b.high, b.low, np.where(np.arange(40) == 39, 0.0, b.close), b.volume),
         "> 0"),
        (lambda b: OhlcvWindow(b.open, b.low, b.high, b.close, b.volume), "high < low"),
    ],
)
def test_bad_bars_are_refused(mutate: object, message: str) -> None:
    with pytest.raises(FeatureError, match=message):
        compute_features(mutate(random_bars(40)))  # type: ignore[operator]


def test_position_is_clipped_and_must_be_finite() -> None:
    bars = random_bars(40)
    assert compute_features(bars, 3.0)[-1] == 1.0
    assert compute_features(bars, -3.0)[-1] == -1.0
    with pytest.raises(FeatureError):
        compute_features(bars, float("nan"))


def test_decimal_bars_give_the_same_vector_as_float_arrays() -> None:
    """The live path (core.model.Bar with Decimal prices) matches the training path (float arrays)."""
    bars = random_bars(40, seed=9)
    rounded = OhlcvWindow(*(np.round(getattr(bars, f), 4) for f in ("open", "high", "low", "close", "volume")))
    live = [
        Bar(symbol="X", open=Decimal(repr(o)), high=Decimal(repr(h)), low=Decimal(repr(low)),
            close=Decimal(repr(c)), volume=Decimal(repr(v)), ts_ns=i)
        for i, (o, h, low, c, v) in enumerate(zip(rounded.open, rounded.high, rounded.low, rounded.close,
                                                  rounded.volume, strict=True))
    ]
    assert np.array_equal(compute_features(window_from_bars(live), 0.2), compute_features(rounded, 0.2))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), position=st.floats(-2.0, 2.0))
def test_any_valid_window_gives_finite_bounded_values(seed: int, position: float) -> None:
    vector = compute_features(random_bars(33, seed), position)
    assert np.all(np.isfinite(vector))
    assert np.all(np.abs(vector) <= DEFAULT_SPEC.clip + 1e-6)


# --- FeatureCache ---------------------------------------------------------------------------------------------


def test_cache_hits_within_ttl_and_recomputes_after() -> None:
    cache = FeatureCache()
    bars = random_bars(40)
    first = cache.features("NVDA", 100, bars, 0.0, now_s=10.0)
    assert (cache.hits, cache.misses) == (0, 1)
    # A different window under the same key is NOT looked at inside the TTL: that is what caching means.
    cached = cache.features("NVDA", 100, random_bars(40, seed=1), 0.0, now_s=10.0 + FEATURE_CACHE_TTL_S - 1e-6)
    assert (cache.hits, cache.misses) == (1, 1)
    assert np.array_equal(first, cached)
    fresh = cache.features("NVDA", 100, random_bars(40, seed=1), 0.0, now_s=10.0 + FEATURE_CACHE_TTL_S)
    assert (cache.hits, cache.misses) == (1, 2)
    assert not np.array_equal(first, fresh)


def test_cache_key_is_symbol_and_bar_and_position_is_always_fresh() -> None:
    cache = FeatureCache()
    bars = random_bars(40)
    cache.features("NVDA", 100, bars, 0.0, now_s=0.0)
    cache.features("ORCL", 100, bars, 0.0, now_s=0.1)
    cache.features("NVDA", 101, bars, 0.0, now_s=0.2)
    assert cache.misses == 3 and len(cache) == 3
    after_fill = cache.features("NVDA", 100, bars, 0.75, now_s=0.3)
    assert cache.hits == 1 and after_fill[-1] == np.float32(0.75)
    assert np.array_equal(after_fill[:-1], compute_market_features(bars))


def test_cache_is_bounded_and_evicts_oldest_and_expired() -> None:
    cache = FeatureCache(max_entries=2)
    market = compute_market_features(random_bars(40))
    cache.store("A", 1, market, now_s=0.0)
    cache.store("B", 1, market, now_s=0.1)
    cache.store("C", 1, market, now_s=0.2)
    assert len(cache) == 2 and cache.lookup("A", 1, now_s=0.3) is None
    assert cache.lookup("B", 1, now_s=0.3) is not None
    assert cache.evict_expired(now_s=1.15) == 1 and len(cache) == 1
    stored = cache.lookup("C", 1, now_s=1.15)
    assert stored is not None and not stored.flags.writeable
