"""Verifying audit streams (pure: the reader feeds lines in file order, files in date order): one stream's
hash chain classified as a whole (StreamVerifier), and references across streams (TrailReferences).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Final

import msgspec

from core.audit import (
    GENESIS,
    GENESIS_SHA256,
    STREAM_OF_EVENT,
    STREAM_ORDERS,
    STREAM_RISK,
    STREAM_SIGNALS,
    STREAMS,
    AuditRecord,
    AuditSchemaError,
    ChainHead,
    record_date,
)
from core.audit_chain import decode_line, integrity_problem


class ProblemKind(enum.StrEnum):
    SCHEMA = "schema"  # a line that does not decode into AuditRecord
    MODIFIED = "modified"  # content/hash mismatch, or a broken prev_sha256 link
    DELETED = "deleted"  # seq numbers missing
    REORDERED = "reordered"  # a record after one with a higher seq
    INSERTED = "inserted"  # a second record claiming a seq, or one before the prune anchor
    MISPLACED = "misplaced"  # a record in a file dated before it, or in the wrong stream
    TORN = "torn"  # an unterminated last line: a crash not yet repaired (reopen the sink)


class Location(msgspec.Struct, frozen=True, order=True):
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    kind: ProblemKind
    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.kind}: {self.message}"


class StreamReport(msgspec.Struct, frozen=True, kw_only=True):
    stream: str
    files: int
    records: int
    first_seq: int  # 0 when empty
    last_seq: int
    anchor: ChainHead
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


class _Seen(msgspec.Struct, frozen=True):
    location: Location
    record: AuditRecord
    intact: bool


class StreamVerifier:
    """Collects one stream's lines, then classifies what is wrong with the chain as a whole.

    Looking at the whole stream (not line by line) lets a swap read as one reordering instead of a
    deletion plus an insertion. ``anchor`` is the prune checkpoint (the last pruned record's seq and
    sha256): records up to it may be gone; if the one at ``anchor.seq`` is still there it must match.
    """

    def __init__(self, stream: str, *, anchor: ChainHead = GENESIS) -> None:
        if stream not in STREAMS:
            raise ValueError(f"unknown audit stream {stream!r}")
        self._stream = stream
        self._anchor = anchor
        self._seen: list[_Seen] = []
        self._problems: list[Problem] = []
        self._files: set[str] = set()

    def add_line(self, location: Location, line: bytes, *, file_date: date, terminated: bool = True) -> None:
        self._files.add(location.file)

        def problem(kind: ProblemKind, message: str) -> None:
            self._problems.append(Problem(kind=kind, location=location, message=message))

        if not terminated:
            problem(ProblemKind.TORN, "unterminated last line (crash during a write?); reopen to repair")
            return
        try:
            record = decode_line(line)
        except AuditSchemaError as exc:
            problem(ProblemKind.SCHEMA, str(exc))
            return
        why = integrity_problem(record, line)
        if why is not None:
            problem(ProblemKind.MODIFIED, why)
        if record_date(record) > file_date:
            problem(ProblemKind.MISPLACED, f"record dated {record.timestamp} in a file dated {file_date}")
        if STREAM_OF_EVENT[record.event_type] != self._stream:
            problem(ProblemKind.MISPLACED, f"{record.event_type} record in the {self._stream} stream")
        self._seen.append(_Seen(location, record, why is None))

    def report(self) -> StreamReport:
        problems = list(self._problems)
        genuine = self._pick_genuine(problems)
        self._find_deleted(genuine, problems)
        self._find_reordered(genuine, problems)
        self._find_broken_links(genuine, problems)
        seqs = sorted(genuine)
        return StreamReport(
            stream=self._stream,
            files=len(self._files),
            records=len(self._seen),
            first_seq=seqs[0] if seqs else 0,
            last_seq=seqs[-1] if seqs else 0,
            anchor=self._anchor,
            problems=tuple(sorted(problems, key=lambda p: (p.location, p.kind, p.message))),
        )

    def _add(self, problems: list[Problem], kind: ProblemKind, seen: _Seen, message: str) -> None:
        problems.append(Problem(kind=kind, location=seen.location, message=message))

    def _pick_genuine(self, problems: list[Problem]) -> dict[int, _Seen]:
        """One record per seq; any other record claiming the same seq is an insertion."""
        by_seq: dict[int, list[_Seen]] = {}
        for seen in self._seen:
            by_seq.setdefault(seen.record.seq, []).append(seen)
        referenced = {seen.record.prev_sha256 for seen in self._seen}
        genuine: dict[int, _Seen] = {}
        for seq, claimants in by_seq.items():
            # The genuine one is intact and committed to by its successor; else the first intact one.
            ranked = sorted(
                claimants, key=lambda s: (not s.intact, s.record.sha256 not in referenced, s.location)
            )
            genuine[seq] = ranked[0]
            for other in ranked[1:]:
                self._add(
                    problems,
                    ProblemKind.INSERTED,
                    other,
                    f"second record with seq {seq} (the chain continues from {ranked[0].location})",
                )
        return genuine

    def _first_expected_seq(self, genuine: dict[int, _Seen]) -> int:
        """Pruned records may still be on disk (prune writes the anchor before deleting)."""
        return min(min(genuine), self._anchor.seq + 1)

    def _find_deleted(self, genuine: dict[int, _Seen], problems: list[Problem]) -> None:
        if not genuine:
            return
        expected = self._first_expected_seq(genuine)
        for seq in sorted(genuine):
            if seq > expected:
                span = f"seq {expected}" if seq == expected + 1 else f"seq {expected}..{seq - 1}"
                self._add(problems, ProblemKind.DELETED, genuine[seq], f"{span} missing before seq {seq}")
            expected = seq + 1

    def _find_reordered(self, genuine: dict[int, _Seen], problems: list[Problem]) -> None:
        chosen = {id(seen) for seen in genuine.values()}
        highest: _Seen | None = None
        for seen in self._seen:  # file order
            if id(seen) not in chosen:
                continue
            if highest is not None and seen.record.seq < highest.record.seq:
                self._add(
                    problems,
                    ProblemKind.REORDERED,
                    seen,
                    f"seq {seen.record.seq} after seq {highest.record.seq} ({highest.location})",
                )
            else:
                highest = seen

    def _find_broken_links(self, genuine: dict[int, _Seen], problems: list[Problem]) -> None:
        if not genuine:
            return
        first = self._first_expected_seq(genuine)
        anchor = self._anchor
        at_anchor = genuine.get(anchor.seq)
        if at_anchor is not None and at_anchor.intact and at_anchor.record.sha256 != anchor.sha256:
            self._add(
                problems,
                ProblemKind.MODIFIED,
                at_anchor,
                f"seq {anchor.seq} does not match the sha256 the prune anchor recorded",
            )
        for seq, seen in sorted(genuine.items()):
            if not seen.intact:
                continue  # already reported as modified
            prev_sha = seen.record.prev_sha256
            if seq == 1 and prev_sha != GENESIS_SHA256:
                self._add(problems, ProblemKind.MODIFIED, seen, "seq 1 does not start from the genesis hash")
            elif seq == first and seq == anchor.seq + 1 and prev_sha != anchor.sha256:
                self._add(
                    problems,
                    ProblemKind.MODIFIED,
                    seen,
                    f"prev_sha256 of seq {seq} does not match the prune anchor (seq {anchor.seq})",
                )
            elif seq > first:
                before = genuine.get(seq - 1)
                if before is None or not before.intact:
                    continue  # a deletion or modification already reported
                if prev_sha != before.record.sha256:
                    self._add(
                        problems,
                        ProblemKind.MODIFIED,
                        before,
                        f"seq {seq - 1} was rewritten: seq {seq} ({seen.location}) committed to "
                        "a different sha256",
                    )


def verify_lines(
    stream: str, lines: Iterable[tuple[Location, bytes, date, bool]], *, anchor: ChainHead = GENESIS
) -> StreamReport:
    """Convenience: feed (location, line, file_date, terminated) tuples and return the report."""
    verifier = StreamVerifier(stream, anchor=anchor)
    for location, line, file_date, terminated in lines:
        verifier.add_line(location, line, file_date=file_date, terminated=terminated)
    return verifier.report()


# --- across streams -----------------------------------------------------------------------------------------
# Who references whom, by signal_id (spec 4.1: every fill to its order, every order to a passed risk check,
# every risk check to its signal). (referencing event type, referenced event type).
REFERENCES: Final = (("fill", "order"), ("order", "risk_check"), ("risk_check", "signal"))


class TrailReferences:
    """Collects every record's id and date across streams, then names each reference that points nowhere.

    A deleted or emptied file of one stream leaves records of another stream dangling, which a per-stream chain
    cannot see. References into a stream's pruned past (``pruned_through``) are not judged: retention differs
    per stream (spec 4.2), so a 7-year-old fill legitimately outlives its 1-year order.
    """

    def __init__(self) -> None:
        self._ids: dict[str, set[str]] = {kind: set() for _ref, kind in REFERENCES}
        self._refs: list[tuple[str, str, Location, date]] = []  # (event type, signal_id, where, file date)

    def add(self, location: Location, record: AuditRecord, file_date: date) -> None:
        kind = record.event_type
        if kind in self._ids and record.signal_id:
            self._ids[kind].add(record.signal_id)
        if record.signal_id and any(kind == referencing for referencing, _ in REFERENCES):
            self._refs.append((kind, record.signal_id, location, file_date))

    def problems(self, pruned_through: Mapping[str, date]) -> list[str]:
        target_stream = {"order": STREAM_ORDERS, "risk_check": STREAM_RISK, "signal": STREAM_SIGNALS}
        found = []
        for kind, signal_id, location, file_date in self._refs:
            target = dict(REFERENCES)[kind]
            pruned = pruned_through.get(target_stream[target])
            if signal_id not in self._ids[target] and (pruned is None or file_date > pruned):
                found.append(f"{location}: dangling reference: {kind} of signal {signal_id} has no {target} record "
                             f"(deleted from {target_stream[target]}/?)")
        return found
