"""The conftest helper that finds or installs Chromium: it must explain, not crash, when it cannot install."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.dashboard import conftest


def test_no_apt_get_gives_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    path, why = conftest.install_chromium()
    assert path is None and "apt-get is not available" in why


def test_non_root_gives_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    path, why = conftest.install_chromium()
    assert path is None and "needs root" in why


def test_find_prefers_the_debian_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "access", lambda p, mode: p == "/usr/bin/chromium")
    assert conftest.find_chromium() == "/usr/bin/chromium"
    monkeypatch.setattr(os, "access", lambda p, mode: False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert conftest.find_chromium() is None
