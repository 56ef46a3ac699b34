"""Alert router de-duplication and cool-down, redaction, sink isolation, the webhook's payload and failures."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import httpx
import pytest
import trio

from adapters.alerts import (
    REDACTED,
    Alert,
    AlertRouter,
    DashboardAlertSink,
    LogAlertSink,
    Severity,
    WebhookAlertSink,
    threshold_alerts,
)
from adapters.metrics import Metrics
from core.limits import ALERT_COOLDOWN_S
from core.ports import AlertSink
from tests.dashboard.conftest import ManualClock

HOOK_URL = "https://hooks.example.test/services/T000/B000/hooksecret123"


class RecordingTransport(httpx.AsyncBaseTransport):
    """An in-process webhook receiver: records every request, answers ``status`` (or raises / stalls)."""

    def __init__(self, status: int = 200, *, error: Exception | None = None, stall_s: float = 0.0) -> None:
        self.status = status
        self.error = error
        self.stall_s = stall_s
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        await request.aread()
        if self.stall_s:
            await trio.sleep(self.stall_s)
        if self.error is not None:
            raise self.error
        return httpx.Response(self.status, json={"ok": self.status < 300})


class ExplodingSink:
    name = "exploding"

    def __init__(self) -> None:
        self.calls = 0

    async def deliver(self, alert: Alert) -> None:
        self.calls += 1
        raise RuntimeError("sink is broken")


def router_with_ring(clock: ManualClock, **kwargs: object) -> tuple[AlertRouter, DashboardAlertSink]:
    ring = DashboardAlertSink()
    return AlertRouter([ring], clock=clock, **kwargs), ring  # type: ignore[arg-type]


async def test_same_key_inside_cooldown_is_suppressed_and_counted(clock: ManualClock) -> None:
    router, ring = router_with_ring(clock)
    await router.send(severity="warning", key="latency", message="p95 high", ts_ns=clock.now_ns())
    clock.advance(ALERT_COOLDOWN_S - 1)
    await router.send(severity="warning", key="latency", message="p95 high again", ts_ns=clock.now_ns())
    await router.send(severity="info", key="latency", message="lower severity", ts_ns=clock.now_ns())
    assert [a["message"] for a in ring.recent()] == ["p95 high"]
    assert router.suppressed_count == 2
    assert router.delivered_count == 1


async def test_cooldown_expiry_lets_the_key_through_with_the_suppressed_tally(clock: ManualClock) -> None:
    router, ring = router_with_ring(clock)
    await router.send(severity="warning", key="latency", message="first", ts_ns=1)
    clock.advance(10)
    await router.send(severity="warning", key="latency", message="dup", ts_ns=2)
    clock.advance(ALERT_COOLDOWN_S - 10)  # exactly the cool-down after the first delivery
    await router.send(severity="warning", key="latency", message="after cool-down", ts_ns=3)
    recent = ring.recent()
    assert [a["message"] for a in recent] == ["first", "after cool-down"]
    assert recent[1]["suppressed_count"] == 1
    assert recent[1]["ts_ns"] == 3


async def test_different_keys_do_not_suppress_each_other(clock: ManualClock) -> None:
    router, ring = router_with_ring(clock)
    for key in ("a", "b", "c"):
        await router.send(severity="info", key=key, message=key, ts_ns=0)
    assert [a["key"] for a in ring.recent()] == ["a", "b", "c"]


async def test_escalation_passes_the_cooldown_and_then_suppresses_lower(clock: ManualClock) -> None:
    router, ring = router_with_ring(clock)
    await router.send(severity="warning", key="pnl_drawdown", message="2.5%", ts_ns=0)
    clock.advance(5)
    await router.send(severity="critical", key="pnl_drawdown", message="3.2%", ts_ns=0)
    clock.advance(5)
    await router.send(severity="warning", key="pnl_drawdown", message="2.9%", ts_ns=0)
    assert [(a["severity"], a["message"]) for a in ring.recent()] == [("warning", "2.5%"), ("critical", "3.2%")]


async def test_unknown_severity_is_a_programmer_error(clock: ManualClock) -> None:
    router, _ = router_with_ring(clock)
    with pytest.raises(ValueError):
        await router.send(severity="panic", key="k", message="m", ts_ns=0)


async def test_secrets_never_leave_in_key_or_message(clock: ManualClock) -> None:
    secret_key, token = "PKSECRETKEYID0001", "dash-token-xyz"
    router, ring = router_with_ring(clock, secrets=[secret_key, token, "ab"])
    await router.send(severity="critical", key=f"auth:{secret_key}",
                      message=f"401 for key {secret_key} / token {token}; about", ts_ns=0)
    [alert] = ring.recent()
    text = json.dumps(alert)
    assert secret_key not in text and token not in text
    assert alert["message"] == f"401 for key {REDACTED} / token {REDACTED}; about"  # "ab" too short to redact


async def test_a_failing_sink_is_isolated_and_counted(clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    exploding, ring = ExplodingSink(), DashboardAlertSink()
    router = AlertRouter([exploding, ring], clock=clock, counter=metrics)
    with caplog.at_level(logging.ERROR, logger="ttlive.alerts"):
        await router.send(severity="critical", key="k", message="still delivered", ts_ns=0)
    assert exploding.calls == 1
    assert [a["message"] for a in ring.recent()] == ["still delivered"]
    assert metrics.alert_delivery_failures.labels("exploding")._value.get() == 1
    assert metrics.alerts.labels("critical")._value.get() == 1
    assert "sink exploding failed" in caplog.text


async def test_dashboard_ring_keeps_the_last_50(clock: ManualClock) -> None:
    router, ring = router_with_ring(clock)
    for i in range(60):
        await router.send(severity="info", key=f"k{i}", message=str(i), ts_ns=i)
    recent = ring.recent()
    assert len(recent) == 50
    assert recent[0]["message"] == "10" and recent[-1]["message"] == "59"


async def test_log_sink_logs_at_the_severity_level(caplog: pytest.LogCaptureFixture) -> None:
    sink = LogAlertSink(logging.getLogger("test.alerts"))
    with caplog.at_level(logging.INFO, logger="test.alerts"):
        await sink.deliver(Alert(severity=Severity.CRITICAL, key="k", message="m", ts_ns=0, suppressed_count=2))
    [record] = caplog.records
    assert record.levelno == logging.CRITICAL
    assert "ALERT [critical] k: m (+2 suppressed)" in record.getMessage()


async def test_webhook_posts_the_json_payload(clock: ManualClock, autojump_clock: trio.testing.MockClock) -> None:
    transport = RecordingTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        hook = WebhookAlertSink(HOOK_URL, client=client, source="ttlive-paper")
        router = AlertRouter([hook], clock=clock, secrets=["PKSECRET1"])
        async with trio.open_nursery() as nursery:
            await nursery.start(hook.serve)
            await router.send(severity="critical", key="kill_switch", message="halted, key PKSECRET1",
                              ts_ns=1_767_225_600_000_000_000)
            await trio.sleep(1)
            nursery.cancel_scope.cancel()
    [request] = transport.requests
    assert request.method == "POST"
    assert str(request.url) == HOOK_URL
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "source": "ttlive-paper",
        "ts": "2026-01-01T00:00:00.000000000Z",
        "ts_ns": 1_767_225_600_000_000_000,
        "severity": "critical",
        "key": "kill_switch",
        "message": f"halted, key {REDACTED}",
        "suppressed_count": 0,
    }
    assert hook.posted_count == 1 and hook.failed_count == 0


@pytest.mark.parametrize(
    "transport",
    [
        RecordingTransport(error=httpx.ConnectError("refused")),
        RecordingTransport(status=500),
        RecordingTransport(stall_s=60.0),
    ],
    ids=["connect-error", "http-500", "stalled"],
)
async def test_webhook_failures_are_logged_not_raised(
    transport: RecordingTransport, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with httpx.AsyncClient(transport=transport) as client:
        hook = WebhookAlertSink(HOOK_URL, client=client, timeout_s=2.0)
        alert = Alert(severity=Severity.WARNING, key="k", message="m", ts_ns=0)
        start = trio.current_time()
        with caplog.at_level(logging.WARNING, logger="ttlive.alerts"):
            assert await hook.post(alert) is False
        assert trio.current_time() - start <= 2.0 + 1e-6  # the stalled receiver is cut at the timeout
    assert hook.failed_count == 1 and hook.posted_count == 0
    assert "hooks.example.test" in caplog.text
    assert "hooksecret123" not in caplog.text  # the URL's token never reaches the log


async def test_webhook_queue_overflow_drops_and_counts() -> None:
    async with httpx.AsyncClient(transport=RecordingTransport()) as client:
        hook = WebhookAlertSink(HOOK_URL, client=client, capacity=2)
        for i in range(5):  # nobody serves the queue: two fit, three drop
            await hook.deliver(Alert(severity=Severity.INFO, key=str(i), message="m", ts_ns=0))
    assert hook.dropped_count == 3


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"drawdown_fraction": Decimal("0.019")}, []),
        ({"drawdown_fraction": Decimal("0.02")}, []),  # "> 2%" is strict
        ({"drawdown_fraction": Decimal("0.021")}, [("warning", "pnl_drawdown")]),
        ({"drawdown_fraction": Decimal("0.03")}, [("warning", "pnl_drawdown")]),
        ({"drawdown_fraction": Decimal("0.0301")}, [("critical", "pnl_drawdown")]),
        ({"api_latency_p95_ms": 500.0}, []),
        ({"api_latency_p95_ms": 501.0}, [("warning", "api_latency_p95")]),
        ({"rejection_rate_fraction": 0.05}, []),
        ({"rejection_rate_fraction": 0.06}, [("critical", "order_rejection_rate")]),
        (
            {"drawdown_fraction": Decimal("0.05"), "api_latency_p95_ms": 900.0, "rejection_rate_fraction": 0.5},
            [("critical", "pnl_drawdown"), ("warning", "api_latency_p95"), ("critical", "order_rejection_rate")],
        ),
    ],
)
def test_spec_4_3_thresholds(kwargs: dict[str, object], expected: list[tuple[str, str]]) -> None:
    got = threshold_alerts(**kwargs)  # type: ignore[arg-type]
    assert [(str(a.severity), a.key) for a in got] == expected


def test_threshold_message_names_value_and_limit() -> None:
    [alert] = threshold_alerts(drawdown_fraction=Decimal("0.025"))
    assert alert.message == "P&L drawdown 2.50% exceeds the warning threshold of 2.00%"


def test_router_is_an_alert_sink(clock: ManualClock) -> None:
    sink: AlertSink = AlertRouter([], clock=clock)
    assert sink is not None
