"""`ttlive backtest` end to end on one clean day: the drift report exists (table, chart, numbers) and agrees
with the audit it was built from and with the bars the fake serves."""

from __future__ import annotations

import argparse
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.audit import is_submission, slippage_bps, ts_ns_from_iso
from sim.invariants import audit_records
from sim.scenario import load_scenario
from tools import cmd_backtest
from tools.backtest import fetch_bars_from_fake, session_window_ns

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "clean_day.toml"
NS = 1_000_000_000


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ttlive")
    cmd_backtest.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def backtest(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("backtest")
    args = parse(["backtest", "--scenario", str(SCENARIO), "--days", "1", "--out", str(out)])
    code = args.func(args)
    return code, out, json.loads((out / "drift_report.json").read_text())


def test_the_command_is_registered() -> None:
    from tools.cli import COMMAND_MODULES

    assert "tools.cmd_backtest" in COMMAND_MODULES
    args = parse(["backtest", "--days", "2", "--seed", "3", "--agent", "tensortrade"])
    assert (args.days, args.seed, args.agent) == (2, 3, "tensortrade")
    assert (args.bars, args.out) == ("fake", "runs/backtest")
    with pytest.raises(SystemExit):
        parse(["backtest", "--days", "0"])


def test_the_report_files_are_written(backtest: tuple[int, Path, dict[str, Any]]) -> None:
    code, out, _ = backtest
    assert code == 0
    md = (out / "drift_report.md").read_text()
    for heading in ("## Summary", "## Slippage distribution (bps) vs the 0.5-2 bps assumption",
                    "## Fill rate by order type", "## Fills"):
        assert heading in md
    png = (out / "drift_report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    height, width, _ = matplotlib.image.imread(out / "drift_report.png").shape
    assert width > 2 * height > 400  # three panels side by side


def test_the_numbers_agree_with_the_audit(backtest: tuple[int, Path, dict[str, Any]]) -> None:
    _, out, report = backtest
    audit = out / "run" / "audit"
    fills = audit_records(audit, "fills")
    orders = [r for r in audit_records(audit, "orders") if is_submission(r["event_type"], r["extra"])]
    assert report["fills"] == len(fills) == len(report["drifts"]) > 0
    assert report["orders"] == len(orders) == sum(r["orders"] for r in report["fill_rates"])
    audited = sum(1 for f in fills if f["slippage_bps"] is not None)
    assert report["slippage_vs_decision_mid_bps"]["count"] == audited
    run = json.loads((out / "run" / "report.json").read_text())
    assert report["engine_end_equity_usd"] == run["equity_end_usd"]
    # Rebuilding equity from the audited fills and the bar closes lands where the venue's account ended.
    rebuilt = Decimal(report["simulated_end_equity_usd"])
    assert abs(rebuilt - Decimal(run["equity_end_usd"])) <= Decimal("0.01")
    assert Decimal(report["drift_usd"]) == (Decimal(report["simulated_end_equity_usd"])
                                            - Decimal(report["reference_end_equity_usd"]))
    for row, record in zip(report["drifts"], fills, strict=True):
        assert row["client_order_id"] == record["extra"]["client_order_id"]
        assert Decimal(row["price"]) == Decimal(repr(record["execution_price"]))
        assert row["slippage_vs_mid_bps"] == record["slippage_bps"]


def test_each_reference_is_the_next_bar_the_fake_serves(backtest: tuple[int, Path, dict[str, Any]]) -> None:
    _, _, report = backtest
    scenario = load_scenario(SCENARIO)
    bars = fetch_bars_from_fake(scenario, scenario.seed, *session_window_ns(scenario))
    for row in report["drifts"]:
        ts_ns = int(row["ts_ns"])
        after = [b for b in bars[row["symbol"]] if b.ts_ns >= ts_ns]
        assert after, row
        following = after[0]
        assert following.ts_ns - ts_ns < 60 * NS  # the very next one-minute bar
        assert int(row["reference_ts_ns"]) == following.ts_ns
        assert Decimal(row["next_open"]) == following.open
        # Slippage by hand: signed, positive = worse for the side.
        price, ref = Decimal(row["price"]), following.open
        by_hand = (price - ref) / ref * 10_000 if row["side"] == "buy" else (ref - price) / ref * 10_000
        assert row["slippage_vs_next_open_bps"] == pytest.approx(float(by_hand), abs=1e-4)
        assert row["slippage_vs_next_open_bps"] == slippage_bps(row["side"], price, ref)
    first = report["drifts"][0]
    assert ts_ns_from_iso("2014-06-02T13:30:00.000000000Z") < int(first["ts_ns"])
