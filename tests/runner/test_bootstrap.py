"""The composition root: one place decides the adapters, the run directory and the audit sink."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adapters.alpaca.config import Credentials
from adapters.bootstrap import BrokerLink
from adapters.rundir import run_layout
from core.config import BrokerSection, EngineConfig, Mode, for_mode

ROOT = Path(__file__).resolve().parents[2]
KEY = Credentials(key_id="PKTESTBOOTSTRAP01", secret_key="not-a-real-secret-0001")


def test_paper_and_sim_talk_to_alpaca_paper_and_live_to_live() -> None:
    broker = BrokerSection()
    for mode in (Mode.SIM, Mode.PAPER):
        link = BrokerLink.alpaca(mode, broker, KEY)
        assert link.trading_url == "https://paper-api.alpaca.markets"
        assert link.trading_stream_url == "wss://paper-api.alpaca.markets/stream"
    live = BrokerLink.alpaca(Mode.LIVE, broker, KEY)
    assert live.trading_url == "https://api.alpaca.markets"
    assert live.trading_stream_url == "wss://api.alpaca.markets/stream"
    assert live.data_url == "https://data.alpaca.markets"
    assert live.data_stream_url == "wss://stream.data.alpaca.markets/v2/iex"
    assert live.transport is None and live.ws_connect is None  # the network


def test_a_loopback_fake_serves_every_url_and_the_feed_is_the_configured_one() -> None:
    broker = BrokerSection(paper_url="http://127.0.0.1:8080/", data_url="http://127.0.0.1:8080", feed="sip")
    link = BrokerLink.alpaca(Mode.PAPER, broker, KEY)
    assert link.trading_url == "http://127.0.0.1:8080"
    assert link.trading_stream_url == "ws://127.0.0.1:8080/stream"
    assert link.data_stream_url == "ws://127.0.0.1:8080/v2/sip"
    assert link.feed == "sip"
    assert link.config().trading_url == link.trading_url


def test_run_layout_is_the_configured_audit_dir_and_its_parent_or_an_owned_out_dir(tmp_path: Path) -> None:
    paper = run_layout(for_mode(EngineConfig(), Mode.PAPER))
    assert paper.directory == Path("runs/paper/latest")
    assert paper.audit_dir == Path("runs/paper/latest/audit")
    assert paper.state_path == Path("runs/paper/latest/state.json")
    owned = run_layout(EngineConfig(), out_dir=tmp_path)
    assert owned.audit_dir == tmp_path / "audit" and owned.state_path == tmp_path / "state.json"


@pytest.mark.parametrize("constructor", ["Engine", "AlpacaRest", "AlpacaData", "TradingStream", "MarketDataStream"])
def test_only_the_composition_root_builds_engines_and_broker_adapters(constructor: str) -> None:
    """Entry points (world, runner, backtest, drills, sweeps, swarm) stay thin: they ask adapters.bootstrap.
    Benchmarks measure the adapter itself and may build it directly."""
    pattern = re.compile(rf"(?<![\w.]){constructor}(\.from_config)?\(")
    offenders = []
    for path in sorted(ROOT.glob("*/**/*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.split("/")[0] not in ("core", "adapters", "sim", "tools") or rel.startswith("tools/bench/"):
            continue
        if rel == "adapters/bootstrap.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line) and not line.lstrip().startswith(("class ", "def ", "#")):
                offenders.append(f"{rel}:{number}: {line.strip()}")
    assert offenders == []
