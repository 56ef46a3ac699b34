"""Issue 10: the dashboard in headless Chromium during a paced simulated session (``ttlive run --speed 600``):
values update live, the kill button halts trading (supervisor halted, no new venue orders until the reset),
reset needs the token; a screenshot goes to tests/artifacts/. Ctrl-C then stops the runner gracefully.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
import trio

from adapters.alpaca.models import rfc3339_to_ns
from tests.dashboard.cdp import Page, attach, launch_chromium, page_websocket_url
from tests.runner.conftest import CANARY_TOKEN, HERE, TTLIVE, canary_env
from tools.compliance import load_audit, load_records

SPEED = "600"  # virtual seconds per wall second: the half day lasts ~22 s of wall time
TEST_BUDGET_S = 80.0


def text_of(element_id: str) -> str:
    return f"document.getElementById({json.dumps(element_id)}).textContent"


async def read_until(stream: trio.abc.ReceiveStream, prefix: str) -> str:
    buffer = b""
    while True:
        chunk = await stream.receive_some(4096)
        if not chunk:
            raise AssertionError(f"the runner exited before printing {prefix!r}: {buffer.decode()[-2000:]}")
        buffer += chunk
        for line in buffer.decode(errors="replace").splitlines():
            if line.startswith(prefix):
                return line[len(prefix) :].strip()


async def state(http: httpx.AsyncClient) -> dict[str, object]:
    response = await http.get("/api/state")
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


async def wait_state(http: httpx.AsyncClient, predicate: object, timeout_s: float = 20) -> dict[str, object]:
    with trio.fail_after(timeout_s):
        while True:
            snapshot = await state(http)
            if predicate(snapshot):
                return snapshot
            await trio.sleep(0.1)


@pytest.mark.browser
async def test_dashboard_during_a_paced_session(
    chromium_path: str, artifacts_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    process = await trio.lowlevel.open_process(
        [
            TTLIVE,
            "run",
            "--scenario",
            str(HERE / "half_day.toml"),
            "--speed",
            SPEED,
            "--dashboard-port",
            "0",
            "--out",
            str(out),
            "--quiet",
        ],
        env=canary_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        with trio.fail_after(TEST_BUDGET_S):
            assert process.stdout is not None
            url = await read_until(process.stdout, "dashboard: ")
            async with httpx.AsyncClient(base_url=url, timeout=10) as http:
                await wait_state(http, lambda s: s["halt"]["state"] == "ACTIVE")
                profile = tmp_path / "chromium"
                profile.mkdir()
                async with launch_chromium(chromium_path, url, profile) as devtools_port:
                    page_ws = await page_websocket_url(devtools_port, url)
                    async with attach(page_ws) as page:
                        halted_ns, reset_ns = await drive(page, http, artifacts_dir)
            process.send_signal(signal.SIGINT)  # graceful stop: settle, persist, report
            code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code in (0, 130)  # 130: stopped by the signal; 0: the half day ended first
    check_records(out, halted_ns, reset_ns)


async def drive(p: Page, http: httpx.AsyncClient, artifacts_dir: Path) -> tuple[int, int]:
    """Returns (halted since, reset at) in session-clock ns."""
    await p.wait_for(f"Number({text_of('updates')}) >= 1", timeout_s=20)
    assert await p.evaluate(text_of("mode")) == "sim"
    # live values: the session clock and the order/fill counts move without a reload
    await p.evaluate("window.__ttliveMarker = 'same-page'")
    first_ts = await p.evaluate(text_of("ts"))
    first_counts = await p.evaluate(text_of("counts"))
    await p.wait_for(f"{text_of('ts')} !== {json.dumps(first_ts)}", timeout_s=20)
    await p.wait_for(f"{text_of('counts')} !== {json.dumps(first_counts)}", timeout_s=30)
    await p.wait_for(f"{text_of('halt-state')} === 'ACTIVE'")

    # kill from the page, token typed in
    await p.type_into("token", CANARY_TOKEN)
    await p.type_into("reason", "browser drill during a paced session")
    await p.click("kill-btn")
    await p.wait_for("document.getElementById('control-result').dataset.status === '200'")
    halted = await wait_state(http, lambda s: s["halt"]["state"] == "HALTED")
    assert halted["halt"]["trigger"] == "manual"
    # cancel-all ran: the engine's order machines close as the venue's cancel confirmations stream in
    await wait_state(http, lambda s: s["open_orders"]["count"] == 0, timeout_s=10)
    await p.wait_for(f"{text_of('halt-state')} === 'HALTED'")
    halted_ns = rfc3339_to_ns(str(halted["halt"]["since"]))
    orders_at_halt = halted["orders_count"]
    # half an hour of session time passes halted: the engine submits nothing
    half_hour_later = rfc3339_to_ns(str(halted["ts"])) + 1800 * 10**9
    later = await wait_state(http, lambda s: rfc3339_to_ns(str(s["ts"])) > half_hour_later)
    assert later["orders_count"] == orders_at_halt
    assert later["halt"]["state"] == "HALTED"

    # reset with a wrong token: refused, still halted
    await p.type_into("token", "not-the-token")
    await p.type_into("operator", "ci-operator")
    await p.type_into("reason", "drill over")
    await p.click("reset-btn")
    await p.wait_for("document.getElementById('control-result').dataset.status === '401'")
    assert (await state(http))["halt"]["state"] == "HALTED"
    # with the token: trading resumes
    await p.type_into("token", CANARY_TOKEN)
    await p.click("reset-btn")
    await p.wait_for("document.getElementById('control-result').dataset.status === '200'")
    resumed = await wait_state(http, lambda s: s["halt"]["state"] == "ACTIVE")
    reset_ns = rfc3339_to_ns(str(resumed["halt"]["since"]))
    await p.wait_for(f"{text_of('halt-state')} === 'ACTIVE'")
    assert await p.evaluate("window.__ttliveMarker") == "same-page"
    shot = await p.screenshot(artifacts_dir / "runner-dashboard.png")
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 10_000
    return halted_ns, reset_ns


def check_records(out: Path, halted_ns: int, reset_ns: int) -> None:
    """After the run: the engine's own records agree that nothing reached the venue while it was halted."""
    report = json.loads((out / "report.json").read_text())
    assert report["invariant_violations"] == []  # includes "nothing accepted while halted"
    records = load_records(out / "broker.json")
    during = [o.client_order_id for o in records.orders if halted_ns < o.created_at_ns < reset_ns]
    assert during == []
    assert any(o.created_at_ns < halted_ns for o in records.orders)  # it did trade before the kill
    health = load_audit(out / "audit").health
    assert any(r.event_type == "halt" and "browser drill" in str(r.extra["reason"]) for r in health)
    assert any(r.event_type == "reset" and r.extra["operator"] == "ci-operator" for r in health)
