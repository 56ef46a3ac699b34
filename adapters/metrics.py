"""Prometheus metrics for the engine: one registry of gauges, counters and histograms behind ``/metrics``.

The engine counts events through ``core.ports.Monitor`` (``incr``, ``observe_latency``); the state gauges
(positions, P&L, halt, connections) are refreshed from the dashboard snapshot at scrape time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger("ttlive.metrics")

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
# REST round trips: 5 ms .. 10 s; the spec 4.3 alert line (500 ms) sits on a bucket edge.
REST_LATENCY_BUCKETS_S: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Pipeline stages (spec 3.1 budgets 5..150 ms): 100 us .. 1 s.
STAGE_LATENCY_BUCKETS_S: Final = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.5, 1.0)
REST_PREFIX: Final = "rest."


class Metrics:
    """Owns a ``CollectorRegistry``; implements ``core.ports.Monitor``.

    ``incr(name)`` names a counter, optionally with one label after a dot: ``orders_submitted``,
    ``orders_rejected``, ``fills``, ``alerts_suppressed``, ``alerts.<severity>``,
    ``stream_messages_dropped.<stream>``, ``alert_delivery_failures.<sink>``. Unknown names are counted in
    ``ttlive_events_total{name=...}`` instead of raising into the engine.
    ``observe_latency("rest.<endpoint>", s)`` feeds the REST histogram; any other name is a pipeline stage.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)  # process_cpu_seconds_total, resident memory, open fds (Linux)
        # state gauges (from the snapshot)
        self.position_qty = Gauge("ttlive_position_qty", "Position quantity (negative = short)", ["symbol"],
                                  registry=r)
        self.position_value = Gauge("ttlive_position_market_value_usd", "Position market value", ["symbol"],
                                    registry=r)
        self.equity = Gauge("ttlive_equity_usd", "Account equity (last point of the equity curve)", registry=r)
        self.unrealized_pl = Gauge("ttlive_unrealized_pl_usd", "Unrealized P&L over all positions", registry=r)
        self.daily_realized_pl = Gauge("ttlive_daily_realized_pl_usd", "Realized P&L today", registry=r)
        self.open_orders = Gauge("ttlive_open_orders", "Open orders at the broker", registry=r)
        self.open_orders_value = Gauge("ttlive_open_orders_value_usd", "Notional value of open orders",
                                       registry=r)
        self.risk_utilisation = Gauge("ttlive_risk_utilisation_percent", "Share of a risk limit consumed",
                                      ["rule"], registry=r)
        self.halted = Gauge("ttlive_halted", "1 while the kill switch is not ACTIVE (halting or halted)",
                            registry=r)
        self.connection_state = Gauge("ttlive_connection_state",
                                      "1 for the current state of each stream's connection", ["stream", "state"],
                                      registry=r)
        self.queue_depth = Gauge("ttlive_queue_depth", "Messages waiting in an internal channel", ["queue"],
                                 registry=r)
        # counters (from the engine through Monitor.incr)
        self.orders_submitted = Counter("ttlive_orders_submitted", "Orders sent to the broker", registry=r)
        self.orders_rejected = Counter("ttlive_orders_rejected", "Orders the broker rejected", registry=r)
        self.fills = Counter("ttlive_fills", "Executions applied to the ledger", registry=r)
        self.alerts = Counter("ttlive_alerts", "Alerts delivered", ["severity"], registry=r)
        self.alerts_suppressed = Counter("ttlive_alerts_suppressed", "Alerts suppressed by the cool-down",
                                         registry=r)
        self.alert_delivery_failures = Counter("ttlive_alert_delivery_failures",
                                               "Alert sink failures", ["sink"], registry=r)
        self.stream_dropped = Counter("ttlive_stream_messages_dropped",
                                      "Stream messages dropped (buffer full, drop oldest)", ["stream"], registry=r)
        self.events = Counter("ttlive_events", "Events counted under a name the metrics do not know", ["name"],
                              registry=r)
        # latency
        self.rest_latency = Histogram("ttlive_rest_latency_seconds", "Broker REST round trip per endpoint",
                                      ["endpoint"], buckets=REST_LATENCY_BUCKETS_S, registry=r)
        self.stage_latency = Histogram("ttlive_stage_latency_seconds", "Pipeline stage latency", ["stage"],
                                       buckets=STAGE_LATENCY_BUCKETS_S, registry=r)
        self._plain: dict[str, Counter] = {
            "orders_submitted": self.orders_submitted,
            "orders_rejected": self.orders_rejected,
            "fills": self.fills,
            "alerts_suppressed": self.alerts_suppressed,
        }
        self._labelled: dict[str, Counter] = {
            "alerts": self.alerts,
            "stream_messages_dropped": self.stream_dropped,
            "alert_delivery_failures": self.alert_delivery_failures,
        }
        self._connection_states: dict[str, str] = {}

    # --- core.ports.Monitor ---------------------------------------------------------------------
    def observe_latency(self, name: str, value_s: float) -> None:
        if name.startswith(REST_PREFIX):
            self.rest_latency.labels(endpoint=name[len(REST_PREFIX):]).observe(value_s)
        else:
            self.stage_latency.labels(stage=name).observe(value_s)

    def incr(self, name: str, value: int = 1) -> None:
        if value < 0:
            log.warning("ignored negative increment %d for counter %s", value, name)
            return
        family, _, label = name.partition(".")
        plain = self._plain.get(name)
        if plain is not None:
            plain.inc(value)
            return
        labelled = self._labelled.get(family)
        if labelled is not None and label:
            labelled.labels(label).inc(value)
            return
        self.events.labels(name=name).inc(value)

    # --- gauges the engine may also set directly ---------------------------------------------------
    def set_queue_depth(self, queue: str, depth: int) -> None:
        self.queue_depth.labels(queue=queue).set(depth)

    def set_connection_state(self, stream: str, state: str) -> None:
        previous = self._connection_states.get(stream)
        if previous is not None and previous != state:
            self.connection_state.remove(stream, previous)
        self._connection_states[stream] = state
        self.connection_state.labels(stream=stream, state=state).set(1)

    def apply_snapshot(self, snapshot: Mapping[str, Any]) -> None:
        """Refresh every state gauge from a dashboard snapshot (see ``adapters.dashboard.source``)."""
        self.position_qty.clear()
        self.position_value.clear()
        for pos in snapshot.get("positions", ()):
            symbol = str(pos["symbol"])
            self.position_qty.labels(symbol=symbol).set(_num(pos.get("qty")))
            self.position_value.labels(symbol=symbol).set(_num(pos.get("market_value")))
        curve = snapshot.get("equity_curve") or ()
        if curve:
            self.equity.set(_num(curve[-1][1]))
        self.unrealized_pl.set(_num(snapshot.get("unrealized_pl")))
        self.daily_realized_pl.set(_num(snapshot.get("daily_realized_pl")))
        orders = snapshot.get("open_orders") or {}
        self.open_orders.set(_num(orders.get("count")))
        self.open_orders_value.set(_num(orders.get("value_usd")))
        self.risk_utilisation.clear()
        for rule, percent in sorted((snapshot.get("risk_utilisation") or {}).items()):
            self.risk_utilisation.labels(rule=str(rule)).set(_num(percent))
        halt_state = str((snapshot.get("halt") or {}).get("state", "ACTIVE")).upper()
        self.halted.set(0 if halt_state == "ACTIVE" else 1)
        for stream, state in sorted((snapshot.get("connections") or {}).items()):
            self.set_connection_state(str(stream), str(state))

    def exposition(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)


def _num(value: Any) -> float:
    """A snapshot number (Decimal, str, int, float) as the float Prometheus wants; missing or bad -> NaN."""
    if value is None:
        return float("nan")
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return float("nan")
