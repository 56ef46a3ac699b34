"""The Prometheus registry: Monitor counters and latencies, snapshot gauges, and the text exposition."""

from __future__ import annotations

import math
from decimal import Decimal

from prometheus_client.parser import text_string_to_metric_families

from adapters.dashboard.source import StaticDashboardSource
from adapters.metrics import Metrics
from core.ports import Monitor
from tests.dashboard.conftest import ManualClock


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_is_a_monitor() -> None:
    monitor: Monitor = Metrics()
    monitor.incr("fills")


def test_known_counters_and_labels() -> None:
    m = Metrics()
    m.incr("orders_submitted", 3)
    m.incr("orders_rejected")
    m.incr("fills", 2)
    m.incr("alerts.critical")
    m.incr("stream_messages_dropped.market_data", 7)
    m.incr("no_such_counter")
    m.incr("fills", -5)  # ignored, counters never go down
    got = samples(m)
    assert got[("ttlive_orders_submitted_total", ())] == 3
    assert got[("ttlive_orders_rejected_total", ())] == 1
    assert got[("ttlive_fills_total", ())] == 2
    assert got[("ttlive_alerts_total", (("severity", "critical"),))] == 1
    assert got[("ttlive_stream_messages_dropped_total", (("stream", "market_data"),))] == 7
    assert got[("ttlive_events_total", (("name", "no_such_counter"),))] == 1


def test_latency_goes_to_rest_or_stage_histograms() -> None:
    m = Metrics()
    for value_s in (0.004, 0.2, 0.7):
        m.observe_latency("rest.submit_order", value_s)
    m.observe_latency("inference", 0.00005)
    got = samples(m)
    rest = (("endpoint", "submit_order"),)
    assert got[("ttlive_rest_latency_seconds_count", rest)] == 3
    assert math.isclose(got[("ttlive_rest_latency_seconds_sum", rest)], 0.904)
    assert got[("ttlive_rest_latency_seconds_bucket", (("endpoint", "submit_order"), ("le", "0.5")))] == 2
    assert got[("ttlive_stage_latency_seconds_count", (("stage", "inference"),))] == 1


def test_connection_state_keeps_one_state_per_stream() -> None:
    m = Metrics()
    m.set_connection_state("trade_updates", "CONNECTING")
    m.set_connection_state("trade_updates", "LIVE")
    m.set_connection_state("market_data", "POLLING")
    states = {k[1]: v for k, v in samples(m).items() if k[0] == "ttlive_connection_state"}
    assert states == {
        (("state", "LIVE"), ("stream", "trade_updates")): 1,
        (("state", "POLLING"), ("stream", "market_data")): 1,
    }


def test_apply_snapshot_sets_every_state_gauge(clock: ManualClock) -> None:
    source = StaticDashboardSource(clock=clock)
    source.set_position("NVDA", Decimal(100), Decimal("50"))
    source.set_position("ORCL", Decimal(-10), Decimal("20"))
    source.mark("NVDA", Decimal("51"))
    source.add_open_order("YHOO", Decimal(5), Decimal("30"))
    source.daily_realized_pl = Decimal("-12.5")
    source.set_connection("trade_updates", "LIVE")
    m = Metrics()
    m.apply_snapshot(source.snapshot())
    got = samples(m)
    assert got[("ttlive_position_qty", (("symbol", "NVDA"),))] == 100
    assert got[("ttlive_position_qty", (("symbol", "ORCL"),))] == -10
    assert got[("ttlive_position_market_value_usd", (("symbol", "NVDA"),))] == 5100
    assert got[("ttlive_equity_usd", ())] == 100_000 + 5100 - 200
    assert got[("ttlive_unrealized_pl_usd", ())] == 100
    assert got[("ttlive_daily_realized_pl_usd", ())] == -12.5
    assert got[("ttlive_open_orders", ())] == 1
    assert got[("ttlive_open_orders_value_usd", ())] == 150
    assert got[("ttlive_halted", ())] == 0
    assert got[("ttlive_connection_state", (("state", "LIVE"), ("stream", "trade_updates")))] == 1
    assert ("ttlive_risk_utilisation_percent", (("rule", "position_size"),)) in got


async def test_apply_snapshot_drops_closed_positions_and_tracks_halt(clock: ManualClock) -> None:
    source = StaticDashboardSource(clock=clock)
    source.set_position("NVDA", Decimal(1), Decimal("10"))
    m = Metrics()
    m.apply_snapshot(source.snapshot())
    source.close_position("NVDA", Decimal("12"))
    await source.kill("test", "unit")
    m.apply_snapshot(source.snapshot())
    got = samples(m)
    assert not any(name == "ttlive_position_qty" for name, _ in got)
    assert got[("ttlive_halted", ())] == 1
    assert got[("ttlive_daily_realized_pl_usd", ())] == 2


def test_bad_snapshot_numbers_become_nan() -> None:
    m = Metrics()
    m.apply_snapshot({"unrealized_pl": "not-a-number", "daily_realized_pl": None})
    got = samples(m)
    assert math.isnan(got[("ttlive_unrealized_pl_usd", ())])
    assert math.isnan(got[("ttlive_daily_realized_pl_usd", ())])
