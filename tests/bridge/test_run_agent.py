"""``ttlive run --agent tensortrade`` (issue 21 item B), simulated: the shipped policy steps a TensorTrade
TradingEnv on the engine's bars; each of its orders is an audited signal, a RiskGuard decision and an order;
while the kill switch is latched nothing of it reaches the venue."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from adapters.tensortrade.host import MODEL_ID
from core.audit import is_submission, ts_ns_from_iso
from sim.invariants import audit_records
from tools.cli import main

ROOT = Path(__file__).resolve().parents[2]
DRILLS = ROOT / "tests" / "runner" / "half_day_drills.toml"  # the trading stream drops; a kill at 10:40, reset 11:30


@pytest.fixture(scope="module")
def tt_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tt") / "run"
    rc = main(["run", "--agent", "tensortrade", "--scenario", str(DRILLS), "--no-dashboard", "--quiet",
               "--out", str(out)])
    assert rc == 0
    return out


def test_every_agent_order_is_a_signal_a_risk_check_and_an_order(tt_run: Path) -> None:
    audit = tt_run / "audit"
    signals = {r["signal_id"]: r for r in audit_records(audit, "signals")}
    risk = {r["signal_id"]: r for r in audit_records(audit, "risk")}
    orders = [r for r in audit_records(audit, "orders") if is_submission(r["event_type"], r["extra"])]
    assert len(orders) >= 3
    for order in orders:
        signal = signals[order["signal_id"]]
        assert signal["model_id"] == MODEL_ID and signal["extra"]["source"] == "tensortrade"
        check = risk[order["signal_id"]]
        assert check["risk_check_result"]["passed"] is True
        assert ts_ns_from_iso(signal["timestamp"]) <= ts_ns_from_iso(check["timestamp"]) \
            <= ts_ns_from_iso(order["timestamp"])
    report = msgspec.json.decode((tt_run / "report.json").read_bytes())
    assert report["invariant_violations"] == [] and report["orders_submitted"] == len(orders)


def test_nothing_of_the_agent_reaches_the_venue_while_halted(tt_run: Path) -> None:
    audit = tt_run / "audit"
    health = audit_records(audit, "health")
    halt = next(ts_ns_from_iso(r["timestamp"]) for r in health if r["event_type"] == "halt")
    reset = next(ts_ns_from_iso(r["timestamp"]) for r in health if r["event_type"] == "reset")
    assert halt < reset
    placed = [ts_ns_from_iso(r["timestamp"]) for r in audit_records(audit, "orders")
              if is_submission(r["event_type"], r["extra"])]
    assert not [t for t in placed if halt < t < reset], "an order went out while the kill switch was latched"
    refused = [r for r in audit_records(audit, "risk")
               if halt < ts_ns_from_iso(r["timestamp"]) < reset and not r["risk_check_result"]["passed"]]
    signals = [r for r in audit_records(audit, "signals")
               if halt < ts_ns_from_iso(r["timestamp"]) < reset and r["extra"].get("action") != "CANCEL"]
    assert signals, "the agent kept deciding while halted (the drill exercised the latch)"
    assert len(refused) == len(signals), "every agent signal while halted is refused by the risk actor"
    assert any(t > reset for t in placed), "the agent trades again after the audited reset"


def test_a_carried_forward_bar_reads_as_stale() -> None:
    """The engine's gap fills keep their mark on the TensorTrade side (BridgeClient.stale)."""
    from decimal import Decimal

    from adapters.tensortrade.client import BridgeClient
    from core.engine.market import carry_forward
    from core.model import Bar

    class Host:
        symbols = ("NVDA",)

    client = BridgeClient(Host())  # type: ignore[arg-type]
    assert not client.stale("NVDA")
    bar = Bar(symbol="NVDA", open=Decimal(10), high=Decimal(11), low=Decimal(9), close=Decimal(10),
              volume=Decimal(100), ts_ns=0)
    client.windows["NVDA"].append(bar)
    assert not client.stale("NVDA")
    client.windows["NVDA"].append(carry_forward(bar, 300_000_000_000))
    assert client.stale("NVDA")
