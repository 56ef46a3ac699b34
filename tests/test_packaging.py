"""The installed distribution exposes the layout and the console script."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import core.limits
import core.model
import core.ports


def test_console_script_help_lists_commands() -> None:
    exe = Path(sys.executable).with_name("ttlive")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True).stdout
    assert "usage: ttlive" in out


def test_bad_command_exits_2() -> None:
    exe = Path(sys.executable).with_name("ttlive")
    proc = subprocess.run([str(exe), "no-such-command"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr


def test_limits_carry_units_and_spec_values() -> None:
    assert core.limits.RECONNECT_MAX_RETRIES == 5
    assert Decimal("0.05") == core.limits.MAX_POSITION_FRACTION
    assert core.limits.STREAM_BUFFER_MAX_MESSAGES == 10_000


def test_ports_are_protocols() -> None:
    assert getattr(core.ports.BrokerRest, "_is_protocol", False)
