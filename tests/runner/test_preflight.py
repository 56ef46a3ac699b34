"""``ttlive preflight``: every spec 6 item exercised; the record it writes is what clears ``--mode live``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from adapters.audit_jsonl import JsonlAuditSink
from core.audit import system_record
from core.config import EngineConfig, parse_config
from core.sessions import SessionOutcome, session_completed_record
from tests.runner.conftest import CANARIES, CANARY_KEY_ID, CANARY_SECRET, CANARY_TOKEN
from tools.cli import main
from tools.cmd_preflight import (
    PAPER_DAYS_MIN,
    check_credentials,
    check_dashboard,
    check_paper_history,
    check_risk,
)
from tools.runner import PREFLIGHT_NAME, RunError, file_sha256, live_gate, state_dir

HERE = Path(__file__).resolve().parent
DRILLS = (
    HERE / "half_day_drills.toml"
)  # ws_close + manual kill + manual reset on a half day: both drills at once
NS = 1_000_000_000


def paper_history(directory: Path, days: int) -> None:
    """What paper runners leave behind: per session day a runner_started record and, at the end, a
    session_completed record (core.sessions). A simulated session, a paper day that crashed (started, never
    completed), one started mid-session and one with a reconciliation mismatch come first: none may count."""
    start = dt.date(2026, 3, 2)  # a Monday
    weekdays = [d for d in (start + dt.timedelta(days=i) for i in range(3 * days + 12)) if d.weekday() < 5]
    spoilt = ["sim", "crashed", "mid_session", "mismatch"]
    with JsonlAuditSink(directory, fsync=False) as sink:
        for i, day in enumerate(weekdays[: days + len(spoilt)]):
            kind = spoilt[i] if i < len(spoilt) else "clean"
            mode = "sim" if kind == "sim" else "paper"
            ts_ns = int(dt.datetime.combine(day, dt.time(13, 25), tzinfo=dt.UTC).timestamp()) * NS
            sink.write(
                system_record(
                    "health", ts_ns=ts_ns, reason="runner started", extra={"event": "runner_started", "mode": mode}
                )
            )
            if kind == "crashed":
                continue
            outcome = SessionOutcome(
                mode=mode,
                session_date=day.isoformat(),
                open_to_close=kind != "mid_session",
                reconciliations=7,
                reconcile_mismatches=1 if kind == "mismatch" else 0,
                reconciliation_halt=False,
                halted=False,
                orders=3,
                fills=3,
            )
            sink.write(session_completed_record(outcome, ts_ns=ts_ns + 7 * 3600 * NS))


@pytest.fixture
def live_config(tmp_path: Path) -> Path:
    path = tmp_path / "live.toml"
    path.write_text(f'[audit]\ndir = "{tmp_path / "live" / "audit"}"\n[risk]\nsize_scale = "0.25"\n')
    return path


def test_all_checks_pass_and_the_record_clears_live(
    live_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", CANARY_KEY_ID)
    monkeypatch.setenv("APCA_API_SECRET_KEY", CANARY_SECRET)
    monkeypatch.setenv("TTLIVE_DASHBOARD_TOKEN", CANARY_TOKEN)
    paper_history(tmp_path / "paper" / "audit", PAPER_DAYS_MIN)
    code = main(
        [
            "preflight",
            "--config",
            str(live_config),
            "--paper-audit",
            str(tmp_path / "paper" / "audit"),
            "--reconnect-scenario",
            str(DRILLS),
            "--kill-scenario",
            str(DRILLS),
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out.out
    config = parse_config(live_config.read_text())
    record = json.loads((state_dir(config) / PREFLIGHT_NAME).read_text())
    assert record["passed"] is True and record["config_sha256"] == file_sha256(live_config)
    assert [c["passed"] for c in record["checks"]] == [True] * 7
    assert (
        "reconnects" in record["checks"][2]["detail"]
        and "reset by preflight" in record["checks"][5]["detail"]
    )
    assert [c for c in CANARIES if c in out.out + out.err + json.dumps(record)] == []
    live_gate(confirmed=True, config_path=live_config, config=config)  # cleared


def test_a_failing_check_fails_the_record(
    live_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    broken = tmp_path / "broken.toml"
    broken.write_text("schema_version = 1\nname = 'x'\nunknown = 1\n")
    code = main(
        [
            "preflight",
            "--config",
            str(live_config),
            "--paper-audit",
            str(tmp_path / "none"),
            "--reconnect-scenario",
            str(HERE / "half_day.toml"),
            "--kill-scenario",
            str(broken),
        ]
    )
    assert code == 1
    config = parse_config(live_config.read_text())
    record = json.loads((state_dir(config) / PREFLIGHT_NAME).read_text())
    assert record["passed"] is False
    failed = {c["name"] for c in record["checks"] if not c["passed"]}
    assert any("credentials" in name for name in failed)
    assert any("reconnection" in name for name in failed)  # half_day.toml has no ws_close to recover from
    assert any("Paper trading" in name for name in failed)
    assert any("RiskGuard" in c["name"] and c["passed"] for c in record["checks"])
    with pytest.raises(RunError, match="did not pass"):
        live_gate(confirmed=True, config_path=live_config, config=config)
    assert "FAIL" in capsys.readouterr().out


def test_individual_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = EngineConfig()
    risk = check_risk(config)
    assert risk.passed and "position_limit" in risk.detail
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    creds = check_credentials(config)
    assert not creds.passed and "APCA_API_KEY_ID" in creds.detail and "APCA_API_SECRET_KEY" in creds.detail
    monkeypatch.delenv("TTLIVE_DASHBOARD_TOKEN", raising=False)
    dashboard = check_dashboard(config)
    assert not dashboard.passed and "TTLIVE_DASHBOARD_TOKEN" in dashboard.detail
    paper_history(tmp_path / "audit", PAPER_DAYS_MIN - 1)
    short = check_paper_history(tmp_path / "audit")
    assert not short.passed and f"{PAPER_DAYS_MIN - 1} paper session day" in short.detail
