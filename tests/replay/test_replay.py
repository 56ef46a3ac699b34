"""Issue 22: wire capture and replay, without a network (the in-process fake on virtual time).

A simulated session with lost answers (scenarios/ambiguous_submits.toml) is captured like a paper run; the
capture is replayed in the fake venue and must give the same order requests and fills; an engine changed to
retry a lost submit with a fresh client order id diverges at that retry; the scenario written from the
capture runs under `ttlive sim` byte-identically in two processes; no credential is in the capture; a corrupt
or truncated capture is bad input (exit 2) naming file and record.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.capture import CaptureWriter, Scrubber, read_capture
from adapters.rundir import claim
from sim.scenario import load_scenario
from sim.world import SIM_KEY, World, WorldOptions, run_world
from tools.cli import main
from tools.replay import canonical, load_capture, order_requests, run_replay
from tools.runner import REPO_ROOT

SCENARIO = REPO_ROOT / "scenarios" / "ambiguous_submits.toml"


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("captured") / "run"
    scenario = load_scenario(SCENARIO)
    with claim(out, "sim", replace=True) as held:
        report = run_world(World(scenario, scenario.seed, held.directory, WorldOptions(capture=True)))
    assert report.invariant_violations == []
    return out


def test_capture_has_the_faults_and_no_credentials(captured: Path) -> None:
    files = list((captured / "capture").glob("*.capture.jsonl.gz"))
    assert len(files) == 1
    text = gzip.decompress(files[0].read_bytes()).decode()
    for secret in (SIM_KEY.key_id, SIM_KEY.secret_key):
        assert secret not in text
    records = list(read_capture(files[0]))
    assert records[0]["t"] == "header" and records[0]["version"] == 1 and records[-1]["t"] == "end"
    kinds = {r["t"] for r in records}
    assert {"http_req", "http_resp", "ws_open", "ws_in", "ws_out", "ws_close"} <= kinds
    assert any(r["t"] == "http_resp" and "error" in r for r in records)  # the lost answers are there
    auth = [r for r in records if r["t"] == "ws_out" and "auth" in json.dumps(r["data"])]
    assert auth and all("[REDACTED]" in json.dumps(r["data"]) for r in auth)


def test_scrubber_and_writer_remove_keys_and_bearer_tokens(tmp_path: Path) -> None:
    writer = CaptureWriter(tmp_path, secrets=["PKKEY12345678", "s3cr3t-value-xyz"], header={})
    writer.write({"t": "http_req", "body": Scrubber(["PKKEY12345678"]).value(
        {"auth": "Bearer abc.def-ghi", "key": "PKKEY12345678", "nested": ["s3cr3t-value-xyz"]})})
    writer.write({"t": "note", "text": writer.scrub.text("x s3cr3t-value-xyz y Authorization: bearer tok123")})
    writer.close()
    text = gzip.decompress(writer.path.read_bytes()).decode()
    for leaked in ("PKKEY12345678", "s3cr3t-value-xyz", "abc.def-ghi", "tok123"):
        assert leaked not in text


def test_replay_gives_the_same_orders_and_fills(captured: Path, tmp_path: Path) -> None:
    result = run_replay(captured, tmp_path / "replay")
    assert result["first_divergence"] is None, result["first_divergence"]
    assert result["same"] and result["recorded"] == result["replayed"]
    assert result["recorded"]["order_requests"] > 0 and result["recorded"]["fills"] > 0
    assert (tmp_path / "replay" / "divergence.md").read_text().count("No divergence") == 1
    assert main(["replay", str(captured), "--out", str(tmp_path / "cli")]) == 0


def test_a_changed_engine_diverges_at_the_retry_of_a_lost_answer(captured: Path, tmp_path: Path) -> None:
    recorded = canonical(order_requests(load_capture(captured)))  # as compared: a burst's requests in a fixed order
    lost = next(i for i, r in enumerate(recorded, start=1)
                if r["request"] == "POST /v2/orders" and r["outcome"] == "lost")
    result = run_replay(captured, tmp_path / "broken", options=WorldOptions(break_idempotency=True))
    first = result["first_divergence"]
    assert first is not None and first["kind"] == "order request"
    assert first["index"] == lost + 1  # the retry of the lost submit, under a fresh client order id:
    # which submit lost its answer (canonical() deals a burst's outcomes out as a set: ask the raw list)
    submit = next(r for r in order_requests(load_capture(captured))
                  if r["request"] == "POST /v2/orders" and r["outcome"] == "lost")
    burst = [r for r in result["order_requests"]["replayed"] if r["at_s"] == first["got"]["at_s"]]
    retries = [r for r in burst if r["request"] == "POST /v2/orders" and r["order"] > submit["order"]
               and (r["symbol"], r["qty"]) == (submit["symbol"], submit["qty"])]
    assert retries and first["expected"] != first["got"], burst


def test_to_scenario_runs_in_sim_byte_identically(captured: Path, tmp_path: Path) -> None:
    file = tmp_path / "lib" / "incident.toml"
    assert main(["replay", str(captured / "capture"), "--to-scenario", str(file)]) == 0
    hashes = []
    for run in ("a", "b"):
        out = tmp_path / run
        proc = subprocess.run([sys.executable, "-m", "tools.cli", "sim", str(file), "--seed", "1", "--out", str(out),
                               "--quiet"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        report = json.loads((out / "report.json").read_text())
        hashes.append((report["trace_sha256"], report["audit_sha256"]))
    assert hashes[0] == hashes[1]


def test_corrupt_or_truncated_capture_is_bad_input(captured: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    source = next((captured / "capture").glob("*.capture.jsonl.gz"))
    lines = gzip.decompress(source.read_bytes()).splitlines(keepends=True)
    cut = tmp_path / "cut.capture.jsonl.gz"
    cut.write_bytes(gzip.compress(b"".join(lines[:5]) + lines[5][:10]))
    assert main(["replay", str(cut), "--out", str(tmp_path / "o1")]) == 2
    err = capsys.readouterr().err
    assert str(cut) in err and "record 6" in err
    bad = tmp_path / "bad.capture.jsonl.gz"
    bad.write_bytes(gzip.compress(lines[0] + b"{not json\n"))
    assert main(["replay", str(bad), "--to-scenario", str(tmp_path / "x.toml")]) == 2
    assert "record 2" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "missing"), "--out", str(tmp_path / "o2")]) == 2


def test_retention_deletes_only_old_capture_files(tmp_path: Path) -> None:
    (tmp_path / "audit").mkdir()
    (tmp_path / "audit" / "keep.jsonl").write_text("x")
    for i in range(4):
        CaptureWriter(tmp_path, secrets=[], header={}, keep_sessions=2, session=f"s{i}").close()
    assert sorted(p.name for p in tmp_path.glob("*.gz")) == ["s2.capture.jsonl.gz", "s3.capture.jsonl.gz"]
    assert (tmp_path / "audit" / "keep.jsonl").exists()
    capped = CaptureWriter(tmp_path, secrets=[], header={}, max_mb=0.001, session="s9")
    for i in range(2000):
        capped.write({"t": "ws_in", "data": f"frame {i} " * 4})
    capped.close()
    kinds = [r["t"] for r in read_capture(capped.path)]
    assert kinds.count("limit") == 1 and kinds[-1] == "end" and len(kinds) < 2000


def test_capturing_changes_nothing_in_the_session(captured: Path, tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIO)
    with claim(tmp_path / "plain", "sim", replace=True) as held:
        plain = run_world(World(scenario, scenario.seed, held.directory, WorldOptions()))
    recorded = json.loads((captured / "report.json").read_text())
    assert (plain.trace_sha256, plain.audit_sha256) == (recorded["trace_sha256"], recorded["audit_sha256"])
    assert not (tmp_path / "plain" / "capture").exists()  # off unless asked
