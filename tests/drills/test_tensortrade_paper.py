"""Drill (issue 21 item B): ``ttlive run --mode paper --agent tensortrade`` as a separate OS process against the
loopback fake (``ttlive fake-alpaca``): the shipped ONNX policy steps a TensorTrade TradingEnv built from
AlpacaDataFeed (the engine's market-data-stream bars), AlpacaExchange and AlpacaBroker; every order it places
is a signal the audit records, a RiskGuard decision and an order, and the drill invariants hold (one venue
order per attempt, every venue fill audited once, engine positions == the venue's)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from adapters.policy.contract import CONTRACT_EVENT
from adapters.tensortrade.host import MODEL_ID
from core.audit import is_submission
from sim.invariants import audit_records
from tools.drill import FIRST_TRADE_TIMEOUT_S, RUNNER_READY_TIMEOUT_S, SYMBOLS, DrillRig, our_fills

COID = re.compile(r"^tt-(?P<signal>[0-9a-f-]{36})-(?P<attempt>\d+)$")


class TensorTradeRig(DrillRig):
    """The standard drill rig, its runner the TensorTrade agent on the shipped model, bracket legs off."""

    def write_config(self) -> Path:
        instruments = "".join(f'[[instruments]]\nsymbol = "{s}"\nsector = "{sec}"\n' for s, sec in SYMBOLS)
        text = (
            'mode = "paper"\n'
            f"{instruments}"
            # 1 s decisions on the fake's 1 s bars, off the model's 300 s contract: overridden, so audited
            '[policy]\nkind = "onnx"\nmodel = "default"\ndecision_interval_s = 1.0\n'
            'contract_override = ["decision_interval_s"]\n'
            "[execution]\nbrackets = false\n"
            "[dashboard]\nenabled = false\n"
            f'[audit]\ndir = "{self.audit_dir.as_posix()}"\n'
            f'[broker]\npaper_url = "{self.url}"\ndata_url = "{self.url}"\n'
        )
        path = self.workdir / "config.toml"
        path.write_text(text, encoding="utf-8")
        return path

    def start_runner(self) -> object:
        config = self.write_config()
        self.runner_lives += 1
        proc = self._spawn(
            f"runner{self.runner_lives}",
            ["run", "--config", str(config), "--mode", "paper", "--agent", "tensortrade", "--no-dashboard",
             "--quiet"],
            env={"APCA_API_KEY_ID": "drill-key-id", "APCA_API_SECRET_KEY": "drill-secret-key"},
        )
        self._wait_for_line(proc, "trading until", RUNNER_READY_TIMEOUT_S)
        self.runner = proc
        return proc


@pytest.mark.slow
def test_tensortrade_agent_trades_paper_against_the_fake_through_risk_and_audit(tmp_path: Path) -> None:
    lines: list[str] = []
    rig = TensorTradeRig(tmp_path / "work", lines.append)
    rig.workdir.mkdir(parents=True)
    try:
        rig.start_venue()
        rig.start_runner()
        rig.wait_for("first fill of the TensorTrade agent", lambda r: our_fills(r) >= 1, FIRST_TRADE_TIMEOUT_S)
        time.sleep(3.0)  # a few more decisions
        rig.stop_runner()
        violations = rig.check()
        venue = rig.records()
    finally:
        rig.close()
    assert rig.runner is not None
    output = rig.runner.output()
    assert violations == [], "\n".join([*violations, *lines, output[-3000:]])
    assert "tensortrade agent (ppo-nvda-orcl-yhoo-" in output and "decisions on the engine" in output, output[-3000:]

    audit = rig.audit_dir
    started = [r for r in audit_records(audit, "health") if r["extra"].get("event") == "runner_started"]
    assert started and started[0]["extra"]["agent"] == "tensortrade"
    contract = [r for r in audit_records(audit, "health") if r["extra"].get("event") == CONTRACT_EVENT]
    assert contract and contract[0]["extra"]["overridden_fields"] == "policy.decision_interval_s"

    # Every order of the agent: its signal (source tensortrade), a passed risk check, the order record.
    signals = {r["signal_id"]: r for r in audit_records(audit, "signals") if r["model_id"] == MODEL_ID}
    risk = {r["signal_id"]: r for r in audit_records(audit, "risk")}
    orders = [r for r in audit_records(audit, "orders") if is_submission(r["event_type"], r["extra"])]
    assert orders, "the agent placed no order"
    assert {s["extra"]["source"] for s in signals.values()} == {"tensortrade"}
    for order in orders:
        assert order["signal_id"] in signals, order
        assert risk[order["signal_id"]]["risk_check_result"]["passed"] is True
        assert COID.match(str(order["extra"]["client_order_id"]))
    assert all(str(o["client_order_id"]).startswith("tt-") for o in venue["orders"])
