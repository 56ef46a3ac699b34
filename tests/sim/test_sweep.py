"""`ttlive sim --seeds`: the sweep runs every (scenario, seed), reports a failure with its replay command and
writes a machine-readable summary."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sim import sweep
from tests.sim.conftest import ROOT
from tools import cmd_sim
from tools.cli import main
from tools.cmd_sim import parse_seeds


def test_seed_lists() -> None:
    assert parse_seeds("7") == [7]
    assert parse_seeds("1..3,9") == [1, 2, 3, 9]
    for bad in ("3..1", "x", "1..", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_seeds(bad)


def test_a_sweep_reports_the_failing_run_and_how_to_replay_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean = (ROOT / "scenarios" / "clean_day.toml").read_text(encoding="utf-8")
    impossible = tmp_path / "impossible.toml"
    impossible.write_text(
        clean.replace('name = "clean_day"', 'name = "impossible"').replace("min_fills = 1", "min_fills = 100000"),
        encoding="utf-8",
    )
    out = tmp_path / "sweep"
    argv = ["sim", "--seeds", "5", str(ROOT / "scenarios" / "clean_day.toml"), str(impossible)]
    status = main([*argv, "--workers", "2", "--quiet", "--out", str(out)])

    printed = capsys.readouterr().out
    assert status == 1
    assert "FAILED impossible seed 5" in printed
    assert f"replay: ttlive sim {impossible} --seed 5" in printed
    summary = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    assert (summary["runs"], summary["failed"], summary["invariant_violations"]) == (2, 1, 0)
    by_name = {r["scenario"]: r for r in summary["results"]}
    assert by_name["clean_day"]["ok"] is True and by_name["impossible"]["ok"] is False
    [failure] = by_name["impossible"]["expectation_failures"]
    assert failure.startswith("expected at least 100000 fills, got ")
    for name in ("clean_day", "impossible"):
        run_dir = out / name / "seed-5"
        assert (run_dir / "report.json").is_file() and (run_dir / "run.log").is_file()


def test_ctrl_c_stops_a_sweep_and_keeps_what_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_as_completed = sweep.concurrent.futures.as_completed

    def interrupted_after_the_first(futures: Any) -> Iterator[Any]:
        yield next(iter(real_as_completed(futures)))
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep.concurrent.futures, "as_completed", interrupted_after_the_first)
    out = tmp_path / "sweep"
    scenario = str(ROOT / "scenarios" / "clean_day.toml")
    status = main(["sim", "--seeds", "1..6", scenario, "--workers", "1", "--quiet", "--out", str(out)])

    assert status == cmd_sim.EXIT_INTERRUPTED
    assert "interrupted" in capsys.readouterr().out
    summary = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    assert summary["interrupted"] is True and summary["jobs"] == 6
    # The first run and those already handed to the worker finished and are reported; the queue was dropped.
    assert 1 <= summary["runs"] < 6 and summary["failed"] == 0
    assert len(list(out.glob("clean_day/seed-*/report.json"))) == summary["runs"]
