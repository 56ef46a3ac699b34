"""StateStore adapters: the engine's persisted state (halt latch, orders, ledger) survives a hard kill.

The file store writes a temp file, fsyncs it and renames it over the old one, so a crash leaves either the old
or the new state, never half of one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class StateFileError(RuntimeError):
    """The state file exists but cannot be read: refuse to start rather than trade from a blank book."""


class FileStateStore:
    def __init__(self, path: str | Path, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.saves = 0

    def load(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateFileError(f"{self.path}: cannot read engine state: {exc}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StateFileError(f"{self.path}: engine state is not valid JSON ({exc}); "
                                 "restore it from backup or remove it deliberately") from None
        if not isinstance(data, dict):
            raise StateFileError(f"{self.path}: engine state must be a JSON object")
        return data

    def save(self, state: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        data = json.dumps(state, sort_keys=True, separators=(",", ":")).encode()
        with open(tmp, "wb") as f:
            f.write(data)
            if self.fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self.saves += 1


class MemoryStateStore:
    def __init__(self) -> None:
        self.state: dict[str, Any] | None = None

    def load(self) -> dict[str, Any] | None:
        return json.loads(json.dumps(self.state)) if self.state is not None else None

    def save(self, state: dict[str, Any]) -> None:
        self.state = json.loads(json.dumps(state, sort_keys=True))
