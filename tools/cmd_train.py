"""``ttlive train``: train, evaluate walk-forward and export a policy (tools/train.py does the work).

Parsing stays import-light: torch and TensorTrade load only when the command actually runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _symbols(text: str) -> tuple[str, ...]:
    symbols = tuple(s.strip().upper() for s in text.split(",") if s.strip())
    if not symbols:
        raise argparse.ArgumentTypeError("give at least one symbol, e.g. NVDA,ORCL")
    return symbols


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"seeds are integers, e.g. 1,2,3,4,5: {exc}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError("give distinct seeds, e.g. 1,2,3,4,5")
    return seeds


def _timeframe(text: str) -> str:
    if text == "1Day":
        return text
    from adapters.policy.contract import timeframe_seconds  # no torch or TensorTrade: parsing stays light

    try:
        timeframe_seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _bps(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError(f"must be within 0..100 bps, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--symbols", type=_symbols, default=None, help="comma list (default NVDA,ORCL,YHOO)")
    parser.add_argument("--timeframe", type=_timeframe, default=None,
                        help="bars trained on: 5Min (default; the fake's intraday paths rolled like the engine's "
                        "decision bars, must match --decision-interval-s) or 1Day (the daily files)")
    parser.add_argument("--train-end", default=None, help="last training date YYYY-MM-DD (default 2008-12-31)")
    parser.add_argument("--validation-end", default=None, dest="validation_end",
                        help="last validation date YYYY-MM-DD (default 2010-12-31); held out after it")
    parser.add_argument("--timesteps", type=_positive, default=None, help="PPO environment steps per seed")
    parser.add_argument("--seeds", type=_seeds, default=None, help="training seeds (default 1,2,3,4,5); the one "
                        "best on validation is shipped")
    parser.add_argument("--seed", type=int, default=None, help="one training seed (same as --seeds N)")
    parser.add_argument("--turnover-penalty-bps", type=_bps, default=None, dest="turnover_penalty_bps",
                        help="reward penalty per dollar traded, on top of the costs (default 5)")
    parser.add_argument("--workers", type=_positive, default=None, help="seeds trained in parallel (default 1)")
    parser.add_argument("--out", type=Path, default=None, help="output directory for the model files")
    parser.add_argument("--data-dir", type=Path, default=None, help="directory of the market data files")
    parser.add_argument("--decision-interval-s", type=_positive, default=None, dest="decision_interval_s",
                        help="the model contract's decision interval in seconds (default 300)")
    parser.add_argument("--tiny", action="store_true", help="seconds-long run (the end-to-end test's settings)")


def config_from_args(args: argparse.Namespace) -> Any:
    from tools.train import TrainConfig

    overrides: dict[str, Any] = {}
    for name, key in (("symbols", "symbols"), ("timeframe", "timeframe"), ("train_end", "train_end"),
                      ("validation_end", "validation_end"), ("timesteps", "timesteps"), ("seeds", "seeds"),
                      ("turnover_penalty_bps", "turnover_penalty_bps"), ("workers", "workers"),
                      ("out", "out_dir"), ("data_dir", "data_dir"), ("decision_interval_s", "decision_interval_s")):
        value = getattr(args, name)
        if value is not None:
            overrides[key] = value
    if args.seed is not None:
        overrides["seeds"] = (args.seed,)
    return TrainConfig.tiny_preset(**overrides) if args.tiny else TrainConfig(**overrides)


def run(args: argparse.Namespace) -> int:
    from tools.train import train

    train(config_from_args(args))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("train", help="train a PPO policy in TensorTrade and export ONNX FP32 + INT8")
    add_arguments(parser)
    parser.set_defaults(func=run)
