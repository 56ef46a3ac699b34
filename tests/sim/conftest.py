"""Scenario runs are expensive (seconds each): run every (scenario, seed) once per session, in parallel
processes, and let the tests assert on the reports."""

from __future__ import annotations

import concurrent.futures
import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.toml")) + sorted((ROOT / "scenarios" / "regressions").glob("*.toml"))
SEEDS = (1, 2)


def _run(path: str, seed: int, out: str) -> dict[str, Any]:
    from tools.cmd_sim import run_one

    return run_one(path, seed, out, progress=False)


@pytest.fixture(scope="session")
def scenario_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], dict[str, Any]]:
    """Every shipped scenario at two seeds, plus a repeat of seed 1 in another process (determinism)."""
    base = tmp_path_factory.mktemp("scenarios")
    jobs = [(p, s, "a") for p in SCENARIOS for s in SEEDS] + [(p, SEEDS[0], "b") for p in SCENARIOS]
    out: dict[tuple[str, int], dict[str, Any]] = {}
    workers = max(1, min(4, os.cpu_count() or 2))
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {
            pool.submit(_run, str(p), s, str(base / f"{p.stem}-{s}-{tag}")): (p.stem, s, tag) for p, s, tag in jobs
        }
        for future in concurrent.futures.as_completed(futures):
            name, seed, tag = futures[future]
            out[(name, seed) if tag == "a" else (name, -seed)] = future.result()
    return out
