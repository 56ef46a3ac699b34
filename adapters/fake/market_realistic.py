"""Realistic ticks inside the bars of a fake market: quotes and trades at a seeded, bursty, U-shaped cadence.

One symbol-session at a time, vectorised, from its precomputed ``DayPath`` (the bars stay what they are):

- Trades arrive as a cluster process (a Hawkes-like self-exciting flow: bursts of ``CLUSTER_MEAN_TRADES`` prints
  on average, ``BURST_GAP_MS`` apart) whose rate follows the bar's volume (``volume / AVG_TRADE_SIZE_SHARES``
  prints per bar, at most ``MAX_PRINTS_PER_S`` a second: denser near the open and close, as the U-shaped volume is),
  plus one "heartbeat" print per ``TRADE_SLOT_S`` slot (in the slot's middle half), so a subscriber never waits
  more than 1.5 slots for a print.
  Inside each bar the prints reproduce the bar exactly: the first at its open, the last at its close, one at its
  high and one at its low, sizes summing to its volume; the bar's ``n`` and ``vw`` are those of its prints.
- Quotes: one at the session open, one shortly after about half the prints (centred on the print), quote-only
  updates at half the print rate, and a heartbeat per ``QUOTE_SLOT_S`` slot. Each is centred on the last print
  (the bar's open before the session's first print), its spread the bar's modelled spread widened by a seeded
  exponential factor, its sizes the bar's touch sizes with log-normal jitter (whole round lots).

``rate`` scales every arrival rate (and stretches the heartbeat slots): the in-process simulation thins ticks with
it. Same (seed, symbol, date, bars) => the same arrays, so a tick day can be dropped from a cache and rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from core.model import NS_PER_S

if TYPE_CHECKING:
    from adapters.fake.market_paths import DayPath

TICK_MODES = ("bar", "realistic")  # [market] ticks: one quote/trade per bar (in-process default) | realistic
TICK_RATE_RANGE = (0.01, 10.0)  # [market] tick_rate: scales every arrival rate of realistic ticks
AVG_TRADE_SIZE_SHARES = 200  # a bar's print count = volume / this (bar mode; realistic: times rate) ...
MAX_PRINTS_PER_S = 5.0  # ... at most this many a second on average (heavier days print bigger, not more)
CLUSTER_MEAN_TRADES = 2.5  # mean prints per burst (branching ratio 0.6)
BURST_GAP_MS = 120.0  # mean gap between prints inside a burst
TRADE_SLOT_S = 1.0  # heartbeat: at least one print per slot while the bar trades (gaps <= 1.5 slots)
QUOTE_SLOT_S = 0.5  # heartbeat: at least one quote update per slot (gaps <= 1.5 slots)
QUOTE_AFTER_TRADE_P = 0.5  # share of prints followed by a quote update
QUOTE_AFTER_TRADE_US = 40  # ... this many microseconds later
QUOTE_ONLY_PER_TRADE = 0.5  # quote-only updates per print
SPREAD_WIDEN_MEAN = 0.3  # spread = bar spread * (1 + Exp(mean)), whole cents
PRICE_NOISE_OF_RANGE = 0.25  # interior prints: the open->close line plus N(0, this * (high - low))
ROUND_LOT = 100  # shares; touch sizes (and bar-mode trade sizes) are whole round lots
US = 1_000  # ns per microsecond


@dataclass(frozen=True, slots=True)
class TickDay:
    """One symbol-session's ticks; times strictly increasing per kind, prices in cents."""

    trade_ns: NDArray[np.int64]
    trade_px: NDArray[np.int64]
    trade_size: NDArray[np.int64]
    quote_ns: NDArray[np.int64]
    bid: NDArray[np.int64]
    ask: NDArray[np.int64]
    bid_size: NDArray[np.int64]
    ask_size: NDArray[np.int64]
    bar_count: NDArray[np.int64]  # prints per bar
    bar_vwap: NDArray[np.int64]  # per bar, 1/10000 dollars (the DayPath's value where the bar has no prints)


def _strictly_increasing(t: NDArray[np.int64]) -> NDArray[np.int64]:
    """Sorted stamps made unique by pushing repeats forward a nanosecond at a time."""
    if len(t) == 0:
        return t
    idx = np.arange(len(t), dtype=np.int64)
    out: NDArray[np.int64] = np.maximum.accumulate(t - idx) + idx
    return out


def _slot_times(open_ns: int, close_ns: int, slot_ns: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """One instant per slot of [open, close), uniform in the slot's middle half, whole microseconds."""
    starts = np.arange(open_ns, close_ns, slot_ns, dtype=np.int64)
    u = rng.uniform(0.25, 0.75, size=len(starts))
    t = starts + (u * slot_ns).astype(np.int64) // US * US
    out: NDArray[np.int64] = t[t < close_ns]
    return out


def _burst_offsets(lam: NDArray[Any], iv_us: int, rng: np.random.Generator) -> tuple[NDArray[Any], NDArray[Any]]:
    """(bar index, microsecond offset in the bar) of the clustered prints, lam expected prints per bar."""
    clusters = rng.poisson(lam / CLUSTER_MEAN_TRADES)
    bars = np.repeat(np.arange(len(lam)), clusters)
    if len(bars) == 0:
        return bars, bars
    sizes = rng.geometric(1.0 / CLUSTER_MEAN_TRADES, size=len(bars))
    starts = rng.integers(0, iv_us, size=len(bars))
    total = int(sizes.sum())
    gaps = rng.exponential(BURST_GAP_MS * 1_000.0, size=total)
    first = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    gaps[first] = 0.0
    csum = np.cumsum(gaps)
    within = csum - np.repeat(csum[first], sizes)
    offsets = (np.repeat(starts, sizes) + within.astype(np.int64)) % iv_us  # a burst wraps inside its bar
    return np.repeat(bars, sizes), offsets


def generate(day: DayPath, rng: np.random.Generator, rate: float) -> TickDay:
    """The ticks of one symbol-session (see the module docstring)."""
    n, iv, open_ns = day.n, day.interval_ns, day.open_ns
    iv_us = max(1, iv // US)
    o, h, lo, c = day.bar_open, day.bar_high, day.bar_low, day.bar_close
    vol = day.bar_volume
    active = day.has_bar & (vol > 0)
    starts = open_ns + np.arange(n, dtype=np.int64) * iv

    # --- print times: bursts + heartbeat, then a top-up so every trading bar can print o, h, l and c ---
    lam = np.where(active, np.minimum(vol / AVG_TRADE_SIZE_SHARES, MAX_PRINTS_PER_S * iv / NS_PER_S) * rate, 0.0)
    b_burst, off = _burst_offsets(lam, iv_us, rng)
    t_burst = starts[b_burst] + off.astype(np.int64) * US
    t_beat = _slot_times(open_ns, day.close_ns, max(US, round(TRADE_SLOT_S / rate * NS_PER_S)), rng)
    t_beat = t_beat[active[(t_beat - open_ns) // iv]]
    times = np.concatenate((t_burst, t_beat))
    bar_of = (times - open_ns) // iv
    need = np.where(active, np.where(h > lo, 4, 1), 0)
    need = np.minimum(need, vol)  # a bar cannot hold more prints than shares
    deficit = np.maximum(0, need - np.bincount(bar_of, minlength=n))
    b_top = np.repeat(np.arange(n), deficit)
    t_top = starts[b_top] + rng.integers(0, iv_us, size=len(b_top)) * US
    times = np.sort(np.concatenate((times, t_top)))
    bar_of = (times - open_ns) // iv
    # at most one print per share of the bar (tiny bars): keep the earliest
    first_of_bar = np.searchsorted(bar_of, np.arange(n), side="left")
    rank = np.arange(len(times)) - first_of_bar[bar_of]
    keep = rank < vol[bar_of]
    times, bar_of, rank = times[keep], bar_of[keep], rank[keep]
    assert len(times) < 1_000_000, "trade ids are date * 10**6 + the print's index in its session"
    times = _strictly_increasing(times)  # repeats move < 1 us: never across a bar boundary
    count = np.bincount(bar_of, minlength=n).astype(np.int64)
    m = count[bar_of]

    # --- prices: first = open, last = close, one print at the high and one at the low ---------------
    bo, bh, bl, bc = o[bar_of], h[bar_of], lo[bar_of], c[bar_of]
    frac = np.where(m > 1, rank / np.maximum(m - 1, 1), 0.0)
    noise = rng.standard_normal(len(times)) * (bh - bl) * PRICE_NOISE_OF_RANGE
    px = np.clip(np.round(bo + (bc - bo) * frac + noise), bl, bh).astype(np.int64)
    u = rng.random((2, n))
    inner = np.maximum(count - 2, 1)
    ih = 1 + np.floor(u[0] * inner).astype(np.int64)
    il = 1 + np.floor(u[1] * np.maximum(count - 3, 1)).astype(np.int64)
    il = np.where(il >= ih, il + 1, il)
    three = count == 3  # room for one extreme only: the one the open and close do not already show
    missing_high = (h != o) & (h != c)
    px = np.where((m >= 4) & (rank == ih[bar_of]), bh, px)
    px = np.where((m >= 4) & (rank == il[bar_of]), bl, px)
    px = np.where(three[bar_of] & (rank == 1), np.where(missing_high[bar_of], bh, bl), px)
    px = np.where(rank == 0, bo, px)
    px = np.where(rank == m - 1, bc, px)

    # --- sizes: log-normal shares of the bar's volume, whole shares, exactly the bar's volume ---------
    w = rng.lognormal(0.0, 0.8, size=len(times))
    wsum = np.bincount(bar_of, weights=w, minlength=n)
    spare = (vol - count)[bar_of]
    size = 1 + np.floor(w / wsum[bar_of] * spare).astype(np.int64)
    short = vol - np.bincount(bar_of, weights=size, minlength=n).astype(np.int64)
    size = np.where(rank == m - 1, size + np.where(count > 0, short, 0)[bar_of], size)
    notional = np.bincount(bar_of, weights=px * size, minlength=n)  # exact: integers below 2**53
    with np.errstate(divide="ignore", invalid="ignore"):
        vwap = np.where(count > 0, np.round(notional * 100.0 / np.maximum(vol, 1)), day.bar_vwap).astype(np.int64)

    # --- quotes ---------------------------------------------------------------------------------------
    after = times[rng.random(len(times)) < QUOTE_AFTER_TRADE_P] + QUOTE_AFTER_TRADE_US * US
    q_lam = lam * QUOTE_ONLY_PER_TRADE
    b_q = np.repeat(np.arange(n), rng.poisson(q_lam))
    t_q = starts[b_q] + rng.integers(0, iv_us, size=len(b_q)) * US
    q_beat = _slot_times(open_ns, day.close_ns, max(US, round(QUOTE_SLOT_S / rate * NS_PER_S)), rng)
    q_times = np.sort(np.concatenate(([open_ns], after, t_q, q_beat)).astype(np.int64))
    q_times = _strictly_increasing(q_times)
    q_times = q_times[q_times < day.close_ns]
    q_bar = (q_times - open_ns) // iv
    last = np.searchsorted(times, q_times, side="right") - 1
    mid = np.where(last >= 0, px[np.maximum(last, 0)], o[q_bar])
    base = np.maximum(1, day.ask - day.bid)[q_bar]
    spread = np.maximum(1, np.round(base * (1.0 + rng.exponential(SPREAD_WIDEN_MEAN, size=len(q_times))))).astype(
        np.int64
    )
    below = spread // 2 + (spread % 2) * (rng.random(len(q_times)) < 0.5)
    bid = np.maximum(1, mid - below)
    ask = np.maximum(bid + spread, mid)
    jitter = rng.lognormal(0.0, 0.5, size=(2, len(q_times)))
    bid_size = np.maximum(1, np.round(day.bid_size[q_bar] * jitter[0] / ROUND_LOT)).astype(np.int64) * ROUND_LOT
    ask_size = np.maximum(1, np.round(day.ask_size[q_bar] * jitter[1] / ROUND_LOT)).astype(np.int64) * ROUND_LOT
    return TickDay(
        trade_ns=times,
        trade_px=px,
        trade_size=size,
        quote_ns=q_times,
        bid=bid.astype(np.int64),
        ask=ask.astype(np.int64),
        bid_size=bid_size,
        ask_size=ask_size,
        bar_count=count,
        bar_vwap=vwap,
    )
