"""Fixtures for the dashboard tests: a headless Chromium found on the machine, or installed once.

The browser test needs Debian's ``chromium``; a fresh machine lacks it, so the first browser test installs
it with apt-get (update first) and every later one reuses it. It skips only when installing is impossible.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM_CANDIDATES: tuple[str, ...] = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
APT_TIMEOUT_S = 900.0  # a cold `apt-get install chromium` downloads ~100 MB
APT_LOCK_WAIT_S = 300  # another process may hold the dpkg lock for a while


def find_chromium() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("chromium")
    return found


def _run_apt(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(
        ["apt-get", "-o", f"DPkg::Lock::Timeout={APT_LOCK_WAIT_S}", *args],
        capture_output=True,
        text=True,
        timeout=APT_TIMEOUT_S,
        env=env,
        check=False,
    )


def install_chromium() -> tuple[str | None, str]:
    """Install Debian's chromium; return (path, "") or (None, why it could not be installed)."""
    if shutil.which("apt-get") is None:
        return None, "chromium is not installed and apt-get is not available on this machine"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return None, "chromium is not installed and installing it with apt-get needs root"
    try:
        update = _run_apt(["update"])
        if update.returncode != 0:
            return None, f"apt-get update failed: {update.stderr.strip()[-500:]}"
        install = _run_apt(["install", "-y", "chromium"])
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"apt-get could not run: {exc}"
    if install.returncode != 0:
        return None, f"apt-get install chromium failed: {install.stderr.strip()[-500:]}"
    path = find_chromium()
    if path is None:
        return None, "apt-get install chromium succeeded but no chromium binary was found"
    return path, ""


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = find_chromium()
    if path is not None:
        return path
    path, why = install_chromium()
    if path is None:
        pytest.skip(f"headless Chromium unavailable: {why}")
    return path


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """tests/artifacts/: screenshots and other outputs a human may want to look at after a run."""
    path = Path(__file__).resolve().parent.parent / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


class ManualClock:
    """A session clock the test moves by hand (``core.ports.Clock``)."""

    def __init__(self, start_ns: int = 1_767_000_000 * 1_000_000_000) -> None:
        self.ns = start_ns

    def now_ns(self) -> int:
        return self.ns

    def advance(self, seconds: float) -> None:
        self.ns += round(seconds * 1e9)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
