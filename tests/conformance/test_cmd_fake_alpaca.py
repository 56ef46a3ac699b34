"""``ttlive fake-alpaca``: argument errors exit 2, scenarios configure the venue, Ctrl-C stops it cleanly."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from adapters.fake.calendar import et_from_ns
from adapters.fake.market_generator import GeneratorSource
from adapters.fake.market_replay import ReplaySource
from tools import cli
from tools.cmd_fake_alpaca import UsageError, build_server, options_from_args

REPO = Path(__file__).resolve().parents[2]

SCENARIO = """
schema_version = 1
name = "loopback_drill"
seed = 11

[session]
start = "2014-07-03"
bar_interval_s = 30

[account]
type = "cash"
cash_usd = "25000"

[[instruments]]
symbol = "AAA"
sector = "tech"
[[instruments]]
symbol = "BBB"
sector = "tech"

[market]
source = "generator"
correlation = 0.6
[[market.regimes]]
at = "10:30:00"
kind = "flash_crash"
size_pct = 8.0
duration_s = 600

[faults]
rest_429_p = 0.1
[[faults.events]]
at = "11:00:00"
kind = "ws_close"
stream = "data"
code = 1006
day = 0
"""


def _args(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(["fake-alpaca", *argv])


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "70000"],
        ["--port", "x"],
        [],
        ["--port", "0", "--speed", "0"],
        ["--port", "0", "--clock", "moon"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["fake-alpaca", *argv])
    assert exited.value.code == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "0", "--key", "k"], "both --key and --secret"),
        (["--port", "0", "--symbols", "NOPE"], "no market file for NOPE"),
        (["--port", "0", "--cash-usd", "lots"], "--cash-usd"),
        (["--port", "0", "--scenario", "/does/not/exist.toml"], "not found"),
    ],
)
def test_unservable_combinations_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["fake-alpaca", *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_scenario_configures_market_account_clock_and_faults(tmp_path: Path) -> None:
    path = tmp_path / "drill.toml"
    path.write_text(SCENARIO)
    opts = options_from_args(_args("--port", "0", "--scenario", str(path)))
    assert (opts.seed, opts.symbols, opts.bar_interval_s) == (11, ("AAA", "BBB"), 30)
    server = build_server(opts)
    venue = server.venue
    assert isinstance(venue.market, GeneratorSource) and venue.market.sector("AAA") == "tech"
    assert venue.config.account_type == "cash" and venue.config.cash_usd == Decimal(25000)
    assert venue.config.faults.rest_429_p == 0.1
    (event,) = venue.config.faults.events
    assert (event.kind, event.stream, event.code, event.day) == ("ws_close", "data", 1006, 0)
    assert f"{et_from_ns(venue.now_ns):%Y-%m-%d %H:%M}" == "2014-07-03 09:30"  # an open of the scenario date
    with pytest.raises(UsageError, match="do not mix"):
        options_from_args(_args("--port", "0", "--scenario", str(path), "--symbols", "NVDA"))
    replay = build_server(options_from_args(_args("--port", "0", "--symbols", "yhoo", "--seed", "4")))
    assert isinstance(replay.venue.market, ReplaySource) and list(replay.venue.market.symbols) == ["YHOO"]


def test_the_server_answers_and_stops_cleanly_on_ctrl_c() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tools.cli",
            "fake-alpaca",
            "--port",
            "0",
            "--symbols",
            "NVDA",
            "--speed",
            "60",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    watchdog = threading.Timer(120, proc.kill)  # a hung start must not hang the suite
    watchdog.start()
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()  # blocks until the server listens (imports + calendar: a few s)
        if not banner.startswith("fake-alpaca on http://127.0.0.1:"):
            proc.kill()
            raise AssertionError(banner + (proc.stderr.read() if proc.stderr else ""))
        url = banner.split()[2]
        clock = requests.get(
            f"{url}/v2/clock", headers={"APCA-API-KEY-ID": "a", "APCA-API-SECRET-KEY": "b"}, timeout=10
        ).json()
        assert clock["is_open"] is True
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "fake-alpaca stopped" in out
    assert "Traceback" not in err
