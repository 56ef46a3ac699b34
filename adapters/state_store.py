"""StateStore adapters: the engine's persisted state (halt latch, orders, ledger) survives a hard kill.

The file store writes a temp file, fsyncs it and renames it over the old one, so a crash leaves either the old
or the new state, never half of one. A state file it cannot read is never overwritten: the first save after a
failed load moves it aside to ``<file>.unreadable-<n>`` (evidence for the operator; the engine starts halted).

Cost (issue 18): the engine saves after every order intent, answer and fill, and a busy day's state is hundreds
of KB, so the save is one C call (msgspec: compact, keys sorted, the same bytes the stdlib's
``json.dumps(sort_keys=True, separators=(",", ":"))`` wrote for this ASCII, finite-number state), and a save whose
bytes equal what this store last wrote, to a file nobody has touched since, writes nothing: the file already
holds exactly that state. Every save that changes the state still goes to disk (tmp, fsync, rename) before
``save`` returns, as before: durability is unchanged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final

import msgspec

from core.recovery import StateUnreadable

# Compact JSON, dict keys sorted (stable files, diffable between saves). Floats must be finite: JSON has no NaN
# (the engine's floats are clock seconds).
_ENCODER: Final = msgspec.json.Encoder(order="sorted")


class StateFileError(StateUnreadable):
    """The state file exists but cannot be read: never trade from it (the engine starts halted)."""


class FileStateStore:
    def __init__(self, path: str | Path, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.saves = 0
        self._keep_unreadable = False  # a failed load: the next save moves the unreadable file aside first
        self.skipped = 0  # saves that found the file already holding exactly their bytes
        self._written: tuple[bytes, tuple[int, int, int]] | None = None  # last bytes written, file identity after
        self._dir_ready = False

    def load(self) -> dict[str, Any] | None:
        try:
            data = self._read()
        except StateFileError:
            self._keep_unreadable = True
            raise
        return data

    def _read(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise StateFileError(f"{self.path}: cannot read engine state: {exc}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StateFileError(f"{self.path}: engine state is not valid JSON ({exc}); "
                                 "restore it from backup or remove it deliberately") from None
        if not isinstance(data, dict):
            raise StateFileError(f"{self.path}: engine state must be a JSON object")
        return data

    def set_aside(self) -> Path | None:
        """Move an unreadable state file to ``<file>.unreadable-<n>`` (never delete it); None if there is none."""
        if not self.path.exists():
            return None
        n = 1
        while (aside := self.path.with_name(f"{self.path.name}.unreadable-{n}")).exists():
            n += 1
        os.replace(self.path, aside)
        return aside

    def save(self, state: dict[str, Any]) -> None:
        data = _ENCODER.encode(state)
        if self._keep_unreadable:
            self._ensure_dir()
            self.set_aside()
            self._keep_unreadable = False
            self._written = None
        elif self._written is not None and self._written[0] == data and self._identity() == self._written[1]:
            self.skipped += 1  # unchanged, and still our file: it already holds this state, durably
            return
        self._ensure_dir()
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        try:
            f = open(tmp, "wb")  # noqa: SIM115 - closed below; reopened once if the directory went away
        except FileNotFoundError:
            self.path.parent.mkdir(parents=True, exist_ok=True)  # removed since the first save: make it again
            f = open(tmp, "wb")  # noqa: SIM115
        with f:
            f.write(data)
            if self.fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self.saves += 1
        self._written = (data, self._identity())

    def _ensure_dir(self) -> None:
        if not self._dir_ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._dir_ready = True

    def _identity(self) -> tuple[int, int, int]:
        """(inode, size, mtime ns) of the state file, or zeros when there is none: another writer (``ttlive kill``
        latching a stopped run, an operator restoring a backup) changes it, and then the next save writes."""
        try:
            st = os.stat(self.path)
        except OSError:
            return (0, 0, 0)
        return (st.st_ino, st.st_size, st.st_mtime_ns)
