"""A minimal Chrome DevTools Protocol driver for the dashboard browser test: launch headless Chromium, attach
to its page over a WebSocket (trio-websocket), evaluate, type, click and screenshot.

Just enough CDP for one test; every wait is bounded, and the browser process is always reaped.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--mute-audio",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
    "--window-size=1280,1000",
)
STARTUP_TIMEOUT_S = 20.0
EXIT_TIMEOUT_S = 5.0
POLL_S = 0.05
WS_MAX_MESSAGE_BYTES = 32 * 1024 * 1024  # full-page screenshots arrive base64 in one message


class CdpError(Exception):
    pass


@asynccontextmanager
async def launch_chromium(binary: str, url: str, profile_dir: Path) -> AsyncIterator[int]:
    """Start Chromium on ``url``; yield its DevTools port; terminate it (and only its process group) after."""
    log_path = profile_dir / "chromium.log"
    with log_path.open("wb") as log_file:
        process = await trio.lowlevel.open_process(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", url],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, start_new_session=True,
        )
        try:
            port_file = profile_dir / "DevToolsActivePort"
            with trio.fail_after(STARTUP_TIMEOUT_S):
                while not (port_file.exists() and port_file.read_text().strip()):
                    if process.poll() is not None:
                        raise CdpError(f"chromium exited with {process.returncode}: {log_path.read_text()[-2000:]}")
                    await trio.sleep(POLL_S)
            yield int(port_file.read_text().splitlines()[0])
        finally:
            with trio.CancelScope(shield=True):
                await _stop(process)


async def _stop(process: trio.Process) -> None:
    if process.poll() is None:
        process.terminate()
        with trio.move_on_after(EXIT_TIMEOUT_S):
            await process.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # renderer/zygote children left in the group we created
    if process.poll() is None:
        await process.wait()


async def page_websocket_url(devtools_port: int, url_prefix: str) -> str:
    """The DevTools WebSocket of the page showing ``url_prefix``."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{devtools_port}", timeout=5) as http:
        with trio.fail_after(STARTUP_TIMEOUT_S):
            while True:
                targets = (await http.get("/json/list")).json()
                for target in targets:
                    if target.get("type") == "page" and target.get("url", "").startswith(url_prefix):
                        return str(target["webSocketDebuggerUrl"])
                await trio.sleep(POLL_S)


class Page:
    """One attached page. Commands are sequential; events arriving meanwhile are ignored."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    async def send(self, method: str, params: dict[str, Any] | None = None, *, timeout_s: float = 10) -> Any:
        msg_id = next(self._ids)
        await self._ws.send_message(json.dumps({"id": msg_id, "method": method, "params": params or {}}))
        with trio.fail_after(timeout_s):
            while True:
                reply = json.loads(await self._ws.get_message())
                if reply.get("id") == msg_id:
                    if "error" in reply:
                        raise CdpError(f"{method}: {reply['error']}")
                    return reply.get("result", {})

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate",
                                 {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise CdpError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, *, timeout_s: float = 10) -> Any:
        """Poll ``expression`` until it is truthy (a throw counts as not yet: the page may still be loading)."""
        last: object = None
        with trio.move_on_after(timeout_s):
            while True:
                try:
                    last = await self.evaluate(expression)
                except CdpError as exc:
                    last = exc
                else:
                    if last:
                        return last
                await trio.sleep(POLL_S)
        raise TimeoutError(f"waited {timeout_s} s for {expression!r}; last value: {last!r}")

    async def type_into(self, element_id: str, text: str) -> None:
        """Focus and clear an input, then type ``text`` as keyboard input."""
        await self.evaluate(f"(() => {{ const e = document.getElementById({json.dumps(element_id)});"
                            " e.scrollIntoView({block: 'center'}); e.focus(); e.value = ''; return true; })()")
        await self.send("Input.insertText", {"text": text})

    async def click(self, element_id: str) -> None:
        """A real mouse click at the element's centre."""
        box = await self.evaluate(
            f"(() => {{ const e = document.getElementById({json.dumps(element_id)});"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return {x: r.left + r.width / 2, y: r.top + r.height / 2}; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent",
                            {"type": kind, "x": box["x"], "y": box["y"], "button": "left", "clickCount": 1})

    async def screenshot(self, path: Path) -> bytes:
        result = await self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                                 timeout_s=20)
        data = base64.b64decode(result["data"])
        path.write_bytes(data)
        return data


@asynccontextmanager
async def attach(ws_url: str) -> AsyncIterator[Page]:
    async with open_websocket_url(ws_url, max_message_size=WS_MAX_MESSAGE_BYTES) as ws:
        yield Page(ws)
