"""Trace and audit hashes of every shipped scenario at one seed: did a refactor or speed-up change behaviour?

    python -m tools.scenario_hashes OUT.json [--seed 1] [--workers 2]

Writes ``[[scenario, trace_sha256, audit_sha256, ok], ...]`` sorted by path; compare two files with ``diff``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def shipped_scenarios() -> list[str]:
    base = ROOT / "scenarios"
    paths = sorted(base.glob("*.toml")) + sorted((base / "regressions").glob("*.toml"))
    return [str(p.relative_to(ROOT)) for p in paths]


def _run(job: tuple[str, int, str]) -> list[object]:
    from sim.sweep import run_one

    path, seed, out = job
    report = run_one(str(ROOT / path), seed, str(Path(out) / path.replace("/", "_")), log_to_file=True)
    return [path, report["trace_sha256"], report["audit_sha256"], report["ok"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.scenario_hashes")
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ttlive-hashes-") as tmp:
        jobs = [(p, args.seed, tmp) for p in shipped_scenarios()]
        with concurrent.futures.ProcessPoolExecutor(args.workers) as pool:
            rows = sorted(pool.map(_run, jobs))
    Path(args.out).write_text(json.dumps(rows, indent=0) + "\n")
    print(f"{len(rows)} scenarios at seed {args.seed} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
