"""Sessions as the audit trail proves them (core.sessions): paper evidence, the go-live cap and its audited lift."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio

from adapters.audit_jsonl import JsonlAuditSink, verify_dir
from core.audit import system_record
from core.config import Mode, parse_config
from core.engine.snapshot import EngineSnapshot
from core.engine.state import Counters
from core.ports import BrokerError, BrokerUnavailable
from core.sessions import (
    GO_LIVE_CAP_LIFTED_EVENT,
    GO_LIVE_SESSIONS,
    SessionOutcome,
    counted_sessions,
    go_live_cap_problem,
    session_completed_record,
)
from tools.cli import main
from tools.compliance import load_audit
from tools.runner import BrokerRun, RunError, RunSettings, go_live_gate, load_config, session_record

NS = 1_000_000_000


def outcome(day: dt.date, mode: str = "live", **changes: object) -> SessionOutcome:
    fields: dict[str, object] = {
        "mode": mode, "session_date": day.isoformat(), "open_to_close": True, "reconciliations": 5,
        "reconcile_mismatches": 0, "reconciliation_halt": False, "halted": False, "orders": 2, "fills": 2,
    }  # fmt: skip
    fields.update(changes)
    return SessionOutcome(**fields)  # type: ignore[arg-type]


def ts(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(21, 0), tzinfo=dt.UTC).timestamp()) * NS


def weekdays(n: int) -> list[dt.date]:
    start = dt.date(2026, 3, 2)
    days = [start + dt.timedelta(days=i) for i in range(3 * n + 7)]
    return [d for d in days if d.weekday() < 5][:n]


def test_only_whole_clean_sessions_count() -> None:
    days = weekdays(6)
    records = [
        session_completed_record(outcome(days[0]), ts_ns=ts(days[0])),
        session_completed_record(outcome(days[1], open_to_close=False), ts_ns=ts(days[1])),
        session_completed_record(outcome(days[2], reconcile_mismatches=2), ts_ns=ts(days[2])),
        session_completed_record(outcome(days[3], reconciliations=0), ts_ns=ts(days[3])),
        session_completed_record(outcome(days[4], reconciliation_halt=True), ts_ns=ts(days[4])),
        session_completed_record(outcome(days[5], mode="paper"), ts_ns=ts(days[5])),
        session_completed_record(outcome(days[0]), ts_ns=ts(days[0]) + NS),  # the same day twice: one session
        system_record("health", ts_ns=ts(days[5]), extra={"event": "runner_started", "mode": "live"}),
    ]
    assert counted_sessions(records, "live") == [days[0]]
    assert counted_sessions(records, "paper") == [days[5]]
    assert records[0].extra["counts"] is True and records[1].extra["counts"] is False
    # a halt that is not a reconciliation halt does not spoil the evidence (a loss limit doing its job)
    halted = outcome(days[0], halted=True)
    assert halted.counts


def test_go_live_cap_needs_ten_counted_live_sessions_or_a_lift() -> None:
    days = weekdays(GO_LIVE_SESSIONS)
    nine = [session_completed_record(outcome(d), ts_ns=ts(d)) for d in days[:-1]]
    problem = go_live_cap_problem(nine, Decimal("1"))
    assert problem is not None and "size_scale = 1" in problem and f"only {GO_LIVE_SESSIONS - 1} of" in problem
    assert go_live_cap_problem(nine, Decimal("0.25")) is None  # the reduced size is always allowed
    ten = [*nine, session_completed_record(outcome(days[-1]), ts_ns=ts(days[-1]))]
    assert go_live_cap_problem(ten, Decimal("1")) is None
    paper = [session_completed_record(outcome(d, mode="paper"), ts_ns=ts(d)) for d in days]
    assert go_live_cap_problem(paper, Decimal("1")) is not None  # paper sessions are not live sessions
    lift = system_record("health", ts_ns=ts(days[0]), operator="ana", reason="r",
                         extra={"event": GO_LIVE_CAP_LIFTED_EVENT})  # fmt: skip
    assert go_live_cap_problem([*nine, lift], Decimal("1")) is None


def live_config(tmp_path: Path, size_scale: str) -> Path:
    path = tmp_path / "live.toml"
    path.write_text(f'[audit]\ndir = "{tmp_path / "live" / "audit"}"\n[risk]\nsize_scale = "{size_scale}"\n')
    return path


def test_live_gate_refuses_full_size_until_an_operator_lifts_the_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = live_config(tmp_path, "1.0")
    config = parse_config(path.read_text(), source=str(path))
    with pytest.raises(RunError, match=r"risk.size_scale = 1.0 but only 0 of the first 10 live sessions"):
        go_live_gate(config)
    go_live_gate(parse_config(live_config(tmp_path, "0.25").read_text()))  # reduced size: cleared
    assert main(["lift-go-live-cap", "--config", str(path), "--operator", " ", "--reason", "x"]) == 2
    assert main(["lift-go-live-cap", "--config", str(path), "--operator", "ana", "--reason", "two weeks clean"]) == 0
    assert "go-live cap lifted after 0 live session(s) by ana" in capsys.readouterr().out
    go_live_gate(config)  # lifted
    audit_dir = tmp_path / "live" / "audit"
    [lift] = [r for r in load_audit(audit_dir).health if r.extra.get("event") == GO_LIVE_CAP_LIFTED_EVENT]
    assert lift.extra["operator"] == "ana"
    assert lift.extra["reason"] == "two weeks clean"
    assert verify_dir(audit_dir).ok


def test_the_lift_is_refused_while_a_runner_holds_the_trail(tmp_path: Path) -> None:
    path = live_config(tmp_path, "1.0")
    with JsonlAuditSink(tmp_path / "live" / "audit", fsync=False):
        assert main(["lift-go-live-cap", "--config", str(path), "--operator", "ana", "--reason", "r"]) == 1
    assert main(["lift-go-live-cap", "--config", str(tmp_path / "missing.toml"), "--operator", "a",
                 "--reason", "r"]) == 2  # fmt: skip


def snapshot(ts_ns: int, counters: Counters, trips: tuple[tuple[int, str, str], ...] = ()) -> EngineSnapshot:
    return EngineSnapshot(
        ts_ns=ts_ns, running=True, ready=True, halt=None, session_date="2026-03-02", counters=counters,
        trip_log=trips,
    )  # fmt: skip


def test_the_session_record_counts_this_session_only() -> None:
    before = snapshot(10 * NS, Counters(reconciliations=40, reconcile_mismatches=3, orders_submitted=9, fills=9))
    old_trip = ((5 * NS, "reconciliation_mismatch", "yesterday"),)
    after = snapshot(
        99 * NS, Counters(reconciliations=47, reconcile_mismatches=3, orders_submitted=12, fills=11), old_trip
    )
    record = session_record(after, before, mode="paper", open_to_close=True)
    assert record.extra["reconciliations"] == 7 and record.extra["reconcile_mismatches"] == 0
    assert record.extra["orders"] == 3 and record.extra["fills"] == 2
    assert record.extra["reconciliation_clean"] is True and record.extra["counts"] is True
    tripped = snapshot(99 * NS, after.counters, (*old_trip, (50 * NS, "reconciliation_mismatch", "today")))
    assert session_record(tripped, before, mode="paper", open_to_close=True).extra["counts"] is False
    assert session_record(after, before, mode="paper", open_to_close=False).extra["counts"] is False


class _QuietUI:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, text: str) -> None:
        self.lines.append(text)

    def progress(self, done_s: int, total_s: int) -> None:
        pass

    def dashboard(self, url: str) -> None:
        pass


def _broker_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sessions: int) -> tuple[BrokerRun, _QuietUI]:
    from tests.runner.conftest import CANARY_KEY_ID, CANARY_SECRET

    monkeypatch.setenv("APCA_API_KEY_ID", CANARY_KEY_ID)
    monkeypatch.setenv("APCA_API_SECRET_KEY", CANARY_SECRET)
    path = tmp_path / "paper.toml"
    tmp_path.mkdir(parents=True, exist_ok=True)
    path.write_text(f'mode = "paper"\n[audit]\ndir = "{tmp_path / "paper" / "audit"}"\n')
    config = load_config(path)
    ui = _QuietUI()
    return BrokerRun(RunSettings(mode=Mode.PAPER, config=config, config_path=path, sessions=sessions), ui), ui


def test_the_runner_goes_from_session_to_session_and_retries_only_what_is_transient(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, ui = _broker_run(tmp_path, monkeypatch, sessions=3)
    script: list[BaseException | None] = [None, BrokerUnavailable("down"), trio.TooSlowError(), None, None]
    calls: list[str] = []

    async def session() -> None:
        calls.append("session")
        error = script.pop(0)
        if error is not None:
            raise error

    async def pause(seconds: float) -> None:
        calls.append(f"pause {seconds:g}")

    monkeypatch.setattr(run, "_main", session)
    monkeypatch.setattr(run, "_pause", pause)
    outcome = run.run()
    assert calls == ["session", "session", "pause 30", "session", "pause 120", "session", "session"]
    assert outcome.sessions == 3 and outcome.exit_code == 0 and script == []
    assert sum("retrying" in line for line in ui.lines) == 2

    refused, _ = _broker_run(tmp_path / "b", monkeypatch, sessions=0)
    monkeypatch.setattr(refused, "_main", _raises(BrokerError("unauthorized", status=401)))
    outcome = refused.run()  # a refusal is not retried: a retry would only repeat it
    assert outcome.exit_code == 1 and outcome.sessions == 0 and "401" not in outcome.messages[0]

    flaky, _ = _broker_run(tmp_path / "c", monkeypatch, sessions=0)
    attempts: list[float] = []

    async def no_pause(seconds: float) -> None:
        attempts.append(seconds)

    monkeypatch.setattr(flaky, "_main", _raises(BrokerUnavailable("down")))
    monkeypatch.setattr(flaky, "_pause", no_pause)
    outcome = flaky.run()  # the broker stays down: three back-offs, then the run ends failed
    assert attempts == [30.0, 120.0, 600.0] and outcome.exit_code == 1


def _raises(error: BaseException) -> Any:
    async def fail() -> None:
        raise error

    return fail
