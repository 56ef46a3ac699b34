"""The dashboard HTTP surface over httpx's ASGI transport, and the real server (hypercorn/trio) on loopback."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.types import Message

from adapters.dashboard.app import COMMAND_BODY_MAX_BYTES, PUSH_INTERVAL_S, create_app
from adapters.dashboard.server import bound_port, serve_dashboard, token_from_env
from adapters.dashboard.source import SNAPSHOT_KEYS, StaticDashboardSource
from adapters.metrics import Metrics
from tests.dashboard.conftest import ManualClock

TOKEN = "tok-9f2c41d7e6"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def source(clock: ManualClock) -> StaticDashboardSource:
    src = StaticDashboardSource(clock=clock, mode="paper")
    src.set_position("NVDA", Decimal(10), Decimal("120.00"))
    src.mark("NVDA", Decimal("121.50"))
    src.add_open_order("ORCL", Decimal(4), Decimal("30"))
    src.set_connection("trade_updates", "LIVE")
    src.set_connection("market_data", "POLLING")
    return src


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
async def client(source: StaticDashboardSource, metrics: Metrics) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(source, metrics, token=TOKEN)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dashboard.test") as c:
        yield c


async def test_state_is_the_snapshot(client: httpx.AsyncClient, source: StaticDashboardSource) -> None:
    r = await client.get("/api/state")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == SNAPSHOT_KEYS
    assert body["positions"][0]["unrealized_pl"] == "15.00"
    assert body["connections"] == {"market_data": "POLLING", "trade_updates": "LIVE"}
    source.mark("NVDA", Decimal("119"))
    assert (await client.get("/api/state")).json()["unrealized_pl"] == "-10.00"


async def test_page_is_self_contained(client: httpx.AsyncClient) -> None:
    r = await client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    for element in ("equity-chart", "kill-btn", "reset-btn", "token", "positions", "/api/events"):
        assert element in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # no CDN, no external asset
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'sha256-" in csp and "unsafe-inline" not in csp
    assert r.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("path", ["/api/kill", "/api/reset"])
@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer nope"}, {"authorization": TOKEN}, {"authorization": f"Basic {TOKEN}"},
     {"authorization": f"Bearer {TOKEN}x"}],
    ids=["missing", "wrong", "no-scheme", "basic", "longer"],
)
async def test_commands_need_the_bearer_token(
    client: httpx.AsyncClient, source: StaticDashboardSource, path: str, headers: dict[str, str]
) -> None:
    r = await client.post(path, json={"reason": "r", "operator": "o"}, headers=headers)
    assert r.status_code == 401
    assert r.json() == {"error": "missing or wrong bearer token"}
    assert TOKEN not in r.text and TOKEN not in str(r.headers)
    assert not source.halted and source.commands == []


async def test_kill_with_token_halts(client: httpx.AsyncClient, source: StaticDashboardSource) -> None:
    r = await client.post("/api/kill", json={"reason": "operator drill"}, headers=AUTH)
    assert r.status_code == 200
    assert r.json()["halt"]["state"] == "HALTED"
    assert source.halted
    assert source.commands[-1].reason == "operator drill" and source.commands[-1].actor == "dashboard"
    assert (await client.get("/api/state")).json()["halt"]["state"] == "HALTED"


async def test_kill_without_reason_uses_a_default(client: httpx.AsyncClient, source: StaticDashboardSource) -> None:
    r = await client.post("/api/kill", headers=AUTH)
    assert r.status_code == 200 and source.halted
    assert source.commands[-1].reason == "manual kill from the dashboard"


async def test_reset_validation_and_state(client: httpx.AsyncClient, source: StaticDashboardSource) -> None:
    r = await client.post("/api/reset", json={"operator": "alice", "reason": "not halted"}, headers=AUTH)
    assert r.status_code == 409 and not source.halted
    await client.post("/api/kill", json={"reason": "drill"}, headers=AUTH)
    for body in ({}, {"operator": "alice"}, {"reason": "why"}, {"operator": "", "reason": "why"},
                 {"operator": "alice", "reason": "   "}, {"operator": 5, "reason": "why"}):
        r = await client.post("/api/reset", json=body, headers=AUTH)
        assert r.status_code == 422, body
        assert source.halted
    r = await client.post("/api/reset", json={"operator": "alice", "reason": "drill over"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["halt"]["state"] == "ACTIVE"
    assert not source.halted


async def test_malformed_and_oversized_bodies(client: httpx.AsyncClient, source: StaticDashboardSource) -> None:
    r = await client.post("/api/kill", content=b"{not json", headers=AUTH)
    assert r.status_code == 422
    r = await client.post("/api/kill", content=b"[1, 2]", headers=AUTH)
    assert r.status_code == 422
    r = await client.post("/api/kill", json={"reason": "x" * COMMAND_BODY_MAX_BYTES}, headers=AUTH)
    assert r.status_code == 413
    assert not source.halted


async def test_no_token_configured_disables_commands(source: StaticDashboardSource, metrics: Metrics) -> None:
    app = create_app(source, metrics, token="")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://d.test") as c:
        for headers in ({}, {"authorization": "Bearer "}, {"authorization": "Bearer"}):
            r = await c.post("/api/kill", json={"reason": "r"}, headers=headers)
            assert r.status_code == 403
    assert not source.halted


async def test_get_only_and_post_only(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/kill")).status_code == 405
    assert (await client.post("/api/state")).status_code == 405


async def test_metrics_endpoint_exposes_the_families(client: httpx.AsyncClient, metrics: Metrics) -> None:
    metrics.incr("orders_submitted", 4)
    metrics.incr("orders_rejected")
    metrics.incr("fills", 3)
    metrics.incr("alerts.warning")
    metrics.incr("stream_messages_dropped.market_data", 2)
    metrics.observe_latency("rest.get_account", 0.12)
    metrics.set_queue_depth("execution", 3)
    r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    expected = {
        "ttlive_position_qty", "ttlive_position_market_value_usd", "ttlive_equity_usd",
        "ttlive_unrealized_pl_usd", "ttlive_daily_realized_pl_usd", "ttlive_open_orders",
        "ttlive_open_orders_value_usd", "ttlive_risk_utilisation_percent", "ttlive_halted",
        "ttlive_connection_state", "ttlive_orders_submitted", "ttlive_orders_rejected", "ttlive_fills",
        "ttlive_alerts", "ttlive_rest_latency_seconds", "ttlive_queue_depth", "ttlive_stream_messages_dropped",
    }
    assert expected <= set(families)
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert values[("ttlive_position_qty", (("symbol", "NVDA"),))] == 10
    assert values[("ttlive_unrealized_pl_usd", ())] == 15
    assert values[("ttlive_orders_submitted_total", ())] == 4
    assert values[("ttlive_rest_latency_seconds_count", (("endpoint", "get_account"),))] == 1
    assert values[("ttlive_queue_depth", (("queue", "execution"),))] == 3
    assert values[("ttlive_connection_state", (("state", "POLLING"), ("stream", "market_data")))] == 1
    assert values[("ttlive_halted", ())] == 0
    await client.post("/api/kill", json={"reason": "r"}, headers=AUTH)
    after = {(s.name, tuple(s.labels.items())): s.value
             for f in text_string_to_metric_families((await client.get("/metrics")).text) for s in f.samples}
    assert after[("ttlive_halted", ())] == 1


def test_bound_port_parses_hypercorn_binds() -> None:
    assert bound_port(["http://127.0.0.1:8765"]) == 8765
    assert bound_port(["http://[::1]:41000"]) == 41000


class SseClient:
    """Drives one GET /api/events through the ASGI app by hand (httpx's ASGI transport buffers whole bodies),
    recording each snapshot event with the (virtual) time it was sent, until told to disconnect."""

    def __init__(self, app: Starlette, *, disconnect_after: int) -> None:
        self.app = app
        self.disconnect_after = disconnect_after
        self.status = 0
        self.events: list[tuple[float, dict[str, object]]] = []
        self.done = trio.Event()
        self._disconnect = trio.Event()

    async def run(self) -> None:
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.1"}, "http_version": "1.1",
                 "method": "GET", "scheme": "http", "path": "/api/events", "raw_path": b"/api/events",
                 "query_string": b"", "root_path": "", "headers": [(b"host", b"dashboard.test")],
                 "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8765)}
        sent_request = False

        async def receive() -> Message:
            nonlocal sent_request
            if not sent_request:
                sent_request = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await self._disconnect.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.status = int(message["status"])
                if self.status != 200:
                    self._disconnect.set()
                return
            for block in bytes(message.get("body", b"")).decode().split("\n\n"):
                if block.startswith("event: snapshot\ndata: "):
                    self.events.append((trio.current_time(), json.loads(block.split("data: ", 1)[1])))
                    if len(self.events) >= self.disconnect_after:
                        self._disconnect.set()

        try:
            await self.app(scope, receive, send)
        finally:
            self.done.set()


async def test_event_stream_pushes_fresh_snapshots_every_interval(
    source: StaticDashboardSource, metrics: Metrics, autojump_clock: trio.testing.MockClock
) -> None:
    app = create_app(source, metrics, token=TOKEN)  # default 1 s push interval, virtual time
    client = SseClient(app, disconnect_after=3)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.run)
        while not client.events:
            await trio.sleep(0.01)
        source.mark("NVDA", Decimal("130"))
        with trio.fail_after(10):
            await client.done.wait()
    assert client.status == 200
    times = [t for t, _ in client.events]
    assert [round(b - a, 3) for a, b in itertools.pairwise(times)] == [PUSH_INTERVAL_S, PUSH_INTERVAL_S]
    assert [e["unrealized_pl"] for _, e in client.events] == ["15.00", "100.00", "100.00"]


async def test_event_streams_are_limited_and_free_their_slot(
    source: StaticDashboardSource, metrics: Metrics, autojump_clock: trio.testing.MockClock
) -> None:
    app = create_app(source, metrics, token=TOKEN, sse_max_clients=1)
    first = SseClient(app, disconnect_after=2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(first.run)
        while not first.events:
            await trio.sleep(0.01)
        second = SseClient(app, disconnect_after=1)
        await second.run()
        assert second.status == 503
        await first.done.wait()
        third = SseClient(app, disconnect_after=1)
        await third.run()
        assert first.status == 200 and third.status == 200


async def test_server_on_loopback(source: StaticDashboardSource, metrics: Metrics) -> None:
    """Real hypercorn on an ephemeral 127.0.0.1 port; every request's first bytes come without waiting."""
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_dashboard, source, metrics, "127.0.0.1", 0, TOKEN)
            assert port > 0
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
                assert (await http.get("/api/state")).json()["mode"] == "paper"
                assert "kill-btn" in (await http.get("/")).text
                r = await http.post("/api/kill", json={"reason": "loopback"}, headers=AUTH)
                assert r.status_code == 200 and source.halted
                async with http.stream("GET", "/api/events") as stream:
                    assert stream.headers["content-type"].startswith("text/event-stream")
                    lines = stream.aiter_lines()
                    while not (line := await anext(lines)).startswith("data: "):
                        pass
                    assert json.loads(line[len("data: "):])["halt"]["state"] == "HALTED"
            nursery.cancel_scope.cancel()


def test_token_comes_from_the_environment() -> None:
    assert token_from_env({"TTLIVE_DASHBOARD_TOKEN": " abc123 \n"}) == "abc123"
    assert token_from_env({}) == ""
