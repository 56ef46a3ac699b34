"""Alert delivery: one router the engine talks to (``core.ports.AlertSink``), fanning out to log, webhook and
dashboard sinks, with per-key de-duplication under a cool-down and secret redaction before anything leaves.

Delivering an alert must never hurt the engine: sink failures are logged and counted, never raised, and the
webhook posts from its own task so a slow receiver cannot stall the caller.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Protocol

import httpx
import msgspec
import trio

from adapters.alpaca.models import ns_to_rfc3339
from adapters.audit_jsonl import SECRET_MIN_CHARS
from core.limits import (
    ALERT_API_LATENCY_P95_MS,
    ALERT_COOLDOWN_S,
    ALERT_DRAWDOWN_CRITICAL_FRACTION,
    ALERT_DRAWDOWN_WARNING_FRACTION,
    ALERT_REJECTION_RATE_FRACTION,
)
from core.ports import Clock
from core.triggers import Severity

log = logging.getLogger("ttlive.alerts")

# Bounds local to alert delivery (candidates for core/limits.py).
DASHBOARD_ALERTS_MAX: Final = 50  # brief H8: the snapshot carries the last 50 alerts
WEBHOOK_TIMEOUT_S: Final = 5.0  # one POST, connect + read; a receiver slower than this is treated as down
WEBHOOK_QUEUE_CAPACITY: Final = 256  # alerts waiting for the webhook task; beyond this new ones are dropped
REDACTED: Final = "[REDACTED]"


_RANK: Final = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One alert as delivered. ``suppressed_count``: duplicates of ``key`` swallowed since the last delivery."""

    severity: Severity
    key: str
    message: str
    ts_ns: int
    suppressed_count: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "ts": ns_to_rfc3339(self.ts_ns),
            "ts_ns": self.ts_ns,
            "severity": str(self.severity),
            "key": self.key,
            "message": self.message,
            "suppressed_count": self.suppressed_count,
        }


class AlertDelivery(Protocol):
    """A sink behind the router. ``deliver`` must not raise for operating errors; the router guards anyway."""

    name: str

    async def deliver(self, alert: Alert) -> None: ...


class AlertCounter(Protocol):
    """What the router reports to metrics (``adapters.metrics.Metrics`` implements it)."""

    def incr(self, name: str, value: int = 1) -> None: ...


def escape_control(text: str) -> str:
    """Operator text (kill/reset reason, operator name) with control characters escaped (a newline becomes the
    two characters backslash-n): one log line stays one line, so a reason cannot forge another."""
    return "".join(ch if ch.isprintable() or ch == " " else ascii(ch)[1:-1] for ch in text)


class Redactor:
    """Replaces every configured secret (API keys, tokens, webhook URL) with a marker, longest first."""

    def __init__(self, secrets: Iterable[str]) -> None:
        kept = {s for s in secrets if len(s) >= SECRET_MIN_CHARS}  # the runner refuses shorter ones at start
        self._secrets = sorted(kept, key=lambda s: (-len(s), s))

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


class AlertRouter:
    """``core.ports.AlertSink``: de-duplicates by key, redacts, and fans out to every sink in order.

    The same key inside ``cooldown_s`` of its last delivery is suppressed and counted, unless the severity
    rises (a warning turning critical must get through). The cool-down runs on the injected session clock.
    """

    def __init__(
        self,
        sinks: Sequence[AlertDelivery],
        *,
        clock: Clock,
        cooldown_s: float = ALERT_COOLDOWN_S,
        secrets: Iterable[str] = (),
        counter: AlertCounter | None = None,
    ) -> None:
        assert cooldown_s >= 0, cooldown_s
        self._sinks = tuple(sinks)
        self._clock = clock
        self._cooldown_ns = round(cooldown_s * 1e9)
        self._redact = Redactor(secrets)
        self._counter = counter
        self._last_sent: dict[str, tuple[int, Severity]] = {}  # key -> (clock ns, severity) of last delivery
        self._pending_suppressed: dict[str, int] = {}
        self.delivered_count = 0
        self.suppressed_count = 0

    def admit(self, *, severity: str, key: str, message: str, ts_ns: int) -> Alert | None:
        """The sans-IO half: decide whether this alert goes out, and in what (redacted) form."""
        sev = Severity(severity)
        now_ns = self._clock.now_ns()
        last = self._last_sent.get(key)
        if last is not None:
            last_ns, last_sev = last
            within = now_ns - last_ns < self._cooldown_ns
            if within and _RANK[sev] <= _RANK[last_sev]:
                self._pending_suppressed[key] = self._pending_suppressed.get(key, 0) + 1
                self.suppressed_count += 1
                if self._counter is not None:
                    self._counter.incr("alerts_suppressed")
                return None
        self._last_sent[key] = (now_ns, sev)
        self.delivered_count += 1
        if self._counter is not None:
            self._counter.incr(f"alerts.{sev}")
        return Alert(
            severity=sev,
            key=self._redact(key),
            message=self._redact(message),
            ts_ns=ts_ns,
            suppressed_count=self._pending_suppressed.pop(key, 0),
        )

    async def send(self, *, severity: str, key: str, message: str, ts_ns: int) -> None:
        alert = self.admit(severity=severity, key=key, message=message, ts_ns=ts_ns)
        if alert is None:
            return
        for sink in self._sinks:
            try:
                await sink.deliver(alert)
            except Exception:  # a broken sink must not take the engine down (brief H8)
                log.exception("alert sink %s failed on alert key=%s", sink.name, alert.key)
                if self._counter is not None:
                    self._counter.incr(f"alert_delivery_failures.{sink.name}")


class LogAlertSink:
    """Alerts into the standard ``logging`` tree at a level matching the severity."""

    name = "log"
    _LEVELS: Final = {Severity.INFO: logging.INFO, Severity.WARNING: logging.WARNING,
                      Severity.CRITICAL: logging.CRITICAL}

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or log

    async def deliver(self, alert: Alert) -> None:
        suffix = f" (+{alert.suppressed_count} suppressed)" if alert.suppressed_count else ""
        self._log.log(self._LEVELS[alert.severity], "ALERT [%s] %s: %s%s", alert.severity, alert.key,
                      escape_control(alert.message), suffix)


class DashboardAlertSink:
    """Ring buffer of the most recent alerts, newest last, for the dashboard snapshot."""

    name = "dashboard"

    def __init__(self, capacity: int = DASHBOARD_ALERTS_MAX) -> None:
        assert capacity > 0, capacity
        self._ring: deque[Alert] = deque(maxlen=capacity)

    async def deliver(self, alert: Alert) -> None:
        self._ring.append(alert)

    def recent(self) -> list[dict[str, Any]]:
        return [a.to_json() for a in self._ring]


class WebhookAlertSink:
    """POSTs each alert as JSON to a configured URL from its own task (``serve``), one attempt each.

    ``deliver`` only enqueues; when the queue is full the alert is dropped and counted. The URL may carry a
    token (chat webhooks do), so logs name only its host.
    """

    name = "webhook"

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient,
        timeout_s: float = WEBHOOK_TIMEOUT_S,
        capacity: int = WEBHOOK_QUEUE_CAPACITY,
        source: str = "ttlive",
    ) -> None:
        self._url = url
        self._host = httpx.URL(url).host
        self._client = client
        self._timeout_s = timeout_s
        self._source = source
        self._capacity = capacity
        self._send, self._receive = trio.open_memory_channel[Alert](capacity)
        self.posted_count = 0
        self.failed_count = 0
        self.dropped_count = 0

    async def deliver(self, alert: Alert) -> None:
        try:
            self._send.send_nowait(alert)
        except trio.WouldBlock:
            self.dropped_count += 1
            log.warning("webhook alert queue full (%d); dropped alert key=%s", self._capacity, alert.key)

    def payload(self, alert: Alert) -> dict[str, Any]:
        return {"source": self._source, **alert.to_json()}

    async def post(self, alert: Alert) -> bool:
        """One POST; True on a 2xx answer. Every failure is logged, none raised."""
        body = msgspec.json.encode(self.payload(alert))
        try:
            with trio.move_on_after(self._timeout_s) as scope:
                response = await self._client.post(
                    self._url,
                    content=body,
                    headers={"content-type": "application/json"},
                    timeout=self._timeout_s,
                )
            if scope.cancelled_caught:
                raise httpx.TimeoutException("webhook post timed out")
        except httpx.HTTPError as exc:
            self.failed_count += 1
            log.warning("webhook alert to host %s failed: %s", self._host, type(exc).__name__)
            return False
        if not 200 <= response.status_code < 300:
            self.failed_count += 1
            log.warning("webhook alert to host %s answered HTTP %d", self._host, response.status_code)
            return False
        self.posted_count += 1
        return True

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for alert in self._receive:
            try:
                await self.post(alert)
            except Exception:  # e.g. an invalid URL: log, keep serving, never raise into the engine
                self.failed_count += 1
                log.exception("webhook alert to host %s failed unexpectedly", self._host)


@dataclass(frozen=True, slots=True, kw_only=True)
class ThresholdAlert:
    severity: Severity
    key: str
    message: str


def threshold_alerts(
    *,
    drawdown_fraction: Decimal | None = None,
    api_latency_p95_ms: float | None = None,
    rejection_rate_fraction: float | None = None,
) -> list[ThresholdAlert]:
    """Spec 4.3 alert thresholds as a pure function; the monitor feeds the result to ``AlertRouter.send``.

    ``drawdown_fraction`` is the positive loss fraction (0.025 = down 2.5 %). Keys are stable per condition so
    the router's cool-down de-duplicates repeats; a drawdown warning and critical share one key, so critical
    escalates past the cool-down.
    """
    out: list[ThresholdAlert] = []
    if drawdown_fraction is not None:
        if drawdown_fraction > ALERT_DRAWDOWN_CRITICAL_FRACTION:
            out.append(_threshold(Severity.CRITICAL, "pnl_drawdown", "P&L drawdown",
                                  _pct(drawdown_fraction), _pct(ALERT_DRAWDOWN_CRITICAL_FRACTION)))
        elif drawdown_fraction > ALERT_DRAWDOWN_WARNING_FRACTION:
            out.append(_threshold(Severity.WARNING, "pnl_drawdown", "P&L drawdown",
                                  _pct(drawdown_fraction), _pct(ALERT_DRAWDOWN_WARNING_FRACTION)))
    if api_latency_p95_ms is not None and api_latency_p95_ms > ALERT_API_LATENCY_P95_MS:
        out.append(_threshold(Severity.WARNING, "api_latency_p95", "API latency p95",
                              f"{api_latency_p95_ms:.0f} ms", f"{ALERT_API_LATENCY_P95_MS:.0f} ms"))
    if rejection_rate_fraction is not None and rejection_rate_fraction > ALERT_REJECTION_RATE_FRACTION:
        out.append(_threshold(Severity.CRITICAL, "order_rejection_rate", "order rejection rate",
                              _pct(rejection_rate_fraction), _pct(ALERT_REJECTION_RATE_FRACTION)))
    return out


def _pct(fraction: Decimal | float) -> str:
    return f"{Decimal(str(fraction)) * 100:.2f}%"


def _threshold(severity: Severity, key: str, what: str, value: str, limit: str) -> ThresholdAlert:
    return ThresholdAlert(severity=severity, key=key, message=f"{what} {value} exceeds the {severity} "
                          f"threshold of {limit}")
