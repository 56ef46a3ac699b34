"""`python -m tools.bench --quick` end to end: every group runs at tiny sizes and both output files have the
shape consumers rely on. Numbers are not checked against any time (benchmarks report, they never assert)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tools.bench.common import REPO_ROOT, REQUIRED_NAMES, RESULT_KEYS

LATENCY_NAMES = (
    "feature_extraction_us",
    "inference_int8_b1_us",
    "inference_fp32_b1_us",
    "risk_check_us",
    "signal_to_order_us",
    "inference_int8_b32_us",
    "inference_fp32_b32_us",
    "order_handoff_us",
)
SECTIONS = (
    "## 1. Latency budget (spec 3.1)",
    "## 2. Engine throughput and memory",
    "## 2b. Chaos sweeps and swarms: runs per hour",
    "## 3a. NautilusTrader vs ttlive's simulation",
    "## 3b. TensorTrade: stock env vs ttlive's bridge env",
    "## 3c. alpaca-py vs ttlive's REST adapter",
    "## 4. Scaling",
    "## All results (bench-results.json)",
)


@pytest.mark.slow
def test_quick_suite_writes_both_files(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--quick", "--out-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]  # no group failed

    rows = json.loads((tmp_path / "bench-results.json").read_text(encoding="utf-8"))
    assert isinstance(rows, list) and all(tuple(row) == RESULT_KEYS for row in rows)
    by_name = {row["name"]: row for row in rows}
    assert len(by_name) == len(rows) and set(REQUIRED_NAMES) <= set(by_name)
    for name in LATENCY_NAMES:
        row = by_name[name]
        assert row["unit"] == "us" and 0 < row["p50"] <= row["p99"] and row["value"] == row["p50"], row
    assert (
        by_name["signal_to_order_us"]["p50"] > by_name["inference_int8_b1_us"]["p50"]
    )  # a chain, not a stage
    assert by_name["memory_full_queue_mib"]["value"] > 0
    assert by_name["chaos_sweep_runs_per_hour"]["value"] > 0
    assert by_name["swarm_runs_per_hour"]["value"] is None  # --quick skips the swarm, and says so
    assert by_name["sim_speedup_1day_3sym"]["value"] > 0 and by_name["engine_events_per_s"]["value"] > 0
    for name in ("tensortrade_steps_per_s_ratio", "alpaca_py_rest_calls_per_s_ratio"):
        row = by_name[name]
        assert row["peer"] and row["value"] > 0 and row["peer_value"] > 0
        assert row["ratio"] == pytest.approx(row["value"] / row["peer_value"], rel=1e-3)
    assert by_name["sim_speedup_1day_30sym"]["value"] is None  # --quick skips it, and says so

    md = (tmp_path / "BENCHMARKS.md").read_text(encoding="utf-8")
    for heading in SECTIONS:
        assert heading in md, heading
    assert "python -m tools.bench --quick --out-dir" in md and "logical cores" in md and "GiB" in md
    assert "skipped: --quick runs one simulation only" in md
    nautilus = md.split("## 3a.", 1)[1].split("## 3b.", 1)[0]
    assert ("NautilusTrader 1." in nautilus) or ("not measured" in nautilus and "nautilus-trader" in nautilus)
    assert (tmp_path / "bench-scaling.png").stat().st_size > 0
