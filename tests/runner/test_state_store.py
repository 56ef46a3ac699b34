"""The file state store's cheap saves (issue 18) keep its contract: every changed state is on disk (atomically)
before ``save`` returns, an unchanged one costs no write, and nothing it skips can hide another writer's file or
a failed write."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from adapters.state_store import FileStateStore, StateFileError
from sim.scenario import load_scenario
from sim.world import run_scenario

ROOT = Path(__file__).resolve().parents[2]


def stdlib_bytes(state: dict[str, Any]) -> bytes:
    """What the store wrote before msgspec: the reference encoding."""
    return json.dumps(state, sort_keys=True, separators=(",", ":")).encode()


@pytest.fixture(scope="module")
def engine_state(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real engine's state after a trading day (orders, order machines, ledger, triggers, halt)."""
    out = tmp_path_factory.mktemp("day")
    run_scenario(load_scenario(ROOT / "scenarios" / "clean_day.toml"), out_dir=out)
    state: dict[str, Any] = json.loads((out / "state.json").read_text())
    assert state["orders"] and state["ledger"]["holdings"] is not None
    return state


def test_the_file_holds_the_same_bytes_as_before(engine_state: dict[str, Any], tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "state.json", fsync=False)
    store.save(engine_state)
    assert (tmp_path / "state.json").read_bytes() == stdlib_bytes(engine_state)
    assert store.load() == engine_state


def test_an_unchanged_state_is_not_rewritten(engine_state: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = FileStateStore(path, fsync=True)
    store.save(engine_state)
    before = os.stat(path)
    store.save(json.loads(json.dumps(engine_state)))  # equal, not the same object
    after = os.stat(path)
    assert (store.saves, store.skipped) == (1, 1)
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    changed = {**engine_state, "session_date": "2099-01-01"}
    store.save(changed)
    assert (store.saves, store.skipped) == (2, 1)
    assert store.load() == changed
    store.save(engine_state)  # back to an earlier state: a change, written
    assert store.saves == 3 and store.load() == engine_state


def test_another_writers_file_is_never_left_in_place(engine_state: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = FileStateStore(path, fsync=False)
    store.save(engine_state)
    other = FileStateStore(path, fsync=False)  # `ttlive kill` latching, an operator restoring a backup
    other.save({"halt": {"state": "halted"}})
    store.save(engine_state)  # the same state as our last write, but the file is not ours any more
    assert store.load() == engine_state and store.skipped == 0
    path.unlink()  # deleted under us: the next save puts it back
    store.save(engine_state)
    assert store.load() == engine_state and store.skipped == 0


def test_a_failed_write_is_not_remembered_as_written(engine_state: dict[str, Any], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.json"
    store = FileStateStore(path, fsync=False)
    old = {**engine_state, "session_date": "2014-05-30"}
    store.save(old)
    real_replace = os.replace

    def crash(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        store.save(engine_state)
    assert FileStateStore(path).load() == old  # the crash left the old state, whole
    monkeypatch.setattr(os, "replace", real_replace)
    store.save(engine_state)  # the same bytes as the failed attempt: must be written now
    assert store.skipped == 0 and FileStateStore(path).load() == engine_state


def test_an_unreadable_file_is_set_aside_even_when_the_state_repeats(engine_state: dict[str, Any],
                                                                     tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = FileStateStore(path, fsync=False)
    store.save(engine_state)
    path.write_bytes(b"{not json")
    with pytest.raises(StateFileError):
        store.load()
    store.save(engine_state)
    assert (tmp_path / "state.json.unreadable-1").read_bytes() == b"{not json"
    assert store.load() == engine_state


def test_a_directory_removed_under_the_store_is_made_again(engine_state: dict[str, Any], tmp_path: Path) -> None:
    import shutil

    path = tmp_path / "run" / "state.json"
    store = FileStateStore(path, fsync=False)
    store.save(engine_state)
    shutil.rmtree(tmp_path / "run")
    store.save(engine_state)  # the same bytes, but the file is gone: written again, directory and all
    assert store.load() == engine_state and store.saves == 2
