"""``python -m tools.bench``: run the benchmark groups in order and write BENCHMARKS.md + bench-results.json.

A group that fails is written up as "not measured" with its error; the others still run and report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from tools.bench import report
from tools.bench.common import REPO_ROOT, Options, Section, load_average, machine_description

GROUPS: tuple[tuple[str, str, str], ...] = (  # key, title, module
    ("latency", "1. Latency budget (spec 3.1)", "tools.bench.latency"),
    ("throughput", "2. Engine throughput and memory", "tools.bench.throughput"),
    ("sweeps", "2b. Chaos sweeps and swarms: runs per hour", "tools.bench.sweeps"),
    ("nautilus", "3a. NautilusTrader vs ttlive's simulation", "tools.bench.nautilus"),
    ("tensortrade", "3b. TensorTrade: stock env vs ttlive's bridge env", "tools.bench.tensortrade_cmp"),
    ("alpaca_py", "3c. alpaca-py vs ttlive's REST adapter", "tools.bench.alpaca_py_cmp"),
    ("scaling", "4. Scaling", "tools.bench.scaling"),
    ("profile", "5. Where the time goes: one simulated day profiled, and start-up", "tools.bench.profile"),
)


def _runner(key: str, module: str) -> Callable[[Options], Section]:
    import importlib

    mod = importlib.import_module(module)
    if key == "nautilus":
        from tools.bench.simrun import DECISION_INTERVAL_S, nautilus_peer

        return lambda options: mod.run(
            options,
            ttlive_side=nautilus_peer(options),
            decision_interval_s=DECISION_INTERVAL_S,
            ports_side=nautilus_peer(options, path="ports"),
        )
    run: Callable[[Options], Section] = mod.run
    return run


def run_group(key: str, title: str, module: str, options: Options) -> Section:
    print(f"[bench] {key} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        section = _runner(key, module)(options)
    except Exception as exc:  # one broken group must not cost the others their numbers
        traceback.print_exc(file=sys.stderr)
        section = Section(
            key=key,
            title=title,
            markdown=f"Not measured: the group failed with `{exc.__class__.__name__}: {exc}`.\n",
        )
    section.title = title
    section.wall_s = time.perf_counter() - started
    print(f"[bench] {key} done in {section.wall_s:.1f} s", file=sys.stderr, flush=True)
    return section


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test); numbers mean nothing")
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=REPO_ROOT,
        help="where BENCHMARKS.md, bench-results.json and the figure go (default: repo root)",
    )
    parser.add_argument(
        "--only", default="", help=f"comma list of groups: {','.join(k for k, _, _ in GROUPS)}"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--nautilus-python",
        default=None,
        help="a Python with nautilus-trader installed (default: this one, or $TTLIVE_NAUTILUS_PYTHON)",
    )
    args = parser.parse_args(argv)
    known = {k for k, _, _ in GROUPS}
    args.groups = [g.strip() for g in args.only.split(",") if g.strip()] or [k for k, _, _ in GROUPS]
    unknown = sorted(set(args.groups) - known)
    if unknown:
        parser.error(f"unknown group(s) {', '.join(unknown)}; choose from {', '.join(sorted(known))}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    options = Options(
        quick=args.quick, out_dir=args.out_dir.resolve(), seed=args.seed, nautilus_python=args.nautilus_python
    )
    options.out_dir.mkdir(parents=True, exist_ok=True)
    started_at = dt.datetime.now(dt.UTC)
    machine = machine_description()
    started = time.perf_counter()
    sections = [run_group(key, title, module, options) for key, title, module in GROUPS if key in args.groups]
    machine["load_average_at_end"] = load_average()
    words = sys.argv[1:] if argv is None else list(argv)
    command = "python -m tools.bench" + (" " + shlex.join(words) if words else "")
    md_path, json_path = report.write(
        options.out_dir,
        sections,
        machine=machine,
        command=command,
        wall_s=time.perf_counter() - started,
        quick=options.quick,
        started=started_at,
    )
    print(f"[bench] wrote {md_path} and {json_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
