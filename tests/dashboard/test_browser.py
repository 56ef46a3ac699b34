"""The dashboard in a real headless Chromium: live updates without reload, kill and reset through the page's
buttons with the token typed in, and a screenshot under tests/artifacts/.

The server runs on an ephemeral 127.0.0.1 port in this trio run; prices move every 0.2 s (real clock).
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
import trio

from adapters.alpaca.clock import WallClock
from adapters.dashboard.server import serve_dashboard
from adapters.dashboard.source import StaticDashboardSource
from adapters.metrics import Metrics
from tests.dashboard.cdp import attach, launch_chromium, page_websocket_url

TOKEN = "browser-token-5d1e"
TICK_S = 0.2
TEST_BUDGET_S = 45.0


def text_of(element_id: str) -> str:
    return f"document.getElementById({json.dumps(element_id)}).textContent"


async def move_prices(source: StaticDashboardSource) -> None:
    rng = random.Random(20260101)
    while True:
        await trio.sleep(TICK_S)
        source.step(rng, max_move_bps=200)


async def wait_until(predicate: object, *, timeout_s: float = 10) -> None:
    with trio.fail_after(timeout_s):
        while not predicate():  # type: ignore[operator]
            await trio.sleep(0.05)


@pytest.mark.browser
async def test_dashboard_in_headless_chromium(chromium_path: str, artifacts_dir: Path, tmp_path: Path) -> None:
    source = StaticDashboardSource(clock=WallClock(), mode="paper")
    source.set_position("NVDA", Decimal(40), Decimal("120.00"))
    source.set_position("ORCL", Decimal(-25), Decimal("31.00"))
    source.add_open_order("YHOO", Decimal(10), Decimal("42.10"))
    source.set_connection("trade_updates", "LIVE")
    source.set_connection("market_data", "LIVE")
    metrics = Metrics()

    with trio.fail_after(TEST_BUDGET_S):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(partial(serve_dashboard, source, metrics, "127.0.0.1", 0, TOKEN,
                                               push_interval_s=0.25))
            nursery.start_soon(move_prices, source)
            url = f"http://127.0.0.1:{port}/"
            async with launch_chromium(chromium_path, url, tmp_path) as devtools_port:
                ws_url = await page_websocket_url(devtools_port, url)
                async with attach(ws_url) as page:
                    await page.wait_for(f"Number({text_of('updates')}) >= 1")
                    assert await page.evaluate(text_of("mode")) == "paper"
                    assert await page.evaluate("document.querySelectorAll('#positions tr').length") == 2

                    # live updates without a reload: a marker set on the window survives while values change
                    await page.evaluate("window.__ttliveMarker = 'same-page'")
                    first_ts = await page.evaluate(text_of("ts"))
                    first_equity = await page.evaluate(text_of("equity"))
                    await page.wait_for(f"{text_of('ts')} !== {json.dumps(first_ts)}")
                    await page.wait_for(f"{text_of('equity')} !== {json.dumps(first_equity)}")
                    assert await page.evaluate("window.__ttliveMarker") == "same-page"
                    assert await page.evaluate(text_of("feed")) == "live"
                    points = await page.evaluate(
                        "document.getElementById('equity-line').getAttribute('points').split(' ').length")
                    assert points >= 2

                    # kill with the token typed in
                    await page.type_into("token", TOKEN)
                    await page.type_into("reason", "browser drill")
                    await page.click("kill-btn")
                    await page.wait_for("document.getElementById('control-result').dataset.status === '200'")
                    await wait_until(lambda: source.halted)
                    assert source.commands[-1].kind == "kill" and source.commands[-1].reason == "browser drill"
                    await page.wait_for(f"{text_of('halt-state')} === 'HALTED'")
                    # what the halt did to the book: the action, and each position's stop (none: cancel_all)
                    assert await page.evaluate(text_of("halt-action")) == "cancel_all"
                    assert await page.evaluate("document.getElementById('protection-panel').hidden") is False
                    rows = "[...document.querySelectorAll('#protection tr')]"
                    assert await page.evaluate(f"{rows}.map((r) => r.dataset.symbol + ':' + r.dataset.protected)"
                                               ) == ["NVDA:false", "ORCL:false"]
                    await page.screenshot(artifacts_dir / "dashboard-halted.png")

                    # reset with a wrong token fails and leaves the halt latched
                    await page.type_into("token", "not-the-token")
                    await page.type_into("operator", "ci-operator")
                    await page.type_into("reason", "drill over")
                    await page.click("reset-btn")
                    await page.wait_for("document.getElementById('control-result').dataset.status === '401'")
                    assert source.halted
                    assert "401" in await page.evaluate(text_of("control-result"))

                    # reset with the right token resumes
                    await page.type_into("token", TOKEN)
                    await page.click("reset-btn")
                    await page.wait_for("document.getElementById('control-result').dataset.status === '200'")
                    await wait_until(lambda: not source.halted)
                    assert source.commands[-1].kind == "reset" and source.commands[-1].actor == "ci-operator"
                    await page.wait_for(f"{text_of('halt-state')} === 'ACTIVE'")
                    assert await page.evaluate("document.getElementById('protection-panel').hidden") is True
                    assert await page.evaluate("window.__ttliveMarker") == "same-page"

                    shot = await page.screenshot(artifacts_dir / "dashboard.png")
                    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 10_000
            nursery.cancel_scope.cancel()
