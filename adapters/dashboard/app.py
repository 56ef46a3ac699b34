"""The monitoring dashboard as a Starlette app (spec 4.3): one self-contained HTML page, the snapshot as
JSON and as Server-Sent Events, token-guarded kill/reset commands, and Prometheus ``/metrics``.

Built by ``create_app``; ``adapters.dashboard.server`` runs it on hypercorn's trio worker.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

import msgspec
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from adapters.alerts import escape_control
from adapters.dashboard.source import REASON_MAX_CHARS, CommandRejected, DashboardSource, validate_reset
from adapters.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger("ttlive.dashboard")

PUSH_INTERVAL_S: Final = 1.0  # brief H8: live updates about once a second
SSE_MAX_CLIENTS: Final = 16  # a handful of operators; more is a leak or abuse
SSE_RETRY_MS: Final = 2_000  # browser reconnect delay after a dropped event stream
COMMAND_BODY_MAX_BYTES: Final = 4_096
KILL_DEFAULT_REASON: Final = "manual kill from the dashboard"
KILL_SOURCE: Final = "dashboard"


def _page() -> tuple[str, str]:
    """The HTML page and a Content-Security-Policy pinning its one inline script and style by hash."""
    html = resources.files("adapters.dashboard").joinpath("index.html").read_text(encoding="utf-8")

    def digest(tag: str) -> str:
        match = re.search(rf"<{tag}>(.*?)</{tag}>", html, re.S)
        assert match is not None, f"index.html lacks an inline <{tag}>"
        return "'sha256-" + base64.b64encode(hashlib.sha256(match.group(1).encode()).digest()).decode() + "'"

    csp = (
        f"default-src 'none'; script-src {digest('script')}; style-src {digest('style')}; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return html, csp


@dataclass(slots=True)
class _EventStreams:
    open_count: int = 0


def _json(payload: Any, status_code: int = 200) -> Response:
    """JSON through msgspec, so Decimal and other engine values encode without floats."""
    return Response(msgspec.json.encode(payload), status_code=status_code, media_type="application/json",
                    headers={"cache-control": "no-store"})


def _error(status_code: int, message: str) -> Response:
    return _json({"error": message}, status_code)


def create_app(
    source: DashboardSource,
    metrics: Metrics,
    *,
    token: str,
    push_interval_s: float = PUSH_INTERVAL_S,
    sse_max_clients: int = SSE_MAX_CLIENTS,
) -> Starlette:
    """``token`` guards POST /api/kill and /api/reset (Bearer); an empty token disables both (403)."""
    assert push_interval_s > 0, push_interval_s
    html, csp = _page()
    streams = _EventStreams()
    expected = f"Bearer {token}".encode()

    def authorised(request: Request) -> Response | None:
        if not token:
            return _error(403, "control disabled: no dashboard token is configured (TTLIVE_DASHBOARD_TOKEN)")
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return _error(401, "missing or wrong bearer token")
        return None

    async def command_body(request: Request) -> dict[str, Any] | Response:
        raw = await request.body()
        if len(raw) > COMMAND_BODY_MAX_BYTES:
            return _error(413, f"body larger than {COMMAND_BODY_MAX_BYTES} bytes")
        try:
            body = msgspec.json.decode(raw) if raw else {}
        except msgspec.DecodeError:
            return _error(422, "body must be JSON")
        if not isinstance(body, dict):
            return _error(422, "body must be a JSON object")
        return body

    async def index(request: Request) -> Response:
        return HTMLResponse(html, headers={"content-security-policy": csp, "x-frame-options": "DENY",
                                           "cache-control": "no-store", "x-content-type-options": "nosniff"})

    async def state(request: Request) -> Response:
        return _json(source.snapshot())

    async def events(request: Request) -> Response:
        if streams.open_count >= sse_max_clients:
            return _error(503, f"too many event streams (limit {sse_max_clients})")

        async def stream() -> AsyncIterator[bytes]:
            streams.open_count += 1
            try:
                yield f"retry: {SSE_RETRY_MS}\n\n".encode()
                while True:
                    try:
                        data = msgspec.json.encode(source.snapshot())
                    except Exception:  # a broken snapshot skips a beat; the stream and the page stay up
                        log.exception("dashboard snapshot failed")
                    else:
                        yield b"event: snapshot\ndata: " + data + b"\n\n"
                    await trio.sleep(push_interval_s)
            finally:
                streams.open_count -= 1

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"cache-control": "no-store", "x-accel-buffering": "no"})

    async def kill(request: Request) -> Response:
        denied = authorised(request)
        if denied is not None:
            return denied
        body = await command_body(request)
        if isinstance(body, Response):
            return body
        reason = body.get("reason") or KILL_DEFAULT_REASON
        if not isinstance(reason, str) or len(reason) > REASON_MAX_CHARS:
            return _error(422, f"reason must be a string of at most {REASON_MAX_CHARS} characters")
        reason = escape_control(reason).strip() or KILL_DEFAULT_REASON
        try:
            await source.kill(reason, KILL_SOURCE)
        except CommandRejected as exc:
            return _error(409, str(exc))
        log.warning("kill switch engaged from the dashboard: %s", reason)
        return _json({"ok": True, "halt": source.snapshot().get("halt")})

    async def reset(request: Request) -> Response:
        denied = authorised(request)
        if denied is not None:
            return denied
        body = await command_body(request)
        if isinstance(body, Response):
            return body
        operator, reason = body.get("operator"), body.get("reason")
        if not isinstance(operator, str) or not isinstance(reason, str):
            return _error(422, "reset needs operator and reason (strings)")
        try:
            operator, reason = validate_reset(escape_control(operator), escape_control(reason))
            await source.reset(operator, reason)
        except ValueError as exc:
            return _error(422, str(exc))
        except CommandRejected as exc:
            return _error(409, str(exc))
        log.warning("kill switch reset from the dashboard by %s: %s", operator, reason)
        return _json({"ok": True, "halt": source.snapshot().get("halt")})

    async def prometheus(request: Request) -> Response:
        try:
            metrics.apply_snapshot(source.snapshot())
        except Exception:  # stale gauges beat a failed scrape: counters and histograms are still right
            log.exception("dashboard snapshot failed during a metrics scrape")
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/api/state", state, methods=["GET"]),
        Route("/api/events", events, methods=["GET"]),
        Route("/api/kill", kill, methods=["POST"]),
        Route("/api/reset", reset, methods=["POST"]),
        Route("/metrics", prometheus, methods=["GET"]),
    ]
    return Starlette(routes=routes)
