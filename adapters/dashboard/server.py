"""Runs the dashboard app on hypercorn's trio worker inside the engine's nursery, bound to loopback by default.

``serve_dashboard`` reports the port it bound (port 0 picks a free one) through ``task_status.started``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, Final

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from starlette.responses import PlainTextResponse

from adapters.dashboard.app import PUSH_INTERVAL_S, SSE_MAX_CLIENTS, create_app
from adapters.dashboard.source import DashboardSource
from adapters.metrics import Metrics

log = logging.getLogger("ttlive.dashboard")

LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "::1")
DEFAULT_HOST: Final = "127.0.0.1"  # the dashboard can halt trading: never listen beyond loopback by default
GRACEFUL_SHUTDOWN_S: Final = 1.0  # open event streams get this long to close on shutdown
KEEP_ALIVE_S: Final = 5.0
TOKEN_ENV: Final = "TTLIVE_DASHBOARD_TOKEN"


def token_from_env(environ: Mapping[str, str] = os.environ) -> str:
    """The kill/reset bearer token; empty (commands disabled) when the variable is unset or blank."""
    return environ.get(TOKEN_ENV, "").strip()


class HostGuard:
    """ASGI wrapper: answers 421 to any request whose ``Host`` header is not this server's own address.

    A web page can make a browser send requests to 127.0.0.1 under an attacker's hostname (DNS rebinding); its
    ``Host`` header then carries that name. Accepted: the bind host, and for a loopback bind also ``localhost``,
    ``127.0.0.1`` and ``[::1]``, each with the bound port (set once the socket is bound).
    """

    def __init__(self, app: Any, host: str) -> None:
        self.app = app
        names = {host if ":" not in host else f"[{host}]"}
        if host in LOOPBACK_HOSTS:
            names |= {"localhost", "127.0.0.1", "[::1]"}
        self.names = frozenset(names)
        self.port: int | None = None

    def allowed(self, value: str) -> bool:
        return self.port is not None and value.lower() in {f"{name}:{self.port}" for name in self.names}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            host = headers.get(b"host", b"").decode("latin-1")
            if not self.allowed(host):
                response = PlainTextResponse(f"misdirected request: Host {host!r} is not this dashboard", 421)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def bound_port(binds: list[str]) -> int:
    """The port from hypercorn's bind strings (``http://127.0.0.1:8765``, ``http://[::1]:8765``)."""
    assert binds, "hypercorn reported no bound sockets"
    return int(binds[0].rsplit(":", 1)[1])


async def serve_dashboard(
    source: DashboardSource,
    registry: Metrics,
    host: str = DEFAULT_HOST,
    port: int = 0,
    token: str = "",
    *,
    push_interval_s: float = PUSH_INTERVAL_S,
    sse_max_clients: int = SSE_MAX_CLIENTS,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled. ``token`` is TTLIVE_DASHBOARD_TOKEN; empty disables kill/reset."""
    if host not in LOOPBACK_HOSTS:
        log.warning("dashboard bound to %s: it is reachable beyond this machine", host)
    if not token:
        log.warning("no dashboard token configured: the kill and reset buttons are disabled")
    app = HostGuard(create_app(source, registry, token=token, push_interval_s=push_interval_s,
                               sse_max_clients=sse_max_clients), host)
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.graceful_timeout = GRACEFUL_SHUTDOWN_S
    config.keep_alive_timeout = KEEP_ALIVE_S
    config.accesslog = None
    config.errorlog = log
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(serve, app, config)
        bound = bound_port(binds)
        app.port = bound
        log.info("dashboard on http://%s:%d/", host, bound)
        task_status.started(bound)
