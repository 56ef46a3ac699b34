"""``ttlive kill`` / ``ttlive reset``: through the persisted state (next start halted / active, audited) and
through a live runner's dashboard API (bearer token)."""

from __future__ import annotations

import json
import socket
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
import trio

from adapters.alerts import DashboardAlertSink
from adapters.alpaca.clock import WallClock
from adapters.audit_jsonl import JsonlAuditSink, read_latch, verify_dir
from adapters.dashboard.engine_source import EngineDashboardSource
from adapters.dashboard.server import serve_dashboard
from adapters.dashboard.source import CommandRejected, StaticDashboardSource
from adapters.metrics import Metrics
from adapters.state_store import FileStateStore
from core.engine.state import EngineState
from core.halt_fsm import CancelAllOrders, HaltMachine, HaltState
from core.ledger import Ledger
from core.triggers import KillSwitchMonitor
from tests.dashboard.conftest import ManualClock
from tools.cli import main
from tools.compliance import load_audit
from tools.runner import idle_latch

TOKEN = "control-token-4b7e9a"


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    state = EngineState(
        ledger=Ledger(cash_usd=Decimal(100_000)),
        start_of_day_equity=Decimal(100_000),
        start_of_week_equity=Decimal(100_000),
        session_date="2014-06-02",
    )
    monitor = KillSwitchMonitor()
    monitor.state.consecutive_losses = 4
    state.triggers = monitor.to_dict()
    path = tmp_path / "run" / "state.json"
    FileStateStore(path).save(state.to_dict())
    return path


def halt_of(path: Path) -> HaltMachine:
    data = json.loads(path.read_text())
    return HaltMachine.from_state(data["halt"]) if data["halt"] else HaltMachine()


def test_kill_through_the_state_file_latches_and_audits(
    state_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["kill", "--reason", "desk review", "--operator", "j.doe", "--state", str(state_file)]) == 0
    halt = halt_of(state_file)
    assert halt.state is HaltState.HALTING  # the next start cancels every open order, then settles HALTED
    assert halt.first_trip is not None and halt.first_trip.trigger == "manual"
    assert any(isinstance(c, CancelAllOrders) for c in halt.recovery_commands(0))
    EngineState.from_dict(json.loads(state_file.read_text()))  # still a state the engine can load
    audit_dir = state_file.parent / "audit"
    assert verify_dir(audit_dir).ok
    halts = [r for r in load_audit(audit_dir).health if r.event_type == "halt"]
    assert len(halts) == 1
    assert halts[0].extra["reason"] == "desk review" and halts[0].extra["operator"] == "j.doe"
    assert halts[0].extra["route"] == "state_file"
    assert "halting" in capsys.readouterr().out


def test_reset_needs_operator_and_reason(state_file: Path) -> None:
    assert main(["kill", "--reason", "stop", "--state", str(state_file)]) == 0
    with pytest.raises(SystemExit) as exit_:
        main(["reset", "--operator", "j.doe", "--state", str(state_file)])  # no --reason
    assert exit_.value.code == 2
    assert main(["reset", "--operator", " ", "--reason", "fine", "--state", str(state_file)]) == 2
    assert main(["reset", "--operator", "j.doe", "--reason", "", "--state", str(state_file)]) == 2
    assert halt_of(state_file).state is HaltState.HALTING  # untouched
    assert not [r for r in load_audit(state_file.parent / "audit").health if r.event_type == "reset"]


def test_reset_through_the_state_file_resumes_and_audits(state_file: Path) -> None:
    assert main(["kill", "--reason", "stop", "--state", str(state_file)]) == 0
    assert main(["reset", "--operator", "j.doe", "--reason", "reviewed", "--state", str(state_file)]) == 0
    data = json.loads(state_file.read_text())
    halt = halt_of(state_file)
    assert halt.state is HaltState.ACTIVE
    assert halt.last_reset is not None and halt.last_reset.operator == "j.doe"
    assert data["triggers"]["consecutive_losses"] == 0  # re-armed, as the engine's own reset does
    resets = [r for r in load_audit(state_file.parent / "audit").health if r.event_type == "reset"]
    assert [(r.extra["operator"], r.extra["reason"]) for r in resets] == [("j.doe", "reviewed")]
    assert verify_dir(state_file.parent / "audit").ok
    assert main(["reset", "--operator", "j.doe", "--reason", "again", "--state", str(state_file)]) == 1


def test_state_route_refuses_while_a_runner_holds_the_audit_trail(state_file: Path) -> None:
    with JsonlAuditSink(state_file.parent / "audit", fsync=False):  # what a live runner keeps open
        assert main(["kill", "--reason", "stop", "--state", str(state_file)]) == 1
    assert halt_of(state_file).state is HaltState.ACTIVE


def test_kill_without_a_state_file_pre_latches_and_reset_without_one_exits_2(tmp_path: Path) -> None:
    state = tmp_path / "none.json"
    assert main(["reset", "--operator", "j.doe", "--reason", "x", "--state", str(state)]) == 2
    assert main(["kill", "--reason", "stop", "--state", str(state)]) == 0  # issue 16: a runner not yet started
    assert halt_of(state).state is HaltState.HALTING
    latch = read_latch(tmp_path / "audit")  # the trail alone would keep the next start halted (core.recovery)
    assert latch.halted and latch.reason == "stop" and latch.trigger == "manual"


async def test_dashboard_route_needs_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    source = StaticDashboardSource(clock=WallClock(), mode="paper")
    monkeypatch.delenv("TTLIVE_DASHBOARD_TOKEN", raising=False)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(partial(serve_dashboard, source, Metrics(), "127.0.0.1", 0, TOKEN))
        url = f"http://127.0.0.1:{port}"

        async def cli(*argv: str) -> int:  # the CLI blocks on HTTP: run it beside the server's loop
            return await trio.to_thread.run_sync(main, list(argv))

        assert await cli("kill", "--reason", "x", "--dashboard", url) == 2  # no token at all
        assert await cli("kill", "--reason", "x", "--dashboard", url, "--token", "wrong") == 2
        assert not source.halted
        monkeypatch.setenv("TTLIVE_DASHBOARD_TOKEN", TOKEN)
        assert (
            await cli("reset", "--operator", "j.doe", "--reason", "x", "--dashboard", url) == 1
        )  # not halted
        assert await cli("kill", "--reason", "from the cli", "--dashboard", url) == 0
        assert source.halted and source.commands[-1].reason == "from the cli"
        assert await cli("reset", "--operator", "j.doe", "--reason", "ok", "--dashboard", url) == 0
        assert not source.halted and source.commands[-1].actor == "j.doe"
        nursery.cancel_scope.cancel()
    assert (
        await trio.to_thread.run_sync(main, ["kill", "--reason", "x", "--dashboard", url, "--token", TOKEN])
        == 1
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_live_runner_is_reached_through_the_dashboard_its_config_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    config = tmp_path / "paper.toml"
    config.write_text(f'[audit]\ndir = "{tmp_path / "paper" / "audit"}"\n[dashboard]\nport = {port}\n')
    state = EngineState(
        ledger=Ledger(cash_usd=Decimal(1000)),
        start_of_day_equity=Decimal(1000),
        start_of_week_equity=Decimal(1000),
    )
    FileStateStore(tmp_path / "paper" / "state.json").save(state.to_dict())
    source = StaticDashboardSource(clock=WallClock(), mode="paper")
    monkeypatch.setenv("TTLIVE_DASHBOARD_TOKEN", TOKEN)
    with JsonlAuditSink(tmp_path / "paper" / "audit", fsync=False):  # the live runner's lock
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(serve_dashboard, source, Metrics(), "127.0.0.1", port, TOKEN))
            code = await trio.to_thread.run_sync(
                main, ["kill", "--reason", "via config", "--config", str(config)]
            )
            nursery.cancel_scope.cancel()
    assert code == 0 and source.halted and source.commands[-1].reason == "via config"
    assert (
        halt_of(tmp_path / "paper" / "state.json").state is HaltState.ACTIVE
    )  # the engine acts, not the file


async def test_dashboard_commands_while_no_engine_runs_change_the_persisted_latch(tmp_path: Path) -> None:
    """A paper runner waiting for the pre-open: a dashboard kill latches the state the engine will load."""
    store = FileStateStore(tmp_path / "state.json", fsync=False)
    state = EngineState(
        ledger=Ledger(cash_usd=Decimal(1000)),
        start_of_day_equity=Decimal(1000),
        start_of_week_equity=Decimal(1000),
    )
    store.save(state.to_dict())
    clock = ManualClock()
    with JsonlAuditSink(tmp_path / "audit", fsync=False) as audit:
        source = EngineDashboardSource(
            mode="paper",
            clock=clock,
            alerts=DashboardAlertSink(),
            idle_command=partial(idle_latch, store, audit, clock),
        )
        await source.kill("before the open", "dashboard")
        assert halt_of(tmp_path / "state.json").state is HaltState.HALTING
        with pytest.raises(ValueError):
            await source.reset("", "no operator")
        await source.reset("j.doe", "false alarm")
        assert halt_of(tmp_path / "state.json").state is HaltState.ACTIVE
        with pytest.raises(CommandRejected):
            await source.reset("j.doe", "again")
    kinds = [(r.event_type, r.extra["route"]) for r in load_audit(tmp_path / "audit").health]
    assert kinds == [("halt", "idle_runner"), ("reset", "idle_runner")]
    with pytest.raises(CommandRejected):  # no idle handler: nothing to command
        await EngineDashboardSource(mode="sim", clock=clock, alerts=DashboardAlertSink()).kill(
            "x", "dashboard"
        )
