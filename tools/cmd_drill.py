"""``ttlive drill NAME``: run one drill (tools/drill.py) — the real paper runner in its own process against the
loopback fake, with faults from outside — and check the invariants from the venue's records.

Exit status: 0 every check held, 1 a check failed or the drill could not complete (printed), 2 bad input.
``--list`` names the drills.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tools.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_USAGE


def register(sub: Any) -> None:
    p = sub.add_parser(
        "drill",
        help="fault drills: the real runner as a process against the loopback fake (kill -9, venue restart, ...)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", nargs="?", default=None, help="the drill to run (see --list)")
    p.add_argument("--list", action="store_true", help="list the drills and exit")
    p.add_argument("--workdir", type=Path, default=None,
                   help="an empty directory for logs, config, state and audit (default: a temporary one, "
                   "removed when the drill passes)")
    p.add_argument("--seed", type=int, default=0, help="the fake venue's seed (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tools.drill import DRILLS, DrillError, describe, run_drill

    if args.list:
        for name in sorted(DRILLS):
            print(f"{name:15} {describe(name)}")
        return EXIT_OK
    if args.name is None:
        print("ttlive drill: give a drill name (see --list)", file=sys.stderr)
        return EXIT_USAGE
    if args.name not in DRILLS:
        print(f"ttlive drill: unknown drill {args.name!r} (known: {', '.join(sorted(DRILLS))})", file=sys.stderr)
        return EXIT_USAGE

    def log(message: str) -> None:
        print(f"drill {args.name}: {message}", flush=True)

    try:
        result = run_drill(args.name, workdir=args.workdir, seed=args.seed, log=log)
    except DrillError as exc:
        print(f"ttlive drill: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for note in result.notes:
        print(f"note: {note}")
    if result.ok:
        print(f"OK: drill {args.name}: every check held")
        return EXIT_OK
    for violation in result.violations:
        print(f"FAILED: {violation}")
    print(f"drill {args.name} FAILED; logs, config, state and audit in {result.workdir}")
    return EXIT_FAILED
