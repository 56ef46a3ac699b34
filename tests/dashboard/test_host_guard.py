"""Issue 16: the dashboard answers only requests addressed to itself (DNS rebinding), and operator text cannot
forge a log line."""

from __future__ import annotations

import logging
from functools import partial

import httpx
import pytest
import trio

from adapters.alerts import Alert, LogAlertSink, escape_control
from adapters.alpaca.clock import WallClock
from adapters.dashboard.server import HostGuard, serve_dashboard
from adapters.dashboard.source import StaticDashboardSource
from adapters.metrics import Metrics
from core.triggers import Severity

TOKEN = "host-guard-token-5c1d"


def test_host_guard_accepts_only_the_bound_address() -> None:
    guard = HostGuard(app=None, host="127.0.0.1")
    assert not guard.allowed("127.0.0.1:8765")  # not bound yet: nothing is ours
    guard.port = 8765
    for ok in ("127.0.0.1:8765", "localhost:8765", "LOCALHOST:8765", "[::1]:8765"):
        assert guard.allowed(ok), ok
    for bad in ("evil.example:8765", "127.0.0.1:80", "127.0.0.1", "", "localhost.evil.example:8765"):
        assert not guard.allowed(bad), bad
    remote = HostGuard(app=None, host="10.0.0.5")
    remote.port = 1
    assert remote.allowed("10.0.0.5:1") and not remote.allowed("localhost:1")


async def test_a_rebound_host_gets_421_and_the_real_one_200() -> None:
    source = StaticDashboardSource(clock=WallClock(), mode="paper")
    async with trio.open_nursery() as nursery:
        port = await nursery.start(partial(serve_dashboard, source, Metrics(), "127.0.0.1", 0, TOKEN))

        def get(host: str, path: str = "/api/state", method: str = "GET") -> httpx.Response:
            headers = {"host": host, "authorization": f"Bearer {TOKEN}"}
            return httpx.request(method, f"http://127.0.0.1:{port}{path}", headers=headers, json={"reason": "x"},
                                 timeout=10)

        assert (await trio.to_thread.run_sync(get, f"127.0.0.1:{port}")).status_code == 200
        assert (await trio.to_thread.run_sync(get, f"localhost:{port}")).status_code == 200
        rebound = await trio.to_thread.run_sync(get, f"attacker.example:{port}")
        assert rebound.status_code == 421
        killed = await trio.to_thread.run_sync(partial(get, f"attacker.example:{port}", "/api/kill", "POST"))
        assert killed.status_code == 421 and not source.halted  # a rebound page cannot press Kill either
        nursery.cancel_scope.cancel()


def test_escape_control_keeps_one_line_one_line() -> None:
    assert escape_control("desk review\nttlive.run INFO all clear\r\x1b[2J") == (
        "desk review\\nttlive.run INFO all clear\\r\\x1b[2J")
    assert escape_control("plain text, ünïcode ok") == "plain text, ünïcode ok"


async def test_the_log_alert_sink_escapes_newlines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    await LogAlertSink().deliver(Alert(severity=Severity.CRITICAL, key="kill_switch", message="x\nFORGED", ts_ns=0))
    assert [r.getMessage() for r in caplog.records] == ["ALERT [critical] kill_switch: x\\nFORGED"]
