"""``ttlive audit verify``: an intact trail passes; each kind of tampering is named with file:line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.audit_jsonl import JsonlAuditSink, verify_dir
from core.audit import GENESIS
from core.audit_chain import chain, decode_line, encode_line, head_of, unchained
from core.audit_verify import ProblemKind
from tests.audit.factory import DAY_NS, T0_NS, session, trade_entries
from tools.cli import main

DAY1 = "2024-01-02.jsonl"
DAY2 = "2024-01-03.jsonl"


@pytest.fixture
def trail(tmp_path: Path) -> Path:
    with JsonlAuditSink(tmp_path) as sink:
        for entry in session(6):
            sink.write(entry)
    return tmp_path


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def problems(root: Path) -> list[tuple[ProblemKind, str]]:
    return [(p.kind, str(p.location)) for s in verify_dir(root).streams for p in s.problems]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["audit", *argv])
    return code, capsys.readouterr().out


def test_intact_trail_exits_0_with_a_summary_table(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "verify", str(trail))
    assert code == 0
    table = {line.split()[0]: line.split() for line in out.splitlines()[1:6]}
    assert out.splitlines()[0].split() == ["stream", "files", "records", "seqs", "anchor", "status"]
    assert table["fills"] == ["fills", "1", "6", "1..6", "-", "ok"]
    assert table["orders"] == ["orders", "1", "8", "1..8", "-", "ok"]  # 6 orders + 2 cancels
    assert "audit trail intact: 5 streams, 32 records" in out


def test_missing_directory_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "verify", str(tmp_path / "nope")]) == 2
    assert "no such audit directory" in capsys.readouterr().err


def test_detects_a_modified_record(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fills = trail / "fills" / DAY1
    lines = lines_of(fills)
    lines[2] = lines[2].replace(b'"quantity":12', b'"quantity":120')
    fills.write_bytes(b"".join(lines))
    assert problems(trail) == [(ProblemKind.MODIFIED, f"fills/{DAY1}:3")]
    code, out = run_cli(capsys, "verify", str(trail))
    assert code == 1
    assert f"fills/{DAY1}:3: modified: content does not match its sha256 (seq 3)" in out
    assert "audit trail NOT intact" in out


def test_detects_a_modified_record_even_with_its_hash_recomputed(trail: Path) -> None:
    fills = trail / "fills" / DAY1
    lines = lines_of(fills)
    original = decode_line(lines[1])
    forged_entry = decode_line(lines[1].replace(b'"execution_price":188.25', b'"execution_price":150.0'))
    assert forged_entry.execution_price == 150.0
    # A careful forger re-chains the edited record onto its predecessor, so its own hash is valid...
    forged = chain(unchained(forged_entry), head_of(decode_line(lines[0])))
    assert forged.seq == original.seq and forged.sha256 != original.sha256
    lines[1] = encode_line(forged)
    fills.write_bytes(b"".join(lines))
    # ...but the next record still commits to the original hash.
    found = [p for s in verify_dir(trail).streams for p in s.problems]
    assert [(p.kind, str(p.location)) for p in found] == [(ProblemKind.MODIFIED, f"fills/{DAY1}:2")]
    assert "seq 2 was rewritten" in found[0].message


def test_detects_a_deleted_record(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    signals = trail / "signals" / DAY1
    lines = lines_of(signals)
    del lines[3]
    signals.write_bytes(b"".join(lines))
    assert problems(trail) == [(ProblemKind.DELETED, f"signals/{DAY1}:4")]
    code, out = run_cli(capsys, "verify", str(trail))
    assert code == 1 and f"signals/{DAY1}:4: deleted: seq 4 missing before seq 5" in out


def test_detects_a_deleted_first_record_and_a_deleted_day_file(trail: Path) -> None:
    with JsonlAuditSink(trail) as sink:
        for entry in trade_entries(10, T0_NS + DAY_NS) + trade_entries(11, T0_NS + 2 * DAY_NS):
            sink.write(entry)
    (trail / "fills" / DAY2).unlink()
    risk = trail / "risk" / DAY1
    risk.write_bytes(b"".join(lines_of(risk)[1:]))
    assert sorted(problems(trail)) == sorted(
        [(ProblemKind.DELETED, "fills/2024-01-04.jsonl:1"), (ProblemKind.DELETED, f"risk/{DAY1}:1")]
    )


def test_detects_reordered_records(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    risk = trail / "risk" / DAY1
    lines = lines_of(risk)
    lines[2], lines[3] = lines[3], lines[2]
    risk.write_bytes(b"".join(lines))
    assert problems(trail) == [(ProblemKind.REORDERED, f"risk/{DAY1}:4")]
    code, out = run_cli(capsys, "verify", str(trail))
    assert code == 1 and f"risk/{DAY1}:4: reordered: seq 3 after seq 4 (risk/{DAY1}:3)" in out


def test_detects_an_inserted_copy(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    orders = trail / "orders" / DAY1
    lines = lines_of(orders)
    lines.insert(5, lines[1])  # a replayed order, byte-identical to a genuine one
    orders.write_bytes(b"".join(lines))
    assert problems(trail) == [(ProblemKind.INSERTED, f"orders/{DAY1}:6")]
    code, out = run_cli(capsys, "verify", str(trail))
    assert code == 1 and f"orders/{DAY1}:6: inserted: second record with seq 2" in out


def test_detects_an_inserted_forged_record_with_a_valid_hash(trail: Path) -> None:
    fills = trail / "fills" / DAY1
    lines = lines_of(fills)
    forged = chain(trade_entries(50, T0_NS + 90_000_000_000)[3], head_of(decode_line(lines[0])))
    lines.insert(1, encode_line(forged))  # claims seq 2, links to seq 1 correctly
    fills.write_bytes(b"".join(lines))
    assert problems(trail) == [(ProblemKind.INSERTED, f"fills/{DAY1}:2")]


def test_detects_schema_and_misplaced_records(trail: Path) -> None:
    health = trail / "health" / DAY1
    lines = lines_of(health)
    lines[0] = json.dumps({"hello": "world"}).encode() + b"\n"
    health.write_bytes(b"".join(lines))
    signals = trail / "signals" / DAY1
    stray = chain(trade_entries(60, T0_NS)[3], GENESIS)  # a fill, alone in the signals stream
    signals.write_bytes(encode_line(stray))
    kinds = sorted(problems(trail))
    assert (ProblemKind.SCHEMA, f"health/{DAY1}:1") in kinds
    assert (ProblemKind.MISPLACED, f"signals/{DAY1}:1") in kinds


def test_torn_tail_fails_verify_until_repaired(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fills = trail / "fills" / DAY1
    with open(fills, "ab") as handle:
        handle.write(b'{"timestamp":"2024-01-02T15:')
    code, out = run_cli(capsys, "verify", str(trail))
    assert code == 1 and f"fills/{DAY1}:7: torn:" in out
    code, out = run_cli(capsys, "repair", str(trail))
    assert code == 0 and f"repaired fills/{DAY1}: 28 bytes moved to {DAY1}.torn-1" in out
    code, out = run_cli(capsys, "verify", str(trail))
    assert code == 0 and f"notice: fills/{DAY1}.torn-1: 28 bytes set aside by crash repair" in out


def test_show_prints_the_last_records(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "show", str(trail), "--stream", "fills", "--last", "2")
    assert code == 0
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [5, 6]
