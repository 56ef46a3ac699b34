"""End to end: `ttlive train --tiny` trains two seeds on 5-minute bars in TensorTrade, selects one on validation,
exports FP32 + INT8 ONNX, writes the model card, and the INT8 model agrees with FP32 on >= 95% of held-out actions.

Runs in a subprocess: torch and TensorTrade (which can drag TensorFlow in) stay out of the pytest process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from adapters.policy.onnx_policy import OnnxPolicy
from adapters.tensortrade.env import ExecutionModel, build_env, run_episode
from adapters.tensortrade.intraday import load_session_bars

ROOT = Path(__file__).resolve().parents[2]


def test_tiny_training_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "tiny"
    done = subprocess.run(
        [sys.executable, "-m", "tools.cli", "train", "--tiny", "--seeds", "3,4", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "held-out NVDA" in done.stdout and "INT8/FP32 agreement" in done.stdout
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model_card.md", "policy_fp32.onnx",
                                                      "policy_int8.onnx"]
    meta = json.loads((out / "model.json").read_text())
    assert meta["training"]["seeds"] == [3, 4] and meta["training"]["timesteps"] == 2048
    assert meta["training"]["timeframe"] == "5Min" and meta["contract"]["training_bar_timeframe"] == "5Min"
    assert meta["model_id"].startswith("ppo-nvda-orcl-")
    # Selection: every seed validated at each checkpoint, the shipped one is the best on validation (not held out).
    seeds = meta["selection"]["seeds"]
    assert [r["seed"] for r in seeds] == [3, 4] and all(len(r["checkpoints"]) == 2 for r in seeds)
    best = max(seeds, key=lambda r: r["validation_score_bps"])
    assert meta["training"]["seed"] == meta["selection"]["shipped_seed"] == best["seed"]
    for row in seeds:
        assert row["validation_score_bps"] == max(c["validation"]["mean_bps"] for c in row["checkpoints"])
        assert row["held_out"]["episodes"] == 16  # 8 held-out sessions x 2 symbols
    assert meta["selection"]["baselines"]["rule"]["held_out"]["episodes"] == 16
    card = (out / "model_card.md").read_text()
    assert "PPO seed 3" in card and "PPO seed 4" in card and "rule baseline" in card and "Buy and hold" in card

    fp32, int8 = OnnxPolicy(out, precision="fp32"), OnnxPolicy(out, precision="int8")
    assert fp32.model_id == int8.model_id == meta["model_id"]
    # Independent check on held-out sessions: ORCL in early 2011 on 5-minute bars, through the env, INT8 model.
    data = load_session_bars("ORCL", first="2010-12-20", last="2011-02-28", path_seed=0)
    spans = [s for s in data.session_spans(0, len(data)) if str(data.dates[s[0]]) > "2011"][:5]
    env = build_env(data, first=0, stop=len(data), seed=0, execution=ExecutionModel(tick_usd=0.01))
    results = [run_episode(env, int8.infer, span) for span in spans]
    assert all(r.first_date > "2011" and r.steps == 77 for r in results)
    observations = np.concatenate([r.observations for r in results])
    agreement = float(np.mean(fp32.infer(observations) == int8.infer(observations)))
    assert agreement >= 0.95, agreement
    assert meta["results"]["int8_vs_fp32_action_agreement"] >= 0.95
    assert set(meta["results"]["held_out_fp32_by_symbol"]) == {"NVDA", "ORCL"}

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
    args = build_parser().parse_args(["train", "--seeds", "1,2,3", "--timeframe", "5Min",
                                      "--turnover-penalty-bps", "5", "--validation-end", "2010-06-30"])
    assert args.seeds == (1, 2, 3) and args.timeframe == "5Min" and args.turnover_penalty_bps == 5.0
    assert args.validation_end == "2010-06-30"
    for bad in (["--timesteps", "0"], ["--symbols", " , "], ["--seeds", "1,1"], ["--seeds", "a"],
                ["--timeframe", "5m"], ["--turnover-penalty-bps", "-1"]):
        with pytest.raises(SystemExit) as exited:
            build_parser().parse_args(["train", *bad])
        assert exited.value.code == 2
