"""End to end: `ttlive train --tiny` retrains a small model in TensorTrade, exports FP32 + INT8 ONNX, writes the
model card, and the INT8 model agrees with FP32 on >= 95% of held-out actions.

Runs in a subprocess: torch and TensorTrade (which can drag TensorFlow in) stay out of the pytest process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from adapters.policy.onnx_policy import OnnxPolicy
from adapters.tensortrade.env import build_env, load_daily_bars, run_episode

ROOT = Path(__file__).resolve().parents[2]


def test_tiny_training_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "tiny"
    done = subprocess.run(
        [sys.executable, "-m", "tools.cli", "train", "--tiny", "--seed", "3", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "held-out NVDA" in done.stdout and "INT8/FP32 agreement" in done.stdout
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model_card.md", "policy_fp32.onnx",
                                                      "policy_int8.onnx"]
    meta = json.loads((out / "model.json").read_text())
    assert meta["training"]["seed"] == 3 and meta["training"]["timesteps"] == 2048
    assert meta["model_id"].startswith("ppo-nvda-orcl-")

    fp32, int8 = OnnxPolicy(out, precision="fp32"), OnnxPolicy(out, precision="int8")
    assert fp32.model_id == int8.model_id == meta["model_id"]
    # Independent check on a held-out window: replay ORCL 2011 through the TensorTrade env with the INT8 model.
    data = load_daily_bars("ORCL")
    split = data.first_index_after("2010-12-31")
    result = run_episode(build_env(data, first=split, stop=split + 120, seed=0), int8.infer)
    assert result.first_date > "2010-12-31" and result.steps == 119
    agreement = float(np.mean(fp32.infer(result.observations) == int8.infer(result.observations)))
    assert agreement >= 0.95, agreement
    assert meta["results"]["int8_vs_fp32_action_agreement"] >= 0.95
    recorded = {r["symbol"]: r for r in meta["results"]["held_out_int8"]}
    assert set(recorded) == {"NVDA", "ORCL"} and recorded["ORCL"]["first_date"] == result.first_date

    # The freshly trained INT8 model runs in a simulated session (engine, risk, audit) against the fake venue.
    import msgspec

    from sim.scenario import load_scenario
    from sim.world import run_scenario

    base = load_scenario(ROOT / "tests" / "runner" / "half_day.toml")
    scenario = msgspec.structs.replace(
        base, policy=msgspec.structs.replace(base.policy, kind="onnx", model=str(out), precision="int8"))
    report = run_scenario(scenario, out_dir=tmp_path / "sim")
    assert report.invariant_violations == []
    signals = (tmp_path / "sim" / "audit" / "signals").glob("*.jsonl")
    models = {json.loads(line)["model_id"] for path in signals for line in path.read_text().splitlines()}
    assert models <= {meta["model_id"]}
    health = (tmp_path / "sim" / "audit" / "health").glob("*.jsonl")
    started = [json.loads(line)["extra"] for path in health for line in path.read_text().splitlines()
               if json.loads(line)["extra"].get("reason") == "engine started"]
    assert started and all(extra["model_id"] == meta["model_id"] for extra in started)


def test_train_command_arguments() -> None:
    """Parsing only (no torch in this process): symbols are normalised, bad numbers exit with status 2."""
    import pytest

    from tools.cli import build_parser

    args = build_parser().parse_args(["train", "--symbols", "nvda, yhoo", "--timesteps", "4096", "--tiny",
                                      "--train-end", "2009-06-30"])
    assert args.symbols == ("NVDA", "YHOO") and args.timesteps == 4096 and args.tiny
    assert args.train_end == "2009-06-30" and args.seed is None and args.out is None
    for bad in (["--timesteps", "0"], ["--symbols", " , "]):
        with pytest.raises(SystemExit) as exited:
            build_parser().parse_args(["train", *bad])
        assert exited.value.code == 2
