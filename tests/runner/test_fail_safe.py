"""Issue 16: no command may erase a trail or unlatch a halt.

Run directories cannot collide (adapters.rundir): a sim never touches a paper runner's state, a sim run is only
replaced when asked; the latch survives a lost or corrupt state file because the audit trail is a second witness
(core.recovery); replay lines carry the config. Simulated sessions only (seconds each); the kill -9 drill against
the loopback fake is in tests/drills/test_halt_latch_kill9.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.audit_jsonl import JsonlAuditSink, read_latch, verify_dir
from adapters.rundir import RUN_FILE, RunDirError, claim, recorded_mode
from core.audit import system_record
from core.recovery import TrailLatch, decide_start
from sim.scenario import load_scenario
from sim.world import World, WorldOptions, run_scenario, run_world
from tools.cli import main

REPO = Path(__file__).resolve().parents[2]
CLEAN_DAY = REPO / "scenarios" / "clean_day.toml"
BEFORE_SESSION_NS = 1_401_660_000 * 1_000_000_000  # 2014-06-01T22:00Z: the evening before clean_day's session


def paper_config(tmp_path: Path) -> Path:
    config = tmp_path / "paper.toml"
    config.write_text(f'mode = "paper"\n[audit]\ndir = "{(tmp_path / "paper" / "audit").as_posix()}"\n')
    return config


def state_of(path: Path) -> str:
    return str(json.loads(path.read_text())["halt"]["state"])


# --- run directories ------------------------------------------------------------------------------------------


def test_a_sim_into_a_halted_paper_runners_dir_refuses_and_erases_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reported sequence: kill a paper runner, then `ttlive run --config paper.toml --mode sim`."""
    config = paper_config(tmp_path)
    paper = tmp_path / "paper"
    assert main(["kill", "--config", str(config), "--reason", "x"]) == 0
    before = {p: p.read_bytes() for p in paper.rglob("*") if p.is_file()}
    assert recorded_mode(paper) == "paper"
    capsys.readouterr()
    assert main(["run", "--config", str(config), "--mode", "sim", "--no-dashboard", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "holds a paper run: a sim run may not use it" in err
    assert main(["sim", str(CLEAN_DAY), "--out", str(paper), "--fresh"]) == 2
    assert "holds a paper run" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in before} == before  # not a byte of the paper runner's files changed
    assert state_of(paper / "state.json") == "halting"
    assert read_latch(paper / "audit").halted


def test_a_sim_run_is_replaced_only_with_fresh(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sim-out"
    assert main(["sim", str(CLEAN_DAY), "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / RUN_FILE).read_text()) == {"mode": "sim"}
    first = (out / "report.json").read_bytes()
    capsys.readouterr()
    assert main(["sim", str(CLEAN_DAY), "--out", str(out), "--quiet"]) == 2
    assert "already holds a sim run: pass --fresh" in capsys.readouterr().err
    assert (out / "report.json").read_bytes() == first
    assert main(["sim", str(CLEAN_DAY), "--out", str(out), "--quiet", "--fresh"]) == 0
    assert verify_dir(out / "audit").chains_ok


def test_a_held_directory_is_refused(tmp_path: Path) -> None:
    with claim(tmp_path / "d", "paper"), pytest.raises(RunDirError, match="in use by a running process"):
        claim(tmp_path / "d", "paper")


def test_a_paper_trail_is_never_cleared_even_under_a_forged_run_json(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    with JsonlAuditSink(directory / "audit", fsync=False) as sink:
        sink.write(system_record("health", ts_ns=BEFORE_SESSION_NS, reason="runner started",
                                 extra={"event": "runner_started", "mode": "paper"}))
    (directory / RUN_FILE).write_text('{"mode": "sim"}\n')
    with pytest.raises(RunDirError, match="holds paper/live records: it is never deleted"):
        claim(directory, "sim", replace=True)
    assert verify_dir(directory / "audit").streams[-1].records == 1


def test_a_directory_of_unrecorded_mode_is_not_replaced_by_a_sim(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{}")
    with pytest.raises(RunDirError, match="unrecorded mode"):
        run_scenario(load_scenario(CLEAN_DAY), out_dir=tmp_path)
    assert (tmp_path / "state.json").read_text() == "{}"


def test_workers_zero_is_bad_input() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["sim", str(CLEAN_DAY), "--seeds", "1..2", "--workers", "0"])
    assert exited.value.code == 2


# --- the latch cannot be lost --------------------------------------------------------------------------------


def run_in(directory: Path) -> World:
    """clean_day in ``directory`` as it stands (no clearing: what a restart finds)."""
    world = World(load_scenario(CLEAN_DAY), 1, directory, WorldOptions())
    run_world(world)
    return world


def recovery_alerts(world: World) -> list[str]:
    return [key for _ts, _severity, key in world.alert_log if key == "halt.recovery"]


def write_trail(directory: Path, *kinds: str) -> None:
    with JsonlAuditSink(directory / "audit", fsync=False) as sink:
        for offset, kind in enumerate(kinds):
            ts_ns = BEFORE_SESSION_NS + offset
            if kind == "started":
                sink.write(system_record("health", ts_ns=ts_ns, reason="engine started"))
            elif kind == "halt":
                sink.write(system_record("halt", ts_ns=ts_ns, reason="desk review", extra={"trigger": "manual"}))
            else:
                sink.write(system_record("reset", ts_ns=ts_ns, reason="reviewed", operator="j.doe"))


def test_a_deleted_state_file_starts_halted_when_the_trail_holds_a_halt(tmp_path: Path) -> None:
    write_trail(tmp_path, "started", "halt")  # a halted runner whose state.json was then deleted
    world = run_in(tmp_path)
    assert world.engine is not None and world.engine.is_halted
    assert recovery_alerts(world) == ["halt.recovery"]
    assert state_of(tmp_path / "state.json") == "halted"


def test_a_deleted_state_file_starts_active_after_a_reset_but_alerts(tmp_path: Path) -> None:
    write_trail(tmp_path, "started", "halt", "reset")
    world = run_in(tmp_path)
    assert world.engine is not None and not world.engine.is_halted
    assert recovery_alerts(world) == ["halt.recovery"]  # the state was lost: the operator hears of it


def test_a_first_start_with_neither_state_nor_trail_is_active_and_quiet(tmp_path: Path) -> None:
    world = run_in(tmp_path)
    assert world.engine is not None and not world.engine.is_halted and recovery_alerts(world) == []


def test_a_corrupt_state_file_starts_halted_and_is_kept(tmp_path: Path) -> None:
    garbage = bytes(range(256)) * 4
    (tmp_path / "state.json").write_bytes(garbage)
    world = run_in(tmp_path)
    assert world.engine is not None and world.engine.is_halted
    assert recovery_alerts(world) == ["halt.recovery"]
    assert (tmp_path / "state.json.unreadable-1").read_bytes() == garbage


def test_an_active_state_with_a_halt_in_the_trail_starts_halted(tmp_path: Path) -> None:
    run_scenario(load_scenario(CLEAN_DAY), out_dir=tmp_path)  # a day traded: state active
    assert state_of(tmp_path / "state.json") == "active"
    write_trail(tmp_path, "halt")  # the trail says halted (a restored older state, an edited file)
    world = run_in(tmp_path)
    assert world.engine is not None and world.engine.is_halted
    assert recovery_alerts(world) == ["halt.recovery"]


@pytest.mark.parametrize(
    ("state_halted", "unreadable", "trail", "halts", "alerts"),
    [
        (None, "", TrailLatch(), False, False),  # first start
        (None, "", TrailLatch(engine_starts=2), False, True),  # state lost, nothing latched
        (None, "", TrailLatch(engine_starts=2, halted=True), True, True),
        (False, "", TrailLatch(halted=True), True, True),  # disagree
        (True, "", TrailLatch(), False, False),  # the state is already halted: trusted
        (False, "", TrailLatch(engine_starts=5), False, False),  # agree
        (None, "not JSON", TrailLatch(), True, True),  # corrupt
    ],
)
def test_decide_start_table(state_halted: bool | None, unreadable: str, trail: TrailLatch, halts: bool,
                            alerts: bool) -> None:
    decision = decide_start(state_halted=state_halted, unreadable=unreadable, trail=trail)
    assert bool(decision.halt_reason) is halts and bool(decision.alert) is alerts


def test_kill_latches_over_a_binary_garbage_state_and_keeps_it(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(b"\xff\xfe\x00garbage\x80")
    assert main(["kill", "--state", str(state), "--reason", "x"]) == 0
    assert state_of(state) == "halting"
    assert (tmp_path / "state.json.unreadable-1").read_bytes() == b"\xff\xfe\x00garbage\x80"
    assert main(["reset", "--state", str(state), "--operator", "o", "--reason", "r"]) == 0


def test_a_newline_in_a_kill_reason_cannot_forge_a_log_line(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    assert main(["kill", "--state", str(state), "--reason", "x\nttlive.run INFO all clear"]) == 0
    assert read_latch(tmp_path / "audit").reason == "x\\nttlive.run INFO all clear"


# --- replay ---------------------------------------------------------------------------------------------------


def test_the_replay_line_of_a_failing_run_names_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "fails.toml"
    scenario.write_text(CLEAN_DAY.read_text().replace("min_fills = 1\n", "min_fills = 100000\n"))
    config = tmp_path / "cfg.toml"
    config.write_text('[policy]\nkind = "rule"\ndecision_interval_s = 300\n')
    out = tmp_path / "out"
    argv = ["run", "--scenario", str(scenario), "--config", str(config), "--out", str(out), "--no-dashboard",
            "--quiet"]
    assert main(argv) == 1
    text = capsys.readouterr().out
    assert f"--config {config}" in " ".join(text.split())
    assert main([*argv, "--fresh"]) == 1  # the printed command's --fresh: the replay may reuse its directory
