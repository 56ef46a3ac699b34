"""`ttlive swarm --backend ray`: the same seeds give the same per-run outcomes and hashes as the process pool
(runs are deterministic per world + seed, wherever they run). A real local Ray instance with 2 CPUs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sim.swarm import SwarmSpec, run_swarm

ray = pytest.importorskip("ray")

SAME = ("index", "name", "seed", "ok", "halted", "kill_trigger", "fills", "violations", "trace_sha256",
        "audit_sha256")


def _outcomes(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [{key: result[key] for key in SAME} for result in summary["results"]]


def test_ray_and_the_process_pool_agree_run_for_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # a local instance, never someone's cluster
    local = run_swarm(SwarmSpec(out=tmp_path / "local", seed=3, runs=3, workers=2, shrink=False))
    on_ray = run_swarm(SwarmSpec(out=tmp_path / "ray", seed=3, runs=3, workers=2, backend="ray", shrink=False))

    assert not ray.is_initialized()  # the instance the swarm started is shut down again
    assert on_ray["runs"] == local["runs"] == 3
    assert _outcomes(on_ray) == _outcomes(local)
    assert all(len(r["trace_sha256"]) == 64 for r in on_ray["results"])
    assert on_ray["command"].endswith(f"--backend ray --out {tmp_path / 'ray'}")
