"""Runs the dashboard app on hypercorn's trio worker inside the engine's nursery, bound to loopback by default.

``serve_dashboard`` reports the port it bound (port 0 picks a free one) through ``task_status.started``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Final

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from adapters.dashboard.app import PUSH_INTERVAL_S, SSE_MAX_CLIENTS, create_app
from adapters.dashboard.source import DashboardSource
from adapters.metrics import Metrics

log = logging.getLogger("ttlive.dashboard")

DEFAULT_HOST: Final = "127.0.0.1"  # the dashboard can halt trading: never listen beyond loopback by default
GRACEFUL_SHUTDOWN_S: Final = 1.0  # open event streams get this long to close on shutdown
KEEP_ALIVE_S: Final = 5.0
TOKEN_ENV: Final = "TTLIVE_DASHBOARD_TOKEN"


def token_from_env(environ: Mapping[str, str] = os.environ) -> str:
    """The kill/reset bearer token; empty (commands disabled) when the variable is unset or blank."""
    return environ.get(TOKEN_ENV, "").strip()


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
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("dashboard bound to %s: it is reachable beyond this machine", host)
    if not token:
        log.warning("no dashboard token configured: the kill and reset buttons are disabled")
    app = create_app(source, registry, token=token, push_interval_s=push_interval_s,
                     sse_max_clients=sse_max_clients)
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.graceful_timeout = GRACEFUL_SHUTDOWN_S
    config.keep_alive_timeout = KEEP_ALIVE_S
    config.accesslog = None
    config.errorlog = log
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(serve, app, config)
        bound = bound_port(binds)
        log.info("dashboard on http://%s:%d/", host, bound)
        task_status.started(bound)
