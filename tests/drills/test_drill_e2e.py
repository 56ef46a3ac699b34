"""``ttlive drill``: the CLI's exit codes, and the runner_kill9 drill end to end (real processes, ~20-40 s)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools.cli import main
from tools.drill import run_drill


def test_list_and_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drill", "--list"]) == 0
    assert "runner_kill9" in capsys.readouterr().out
    assert main(["drill", "no_such_drill"]) == 2
    assert "unknown drill" in capsys.readouterr().err
    assert main(["drill"]) == 2


def test_non_empty_workdir_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "leftover").write_text("x")
    assert main(["drill", "runner_kill9", "--workdir", str(tmp_path)]) == 2


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_runner_kill9_drill_holds_and_cleans_up(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run_drill("runner_kill9", workdir=tmp_path / "work", log=lines.append)
    assert result.violations == [], "\n".join([*result.violations, *lines])
    assert any("killed with SIGKILL" in line for line in lines)
    assert any("runner life 2 trading" in line for line in lines)  # the restart happened
    # both runner lives wrote to one audit trail; the venue fill of life 1 was audited once overall
    assert len(list((tmp_path / "work" / "state" / "audit" / "fills").glob("*.jsonl"))) >= 1
    assert len(result.pids) == 3  # venue, runner life 1, runner life 2
    assert not any(_alive(pid) for pid in result.pids)


@pytest.mark.slow
def test_three_sessions_drill_runs_unattended(tmp_path: Path) -> None:
    """`ttlive run --mode paper --sessions 3` against a venue whose days last 20 s: it waits for each open,
    settles after each close and ends on its own; each session is audited and counts as paper evidence."""
    lines: list[str] = []
    result = run_drill("three_sessions", workdir=tmp_path / "work", log=lines.append)
    assert result.violations == [], "\n".join([*result.violations, *lines])
    assert any("3 session(s) ended, 3 counted" in line for line in lines)
    assert len(result.pids) == 2  # one venue, one runner: no restart by hand
    assert not any(_alive(pid) for pid in result.pids)
