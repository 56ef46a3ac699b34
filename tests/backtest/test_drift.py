"""The drift arithmetic of `ttlive backtest` on hand-computed examples: next-bar references, slippage, VWAP,
percentiles, fill rates and the two equity curves."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.model import Bar
from tools.backtest import (
    FillRow,
    OrderRow,
    cent_bps,
    distribution,
    drift_for,
    equity_curves,
    fill_rates,
    next_bar_index,
    percentile,
    typical_vwap,
)

NS = 1_000_000_000
T0 = 1_401_716_160 * NS  # 2014-06-02 13:36:00 UTC
D = Decimal


def bar(i: int, o: str, h: str, low: str, c: str, v: int = 1_000) -> Bar:
    return Bar(symbol="NVDA", open=D(o), high=D(h), low=D(low), close=D(c), volume=D(v),
               ts_ns=T0 + i * 60 * NS)


def fill(ts_ns: int, side: str, qty: int, price: str, mid: str | None = "19.02", kind: str = "market/day",
         coid: str = "tt-a-0") -> FillRow:
    return FillRow(ts_ns=ts_ns, symbol="NVDA", side=side, qty=qty, price=D(price),
                   decision_mid=D(mid) if mid else None, slippage_vs_mid_bps=None, client_order_id=coid,
                   signal_id="a", order_kind=kind)


BARS = [bar(0, "19.00", "19.04", "18.99", "19.02"), bar(1, "19.01", "19.03", "19.00", "19.02", 3_000),
        bar(2, "19.05", "19.08", "19.04", "19.07")]


def test_the_reference_is_the_first_bar_starting_after_the_fill() -> None:
    assert next_bar_index(BARS, T0) == 0  # a fill exactly at a bar start: that bar is "next"
    assert next_bar_index(BARS, T0 + 100_000_000) == 1  # 100 ms into bar 0: its open is history
    assert next_bar_index(BARS, T0 + 10 * 60 * NS) == 3
    drift = drift_for(fill(T0 + 100_000_000, "buy", 262, "19.03"), BARS)
    assert drift.reference_ts_ns == T0 + 60 * NS
    assert drift.next_open == D("19.01")
    # Buy at 19.03 against 19.01: (19.03 - 19.01) / 19.01 x 10^4 = 10.5208 bps worse.
    assert drift.slippage_vs_next_open_bps == 10.5208
    # VWAP of bar 1 = its typical price (19.03 + 19.00 + 19.02) / 3 = 19.0167 (4 dp);
    # (19.03 - 19.0167) / 19.0167 x 10^4 = 6.99385.. -> 6.9939 bps.
    assert drift.next_vwap == D("19.0167")
    assert drift.slippage_vs_next_vwap_bps == 6.9939


def test_a_sell_below_the_reference_is_positive_slippage() -> None:
    drift = drift_for(fill(T0 + 61 * NS, "sell", 10, "19.00"), BARS)
    assert drift.next_open == D("19.05")
    by_hand = (D("19.05") - D("19.00")) / D("19.05") * 10_000  # 26.2467 bps
    assert drift.slippage_vs_next_open_bps == pytest.approx(float(by_hand), abs=1e-4) == 26.2467


def test_no_bar_after_the_fill_means_no_reference() -> None:
    drift = drift_for(fill(T0 + 3 * 60 * NS, "buy", 1, "19.10"), BARS)
    assert drift.next_open is None and drift.slippage_vs_next_open_bps is None


def test_typical_vwap_weights_by_volume() -> None:
    bars = [bar(0, "10", "10.3", "9.9", "10.2", 100), bar(1, "10.2", "10.5", "10.1", "10.4", 300)]
    # (10.1333.. x 100 + 10.3333.. x 300) / 400 = 10.2833..
    assert typical_vwap(bars) == pytest.approx(D("10.28333333"), abs=D("1e-8"))
    assert typical_vwap([bar(0, "1", "3", "1", "2", 0)]) == 2  # no volume: plain typical price
    assert typical_vwap([]) is None


def test_distribution_percentiles_and_the_assumed_band() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.05) == pytest.approx(1.2)
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.95) == pytest.approx(4.8)
    dist = distribution([5.0, None, 1.0, 2.0, 3.0, 4.0])
    assert (dist.count, dist.median, dist.mean, dist.min, dist.max) == (5, 3.0, 3.0, 1.0, 5.0)
    assert dist.within_assumed_band == 0.4  # 1.0 and 2.0 lie in 0.5..2 bps
    assert distribution([None]).count == 0


def test_one_cent_in_bps_of_the_median_fill_price() -> None:
    fills = [fill(T0, "buy", 1, "19.00"), fill(T0, "buy", 1, "20.00"), fill(T0, "sell", 1, "50.00")]
    assert cent_bps(fills) == 5.0  # 0.01 / 20.00 x 10^4
    assert cent_bps([]) is None


def test_fill_rate_counts_orders_with_any_execution_per_order_kind() -> None:
    orders = [OrderRow("tt-a-0", "NVDA", "buy", 10, "market/day"),
              OrderRow("tt-b-0", "NVDA", "buy", 5, "market/day"),
              OrderRow("tt-c-0", "NVDA", "sell", 5, "limit/gtc")]
    fills = [fill(T0, "buy", 4, "19.0", coid="tt-a-0"), fill(T0, "buy", 6, "19.0", coid="tt-a-0")]
    rates = fill_rates(orders, fills)
    assert [(r.order_kind, r.orders, r.filled, r.fill_rate) for r in rates] == [
        ("limit/gtc", 1, 0, 0.0), ("market/day", 2, 1, 0.5)]


def test_equity_curves_book_the_same_fills_at_two_prices() -> None:
    bars = {"NVDA": [bar(0, "10.00", "10.3", "9.9", "10.20"), bar(1, "10.30", "10.6", "10.2", "10.50")]}
    buy = drift_for(fill(T0 + 30 * NS, "buy", 10, "10.10"), bars["NVDA"])  # next open 10.30
    curve = equity_curves([buy], bars, D(1000), 60 * NS)
    assert [p.ts_ns for p in curve] == [T0 + 60 * NS, T0 + 120 * NS]
    # Marked at 10.20 then 10.50: simulated 1000 - 101 + 102, reference 1000 - 103 + 102.
    assert [(p.simulated_usd, p.reference_usd) for p in curve] == [(D("1001.00"), D("999.00")),
                                                                   (D("1004.00"), D("1002.00"))]
