"""StateStore adapters: the engine's persisted state (halt latch, orders, ledger) survives a hard kill.

The file store writes a temp file, fsyncs it and renames it over the old one, so a crash leaves either the old
or the new state, never half of one. A state file it cannot read is never overwritten: the first save after a
failed load moves it aside to ``<file>.unreadable-<n>`` (evidence for the operator; the engine starts halted).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from core.recovery import StateUnreadable


class StateFileError(StateUnreadable):
    """The state file exists but cannot be read: never trade from it (the engine starts halted)."""


class FileStateStore:
    def __init__(self, path: str | Path, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.saves = 0
        self._keep_unreadable = False  # a failed load: the next save moves the unreadable file aside first

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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._keep_unreadable:
            self.set_aside()
            self._keep_unreadable = False
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        data = json.dumps(state, sort_keys=True, separators=(",", ":")).encode()
        with open(tmp, "wb") as f:
            f.write(data)
            if self.fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self.saves += 1
