"""The JSONL sink: dated files, chain across files and restarts, fsync, crash repair, ENOSPC, secrets."""

from __future__ import annotations

import errno
import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import pytest

import adapters.audit_jsonl as audit_jsonl
from adapters.audit_jsonl import (
    AuditLockedError,
    AuditSecretLeak,
    AuditWriteError,
    JsonlAuditSink,
    iter_records,
    verify_dir,
)
from core.audit import GENESIS_SHA256, AuditEntry, AuditSchemaError, signal_record, stream_for, system_record
from core.audit_chain import decode_line
from core.ports import AuditSink
from tests.audit.factory import DAY_NS, T0_NS, session, trade_entries

DAY1 = "2024-01-02.jsonl"
DAY2 = "2024-01-03.jsonl"


def write_all(sink: JsonlAuditSink, entries: list[AuditEntry]) -> None:
    for entry in entries:
        sink.write(entry)


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def test_each_stream_gets_a_dated_file_with_a_contiguous_chain(tmp_path: Path) -> None:
    with JsonlAuditSink(tmp_path) as sink:
        write_all(sink, session(3))
    for stream in ("signals", "risk", "orders", "fills", "health"):
        lines = records(tmp_path / stream / DAY1)
        assert [r["seq"] for r in lines] == list(range(1, len(lines) + 1))
        assert lines[0]["prev_sha256"] == GENESIS_SHA256
        assert all(b["prev_sha256"] == a["sha256"] for a, b in itertools.pairwise(lines))
    assert {r["event_type"] for r in records(tmp_path / "orders" / DAY1)} == {"order", "cancel"}
    assert len(records(tmp_path / "fills" / DAY1)) == 3
    assert verify_dir(tmp_path).ok


def test_satisfies_the_audit_port_and_routes_by_event_type(tmp_path: Path) -> None:
    port: AuditSink = JsonlAuditSink(tmp_path)
    for entry in session(1):
        port.write(entry)
    for stream in ("signals", "risk", "orders", "fills", "health"):
        assert {r["event_type"] for r in records(tmp_path / stream / DAY1)} == {
            "signals": {"signal"}, "risk": {"risk_check"}, "orders": {"order"}, "fills": {"fill"},
            "health": {"health"},
        }[stream]  # fmt: skip
    port.close()  # type: ignore[attr-defined]


def test_plain_dicts_are_validated_like_entries(tmp_path: Path) -> None:
    with JsonlAuditSink(tmp_path) as sink:
        as_dict = msgspec.to_builtins(session(1)[0])
        assert sink.append(as_dict).signal_id == "sig-0000"
        with pytest.raises(AuditSchemaError, match="quantity"):
            sink.append({**as_dict, "quantity": -3})
        with pytest.raises(AuditSchemaError, match="seq"):
            sink.append({**as_dict, "seq": 9})
        assert sink.head("signals").seq == 1


def test_chain_continues_across_days_and_restarts(tmp_path: Path) -> None:
    with JsonlAuditSink(tmp_path) as sink:
        write_all(sink, session(2))
        head = sink.head("fills")
    with JsonlAuditSink(tmp_path) as sink:
        assert sink.head("fills") == head
        write_all(sink, trade_entries(7, T0_NS + DAY_NS))
    day1, day2 = records(tmp_path / "fills" / DAY1), records(tmp_path / "fills" / DAY2)
    assert [r["seq"] for r in day1 + day2] == [1, 2, 3]
    assert day2[0]["prev_sha256"] == day1[-1]["sha256"]
    assert verify_dir(tmp_path).ok


def test_late_timestamp_goes_forward_never_back_into_a_closed_day(tmp_path: Path) -> None:
    with JsonlAuditSink(tmp_path) as sink:
        sink.write(system_record("health", ts_ns=T0_NS + DAY_NS))
        sink.write(system_record("health", ts_ns=T0_NS))  # yesterday's event, reported late
    assert not (tmp_path / "health" / DAY1).exists()
    assert len(records(tmp_path / "health" / DAY2)) == 2
    assert verify_dir(tmp_path).ok


def test_orders_and_fills_are_fsynced_before_write_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    sink = JsonlAuditSink(tmp_path, lazy_fsync_every_records=3)
    fills_file = str(tmp_path / "fills" / DAY1)
    signals_file = str(tmp_path / "signals" / DAY1)
    for i in range(4):
        for entry in trade_entries(i, T0_NS + i * 1_000_000_000):
            stream = stream_for(entry)
            before = synced.count(str(tmp_path / stream / DAY1))
            sink.write(entry)
            after = synced.count(str(tmp_path / stream / DAY1))
            if stream in ("orders", "fills"):
                assert after == before + 1, f"{stream} write returned without an fsync"
    assert synced.count(fills_file) == 4
    assert synced.count(signals_file) == 1  # lazy stream: once per 3 records (4 written so far)
    sink.close()
    assert synced.count(signals_file) == 2  # the 4th record is synced at close


def test_torn_half_line_is_moved_aside_and_everything_before_survives(tmp_path: Path) -> None:
    with JsonlAuditSink(tmp_path) as sink:
        write_all(sink, session(3))
    orders = tmp_path / "orders" / DAY1
    acknowledged = orders.read_bytes()
    fragment = acknowledged.splitlines(keepends=True)[0][:57]  # half a record, no newline
    with open(orders, "ab") as handle:
        handle.write(fragment)
    assert not verify_dir(tmp_path).ok  # verify sees the torn tail before repair

    with JsonlAuditSink(tmp_path) as sink:
        assert [(r.file.name, r.torn_file.name, r.torn_bytes) for r in sink.repairs] == [
            (DAY1, f"{DAY1}.torn-1", len(fragment))
        ]
        assert orders.read_bytes() == acknowledged
        assert (tmp_path / "orders" / f"{DAY1}.torn-1").read_bytes() == fragment
        signal, risk, order, *_ = trade_entries(5, T0_NS + 3_600_000_000_000)
        write_all(sink, [signal, risk])  # the order's signal and risk check: no dangling reference
        record = sink.append(order)
    assert record.seq == len(acknowledged.splitlines()) + 1
    report = verify_dir(tmp_path)
    assert report.ok
    assert any("torn-1" in notice for notice in report.notices)


@pytest.mark.parametrize("garbage", [b"{not json}\n", b"\x00" * 300, b'{"seq":1}\n\x00\x00'])
def test_unparsable_tail_is_set_aside_not_dropped(tmp_path: Path, garbage: bytes) -> None:
    with JsonlAuditSink(tmp_path) as sink:
        write_all(sink, session(2))
    fills = tmp_path / "fills" / DAY1
    good = fills.read_bytes()
    fills.write_bytes(good + garbage)
    with JsonlAuditSink(tmp_path) as sink:
        assert len(sink.repairs) == 1
    assert fills.read_bytes() == good
    assert (tmp_path / "fills" / f"{DAY1}.torn-1").read_bytes() == garbage
    assert verify_dir(tmp_path).ok


def test_a_second_crash_gets_a_second_torn_file(tmp_path: Path) -> None:
    with JsonlAuditSink(tmp_path) as sink:
        write_all(sink, session(1))
    fills = tmp_path / "fills" / DAY1
    for n in (1, 2):
        with open(fills, "ab") as handle:
            handle.write(b'{"timestamp":')
        with JsonlAuditSink(tmp_path) as sink:
            assert sink.repairs[0].torn_file.name == f"{DAY1}.torn-{n}"


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from adapters.audit_jsonl import JsonlAuditSink, _open_append
    from core.audit import stream_for
    from tests.audit.factory import session

    KILL_AT = int(sys.argv[2])
    fills_writes = 0

    class DiesMidWrite:
        def __init__(self, handle):
            self.handle = handle
        def write(self, data):
            global fills_writes
            if "fills" in self.handle.name:
                fills_writes += 1
                if fills_writes == KILL_AT:
                    self.handle.write(bytes(data)[: len(data) // 2])
                    os.kill(os.getpid(), signal.SIGKILL)
            return self.handle.write(data)
        def __getattr__(self, name):
            return getattr(self.handle, name)

    sink = JsonlAuditSink(sys.argv[1], opener=lambda path: DiesMidWrite(_open_append(path)))
    for entry in session(10):
        record = sink.append(entry)
        stream = stream_for(entry)
        print(stream, record.seq, record.sha256, flush=True)  # acknowledged: write returned
    """
)


def test_process_killed_mid_write_keeps_every_acknowledged_record(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), "4"],
        capture_output=True, text=True, cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, timeout=60,
    )  # fmt: skip
    assert proc.returncode == -9, proc.stderr
    acked = [line.split() for line in proc.stdout.splitlines()]
    assert sum(1 for stream, _, _ in acked if stream == "fills") == 3  # the 4th fill never returned

    with JsonlAuditSink(tmp_path) as sink:
        assert [r.file.name for r in sink.repairs] == [DAY1]
        on_disk = {
            (stream, rec["seq"], rec["sha256"])
            for stream in ("signals", "risk", "orders", "fills", "health")
            for rec in records(tmp_path / stream / DAY1)
        }
        for stream, seq, sha in acked:
            assert (stream, int(seq), sha) in on_disk
        assert sink.head("fills").seq == 3
        sink.write(trade_entries(3, T0_NS + 3_600_000_000_000)[3])  # the lost 4th fill, written again
    assert verify_dir(tmp_path).ok


class FlakyFile:
    """An append handle on a filling disk: with ``full`` set, a write stores half its bytes, then ENOSPC."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.full = False
        self._wrote_half = False

    def write(self, data: bytes) -> int:
        if not self.full:
            return self.handle.write(data)
        if not self._wrote_half:
            self._wrote_half = True
            return self.handle.write(bytes(data)[: len(data) // 2])  # a short write; the retry fails
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)


def test_enospc_raises_typed_error_and_leaves_no_partial_line(tmp_path: Path) -> None:
    handles: list[FlakyFile] = []

    def opener(path: Path) -> Any:
        handles.append(FlakyFile(audit_jsonl._open_append(path)))
        return handles[-1]

    sink = JsonlAuditSink(tmp_path, opener=opener)
    entries = [e for e in session(4) if e.event_type == "fill"]
    sink.write(entries[0])
    fills = tmp_path / "fills" / DAY1
    before = fills.read_bytes()
    handles[-1].full = True
    with pytest.raises(AuditWriteError, match="No space left") as caught:
        sink.write(entries[1])
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.path == fills
    assert fills.read_bytes() == before  # the half line was cut off again
    handles[-1].full = False  # space freed
    sink.write(entries[2])
    sink.close()
    assert [r["seq"] for r in records(fills)] == [1, 2]  # the failed record took no seq
    assert all(stream.ok for stream in verify_dir(tmp_path).streams)  # fills only: their orders are not the point


def test_dev_full_raises_and_the_stream_stays_refused(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this machine")
    sink = JsonlAuditSink(tmp_path)
    (tmp_path / "orders" / DAY1).symlink_to("/dev/full")
    order = next(e for e in session(1) if e.event_type == "order")
    with pytest.raises(AuditWriteError, match=DAY1) as caught:
        sink.write(order)
    assert caught.value.errno == errno.ENOSPC
    with pytest.raises(AuditWriteError, match="unusable until reopened"):
        sink.write(order)
    sink.write(session(1)[0])  # other streams still work
    sink.close()


def test_secrets_are_redacted_and_noted(tmp_path: Path) -> None:
    key, secret = "PKTESTKEY1234567890", 's3cr3t/value+with"quote'
    with JsonlAuditSink(tmp_path, secrets=[key, secret, ""]) as sink:
        leaky = signal_record(
            ts_ns=T0_NS, signal_id="sig-1", model_id="m", symbol="AAPL", direction="long", quantity=1,
            latency_ms=0, extra={"note": f"auth {key} / {secret}", f"k{key}": 1},
        )  # fmt: skip
        sink.write(leaky)
        write_all(sink, session(2))
    blob = b"".join(tree(tmp_path).values())
    for value in (key, secret):
        assert value.encode() not in blob
        assert json.dumps(value).encode()[1:-1] not in blob
    first = records(tmp_path / "signals" / DAY1)[0]
    assert first["extra"] == {"k***": 1, "note": "auth *** / ***"}
    notes = [r for r in records(tmp_path / "health" / DAY1) if r["extra"].get("event") == "secret_redacted"]
    assert [(n["extra"]["stream"], n["extra"]["seq"], n["extra"]["count"]) for n in notes] == [
        ("signals", 1, 3)
    ]
    assert verify_dir(tmp_path).ok


def test_a_secret_that_redaction_cannot_reach_is_refused(tmp_path: Path) -> None:
    with JsonlAuditSink(tmp_path, secrets=["123456789"]) as sink:
        entry = signal_record(
            ts_ns=T0_NS,
            signal_id="s",
            model_id="m",
            symbol="A",
            direction="long",
            quantity=123456789,
            latency_ms=0,
        )
        with pytest.raises(AuditSecretLeak):
            sink.write(entry)
    assert not (tmp_path / "signals" / DAY1).exists()


def test_short_secrets_are_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 8"):
        JsonlAuditSink(tmp_path, secrets=["abc"])


def test_same_records_give_byte_identical_files(tmp_path: Path) -> None:
    for name in ("a", "b"):
        with JsonlAuditSink(tmp_path / name, secrets=["PKTESTKEY1234567890"]) as sink:
            write_all(sink, session(5))
            sink.write(system_record("alert", ts_ns=T0_NS, extra={"msg": "PKTESTKEY1234567890"}))
    a, b = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert a == b and len(a) == 5


def test_one_writer_per_directory(tmp_path: Path) -> None:
    sink = JsonlAuditSink(tmp_path)
    with pytest.raises(AuditLockedError):
        JsonlAuditSink(tmp_path)
    sink.close()
    JsonlAuditSink(tmp_path).close()


def test_closed_sink_refuses_writes(tmp_path: Path) -> None:
    sink = JsonlAuditSink(tmp_path)
    sink.close()
    with pytest.raises(AuditWriteError, match="closed"):
        sink.write(session(1)[0])


def test_recovered_head_is_the_last_good_line(tmp_path: Path) -> None:
    with JsonlAuditSink(tmp_path) as sink:
        write_all(sink, session(2))
    last = decode_line((tmp_path / "risk" / DAY1).read_bytes().splitlines()[-1])
    (tmp_path / "risk" / DAY2).write_bytes(b"")  # an empty newer file (crash right after creating it)
    with JsonlAuditSink(tmp_path) as sink:
        assert sink.head("risk").seq == last.seq and sink.head("risk").sha256 == last.sha256


def test_the_typed_reader_yields_records_and_reports_damaged_lines(tmp_path: Path) -> None:
    with JsonlAuditSink(tmp_path) as sink:
        write_all(sink, session(3))
    path = tmp_path / "fills" / DAY1
    fills = list(iter_records(tmp_path, "fills"))
    assert fills == [decode_line(line) for line in path.read_bytes().splitlines()]
    assert [r.seq for r in fills] == [1, 2, 3]
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + b"{not json}\n" + lines[1] + b'{"torn')
    damaged: list[tuple[str, str]] = []
    kept = list(iter_records(tmp_path, "fills", unreadable=lambda where, why: damaged.append((str(where), why))))
    assert [r.seq for r in kept] == [1, 2]
    assert damaged == [(f"fills/{DAY1}:2", "AuditSchemaError"), (f"fills/{DAY1}:4", "unterminated")]
    with pytest.raises(AuditSchemaError, match=f"fills/{DAY1}:2"):
        list(iter_records(tmp_path, "fills"))


def test_the_trail_knows_its_audited_executions_across_reopens(tmp_path: Path) -> None:
    """core.recovery.LatchSource.audited_executions: read from the fills stream at open, kept current on write."""
    from decimal import Decimal

    from core.audit import fill_record

    def fill(execution_id: str, ts_ns: int) -> AuditEntry:
        return fill_record(ts_ns=ts_ns, signal_id="s", model_id="m", symbol="NVDA", direction="long", quantity=1,
                           alpaca_order_id="o", execution_id=execution_id, execution_price=Decimal("10"),
                           side="buy", latency_ms=1)

    with JsonlAuditSink(tmp_path) as sink:
        assert sink.audited_executions() == frozenset()
        sink.write(fill("exec-1", T0_NS))
        assert sink.audited_executions() == {"exec-1"}
    with JsonlAuditSink(tmp_path) as sink:
        assert sink.audited_executions() == {"exec-1"}
        sink.write(fill("exec-2", T0_NS + DAY_NS))  # another day's file
        assert sink.audited_executions() == {"exec-1", "exec-2"}
