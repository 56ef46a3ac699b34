"""Run directories: who may use one, and the only code that may clear one. Audit trails are never deleted here
except a simulation's own, and only when its caller asks for a fresh run.

A run directory holds ``state.json``, ``audit/``, reports and ``run.json`` (its mode: sim, paper or live,
written at first use; a paper or live run adopts an older directory without one: resuming deletes nothing).
``claim`` takes ``DIR/.lock`` (``fcntl.flock``, released when the process dies, even by kill -9) for the whole
run and refuses, as ``RunDirError`` (exit 2): a directory a running process holds; a directory of another mode
(a sim into a paper runner's state); and a directory that already holds a simulated run unless the caller asks
to replace it. Replacing deletes only a sim run's outputs, after checking its trail holds no paper or live
record; a paper or live directory is never replaced (it is resumed: that is how the latch survives).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from adapters.audit_jsonl import LOCK_NAME as AUDIT_LOCK_NAME
from adapters.audit_jsonl import iter_lines
from core.audit import RUNNER_STARTED_EVENT as RUNNER_STARTED
from core.audit import STREAM_HEALTH, AuditSchemaError
from core.audit_chain import decode_line
from core.config import EngineConfig

RUN_FILE: Final = "run.json"
LOCK_NAME: Final = ".lock"
AUDIT_NAME: Final = "audit"
CAPTURE_NAME: Final = "capture"  # wire captures (adapters.capture), beside the audit trail
STATE_NAME: Final = "state.json"
SIM_OUTPUTS: Final = (STATE_NAME, "report.json", "broker.json")  # what a sim run leaves besides audit/
MODES: Final = ("sim", "paper", "live")


@dataclass(frozen=True)
class RunLayout:
    """A run directory: ``state.json``, ``audit/`` (or the configured audit dir), reports, ``run.json``."""

    directory: Path
    audit_dir: Path

    @property
    def state_path(self) -> Path:
        return self.directory / STATE_NAME

    @property
    def capture_dir(self) -> Path:
        """Where the run's wire captures live (``adapters.capture``): next to ``audit/``, never inside it."""
        return self.directory / CAPTURE_NAME


def run_layout(config: EngineConfig | None = None, *, out_dir: Path | str | None = None) -> RunLayout:
    """The one rule for where a run keeps its state and audit trail. ``out_dir`` (sims, sweeps, tests: a directory
    the caller owns) holds both; otherwise the configured audit dir (``runs/{mode}/latest/audit`` by default, with
    ``{mode}`` already resolved by ``core.config.for_mode``) and its parent, which holds the state file."""
    if out_dir is not None:
        directory = Path(out_dir)
        return RunLayout(directory=directory, audit_dir=directory / AUDIT_NAME)
    audit = Path((config or EngineConfig()).audit.dir)
    return RunLayout(directory=audit.parent, audit_dir=audit)


class RunDirError(Exception):
    """The directory may not be used for this run; the message says why and what to do (exit 2)."""


@dataclass
class RunDirClaim:
    """A run's hold on its directory: keep it for the whole run; ``release`` (or process death) ends it."""

    directory: Path
    mode: str
    fd: int

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> RunDirClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def recorded_mode(directory: Path) -> str | None:
    """The mode the directory was first used in: run.json, else (older runs) a runner_started record, else
    None (nothing recorded; a trail without either is treated as not sim by ``claim``)."""
    try:
        mode = json.loads((directory / RUN_FILE).read_text(encoding="utf-8")).get("mode")
    except (OSError, ValueError, AttributeError):
        mode = None
    if mode in MODES:
        return str(mode)
    broker_modes = trail_runner_modes(directory / AUDIT_NAME)
    return sorted(broker_modes)[0] if broker_modes else None


def trail_runner_modes(audit_dir: Path) -> set[str]:
    """The modes of every runner_started record in a trail's health stream (paper/live runners write one)."""
    modes: set[str] = set()
    for _location, line, _day, terminated in iter_lines(audit_dir, STREAM_HEALTH):
        if terminated and RUNNER_STARTED.encode() in line:
            try:
                record = decode_line(line)
            except AuditSchemaError:
                continue
            if record.extra.get("event") == RUNNER_STARTED:
                modes.add(str(record.extra.get("mode", "")))
    return modes


def holds_run(directory: Path) -> bool:
    audit = directory / AUDIT_NAME
    has_trail = audit.is_dir() and any(p.is_file() and p.name != AUDIT_LOCK_NAME for p in audit.rglob("*"))
    return has_trail or any((directory / name).exists() for name in SIM_OUTPUTS)


def claim(directory: Path, mode: str, *, replace: bool = False) -> RunDirClaim:
    """Take ``directory`` for a run of ``mode`` (see the module doc); ``replace``: a sim may clear an earlier
    sim run here. Raises RunDirError."""
    assert mode in MODES, mode
    directory.mkdir(parents=True, exist_ok=True)
    fd = _lock(directory / LOCK_NAME, f"{directory} is in use by a running process (its {LOCK_NAME} is held)")
    try:
        found = recorded_mode(directory)
        occupied = holds_run(directory)
        if found is not None and found != mode:
            raise RunDirError(f"{directory} holds a {found} run: a {mode} run may not use it (choose another "
                              "directory; sim, paper and live state live apart)")
        if mode == "sim" and occupied:
            if found is None:  # why: only a recorded sim run may be replaced; paper/live adopt (never delete)
                raise RunDirError(f"{directory} holds a run of unrecorded mode (no {RUN_FILE}): a sim will not "
                                  "touch it; choose another output directory or move it away")
            if not replace:
                raise RunDirError(f"{directory} already holds a sim run: pass --fresh to replace it, or choose "
                                  "another output directory")
            _clear_sim_run(directory)
        record_mode(directory, mode)
    except BaseException:
        os.close(fd)
        raise
    return RunDirClaim(directory, mode, fd)


def record_mode(directory: Path, mode: str) -> None:
    """Write ``run.json`` at the directory's first use; an existing one is never rewritten."""
    assert mode in MODES, mode
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / RUN_FILE
    if not path.exists():
        path.write_text(json.dumps({"mode": mode}) + "\n", encoding="utf-8")


def _lock(path: Path, busy: str) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunDirError(busy) from None
    return fd


def _clear_sim_run(directory: Path) -> None:
    """Delete a sim run's outputs; refuses a trail with paper/live records or one another writer holds."""
    audit = directory / AUDIT_NAME
    if trail_runner_modes(audit) - {"sim"}:
        raise RunDirError(f"{audit} holds paper/live records: it is never deleted (choose another directory)")
    if audit.is_dir():
        fd = _lock(audit / AUDIT_LOCK_NAME, f"{audit} is held by another audit writer")
        try:
            shutil.rmtree(audit)
        finally:
            os.close(fd)
    for name in SIM_OUTPUTS:
        (directory / name).unlink(missing_ok=True)
