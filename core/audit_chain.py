"""The per-stream SHA-256 hash chain over audit records, and the exact bytes of one line: chaining, hashing,
the line codec and the integrity check. The record format (chain fields included) is in core/audit.py.

What a hash chain cannot show: records cut off the *end* of a stream, or a stream rewritten from some record
onwards with every later hash recomputed. Anchor the latest ``sha256`` outside the machine for that.
"""

from __future__ import annotations

import hashlib
from typing import Final

import msgspec

from core.audit import (
    AUDIT_RECORD_MAX_BYTES,
    CANONICAL_ENCODER,
    AuditEntry,
    AuditRecord,
    AuditSchemaError,
    ChainBody,
    ChainHead,
    check_semantics,
)

_RECORD_DECODER: Final = msgspec.json.Decoder(AuditRecord)
_ENTRY_FIELDS: Final = AuditEntry.__struct_fields__
_BODY_FIELDS: Final = ChainBody.__struct_fields__


def _body_of(record: AuditRecord) -> ChainBody:
    return ChainBody(**{name: getattr(record, name) for name in _BODY_FIELDS})


def compute_sha256(body: ChainBody) -> str:
    if isinstance(body, AuditRecord):
        body = _body_of(body)
    return hashlib.sha256(CANONICAL_ENCODER.encode(body)).hexdigest()


def chain(entry: AuditEntry, head: ChainHead) -> AuditRecord:
    """Place a validated entry after ``head``: the next seq, the previous hash, its own hash."""
    fields = {name: getattr(entry, name) for name in _ENTRY_FIELDS}
    body = ChainBody(**fields, seq=head.seq + 1, prev_sha256=head.sha256)
    return AuditRecord(**fields, seq=body.seq, prev_sha256=body.prev_sha256, sha256=compute_sha256(body))


def unchained(record: AuditRecord) -> AuditEntry:
    """The entry a record was chained from (to re-validate it, or to re-chain it elsewhere)."""
    return AuditEntry(**{name: getattr(record, name) for name in _ENTRY_FIELDS})


def head_of(record: AuditRecord) -> ChainHead:
    return ChainHead(seq=record.seq, sha256=record.sha256)


def encode_line(record: AuditRecord) -> bytes:
    """The exact bytes of one JSON Lines record, newline included."""
    line = CANONICAL_ENCODER.encode(record) + b"\n"
    if len(line) > AUDIT_RECORD_MAX_BYTES:
        raise AuditSchemaError(f"{record.event_type} record is {len(line)} bytes > {AUDIT_RECORD_MAX_BYTES}")
    return line


def decode_line(line: bytes) -> AuditRecord:
    """One line (with or without its newline) -> a record, or AuditSchemaError saying what is wrong."""
    try:
        record = _RECORD_DECODER.decode(line.rstrip(b"\n"))
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise AuditSchemaError(str(exc)) from exc
    check_semantics(unchained(record))
    return record


def integrity_problem(record: AuditRecord, line: bytes) -> str | None:
    """Why a decoded line cannot be the record that was written, or None when it is intact."""
    expected = compute_sha256(record)
    if expected != record.sha256:
        return f"content does not match its sha256 (seq {record.seq})"
    if CANONICAL_ENCODER.encode(record) != line.rstrip(b"\n"):
        return f"bytes differ from the canonical encoding (seq {record.seq})"
    return None
