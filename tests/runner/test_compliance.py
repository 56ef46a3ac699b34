"""``ttlive compliance`` on the default run: a clean run reconciles; every kind of tampering is reported."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from core.compliance import AuditTrail, BrokerRecords, check, reconcile
from tests.runner.conftest import RunResult
from tools.cli import main
from tools.compliance import load_audit, load_records
from tools.compliance_report import weekly_report_html

DAY = dt.date(2014, 6, 2)  # the default session's date


@pytest.fixture
def loaded(default_run: RunResult) -> tuple[BrokerRecords, AuditTrail]:
    return load_records(default_run.out / "broker.json"), load_audit(default_run.out / "audit")


def test_clean_run_has_zero_differences(default_run: RunResult, tmp_path: Path) -> None:
    assert (
        main(
            [
                "compliance",
                "--date",
                DAY.isoformat(),
                "--sim-report",
                str(default_run.out),
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    result = json.loads((tmp_path / f"compliance-{DAY}.json").read_text())
    assert result["differences"] == []
    counts = result["counts"]
    assert counts["fill_activities"] == counts["audit_fill_records"] >= 1
    assert counts["orders"] == counts["audit_order_records"] >= 1
    pnl = result["daily_pnl"]
    assert pnl["realized_difference_usd"] == "0.00"
    # the day started flat: the broker's equity change is exactly realized + unrealized P&L
    assert Decimal(pnl["equity_change_usd"]) == (
        Decimal(pnl["realized_pl_audit_usd"]) + Decimal(pnl["unrealized_pl_broker_usd"])
    )
    html = (tmp_path / "weekly-2014-W23.html").read_text()
    for section in (
        "Equity",
        "Drawdown",
        "Slippage",
        "Rejection patterns",
        "Risk-rule trigger frequency",
        "Daily P&amp;L reconciliation",
    ):
        assert section in html, section
    assert html.count('src="data:image/png;base64,') == 5


def test_a_removed_audit_fill_is_reported(
    default_run: RunResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(default_run.out / "audit", run_dir / "audit")
    shutil.copy(default_run.out / "broker.json", run_dir / "broker.json")
    fills_file = sorted((run_dir / "audit" / "fills").glob("*.jsonl"))[0]
    lines = fills_file.read_text().splitlines(keepends=True)
    removed = json.loads(lines[3])
    fills_file.write_text("".join(lines[:3] + lines[4:]))
    assert main(["compliance", "--date", DAY.isoformat(), "--sim-report", str(run_dir)]) == 1
    result = json.loads((run_dir / "compliance" / f"compliance-{DAY}.json").read_text())
    kinds = {(d["kind"], d["subject"]) for d in result["differences"]}
    assert ("missing_audit_fill", removed["extra"]["execution_id"]) in kinds
    assert ("position_mismatch", removed["symbol"]) in kinds
    assert len(result["differences"]) == 2
    assert removed["extra"]["execution_id"] in capsys.readouterr().out


def test_duplicates_mismatches_and_unaudited_orders_are_reported(
    loaded: tuple[BrokerRecords, AuditTrail],
) -> None:
    records, trail = loaded
    assert reconcile(DAY, records, trail) == []
    tampered = AuditTrail(fills=list(trail.fills), orders=list(trail.orders))
    tampered.fills.append(trail.fills[0])  # the same execution recorded twice
    second = trail.fills[1]
    tampered.fills[1] = msgspec.structs.replace(second, quantity=second.quantity + 1)
    dropped = tampered.orders.pop(0)
    kinds = {(d.kind, d.subject) for d in reconcile(DAY, records, tampered)}
    assert ("duplicate_audit_fill", trail.fills[0].extra["execution_id"]) in kinds
    assert ("fill_mismatch", second.extra["execution_id"]) in kinds
    assert ("missing_audit_order", dropped.extra["client_order_id"]) in kinds
    assert {k for k, _ in kinds} >= {"position_mismatch"}


def test_fills_the_broker_does_not_know_are_reported(loaded: tuple[BrokerRecords, AuditTrail]) -> None:
    records, trail = loaded
    lost = records.activities[0]
    fewer = msgspec.structs.replace(records, activities=records.activities[1:])
    kinds = {(d.kind, d.subject) for d in reconcile(DAY, fewer, trail)}
    assert ("unknown_audited_fill", lost.id.rsplit("::", 1)[-1]) in kinds
    assert (
        reconcile(DAY + dt.timedelta(days=1), records, trail) == []
    )  # another day: nothing of that day differs


def test_weekly_report_renders_an_empty_week(loaded: tuple[BrokerRecords, AuditTrail]) -> None:
    records, _trail = loaded
    empty = msgspec.structs.replace(
        records,
        activities=[],
        orders=[],
        positions=[],
        equity_points=[],
        portfolio_history={"timestamp": [], "equity": []},
    )
    result = check(DAY, empty, AuditTrail())
    assert result.ok
    html = weekly_report_html(DAY, empty, AuditTrail(), result)
    assert "Weekly performance review" in html and "fills with a reference price" in html
