"""``ttlive audit``: verify, anchor, prune, show and repair the JSON Lines audit trail (spec 4.1 / 4.2).

verify exits 0 when the trail is intact: every stream's hash chain, records present, no emptied file, no dangling
reference (fill -> order -> risk check -> signal), every stream still at its last anchor; 1 naming each problem;
2 for a missing directory. A run directory is resolved to its ``audit/``. anchor appends the chain heads to the
anchor file (copy it off the machine: ``verify --anchors COPY`` checks against your copy). prune takes the
session date explicitly (``--today``) so it never reads a wall clock by surprise.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from adapters.audit_jsonl import (
    ANCHORS_NAME,
    AuditLockedError,
    DirReport,
    JsonlAuditSink,
    append_anchor,
    prune,
    tail_lines,
    verify_dir,
)
from core.audit import STREAMS
from tools.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_USAGE


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from exc


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (``--last``, ``ttlive sim --workers``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("audit", help="verify, prune, show or repair the audit trail")

    def usage(_args: argparse.Namespace) -> int:
        parser.print_help()
        return EXIT_USAGE

    parser.set_defaults(func=usage)
    sub = parser.add_subparsers(dest="audit_command", metavar="ACTION")

    verify = sub.add_parser("verify", help="check schema, sequence and hash chain of every stream")
    verify.add_argument("dir", type=Path)
    verify.add_argument("--anchors", type=Path, default=None,
                        help=f"anchor file to check against (default: DIR/{ANCHORS_NAME}; give your off-machine copy)")
    verify.set_defaults(func=cmd_verify)

    anchor = sub.add_parser("anchor", help=f"append the chain heads to DIR/{ANCHORS_NAME} (copy it off the machine)")
    anchor.add_argument("dir", type=Path)
    anchor.set_defaults(func=cmd_anchor)

    prune_cmd = sub.add_parser("prune", help="delete files older than each stream's retention window")
    prune_cmd.add_argument("dir", type=Path)
    prune_cmd.add_argument("--today", type=_iso_date, required=True, help="session date, YYYY-MM-DD")
    prune_cmd.set_defaults(func=cmd_prune)

    show = sub.add_parser("show", help="print the last records of a stream")
    show.add_argument("dir", type=Path)
    show.add_argument("--stream", choices=STREAMS, default="fills")
    show.add_argument("--last", type=positive_int, default=20)
    show.set_defaults(func=cmd_show)

    repair = sub.add_parser(
        "repair", help="move torn tails left by a crash aside (what opening the sink does)"
    )
    repair.add_argument("dir", type=Path)
    repair.set_defaults(func=cmd_repair)


def _missing(directory: Path) -> bool:
    if directory.is_dir():
        return False
    print(f"ttlive audit: no such audit directory: {directory}", file=sys.stderr)
    return True


def audit_dir_of(directory: Path) -> Path:
    """``directory`` itself, or its ``audit/`` when given a run directory (state.json, report.json, audit/)."""
    holds_streams = any((directory / stream).is_dir() for stream in STREAMS)
    if not holds_streams and (directory / "audit").is_dir():
        print(f"{directory} is a run directory: verifying {directory / 'audit'}")
        return directory / "audit"
    return directory


def format_report(report: DirReport) -> list[str]:
    """The per-stream table first, then every problem and notice, then the verdict."""
    header = ("stream", "files", "records", "seqs", "anchor", "status")
    rows = [header]
    for stream in report.streams:
        seqs = f"{stream.first_seq}..{stream.last_seq}" if stream.records else "-"
        anchor = str(stream.anchor.seq) if stream.anchor.seq else "-"
        status = "ok" if stream.ok else f"{len(stream.problems)} problem(s)"
        rows.append((stream.stream, str(stream.files), str(stream.records), seqs, anchor, status))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines += [str(problem) for stream in report.streams for problem in stream.problems]
    lines += [f"TRAIL {problem}" for problem in (*report.trail_problems, *report.anchor_problems)]
    lines += [f"notice: {notice}" for notice in report.notices]
    total = sum(stream.records for stream in report.streams)
    verdict = "intact" if report.ok else "NOT intact"
    lines.append(f"audit trail {verdict}: {len(report.streams)} streams, {total} records")
    return lines


def cmd_verify(args: argparse.Namespace) -> int:
    if _missing(args.dir):
        return EXIT_USAGE
    if args.anchors is not None and not args.anchors.is_file():
        print(f"ttlive audit: no such anchor file: {args.anchors}", file=sys.stderr)
        return EXIT_USAGE
    report = verify_dir(audit_dir_of(args.dir), anchors=args.anchors)
    for line in format_report(report):
        print(line)
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_anchor(args: argparse.Namespace) -> int:
    """Anchor only an intact trail: anchoring a tampered one would bless it."""
    if _missing(args.dir):
        return EXIT_USAGE
    root = audit_dir_of(args.dir)
    report = verify_dir(root)
    if not report.chains_ok:
        for line in format_report(report):
            print(line)
        print("ttlive audit: not anchoring a trail that does not verify", file=sys.stderr)
        return EXIT_FAILED
    anchor = append_anchor(root, ts_ns=time.time_ns())  # an operator's command: the wall clock
    heads = ", ".join(f"{stream} {head.seq}" for stream, head in anchor.heads.items())
    print(f"anchored {root} at {anchor.timestamp}: {heads} -> {root / ANCHORS_NAME}")
    return EXIT_OK


def cmd_prune(args: argparse.Namespace) -> int:
    if _missing(args.dir):
        return EXIT_USAGE
    deleted = prune(args.dir, args.today)
    for path in deleted:
        print(f"deleted {path.relative_to(args.dir)}")
    print(f"pruned {len(deleted)} file(s) as of {args.today.isoformat()}")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    if _missing(args.dir):
        return EXIT_USAGE
    for line in tail_lines(args.dir, args.stream, args.last):
        print(line.decode("utf-8", errors="replace"))
    return EXIT_OK


def cmd_repair(args: argparse.Namespace) -> int:
    if _missing(args.dir):
        return EXIT_USAGE
    try:
        sink = JsonlAuditSink(args.dir)
    except AuditLockedError as exc:
        print(f"ttlive audit: {exc}", file=sys.stderr)
        return EXIT_FAILED
    sink.close()
    for repair in sink.repairs:
        name = repair.file.relative_to(args.dir)
        print(f"repaired {name}: {repair.torn_bytes} bytes moved to {repair.torn_file.name}")
    print(f"{len(sink.repairs)} file(s) repaired")
    return EXIT_OK
