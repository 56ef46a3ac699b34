"""The durable audit trail on disk: five hash-chained JSON Lines streams, one file per session-clock day.

Implements ``core.ports.AuditSink``; the engine acts on an order or fill only after ``write`` returns.

Layout: ``DIR/<stream>/<YYYY-MM-DD>.jsonl`` (the record's timestamp date; a record never goes into a file
dated before the stream's current one, so files stay in chain order), ``DIR/<stream>/ANCHOR.json`` (the
prune checkpoint), ``DIR/.lock`` (one writer at a time).

Durability: ``orders`` and ``fills`` are written, then ``os.fsync``-ed, before ``write`` returns. The other
streams are written straight to the OS per record (unbuffered, so they survive a process crash) and
fsync-ed every ``LAZY_FSYNC_EVERY_RECORDS`` records, on day roll-over, on ``sync()`` and on ``close()``;
a power loss may cost those streams their last few records, never their earlier ones. A new file's
directory entry is fsync-ed too.

Crash repair on open: an unterminated or undecodable tail of a stream's newest file is moved to
``<file>.torn-<n>`` (never dropped) and the file truncated to its last good record. A failed write
(``ENOSPC``...) is undone the same way and raised as ``AuditWriteError``; if it cannot be undone the
stream refuses further writes until the sink is reopened (and repairs).

Plain synchronous file I/O on purpose: ``trio.Path`` runs in worker threads, which MockClock's autojump
does not wait for (feasibility notes).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO, Final

import msgspec

from core.audit import (
    DURABLE_STREAMS,
    GENESIS,
    RUNNER_STARTED_EVENT,
    STREAM_FILLS,
    STREAM_HEALTH,
    STREAMS,
    AuditEntry,
    AuditRecord,
    AuditSchemaError,
    ChainHead,
    entry_from_mapping,
    is_expired,
    iso_from_ts_ns,
    record_date,
    stream_for,
    system_record,
    ts_ns_from_iso,
    validate_entry,
)
from core.audit_chain import chain, decode_line, encode_line, head_of
from core.audit_verify import Location, StreamReport, StreamVerifier, TrailReferences
from core.recovery import TrailLatch, fold_trail

LAZY_FSYNC_EVERY_RECORDS: Final = 256  # our choice: bounds what a power loss can take from lazy streams
SECRET_MIN_CHARS: Final = 8  # shorter "secrets" would redact ordinary words; refuse the configuration
REDACTED: Final = "***"
ANCHOR_NAME: Final = "ANCHOR.json"
ANCHORS_NAME: Final = "ANCHORS.ndjson"  # the trail's anchor file (not *.jsonl: it is no stream)
LOCK_NAME: Final = ".lock"
_DATED_RE: Final = re.compile(r"^(\d{4}-\d{2}-\d{2})\.jsonl$")
_TORN_RE: Final = re.compile(r"^(\d{4}-\d{2}-\d{2})\.jsonl\.torn-(\d+)$")

Opener = Callable[[Path], BinaryIO]


class AuditWriteError(Exception):
    """The audit trail could not be written durably. The engine halts on it; never swallow it."""

    def __init__(self, path: Path, message: str, *, errno_: int | None = None) -> None:
        super().__init__(f"audit write failed for {path}: {message}")
        self.path = path
        self.errno = errno_


class AuditLockedError(Exception):
    """Another process holds the audit directory: two writers would fork the hash chains."""


class AuditSecretLeak(Exception):
    """A configured secret survived redaction (e.g. it looks like a number in the record). Not written."""


class AnchorFile(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    sha256: str
    pruned_through: str  # YYYY-MM-DD: the newest file date that retention removed


def _open_append(path: Path) -> BinaryIO:
    # Unbuffered: a failed write leaves nothing in a Python buffer to be flushed into the file later.
    return open(path, "ab", buffering=0)  # the sink owns the handle's lifetime


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(handle: BinaryIO, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = handle.write(view)
        if not written:
            raise OSError(errno.EIO, "short write")
        view = view[written:]


# --- files --------------------------------------------------------------------------------------------------
def dated_files(stream_dir: Path) -> list[tuple[date, Path]]:
    """The stream's ``YYYY-MM-DD.jsonl`` files, oldest first (which is chain order)."""
    if not stream_dir.is_dir():
        return []
    found = []
    for path in stream_dir.iterdir():
        match = _DATED_RE.match(path.name)
        if match and path.is_file():
            found.append((date.fromisoformat(match.group(1)), path))
    return sorted(found)


def torn_files(stream_dir: Path) -> list[Path]:
    if not stream_dir.is_dir():
        return []
    return sorted(p for p in stream_dir.iterdir() if _TORN_RE.match(p.name))


def read_anchor(stream_dir: Path) -> ChainHead:
    path = stream_dir / ANCHOR_NAME
    if not path.exists():
        return GENESIS
    anchor = msgspec.json.decode(path.read_bytes(), type=AnchorFile)
    return ChainHead(seq=anchor.seq, sha256=anchor.sha256)


def _last_good(data: bytes) -> tuple[AuditRecord | None, int]:
    """The last decodable record in a file's bytes and the offset just past its newline."""
    end = data.rfind(b"\n") + 1  # an unterminated tail is torn whatever it holds
    while end > 0:
        start = data.rfind(b"\n", 0, end - 1) + 1
        try:
            return decode_line(data[start:end]), end
        except AuditSchemaError:
            end = start
    return None, 0


@dataclass(frozen=True, slots=True)
class Repair:
    file: Path
    torn_file: Path
    torn_bytes: int


def repair_tail(path: Path) -> tuple[AuditRecord | None, Repair | None]:
    """Move whatever follows the last good record aside to ``<file>.torn-<n>`` and truncate the file."""
    data = path.read_bytes()
    last, good_end = _last_good(data)
    if good_end == len(data):
        return last, None
    n = 1
    while (torn := path.with_name(f"{path.name}.torn-{n}")).exists():
        n += 1
    with open(torn, "xb") as out:
        out.write(data[good_end:])
        out.flush()
        os.fsync(out.fileno())
    with open(path, "r+b") as handle:
        handle.truncate(good_end)
        handle.flush()
        os.fsync(handle.fileno())
    _fsync_dir(path.parent)
    return last, Repair(file=path, torn_file=torn, torn_bytes=len(data) - good_end)


def recover_stream(stream_dir: Path) -> tuple[ChainHead, list[Repair]]:
    """Repair the newest files' tails and return where the chain stands (the anchor if all were pruned)."""
    repairs: list[Repair] = []
    for _day, path in reversed(dated_files(stream_dir)):
        last, repair = repair_tail(path)
        if repair is not None:
            repairs.append(repair)
        if last is not None:
            return head_of(last), repairs
    return read_anchor(stream_dir), repairs


# --- the sink -----------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Stream:
    name: str
    directory: Path
    durable: bool
    head: ChainHead = GENESIS
    day: date | None = None
    path: Path | None = None
    handle: BinaryIO | None = None
    size_bytes: int = 0
    unsynced: int = 0
    broken: str | None = None  # sticky: a failed write could not be undone


class JsonlAuditSink:
    """Append-only, hash-chained, per-day JSON Lines audit files. Not thread-safe; one per directory.

    ``fsync=False`` skips every fsync (simulation worlds in temp dirs); live and paper must keep it on.
    ``opener`` opens a file for appending (tests inject failing files through it).
    """

    def __init__(
        self,
        root: Path | str,
        *,
        secrets: Sequence[str] = (),
        fsync: bool = True,
        lazy_fsync_every_records: int = LAZY_FSYNC_EVERY_RECORDS,
        opener: Opener = _open_append,
    ) -> None:
        for secret in secrets:
            if secret and len(secret) < SECRET_MIN_CHARS:
                raise ValueError(f"a secret must be at least {SECRET_MIN_CHARS} chars to redact safely")
        if lazy_fsync_every_records < 1:
            raise ValueError("lazy_fsync_every_records must be >= 1")
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted({s for s in secrets if s}, key=lambda s: (-len(s), s))
        self._secret_bytes = [
            form for s in self._secrets for form in {s.encode(), msgspec.json.encode(s)[1:-1]}
        ]
        self._fsync = fsync
        self._lazy_every = lazy_fsync_every_records
        self._opener = opener
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_fd = self._lock()
        self._closed = False
        self.repairs: list[Repair] = []
        self._streams: dict[str, _Stream] = {}
        try:
            for name in STREAMS:
                directory = self.root / name
                directory.mkdir(exist_ok=True)
                head, repairs = recover_stream(directory)
                self.repairs.extend(repairs)
                self._streams[name] = _Stream(name, directory, name in DURABLE_STREAMS, head)
            self._latch = read_latch(self.root)
            self._executions = read_executions(self.root)
            if self._fsync:
                _fsync_dir(self.root)
        except BaseException:
            os.close(self._lock_fd)
            raise

    def _lock(self) -> int:
        fd = os.open(self.root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise AuditLockedError(f"{self.root} is already open by another audit writer") from exc
        return fd

    # --- the port ---
    def write(self, entry: AuditEntry) -> None:
        """AuditSink: returns once the record is written (and fsync-ed, for orders and fills)."""
        self.append(entry)

    def append(self, entry: AuditEntry | Mapping[str, Any]) -> AuditRecord:
        """Validate, redact, chain and write one entry into its stream (from its event_type)."""
        if self._closed:
            raise AuditWriteError(self.root, "the audit sink is closed")
        entry = validate_entry(entry) if isinstance(entry, AuditEntry) else entry_from_mapping(entry)
        stream = stream_for(entry)
        entry, redactions = self._redact(entry)
        state = self._streams[stream]
        chained = chain(entry, state.head)
        line = encode_line(chained)
        if any(form in line for form in self._secret_bytes):
            raise AuditSecretLeak(f"a configured secret survived redaction in a {entry.event_type} record")
        self._append_line(state, record_date(entry), line)
        state.head = head_of(chained)
        self._latch = self._latch.fold(entry)
        execution = entry.extra.get("execution_id") if entry.event_type == "fill" else None
        if isinstance(execution, str):
            self._executions.add(execution)
        if redactions:
            note = system_record(
                "health",
                ts_ns=ts_ns_from_iso(entry.timestamp),
                reason="secret value redacted from an audit record",
                extra={"event": "secret_redacted", "stream": stream, "seq": chained.seq, "count": redactions},
            )
            self.append(note)
        return chained

    def head(self, stream: str) -> ChainHead:
        return self._streams[stream].head

    def latch(self) -> TrailLatch:
        """``core.recovery.LatchSource``: the trail's halt/reset view, kept current as records are written."""
        return self._latch

    def audited_executions(self) -> frozenset[str]:
        """``core.recovery.LatchSource``: execution ids of the trail's fill records, kept current as written."""
        return frozenset(self._executions)

    def sync(self) -> None:
        """fsync every stream with records not yet on stable storage (the engine may call this on a timer)."""
        for state in self._streams.values():
            self._sync(state)

    def close(self) -> None:
        """fsync and close every file; raises the first AuditWriteError after closing them all."""
        if self._closed:
            return
        self._closed = True
        first_error: AuditWriteError | None = None
        for state in self._streams.values():
            try:
                self._close_file(state)
            except AuditWriteError as exc:
                first_error = first_error or exc
        os.close(self._lock_fd)
        if first_error is not None:
            raise first_error

    def __enter__(self) -> JsonlAuditSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def prune(self, today: date) -> list[Path]:
        """Retention (spec 4.2); ``today`` is the session-clock date. See :func:`prune`."""
        return prune(self.root, today, fsync=self._fsync)

    # --- internals ---
    def _redact(self, entry: AuditEntry) -> tuple[AuditEntry, int]:
        if not self._secrets:
            return entry, 0
        count = 0

        def scrub(value: Any) -> Any:
            nonlocal count
            if isinstance(value, str):
                for secret in self._secrets:
                    if secret in value:
                        count += value.count(secret)
                        value = value.replace(secret, REDACTED)
                return value
            if isinstance(value, dict):
                return {scrub(k): scrub(v) for k, v in value.items()}
            if isinstance(value, list):
                return [scrub(v) for v in value]
            return value

        cleaned = scrub(msgspec.to_builtins(entry))
        if not count:
            return entry, 0
        return entry_from_mapping(cleaned), count

    def _append_line(self, state: _Stream, day: date, line: bytes) -> None:
        if state.broken is not None:
            where = state.path or state.directory
            raise AuditWriteError(where, f"stream unusable until reopened: {state.broken}")
        if state.day is None or day > state.day or state.handle is None:
            # Never back into an older file: files must stay in chain order (late timestamps go forward).
            self._roll(state, day if state.day is None else max(day, state.day))
        assert state.handle is not None and state.path is not None
        offset = state.size_bytes
        try:
            _write_all(state.handle, line)
            state.unsynced += 1
            if state.durable or state.unsynced >= self._lazy_every:
                self._fsync_handle(state)
        except OSError as exc:
            self._undo(state, offset, exc)
            raise AuditWriteError(state.path, f"{exc.strerror or exc}", errno_=exc.errno) from exc
        state.size_bytes = offset + len(line)

    def _undo(self, state: _Stream, offset: int, cause: OSError) -> None:
        """Cut a half-written line off again, so the next write does not land after a torn fragment."""
        assert state.handle is not None
        try:
            state.handle.truncate(offset)
        except OSError as exc:
            state.broken = f"{cause.strerror or cause}; truncating back failed: {exc.strerror or exc}"

    def _roll(self, state: _Stream, day: date) -> None:
        self._close_file(state)
        path = state.directory / f"{day.isoformat()}.jsonl"
        is_new = not path.exists()
        try:
            state.handle = self._opener(path)
            state.size_bytes = os.fstat(state.handle.fileno()).st_size
            if is_new and self._fsync:
                _fsync_dir(state.directory)
        except OSError as exc:
            self._close_file(state)
            raise AuditWriteError(path, f"cannot open: {exc.strerror or exc}", errno_=exc.errno) from exc
        state.day, state.path, state.unsynced = day, path, 0

    def _fsync_handle(self, state: _Stream) -> None:
        if self._fsync and state.handle is not None:
            os.fsync(state.handle.fileno())
        state.unsynced = 0

    def _sync(self, state: _Stream) -> None:
        if state.unsynced and state.handle is not None:
            try:
                self._fsync_handle(state)
            except OSError as exc:
                path = state.path or state.directory
                raise AuditWriteError(path, f"fsync: {exc.strerror or exc}", errno_=exc.errno) from exc

    def _close_file(self, state: _Stream) -> None:
        if state.handle is None:
            return
        try:
            self._sync(state)
        finally:
            with contextlib.suppress(OSError):  # the data is synced or the error already raised above
                state.handle.close()
            state.handle = None


# --- retention ----------------------------------------------------------------------------------------------
def _write_anchor(stream_dir: Path, anchor: AnchorFile, *, fsync: bool) -> None:
    tmp = stream_dir / f"{ANCHOR_NAME}.tmp"
    with open(tmp, "wb") as out:
        out.write(msgspec.json.encode(anchor) + b"\n")
        out.flush()
        if fsync:
            os.fsync(out.fileno())
    os.replace(tmp, stream_dir / ANCHOR_NAME)
    if fsync:
        _fsync_dir(stream_dir)


def prune(root: Path | str, today: date, *, fsync: bool = True) -> list[Path]:
    """Delete the files (and their torn fragments) older than each stream's retention window.

    Never touches a file inside its window. Before deleting, the last pruned record's seq and sha256 go
    into ``ANCHOR.json``, so ``verify`` still proves the rest of the chain. Returns what it deleted.
    """
    deleted: list[Path] = []
    root = Path(root)
    for stream in STREAMS:
        stream_dir = root / stream
        expired = [(day, p) for day, p in dated_files(stream_dir) if is_expired(stream, day, today)]
        torn = [p for p in torn_files(stream_dir) if is_expired(stream, _torn_date(p), today)]
        if not expired and not torn:
            continue
        current = read_anchor(stream_dir)
        for day, path in reversed(expired):
            last, _ = _last_good(path.read_bytes())
            if last is not None:
                if last.seq > current.seq:
                    anchor = AnchorFile(seq=last.seq, sha256=last.sha256, pruned_through=day.isoformat())
                    _write_anchor(stream_dir, anchor, fsync=fsync)
                break
        for path in sorted([p for _, p in expired] + torn):
            path.unlink()
            deleted.append(path)
        if fsync:
            _fsync_dir(stream_dir)
    return deleted


def _torn_date(path: Path) -> date:
    match = _TORN_RE.match(path.name)
    assert match is not None
    return date.fromisoformat(match.group(1))


# --- reading and verifying ----------------------------------------------------------------------------------
def iter_lines(root: Path, stream: str) -> Iterator[tuple[Location, bytes, date, bool]]:
    """(location, line, file date, terminated) for every line of a stream, files oldest first."""
    for day, path in dated_files(root / stream):
        data = path.read_bytes()
        if not data:
            continue
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline
        name = f"{stream}/{path.name}"
        for number, line in enumerate(lines, start=1):
            yield Location(name, number), line, day, True
        if tail:
            yield Location(name, len(lines) + 1), tail, day, False


def iter_records(
    root: Path | str, stream: str, *, unreadable: Callable[[Location, str], None] | None = None
) -> Iterator[AuditRecord]:
    """Every record of a stream, decoded and typed, files oldest first: the one reader of audit lines.

    A line that cannot be a record (unterminated: a torn tail; or it does not decode) goes to ``unreadable``
    with why ("unterminated", or the error's type name) and is skipped; without ``unreadable`` it raises
    AuditSchemaError naming where. Integrity (the chain, anchors) is ``verify_dir``'s business, not this.
    """
    for location, line, _day, terminated in iter_lines(Path(root), stream):
        try:
            if not terminated:
                raise AuditSchemaError("unterminated")
            record = decode_line(line)
        except AuditSchemaError as exc:
            if unreadable is None:
                raise AuditSchemaError(f"{location}: {exc}") from exc
            unreadable(location, "unterminated" if not terminated else type(exc).__name__)
            continue
        yield record


@dataclass(frozen=True, slots=True)
class DirReport:
    streams: tuple[StreamReport, ...]
    notices: tuple[str, ...]  # not failures: repaired crash fragments, stray files, an unanchored sim trail
    trail_problems: tuple[str, ...] = ()  # across streams: no records, emptied files, dangling references
    anchor_problems: tuple[str, ...] = ()  # a stream no longer at (or beyond) its last anchor

    @property
    def chains_ok(self) -> bool:
        """Everything but the anchor: what ``ttlive audit anchor`` needs before it may anchor."""
        return all(report.ok for report in self.streams) and not self.trail_problems

    @property
    def ok(self) -> bool:
        return self.chains_ok and not self.anchor_problems


@dataclass
class _TrailScan:
    """What verify learns reading every stream once, for the checks across streams and against the anchor."""

    references: TrailReferences
    hashes: dict[str, dict[int, str]]  # stream -> seq -> sha256
    broker_trail: bool = False  # a paper/live runner wrote here: it must be anchored

    def add(self, stream: str, location: Location, line: bytes, day: date) -> None:
        try:
            record = decode_line(line)
        except AuditSchemaError:
            return  # the stream's own verifier reports it
        self.hashes[stream][record.seq] = record.sha256
        self.references.add(location, record, day)
        extra = record.extra
        if extra.get("event") == RUNNER_STARTED_EVENT and extra.get("mode") in ("paper", "live"):
            self.broker_trail = True


def verify_dir(root: Path | str, *, anchors: Path | None = None) -> DirReport:
    """Verify every stream of an audit directory and the trail as a whole (read-only; no lock needed).

    ``anchors``: an anchor file (e.g. the operator's off-machine copy); default ``DIR/ANCHORS.ndjson``.
    """
    root = Path(root)
    reports = []
    notices: list[str] = []
    problems: list[str] = []
    scan = _TrailScan(TrailReferences(), {stream: {} for stream in STREAMS})
    for stream in STREAMS:
        stream_dir = root / stream
        verifier = StreamVerifier(stream, anchor=read_anchor(stream_dir))
        for location, line, day, terminated in iter_lines(root, stream):
            verifier.add_line(location, line, file_date=day, terminated=terminated)
            if terminated:
                scan.add(stream, location, line, day)
        reports.append(verifier.report())
        problems += [f"{stream}/{path.name}: empty file (emptied after it was written?)"
                     for _day, path in dated_files(stream_dir) if path.stat().st_size == 0]
        for torn in torn_files(stream_dir):
            notices.append(f"{stream}/{torn.name}: {torn.stat().st_size} bytes set aside by crash repair")
        if stream_dir.is_dir():
            known = {p.name for _, p in dated_files(stream_dir)} | {p.name for p in torn_files(stream_dir)}
            for path in sorted(stream_dir.iterdir()):
                if path.name not in known and path.name != ANCHOR_NAME:
                    notices.append(f"{stream}/{path.name}: not an audit file")
    if not any(report.records for report in reports):
        problems.append(f"{root}: no audit records at all (an empty directory, or not an audit dir?)")
    problems += scan.references.problems(_pruned_through(root))
    anchor_problems, anchor_notices = _check_anchor(root, anchors or root / ANCHORS_NAME, reports, scan)
    return DirReport(streams=tuple(reports), notices=tuple(notices + anchor_notices),
                     trail_problems=tuple(problems), anchor_problems=tuple(anchor_problems))


def _pruned_through(root: Path) -> dict[str, date]:
    found = {}
    for stream in STREAMS:
        path = root / stream / ANCHOR_NAME
        if path.exists():
            found[stream] = date.fromisoformat(msgspec.json.decode(path.read_bytes(), type=AnchorFile).pruned_through)
    return found


# --- anchors: the chain heads, kept apart so a cut-off tail or a re-chained append shows ---------------------
class TrailAnchor(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the anchor file: every stream's head (seq = records written since genesis) at a time."""

    timestamp: str
    heads: dict[str, ChainHead]


def current_heads(root: Path) -> dict[str, ChainHead]:
    """Each stream's last good record on disk (read-only: a torn tail is not repaired, just not counted)."""
    heads = {}
    for stream in STREAMS:
        head = read_anchor(root / stream)
        for _day, path in reversed(dated_files(root / stream)):
            last, _end = _last_good(path.read_bytes())
            if last is not None:
                head = head_of(last)
                break
        heads[stream] = head
    return heads


def append_anchor(root: Path | str, *, ts_ns: int, fsync: bool = True) -> TrailAnchor:
    """Append the current heads to ``DIR/ANCHORS.ndjson`` (append-only; copy it off the machine to keep it)."""
    root = Path(root)
    anchor = TrailAnchor(timestamp=iso_from_ts_ns(ts_ns), heads=current_heads(root))
    path = root / ANCHORS_NAME
    is_new = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        with os.fdopen(fd, "ab", buffering=0) as out:
            _write_all(out, msgspec.json.encode(anchor) + b"\n")
            if fsync:
                os.fsync(out.fileno())
    finally:
        if is_new and fsync:
            _fsync_dir(root)
    return anchor


def read_anchors(path: Path) -> list[TrailAnchor]:
    """Every anchor in the file, oldest first; raises AuditSchemaError naming the bad line."""
    anchors = []
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            anchors.append(msgspec.json.decode(line, type=TrailAnchor))
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise AuditSchemaError(f"{path.name}:{number}: not an anchor: {exc}") from None
    return anchors


def _check_anchor(root: Path, path: Path, reports: list[StreamReport], scan: _TrailScan) -> tuple[list[str], list[str]]:
    """(problems, notices): each stream must still hold its last anchored head, and end there unless a writer
    holds the trail (a running runner anchors at its session close)."""
    try:
        anchors = read_anchors(path) if path.exists() else []
    except AuditSchemaError as exc:
        return [str(exc)], []
    if not anchors:
        unanchored = f"{path.name}: no anchor: a cut-off tail or an appended re-hashed record cannot be seen"
        if scan.broker_trail:
            return [unanchored + " (a paper/live trail must be anchored)"], []
        return [], [unanchored]
    last = anchors[-1]
    writing = _writer_holds(root)
    problems, notices = [], []
    for report in reports:
        head = last.heads.get(report.stream, GENESIS)
        where = f"{report.stream}: anchor of {last.timestamp}"
        if head.seq > report.last_seq:
            problems.append(f"{where}: truncated: anchored at seq {head.seq}, the trail ends at seq {report.last_seq}")
        elif head.seq and head.seq > report.anchor.seq and scan.hashes[report.stream].get(head.seq) != head.sha256:
            problems.append(f"{where}: seq {head.seq} is not the anchored record (rewritten)")
        elif report.last_seq > head.seq:
            extra = f"{where}: {report.last_seq - head.seq} record(s) after the last anchor"
            if writing:
                notices.append(extra + " (a writer holds the trail: a session under way)")
            else:
                problems.append(extra + " and no writer holds the trail: appended after the close (forged?) or "
                                "left by a crash; `ttlive audit anchor` once you know which")
    return problems, notices


def _writer_holds(root: Path) -> bool:
    """True while an audit writer (a runner, ttlive kill) holds DIR/.lock; verify itself takes no lock."""
    try:
        fd = os.open(root / LOCK_NAME, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def read_latch(root: Path | str) -> TrailLatch:
    """The latch view of a trail's health stream (undecodable lines are verify's business, skipped here)."""
    return fold_trail(iter_records(root, STREAM_HEALTH, unreadable=lambda _location, _why: None))


def read_executions(root: Path | str) -> set[str]:
    """Execution ids of a trail's fill records (undecodable lines are verify's business, skipped here)."""
    out: set[str] = set()
    for entry in iter_records(root, STREAM_FILLS, unreadable=lambda _location, _why: None):
        execution = entry.extra.get("execution_id")
        if isinstance(execution, str):
            out.add(execution)
    return out


def tail_lines(root: Path | str, stream: str, count: int) -> list[bytes]:
    """The last ``count`` lines of a stream, oldest first."""
    found: list[bytes] = []
    for _day, path in reversed(dated_files(Path(root) / stream)):
        lines = [line for line in path.read_bytes().split(b"\n") if line]
        found[:0] = lines[-(count - len(found)) :]
        if len(found) >= count:
            break
    return found
