"""Retention (spec 4.2): prune deletes only files older than a stream's window; the chain stays provable."""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.audit_jsonl import ANCHOR_NAME, JsonlAuditSink, prune, read_anchor, verify_dir
from core.audit import RETENTION_DAYS, STREAMS, is_expired, system_record
from core.audit_verify import ProblemKind
from tests.audit.factory import DAY_NS, T0_NS, trade_entries
from tools.cli import main

T0_DATE = date(2024, 1, 2)


def touch_files(root: Path, stream: str, days: list[date]) -> None:
    (root / stream).mkdir(parents=True, exist_ok=True)
    for day in days:
        (root / stream / f"{day.isoformat()}.jsonl").write_bytes(b"")


@pytest.mark.parametrize("stream", STREAMS)
def test_window_boundary_per_stream(tmp_path: Path, stream: str) -> None:
    today = date(2031, 6, 30)
    window = RETENTION_DAYS[stream]
    ages = [0, 1, window - 1, window, window + 1, window + 400]
    touch_files(tmp_path, stream, [today - timedelta(days=a) for a in ages])
    deleted = prune(tmp_path, today, fsync=False)
    assert sorted(deleted) == sorted(
        tmp_path / stream / f"{(today - timedelta(days=a)).isoformat()}.jsonl"
        for a in (window + 1, window + 400)
    )
    kept = sorted(p.name for p in (tmp_path / stream).iterdir())
    assert kept == sorted(
        f"{(today - timedelta(days=a)).isoformat()}.jsonl" for a in (0, 1, window - 1, window)
    )


def test_spec_windows() -> None:
    assert RETENTION_DAYS == {"signals": 90, "risk": 365, "orders": 365, "fills": 7 * 365, "health": 30}


@given(
    stream=st.sampled_from(STREAMS),
    today=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 1, 1)),
    age_days=st.integers(-10, 4000),
)
def test_expiry_is_exactly_older_than_the_window(stream: str, today: date, age_days: int) -> None:
    assert is_expired(stream, today - timedelta(days=age_days), today) == (age_days > RETENTION_DAYS[stream])


@settings(max_examples=30, deadline=None)
@given(
    today=st.dates(min_value=date(2020, 1, 1), max_value=date(2040, 1, 1)),
    ages=st.dictionaries(st.sampled_from(STREAMS), st.sets(st.integers(-3, 3000), max_size=6), max_size=5),
)
def test_prune_never_deletes_inside_the_window(today: date, ages: dict[str, set[int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for stream, stream_ages in ages.items():
            touch_files(root, stream, [today - timedelta(days=a) for a in stream_ages])
        deleted = set(prune(root, today, fsync=False))
        for stream, stream_ages in ages.items():
            for age in stream_ages:
                path = root / stream / f"{(today - timedelta(days=age)).isoformat()}.jsonl"
                inside = age <= RETENTION_DAYS[stream]
                assert path.exists() == inside, (stream, age)
                assert (path in deleted) == (not inside)
                assert is_expired(stream, today - timedelta(days=age), today) == (not inside)


def _three_days(root: Path) -> None:
    with JsonlAuditSink(root) as sink:
        for day in range(3):
            for i in range(2):
                ts_ns = T0_NS + day * DAY_NS + i * 60_000_000_000
                for entry in trade_entries(10 * day + i, ts_ns):
                    sink.write(entry)
                sink.write(system_record("health", ts_ns=ts_ns + 1))


def test_prune_anchors_the_chain_so_verify_still_passes(tmp_path: Path) -> None:
    _three_days(tmp_path)
    today = T0_DATE + timedelta(days=1 + RETENTION_DAYS["signals"])  # day 1 of signals is out of the window
    deleted = prune(tmp_path, today, fsync=False)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in deleted) == [
        *(f"health/2024-01-0{d}.jsonl" for d in (2, 3, 4)),  # 30-day stream: all three days are old
        "signals/2024-01-02.jsonl",
    ]
    assert read_anchor(tmp_path / "signals").seq == 2
    report = verify_dir(tmp_path)
    assert report.ok, [str(p) for s in report.streams for p in s.problems]
    signals = next(s for s in report.streams if s.stream == "signals")
    assert (signals.first_seq, signals.last_seq, signals.anchor.seq) == (3, 6, 2)

    # The writer picks up where it was, even once every file of a stream is gone.
    prune(tmp_path, today + timedelta(days=5), fsync=False)
    assert not list((tmp_path / "signals").glob("*.jsonl"))
    with JsonlAuditSink(tmp_path) as sink:
        assert sink.head("signals").seq == 6
        sink.write(trade_entries(99, T0_NS + 200 * DAY_NS)[0])
    assert verify_dir(tmp_path).ok


def test_deleting_more_than_retention_allows_is_still_caught(tmp_path: Path) -> None:
    _three_days(tmp_path)
    prune(tmp_path, T0_DATE + timedelta(days=1 + RETENTION_DAYS["signals"]), fsync=False)
    (tmp_path / "signals" / "2024-01-03.jsonl").unlink()  # inside the window: not retention's to delete
    assert [(p.kind, str(p.location)) for s in verify_dir(tmp_path).streams for p in s.problems] == [
        (ProblemKind.DELETED, "signals/2024-01-04.jsonl:1")
    ]


def test_a_forged_anchor_is_caught(tmp_path: Path) -> None:
    _three_days(tmp_path)
    prune(tmp_path, T0_DATE + timedelta(days=1 + RETENTION_DAYS["signals"]), fsync=False)
    anchor = tmp_path / "signals" / ANCHOR_NAME
    anchor.write_bytes(anchor.read_bytes().replace(b'"seq":2', b'"seq":3'))  # hide a deleted record
    (tmp_path / "signals" / "2024-01-03.jsonl").write_bytes(
        b"".join((tmp_path / "signals" / "2024-01-03.jsonl").read_bytes().splitlines(keepends=True)[1:])
    )
    kinds = {p.kind for s in verify_dir(tmp_path).streams for p in s.problems}
    assert ProblemKind.MODIFIED in kinds


def test_crash_between_anchor_and_delete_still_verifies(tmp_path: Path) -> None:
    _three_days(tmp_path)
    first = tmp_path / "signals" / "2024-01-02.jsonl"
    saved = first.read_bytes()
    prune(tmp_path, T0_DATE + timedelta(days=1 + RETENTION_DAYS["signals"]), fsync=False)
    first.write_bytes(saved)  # as if the process died after writing the anchor, before unlinking
    assert verify_dir(tmp_path).ok


def test_cli_prune(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _three_days(tmp_path)
    today = (T0_DATE + timedelta(days=31)).isoformat()  # health keeps 30 days
    assert main(["audit", "prune", str(tmp_path), "--today", today]) == 0
    out = capsys.readouterr().out
    assert "deleted health/2024-01-02.jsonl" in out and "pruned 1 file(s)" in out
    assert main(["audit", "verify", str(tmp_path)]) == 0
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", "prune", str(tmp_path), "--today", "yesterday"])
    assert exit_info.value.code == 2
    assert main(["audit", "prune", str(tmp_path / "missing"), "--today", today]) == 2
