"""Fixtures for the runner tests: one default ``ttlive run`` (a subprocess, as ``make run`` does) shared by
the tests that read its outputs, with recognisable fake secrets in its environment; Chromium from
tests/dashboard.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.dashboard.conftest import artifacts_dir, chromium_path  # noqa: F401  (shared fixtures, not copies)

HERE = Path(__file__).resolve().parent
TTLIVE = str(Path(sys.executable).parent / "ttlive")
RUN_TIMEOUT_S = 300.0
CANARY_KEY_ID = "PKCANARYKEYID7Q2W"
CANARY_SECRET = "canary-secret-9d8c7b6a5f4e"
CANARY_TOKEN = "canary-token-3e2d1c0b"
CANARIES = (CANARY_KEY_ID, CANARY_SECRET, CANARY_TOKEN)


def canary_env() -> dict[str, str]:
    return {
        **os.environ,
        "APCA_API_KEY_ID": CANARY_KEY_ID,
        "APCA_API_SECRET_KEY": CANARY_SECRET,
        "TTLIVE_DASHBOARD_TOKEN": CANARY_TOKEN,
    }


@dataclass
class RunResult:
    cwd: Path
    out: Path
    returncode: int
    stdout: str
    stderr: str
    url: str
    api: dict[str, tuple[int, str]] = field(
        default_factory=dict
    )  # what the dashboard answered during the run


def read_lines_until(process: subprocess.Popen[str], prefix: str, sink: list[str]) -> str:
    """Read stdout lines (kept in ``sink``) until one starts with ``prefix``; return its remainder."""
    assert process.stdout is not None
    for line in process.stdout:
        sink.append(line)
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    return ""


def drain(stream: object, sink: list[str]) -> threading.Thread:
    def pump() -> None:
        for line in stream:  # type: ignore[attr-defined]
            sink.append(line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """``ttlive run`` with no scenario (the default session, shipped INT8 model) from an empty directory, the
    canary secrets in its environment; while it runs, its dashboard is read and sent a wrongly-signed kill."""
    cwd = tmp_path_factory.mktemp("default-run")
    process = subprocess.Popen(
        [TTLIVE, "run", "--dashboard-port", "0", "--linger", "3"],
        cwd=cwd,
        env=canary_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out_lines: list[str] = []
    err_lines: list[str] = []
    err_thread = drain(process.stderr, err_lines)
    api: dict[str, tuple[int, str]] = {}
    try:
        url = read_lines_until(process, "dashboard: ", out_lines)
        if url:
            with httpx.Client(base_url=url, timeout=10) as http:
                for path in ("/api/state", "/metrics"):
                    r = http.get(path)
                    api[path] = (r.status_code, r.text)
                r = http.post(
                    "/api/kill", json={"reason": "x"}, headers={"authorization": "Bearer wrong-token"}
                )
                api["/api/kill"] = (r.status_code, r.text)
        out_thread = drain(process.stdout, out_lines)
        process.wait(timeout=RUN_TIMEOUT_S)
        out_thread.join(10)
        err_thread.join(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return RunResult(
        cwd=cwd,
        out=cwd / "runs" / "sim" / "latest",
        returncode=process.returncode,
        stdout="".join(out_lines),
        stderr="".join(err_lines),
        url=url,
        api=api,
    )
