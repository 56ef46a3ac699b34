"""The report writer: bench-results.json keeps its shape (every required name, the same eight keys), and
BENCHMARKS.md says "not measured" rather than showing a number nobody measured."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tools.bench import report
from tools.bench.common import REQUIRED_NAMES, RESULT_KEYS, Result, Section

MACHINE = {
    "cpu_model": "Test CPU",
    "logical_cores": 2,
    "ram_gib": 4.0,
    "load_average_at_start": [0.5, 0.4, 0.3],
    "os": "Linux",
    "python": "CPython 3.11",
    "packages": {"trio": "0.35.0"},
    "git_revision": "abc1234",
}


def write(tmp_path: Path, sections: list[Section]) -> tuple[str, list[dict[str, object]]]:
    md_path, json_path = report.write(
        tmp_path,
        sections,
        machine=MACHINE,
        command="python -m tools.bench --quick",
        wall_s=12.0,
        quick=True,
        started=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    )
    return md_path.read_text(encoding="utf-8"), json.loads(json_path.read_text(encoding="utf-8"))


def test_missing_required_names_become_null_rows(tmp_path: Path) -> None:
    measured = Result(name="risk_check_us", unit="us", p50=12.5, p99=40.0, value=12.5)
    extra = Result(name="orders_per_s_inprocess", unit="orders/s", value=700.0)
    md, rows = write(
        tmp_path, [Section(key="latency", title="1. Latency", markdown="a table", results=[measured, extra])]
    )
    names = [row["name"] for row in rows]
    assert set(REQUIRED_NAMES) <= set(names) and len(names) == len(set(names))
    assert all(tuple(row) == RESULT_KEYS for row in rows)
    by_name = {row["name"]: row for row in rows}
    assert by_name["risk_check_us"]["p50"] == 12.5 and by_name["orders_per_s_inprocess"]["value"] == 700.0
    unmeasured = by_name["engine_events_per_s"]
    assert unmeasured["unit"] == "events/s"
    assert [unmeasured[k] for k in ("p50", "p99", "value", "peer_value", "ratio")] == [None] * 5
    summary = md.split("## All results", 1)[1]
    assert "| `engine_events_per_s` | events/s | n/a | n/a | not measured |" in summary
    assert "| `risk_check_us` | us | 12.50 | 40.00 | 12.50 |" in summary


def test_markdown_names_the_run_and_the_machine(tmp_path: Path) -> None:
    figure = tmp_path / "bench-scaling.png"
    md, _ = write(tmp_path, [Section(key="scaling", title="4. Scaling", markdown="grid", figures=[figure])])
    for expected in (
        "`python -m tools.bench --quick`",
        "Test CPU, 2 logical cores",
        "4.0 GiB",
        "CPython 3.11",
        "trio 0.35.0",
        "| load average (1/5/15 min) at start | 0.5 / 0.4 / 0.3 |",
        "abc1234",
        "quick (tiny sizes",
        "## 4. Scaling",
        "![bench-scaling](bench-scaling.png)",
    ):
        assert expected in md, expected


def test_a_name_reported_twice_is_an_error(tmp_path: Path) -> None:
    twice = [Section(key=k, results=[Result(name="risk_check_us", unit="us", value=1.0)]) for k in "ab"]
    with pytest.raises(ValueError, match="risk_check_us"):
        report.results_json(twice)


def test_a_missed_target_says_why_from_the_runs_own_rows(tmp_path: Path) -> None:
    rows = [
        Result(name="sim_speedup_1day_3sym", unit="x", value=20_000.0),
        Result(name="profile_day_reconciler_s", unit="s", value=0.45),
        Result(name="profile_day_reconciler_share", unit="%", value=30.2),
        Result(name="profile_day_timed_wall_s", unit="s", value=1.5),
        Result(name="risk_check_us", unit="us", p50=8.0, p99=16.0, value=8.0),
    ]
    md, _ = write(tmp_path, [Section(key="x", title="x", results=rows)])
    why = md.split("Why the targets this run missed are missed:", 1)[1].split("## ", 1)[0]
    assert "**one session x 3 symbols through the wire** (20,000" in why
    assert "the reconciler alone took 0.45 s (30.2 % of 1.50 s)" in why
    assert "risk check" not in why  # met: nothing to explain
