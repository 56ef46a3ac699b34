"""Issue 11 §2: engine throughput, simulation speed, order rate into the in-process fake, memory when flooded.

Order rate and memory need only the adapter and the fake; events/s through the actors and simulated
market-seconds per wall-second need ttlive's simulation (tools.bench.simrun), and say so when it is absent.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

import trio

from core.limits import STREAM_BUFFER_MAX_MESSAGES
from core.model import OrderRequest, OrderType, Side, TimeInForce
from tools.bench import simrun
from tools.bench.common import (
    REPO_ROOT,
    LatencyRecorder,
    LatencyStats,
    Options,
    Result,
    Section,
    fmt,
    latency_result,
    table,
)
from tools.bench.data import REPLAY_SYMBOLS
from tools.bench.venue import ORDERS_PER_VENUE, venue_blocks, venue_world

FLOOD_TIMEOUT_S = 300.0


async def _submit_many(n: int, seed: int) -> tuple[LatencyStats, float]:
    recorder = LatencyRecorder()
    clock = time.perf_counter_ns
    busy_ns = 0
    for block in venue_blocks(n):
        async with venue_world(seed=seed) as world:
            started = clock()
            for i in block:
                request = OrderRequest(
                    client_order_id=f"rate-{i}",
                    symbol=REPLAY_SYMBOLS[i % len(REPLAY_SYMBOLS)],
                    side=Side.BUY,
                    qty=Decimal(1),
                    type=OrderType.MARKET,
                    time_in_force=TimeInForce.DAY,
                )
                t0 = clock()
                await world.rest.submit_order(request)
                recorder.record_ns(clock() - t0)
            busy_ns += clock() - started
    return recorder.stats(), n / (busy_ns / 1e9)


def order_rate(options: Options) -> tuple[LatencyStats, float]:
    result: tuple[LatencyStats, float] = trio.run(_submit_many, options.n(5_000, 50), options.seed)
    return result


def flood_memory(messages: int) -> dict[str, Any]:
    """Run tools.bench.flood in a fresh interpreter, so only the adapter and the full buffer are in it."""
    done = subprocess.run(
        [sys.executable, "-m", "tools.bench.flood", str(messages)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=FLOOD_TIMEOUT_S,
        check=True,
    )
    data: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return data


def run(options: Options) -> Section:
    results: list[Result] = []
    md: list[str] = []

    # Engine and simulation speed (needs the sim harness). 3 symbols first: it anchors the budget estimates.
    runs = simrun.budget(options)
    speeds = [(3, runs.run(3, 1, optional=False)), (30, runs.run(30, 1))]
    measured = [run for _, run in speeds if run.ok]
    engine = max(measured, key=lambda run: run.n_symbols) if measured else speeds[0][1]
    results.append(
        Result(
            name="engine_events_per_s",
            unit="events/s",
            value=round(engine.events_per_s, 1) if engine.ok else None,
        )
    )
    rows = [("market events (bars + quotes) through the full actor pipeline", engine.describe_rate())]
    for n_symbols, speed in speeds:
        results.append(
            Result(
                name=f"sim_speedup_1day_{n_symbols}sym",
                unit="x",
                value=round(speed.speedup, 2) if speed.ok else None,
            )
        )
        rows.append(
            (
                f"one-day minute-bar session, {n_symbols} symbols: market-seconds per wall-second",
                speed.describe_speedup(),
            )
        )
    # The same runs at the engine's ports (adapters.ports_venue: the bulk backtest path, no wire).
    ports = [(3, runs.run(3, 1, path="ports")), (30, runs.run(30, 1, path="ports"))]
    big = ports[-1][1]
    results.append(
        Result(name="engine_events_per_s_ports", unit="events/s",
               value=round(big.events_per_s, 1) if big.ok else None)
    )
    rows.append((f"the same, {big.n_symbols} symbols, at the engine's ports (`--path ports`, no wire)",
                 big.describe_rate()))
    for n_symbols, speed in ports:
        results.append(
            Result(name=f"sim_speedup_1day_{n_symbols}sym_ports", unit="x",
                   value=round(speed.speedup, 2) if speed.ok else None)
        )
        rows.append(
            (
                f"one-day minute-bar session, {n_symbols} symbols, at the engine's ports: market-seconds per "
                "wall-second",
                speed.describe_speedup(),
            )
        )
    stats, per_s = order_rate(options)
    results.append(Result(name="orders_per_s_inprocess", unit="orders/s", value=round(per_s, 1)))
    results.append(latency_result("order_submit_inprocess_us", stats))
    rows.append(
        (
            f"orders per second, `AlpacaRest.submit_order` into the in-process fake ({stats.count:,} "
            f"sequential 1-share market orders, a fresh venue every {ORDERS_PER_VENUE})",
            f"{fmt(per_s)} orders/s (p50 {fmt(stats.p50_us)} µs, p99 {fmt(stats.p99_us)} µs, max "
            f"{fmt(stats.max_us)} µs per order)",
        )
    )
    messages = options.n(5 * STREAM_BUFFER_MAX_MESSAGES, 2 * STREAM_BUFFER_MAX_MESSAGES)
    flood = flood_memory(messages)
    results.append(Result(name="memory_full_queue_mib", unit="MiB", value=round(flood["peak_rss_mib"], 2)))
    buffer_mib = flood["rss_full_mib"] - flood["rss_before_flood_mib"]
    rows.append(
        (
            f"memory high-water mark, {flood['buffered']:,}-message buffer full after a flood of "
            f"{flood['messages']:,} quotes ({flood['dropped']:,} dropped oldest)",
            f"{flood['peak_rss_mib']:.1f} MiB peak RSS of the process; the full buffer adds "
            f"{buffer_mib:.1f} MiB (~{1024 * 1024 * buffer_mib / max(1, flood['buffered']):.0f} B per "
            f"decoded quote); decode + buffer {fmt(flood['encode_decode_msgs_per_s'])} msgs/s",
        )
    )
    md += [
        table(("measure", "result"), rows),
        "",
        "Engine and simulation: `sim.world.run_scenario` on a generated scenario (virtual time on trio's "
        "MockClock, the fake venue behind the real adapter over in-memory WebSockets and httpx, the whole "
        f"actor engine, the rule policy deciding on {simrun.DECISION_INTERVAL_S // 60}-minute bars, a "
        "$1M margin account). Market events are the bars and quotes the engine received from its market "
        "stream; wall time is the whole `run_scenario` call. Market-seconds count open-session time only.",
        "",
        "At the engine's ports (the `_ports` rows): the same scenario, venue and engine, with the adapters of "
        "`adapters/ports_venue.py` in place of the Alpaca adapter: REST calls go to the venue's router without "
        "HTTP, trade updates and market data arrive as decoded events batched per venue step; no WebSocket, "
        "no httpx, no in-process transport. On a clean day it places the same orders and gets the same fills "
        "as the wire path (tests/backtest/test_ports_path.py); on a busy one, orders decided in the same "
        "virtual instant as a fill may be sized before or after the fill is booked (the wire delivers it "
        "after more scheduler passes), so the two paths can part ways there.",
        "",
        "Orders: the real adapter (token bucket opened wide) over the in-process httpx transport into the "
        "fake venue on trio's real clock; each order is one POST answered by the venue core. On the real "
        "clock the venue fills market orders only at its next bar, so they pile up open, and its "
        "per-submit work grows with its open orders; a fresh venue takes over every "
        f"{ORDERS_PER_VENUE} orders so the number describes the client path, not a congested fake.",
        "",
        "Memory: a fresh `python -m tools.bench.flood` process (so nothing else the suite loaded counts) "
        "feeds msgpack quote frames, ten quotes each, to `MarketDataStream.on_frame` with no consumer: "
        "decode, domain `Quote`, the spec 3.3 drop-oldest buffer of "
        f"{STREAM_BUFFER_MAX_MESSAGES:,}. Peak RSS is the kernel's VmHWM for that process.",
        "",
    ]
    return Section(key="throughput", markdown="\n".join(md), results=results)
