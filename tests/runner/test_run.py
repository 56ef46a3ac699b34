"""``ttlive run``: the default session end to end (subprocess), argument and mode gates, secrets, pacing."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import msgspec
import pytest
import trio

from adapters.audit_jsonl import verify_dir
from adapters.dashboard.source import SNAPSHOT_KEYS
from core.config import EngineConfig, parse_config
from tests.runner.conftest import CANARIES, CANARY_KEY_ID, CANARY_SECRET, TTLIVE, RunResult, canary_env
from tools.cli import main
from tools.runner import (
    DEFAULT_SCENARIOS,
    PREFLIGHT_NAME,
    Pacer,
    RunError,
    file_sha256,
    live_gate,
    state_dir,
)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_MODEL_ID = json.loads((ROOT / "adapters/policy/models/default/model.json").read_text())["model_id"]


# --- the default session (make run) ------------------------------------------------------------------------


def test_default_run_completes_with_the_shipped_model(default_run: RunResult) -> None:
    assert default_run.returncode == 0, default_run.stderr[-3000:]
    report = json.loads((default_run.out / "report.json").read_text())
    assert Path(report["scenario_file"]).name in DEFAULT_SCENARIOS
    assert report["invariant_violations"] == [] and report["expectation_failures"] == []
    assert report["fills"] >= 1 and report["orders_submitted"] >= 1
    signals = [
        json.loads(line)
        for f in sorted((default_run.out / "audit/signals").glob("*.jsonl"))
        for line in f.read_text().splitlines()
    ]
    assert signals and {s["model_id"] for s in signals} == {SHIPPED_MODEL_ID}  # the ONNX model, not the rule
    audit = verify_dir(default_run.out / "audit")
    assert audit.ok
    fills = next(s for s in audit.streams if s.stream == "fills")
    assert fills.records == report["fills"]
    assert (default_run.out / "broker.json").is_file()
    for needle in (
        "orders submitted",
        "fills",
        "P&L",
        "halted",
        "audit dir",
        "runs/sim/latest/report.json",
        "progress: 50%",
        "OK",
    ):
        assert needle in default_run.stdout, needle


def test_dashboard_served_during_the_default_run(default_run: RunResult) -> None:
    assert default_run.url.startswith("http://127.0.0.1:")
    status, body = default_run.api["/api/state"]
    assert status == 200
    snapshot = json.loads(body)
    assert set(snapshot) == SNAPSHOT_KEYS and snapshot["mode"] == "sim"
    assert default_run.api["/metrics"][0] == 200 and "ttlive_halted" in default_run.api["/metrics"][1]
    # 401 (not 403): the token from TTLIVE_DASHBOARD_TOKEN is configured, and a wrong one is refused
    assert default_run.api["/api/kill"][0] == 401
    report = json.loads((default_run.out / "report.json").read_text())
    assert report["halted"] is False


def _all_output_text(run: RunResult, extra_dirs: list[Path]) -> dict[str, str]:
    texts = {"stdout": run.stdout, "stderr": run.stderr}
    texts.update({f"api {path}": body for path, (_status, body) in run.api.items()})
    for directory in [run.out, *extra_dirs]:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                texts[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
    return texts


def test_no_secret_appears_in_any_output(default_run: RunResult, tmp_path: Path) -> None:
    compliance_out = tmp_path / "compliance"
    assert (
        main(
            [
                "compliance",
                "--date",
                "2014-06-02",
                "--sim-report",
                str(default_run.out),
                "--out",
                str(compliance_out),
            ]
        )
        == 0
    )
    texts = _all_output_text(default_run, [compliance_out])
    assert any("audit/fills" in name for name in texts) and (default_run.out / "run.log").is_file()
    leaks = [(name, canary) for name, text in texts.items() for canary in CANARIES if canary in text]
    assert leaks == []


def test_paper_error_path_leaks_no_secret(tmp_path: Path) -> None:
    """Paper mode against the loopback fake venue that expects other keys: Alpaca's 401, reported without
    the key, the secret or the token, in the summary, the log and the audit trail."""
    fake = subprocess.Popen(
        [
            TTLIVE,
            "fake-alpaca",
            "--port",
            "0",
            "--key",
            "PKTHEOTHERKEY0001",
            "--secret",
            "the-other-secret-0001",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert fake.stdout is not None
        first = fake.stdout.readline()
        url = first.split()[2]
        assert url.startswith("http://127.0.0.1:"), first
        config = tmp_path / "paper.toml"
        config.write_text(
            f'mode = "paper"\n[broker]\npaper_url = "{url}"\ndata_url = "{url}"\n'
            f'[audit]\ndir = "{tmp_path / "state" / "audit"}"\n[dashboard]\nenabled = false\n'
        )
        run = subprocess.run(
            [TTLIVE, "run", "--config", str(config)],
            env=canary_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        fake.terminate()
        fake.wait(10)
    assert run.returncode == 1, run.stderr
    assert "401" in run.stdout + run.stderr
    texts = {"stdout": run.stdout, "stderr": run.stderr}
    for path in sorted((tmp_path / "state").rglob("*")):
        if path.is_file():
            texts[str(path)] = path.read_text(errors="replace")
    assert str(tmp_path / "state" / "run.log") in texts
    assert [(n, c) for n, t in texts.items() for c in CANARIES if c in t] == []


# --- gates and bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--speed", "0"],
        ["run", "--speed", "fast"],
        ["run", "--mode", "moon"],
        ["run", "--dashboard-port", "70000"],
        ["run", "--linger", "-1"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2


def test_bad_input_exits_2_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[risk]\nnot_a_key = 1\n")
    assert main(["run", "--config", str(bad)]) == 2
    assert "unknown key 'risk.not_a_key'" in capsys.readouterr().err
    assert main(["run", "--scenario", str(tmp_path / "missing.toml")]) == 2
    assert "scenario file not found" in capsys.readouterr().err
    assert main(["run", "--mode", "paper", "--seed", "3"]) == 2
    assert "--seed only apply to --mode sim" in capsys.readouterr().err
    assert main(["run", "--i-understand-live-trading"]) == 2
    assert main(["run", "--mode", "paper", "--i-understand-live-trading"]) == 2


def test_paper_without_credentials_exits_2_naming_the_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--mode", "paper"]) == 2
    err = capsys.readouterr().err
    assert "APCA_API_KEY_ID" in err and "APCA_API_SECRET_KEY" in err
    assert not (tmp_path / "runs").exists()  # refused before anything was opened


def test_live_needs_confirmation_config_and_a_matching_preflight(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", CANARY_KEY_ID)
    monkeypatch.setenv("APCA_API_SECRET_KEY", CANARY_SECRET)
    assert main(["run", "--mode", "live"]) == 2
    assert "--i-understand-live-trading" in capsys.readouterr().err
    assert main(["run", "--mode", "live", "--i-understand-live-trading"]) == 2
    assert "needs --config" in capsys.readouterr().err
    config_path = tmp_path / "live.toml"
    config_path.write_text(f'[audit]\ndir = "{tmp_path / "live" / "audit"}"\n')
    assert main(["run", "--mode", "live", "--i-understand-live-trading", "--config", str(config_path)]) == 2
    assert "no preflight record" in capsys.readouterr().err
    config = parse_config(config_path.read_text())
    record = state_dir(config) / PREFLIGHT_NAME
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"passed": False, "config_sha256": file_sha256(config_path)}))
    with pytest.raises(RunError, match="did not pass"):
        live_gate(confirmed=True, config_path=config_path, config=config)
    record.write_text(json.dumps({"passed": True, "config_sha256": file_sha256(config_path)}))
    with pytest.raises(RunError, match=r"size_scale = 1.0 but only 0 of the first 10 live sessions"):
        live_gate(confirmed=True, config_path=config_path, config=config)  # spec 6: go live at reduced size
    config_path.write_text(config_path.read_text() + '[risk]\nsize_scale = "0.25"\n')
    config = parse_config(config_path.read_text())
    record.write_text(json.dumps({"passed": True, "config_sha256": file_sha256(config_path)}))
    live_gate(confirmed=True, config_path=config_path, config=config)  # cleared: no exception
    config_path.write_text(config_path.read_text() + "# edited after the preflight\n")
    with pytest.raises(RunError, match="changed since the preflight"):
        live_gate(confirmed=True, config_path=config_path, config=parse_config(config_path.read_text()))


def test_state_dir_is_the_audit_dirs_parent() -> None:
    config = msgspec.convert({"audit": {"dir": "/srv/ttlive/paper/audit"}}, EngineConfig)
    assert state_dir(config) == Path("/srv/ttlive/paper")


# --- the pacer ---------------------------------------------------------------------------------------------


def test_pacer_keeps_virtual_time_behind_speed_times_wall_time() -> None:
    speed = 50.0
    pacer = Pacer(speed)
    seen: list[tuple[float, float]] = []

    async def main_() -> None:
        async with trio.open_nursery() as nursery:
            # The wall origin is taken before the pacer takes its own: taken after, the time the pacer's start-up
            # took on a loaded machine counted as virtual time leading wall time (a flaky failure, 4.0 > 3.95).
            w0 = time.monotonic()
            await nursery.start(pacer.serve)
            v0 = trio.current_time()
            for _ in range(4):
                await trio.sleep(2.0)  # 2 virtual seconds = 40 ms of wall time at 50x
                seen.append((trio.current_time() - v0, time.monotonic() - w0))
            nursery.cancel_scope.cancel()

    trio.run(main_, clock=pacer.clock)
    assert [round(v, 6) for v, _ in seen] == [2.0, 4.0, 6.0, 8.0]  # jumps land exactly on the deadlines
    for virtual, wall in seen:
        assert virtual <= wall * speed + 1e-6  # never ahead of wall time (it may lag, never lead)
