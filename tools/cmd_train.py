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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--symbols", type=_symbols, default=None, help="comma list (default NVDA,ORCL)")
    parser.add_argument("--train-end", default=None, help="last training date YYYY-MM-DD (default 2010-12-31)")
    parser.add_argument("--timesteps", type=_positive, default=None, help="PPO environment steps")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="output directory for the model files")
    parser.add_argument("--data-dir", type=Path, default=None, help="directory of the market data files")
    parser.add_argument("--decision-interval-s", type=_positive, default=None, dest="decision_interval_s",
                        help="the model contract's decision interval in seconds (default 300; training is on "
                        "daily bars either way, and the contract says so)")
    parser.add_argument("--tiny", action="store_true", help="seconds-long run (the end-to-end test's settings)")


def config_from_args(args: argparse.Namespace) -> Any:
    from tools.train import TrainConfig

    overrides: dict[str, Any] = {}
    for name, key in (("symbols", "symbols"), ("train_end", "train_end"), ("timesteps", "timesteps"),
                      ("seed", "seed"), ("out", "out_dir"), ("data_dir", "data_dir"),
                      ("decision_interval_s", "decision_interval_s")):
        value = getattr(args, name)
        if value is not None:
            overrides[key] = value
    return TrainConfig.tiny_preset(**overrides) if args.tiny else TrainConfig(**overrides)


def run(args: argparse.Namespace) -> int:
    from tools.train import train

    train(config_from_args(args))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("train", help="train a PPO policy in TensorTrade and export ONNX FP32 + INT8")
    add_arguments(parser)
    parser.set_defaults(func=run)
