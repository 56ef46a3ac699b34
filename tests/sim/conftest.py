"""Scenario runs are expensive (seconds each): run every (scenario, seed) once per session, in parallel
processes, and let the tests assert on the reports."""

from __future__ import annotations

import concurrent.futures
import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
REGRESSIONS = sorted((ROOT / "scenarios" / "regressions").glob("*.toml"))
SCENARIOS = sorted((ROOT / "scenarios").glob("*.toml")) + REGRESSIONS
OWN_SEED = 0  # key of a regression's run at the seed in its file (the one that failed before its fix)
SEEDS = (1, 2)


def _run(path: str, seed: int | None, out: str) -> dict[str, Any]:
    from sim.sweep import run_one

    return run_one(path, seed, out)


@pytest.fixture(scope="session")
def scenario_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], dict[str, Any]]:
    """Every shipped scenario at two seeds, plus a repeat of seed 1 in another process (determinism)."""
    base = tmp_path_factory.mktemp("scenarios")
    jobs: list[tuple[Path, int | None, str]] = [(p, s, "a") for p in SCENARIOS for s in SEEDS]
    jobs += [(p, SEEDS[0], "b") for p in SCENARIOS] + [(p, None, "own") for p in REGRESSIONS]
    out: dict[tuple[str, int], dict[str, Any]] = {}
    workers = max(1, min(4, os.cpu_count() or 2))
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {
            pool.submit(_run, str(p), s, str(base / f"{p.stem}-{s}-{tag}")): (p.stem, s, tag) for p, s, tag in jobs
        }
        for future in concurrent.futures.as_completed(futures):
            name, seed, tag = futures[future]
            key = OWN_SEED if seed is None else seed if tag == "a" else -seed
            out[(name, key)] = future.result()
    return out
