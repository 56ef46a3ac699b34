"""Issue 16: ``ttlive audit verify`` means it. Each tampering a hash chain alone cannot see (no records, a deleted
or emptied stream file, a cut-off tail, an appended record with a recomputed hash, a dangling reference) makes
verify exit 1 naming what it found; ``ttlive audit anchor`` keeps the heads apart; a run dir resolves to audit/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from adapters.audit_jsonl import ANCHORS_NAME, JsonlAuditSink, append_anchor, read_anchors, verify_dir
from core.audit import system_record
from core.audit_chain import chain, decode_line, encode_line, head_of
from tests.audit.factory import T0_NS, session
from tools.cli import main

DAY1 = "2024-01-02.jsonl"


@pytest.fixture
def anchored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A trail of six trades, anchored with ``ttlive audit anchor`` (as an operator, or the runner at close)."""
    root = tmp_path / "run" / "audit"
    with JsonlAuditSink(root, fsync=False) as sink:
        for entry in session(6):
            sink.write(entry)
    assert main(["audit", "anchor", str(root)]) == 0
    assert "anchored" in capsys.readouterr().out
    return root


def verify(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["audit", "verify", *argv])
    return code, capsys.readouterr().out


def test_an_anchored_intact_trail_passes(anchored: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = verify(capsys, str(anchored))
    assert code == 0, out
    assert "audit trail intact" in out
    [anchor] = read_anchors(anchored / ANCHORS_NAME)
    assert anchor.heads["fills"].seq == 6 and anchor.heads["orders"].seq == 8


def test_an_empty_directory_is_not_intact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = verify(capsys, str(tmp_path))
    assert code == 1
    assert "no audit records at all" in out and "NOT intact" in out


def test_a_run_directory_resolves_to_its_audit_dir(anchored: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = verify(capsys, str(anchored.parent))
    assert code == 0, out
    assert f"verifying {anchored}" in out


def test_a_deleted_stream_file_is_found(anchored: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (anchored / "orders" / DAY1).unlink()
    code, out = verify(capsys, str(anchored))
    assert code == 1
    assert "dangling reference: fill of signal sig-0000 has no order record" in out
    assert "orders: anchor of" in out and "truncated: anchored at seq 8, the trail ends at seq 0" in out


def test_a_deleted_leaf_stream_is_found_by_its_anchor(anchored: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.rmtree(anchored / "fills")  # nothing references fills: only the anchor knows they existed
    code, out = verify(capsys, str(anchored))
    assert code == 1
    assert "fills: anchor of" in out and "truncated" in out


def test_an_emptied_stream_file_is_found(anchored: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (anchored / "signals" / DAY1).write_bytes(b"")
    code, out = verify(capsys, str(anchored))
    assert code == 1
    assert f"signals/{DAY1}: empty file" in out
    assert "dangling reference: risk_check of signal sig-0000 has no signal record" in out


def test_a_truncated_tail_is_found(anchored: Path, capsys: pytest.CaptureFixture[str]) -> None:
    health = anchored / "health" / DAY1
    lines = health.read_bytes().splitlines(keepends=True)
    health.write_bytes(b"".join(lines[:-2]))  # the last two records cut off: the chain itself still links
    assert all(stream.ok for stream in verify_dir(anchored).streams)
    code, out = verify(capsys, str(anchored))
    assert code == 1
    assert "health: anchor of" in out and "truncated: anchored at seq 6, the trail ends at seq 4" in out


def test_an_appended_record_with_a_recomputed_hash_is_found(anchored: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    health = anchored / "health" / DAY1
    last = decode_line(health.read_bytes().splitlines()[-1])
    forged = chain(system_record("reset", ts_ns=T0_NS + 10**12, reason="forged", operator="mallory"), head_of(last))
    with open(health, "ab") as out_file:
        out_file.write(encode_line(forged))  # a perfectly chained record: the per-stream check passes
    assert all(stream.ok for stream in verify_dir(anchored).streams)
    code, out = verify(capsys, str(anchored))
    assert code == 1
    assert "health: anchor of" in out and "1 record(s) after the last anchor" in out
    assert "no writer holds the trail" in out


def test_a_rewritten_anchored_tail_is_found(anchored: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Cut two records and re-chain two forged ones: same length, valid chain, but not the anchored record."""
    health = anchored / "health" / DAY1
    lines = health.read_bytes().splitlines(keepends=True)
    head = head_of(decode_line(lines[-3]))
    forged = []
    for reason in ("forged 1", "forged 2"):
        record = chain(system_record("health", ts_ns=T0_NS + 10**12, reason=reason), head)
        forged.append(encode_line(record))
        head = head_of(record)
    health.write_bytes(b"".join(lines[:-2] + forged))
    assert all(stream.ok for stream in verify_dir(anchored).streams)
    code, out = verify(capsys, str(anchored))
    assert code == 1
    assert "health: anchor of" in out and "seq 6 is not the anchored record (rewritten)" in out


def test_a_dangling_reference_is_named(anchored: Path, capsys: pytest.CaptureFixture[str]) -> None:
    risk = anchored / "risk" / DAY1
    lines = risk.read_bytes().splitlines(keepends=True)
    # Remove the risk check of signal 5 and re-chain nothing: the chain breaks too, but the reference is named
    risk.write_bytes(b"".join(lines[:5]))
    code, out = verify(capsys, str(anchored))
    assert code == 1
    assert "dangling reference: order of signal sig-0005 has no risk_check record" in out


def test_verify_checks_against_an_off_machine_copy(anchored: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """An attacker who also rewrites the local anchor file is caught by the operator's copy."""
    copy = tmp_path / "offsite-anchors.ndjson"
    shutil.copy(anchored / ANCHORS_NAME, copy)
    health = anchored / "health" / DAY1
    health.write_bytes(b"".join(health.read_bytes().splitlines(keepends=True)[:-1]))
    (anchored / ANCHORS_NAME).unlink()
    append_anchor(anchored, ts_ns=T0_NS + 10**12, fsync=False)  # the attacker re-anchors the cut trail
    assert verify(capsys, str(anchored))[0] == 0
    code, out = verify(capsys, str(anchored), "--anchors", str(copy))
    assert code == 1 and "truncated" in out


def test_anchor_refuses_a_trail_that_does_not_verify(anchored: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (anchored / "signals" / DAY1).write_bytes(b"")
    assert main(["audit", "anchor", str(anchored)]) == 1
    assert "not anchoring" in capsys.readouterr().err
    assert len(read_anchors(anchored / ANCHORS_NAME)) == 1


def test_records_after_the_anchor_are_a_notice_while_a_writer_holds_the_trail(
    anchored: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with JsonlAuditSink(anchored, fsync=False) as sink:  # a runner mid-session
        sink.write(system_record("health", ts_ns=T0_NS + 10**12, reason="heartbeat"))
        code, out = verify(capsys, str(anchored))
        assert code == 0, out
        assert "a session under way" in out
    code, out = verify(capsys, str(anchored))  # closed without anchoring: a crash, or a forgery
    assert code == 1


def test_a_paper_trail_without_an_anchor_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with JsonlAuditSink(tmp_path, fsync=False) as sink:
        sink.write(system_record("health", ts_ns=T0_NS, reason="runner started",
                                 extra={"event": "runner_started", "mode": "paper"}))
    code, out = verify(capsys, str(tmp_path))
    assert code == 1 and "a paper/live trail must be anchored" in out
