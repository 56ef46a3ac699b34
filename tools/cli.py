"""The ``ttlive`` command line. Each subcommand lives in its own ``tools/cmd_*.py`` module.

A module exports ``register(subparsers) -> None`` which adds one parser whose ``func(args) -> int``
runs the command. Bad arguments exit 2 with a message (argparse); commands return their exit status.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# One line per subcommand module; order is the order in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "tools.cmd_sim",
    "tools.cmd_swarm",
    "tools.cmd_audit",
    "tools.cmd_train",
    "tools.cmd_backtest",
    "tools.cmd_fake_alpaca",
    "tools.cmd_run",
    "tools.cmd_control",
    "tools.cmd_preflight",
    "tools.cmd_compliance",
    "tools.cmd_drill",
    "tools.cmd_fsm",
    "tools.cmd_evaluate",
    "tools.cmd_replay",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ttlive",
        description="Run TensorTrade RL policies on Alpaca: simulation, paper and live.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
