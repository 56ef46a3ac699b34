"""``ttlive replay CAPTURE``: turn a paper or live session's wire capture into a replay or a scenario.

``--out DIR``: rebuild the session in the fake venue (its market, starting book, the venue's recorded answers
and stream faults), run the engine against it in virtual time with the wire captured again, and write
``DIR/divergence.md`` and ``DIR/divergence.json``: recorded vs replayed order requests and fills, first
divergence first. ``--to-scenario FILE``: write the rebuilt session as an ordinary scenario (with its data
files beside it) for ``ttlive sim`` and the scenario library.

CAPTURE is a capture file (``*.capture.jsonl.gz``), or a run directory or its ``capture/`` (the newest session).
Exit status: 0 no divergence (or the scenario written), 1 a divergence, 2 bad input (a corrupt or truncated
capture names its file and record).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tools.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_USAGE


def register(sub: Any) -> None:
    p = sub.add_parser("replay", help="replay a paper/live wire capture in the fake venue, or make it a scenario",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("capture", type=Path, help="capture file, or a run directory / its capture/ (newest session)")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, default=None, help="directory for the replay and its divergence report")
    target.add_argument("--to-scenario", type=Path, default=None, metavar="FILE",
                        help="write an ordinary scenario (FILE.toml plus data files beside it)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from core.config import ConfigError
    from tools.replay import ReplayError, load_capture, run_replay, summary, write_scenario

    try:
        if args.to_scenario is not None:
            target = args.to_scenario if args.to_scenario.suffix == ".toml" else args.to_scenario.with_suffix(".toml")
            written = write_scenario(load_capture(args.capture), target)
            print(f"scenario written: {written}  (run it: ttlive sim {written})")
            return EXIT_OK
        result = run_replay(args.capture, args.out)
    except (ReplayError, ConfigError) as exc:
        print(f"ttlive replay: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for line in summary(result):
        print(line)
    print(f"report: {args.out / 'divergence.md'}")
    return EXIT_OK if result["same"] else EXIT_FAILED
