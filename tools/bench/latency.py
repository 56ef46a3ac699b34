"""Issue 11 §1: the spec 3.1 latency budget table, from HDR histograms over at least 10,000 signals per stage.

Stages are timed alone (features, inference FP32/INT8 at batch 1 and 32, risk check) and together in one
chain from a closed bar to the order request reaching the httpx transport (the real adapter, the fake venue),
at the configured default precision.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

import numpy as np
import numpy.typing as npt
import trio

from adapters.policy.actions import decode_action, plan_target
from adapters.policy.onnx_policy import OnnxPolicy
from core.config import PolicySection
from core.features import DEFAULT_SPEC, RollingWindow, compute_features, window_from_bars
from core.limits import (
    BUDGET_FEATURE_MS,
    BUDGET_INFERENCE_MS,
    BUDGET_RISK_MS,
    BUDGET_SIGNAL_TO_ORDER_MS,
    BUDGET_SUBMIT_MS,
)
from core.model import NS_PER_S, AccountType, Bar, Direction, ExecutionAction, Quote, Signal
from core.order_fsm import Order, OrderEvent
from core.orderplan import PlanConfig, plan_order
from core.risk import Outcome, PortfolioView, RiskConfig, RiskGuard, rolling_correlations
from tools.bench.common import (
    LatencyRecorder,
    LatencyStats,
    Options,
    Section,
    fmt,
    latency_result,
    table,
    time_each,
    version_of,
)
from tools.bench.data import REPLAY_SYMBOLS, SECTORS, START_DATE, minute_bars, quote_at
from tools.bench.venue import ORDERS_PER_VENUE, venue_blocks, venue_world

HELD_POSITIONS = 50
SECTOR_COUNT = 10
EQUITY_USD = Decimal(10_000_000)
CORRELATION_DAYS = 60
BATCH_SIZES = (1, 32)


# --- inputs ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Book:
    """A 50-position portfolio the risk guard checks against (plus the three replay symbols, not held)."""

    config: RiskConfig
    view: PortfolioView
    universe: tuple[str, ...]


def fifty_position_book(rng: random.Random) -> Book:
    held = tuple(f"H{i:02d}" for i in range(HELD_POSITIONS))
    spare = tuple(f"U{i:02d}" for i in range(7))
    universe = held + spare + REPLAY_SYMBOLS
    sectors = {s: f"sector{i % SECTOR_COUNT}" for i, s in enumerate(held + spare)}
    sectors.update(SECTORS)
    prices = {s: Decimal(rng.randint(1_000, 40_000)).scaleb(-2) for s in universe}
    positions: dict[str, Decimal] = {}
    for symbol in held:
        value = EQUITY_USD * Decimal(rng.uniform(0.005, 0.03)).quantize(Decimal("0.0001"))
        qty = (value / prices[symbol]).to_integral_value(rounding=ROUND_DOWN)
        positions[symbol] = qty if rng.random() < 0.8 else -qty
    open_orders = {s: Decimal(rng.choice((-1, 1)) * rng.randint(10, 500)) for s in rng.sample(held, 5)}
    market = [rng.gauss(0.0, 0.01) for _ in range(CORRELATION_DAYS)]
    returns = {}
    for i, symbol in enumerate(universe):
        beta = 1.0 if i % 3 == 0 else 0.2  # a third of the book moves together: a real correlated group
        returns[symbol] = [beta * m + rng.gauss(0.0, 0.006) for m in market]
    view = PortfolioView(
        equity=EQUITY_USD,
        last_equity=EQUITY_USD,
        week_start_equity=EQUITY_USD,
        cash=EQUITY_USD / 2,
        buying_power=EQUITY_USD * 2,
        account_type=AccountType.MARGIN_EXPERIENCED,
        positions=positions,
        prices=prices,
        open_orders=open_orders,
        correlations=rolling_correlations(returns),
        day_trades_5d=1,
        bought_today=frozenset(rng.sample(held, 8)),
        sold_today=frozenset(rng.sample(held, 8)),
    )
    config = RiskConfig(sectors=sectors, pdt_protection=True)
    config.validate_sectors(universe)
    return Book(config=config, view=view, universe=universe)


def random_signals(rng: random.Random, universe: tuple[str, ...], n: int) -> list[Signal]:
    directions = (Direction.LONG, Direction.SHORT, Direction.NEUTRAL)
    actions = (ExecutionAction.MARKET, ExecutionAction.LIMIT_AGGRESSIVE, ExecutionAction.LIMIT_PASSIVE)
    return [
        Signal(
            signal_id=f"risk-{i}",
            model_id="bench",
            symbol=rng.choice(universe),
            direction=rng.choice(directions),
            quantity=Decimal(rng.randint(1, 3_000)),
            action=rng.choice(actions),
            ts_ns=i,
        )
        for i in range(n)
    ]


def bar_windows(days: int, limit: int, seed: int) -> list[list[Bar]]:
    """Sliding ``lookback_bars`` windows over the replay symbols' minute bars, interleaved by symbol."""
    per_symbol = {s: minute_bars(s, days, seed=seed) for s in REPLAY_SYMBOLS}
    n = DEFAULT_SPEC.lookback_bars
    windows: list[list[Bar]] = []
    longest = max(len(b) for b in per_symbol.values())
    for end in range(n, longest + 1):
        for symbol in REPLAY_SYMBOLS:
            bars = per_symbol[symbol]
            if end <= len(bars):
                windows.append(bars[end - n : end])
    while len(windows) < limit:  # short data (quick mode): reuse windows rather than time fewer calls
        windows.extend(windows[: limit - len(windows)])
    return windows[:limit]


# --- isolated stages ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeatureStats:
    whole: LatencyStats  # the engine's path per decision: the new bar into the rolling window, then features
    sync: LatencyStats  # RollingWindow.sync alone (one Decimal bar -> floats, the window copied out)
    arithmetic: LatencyStats  # compute_features alone
    convert: LatencyStats  # window_from_bars alone: a whole window converted (cold start, restart)


def bench_features(windows: list[list[Bar]]) -> FeatureStats:
    """The engine's path per decision (a cache miss): ``PolicyActor`` keeps one ``RollingWindow`` per symbol,
    so a decision converts the one new Decimal bar to floats and computes the vector from the rolling window.

    The windows slide one bar at a time per symbol, as the engine's bar deques do."""

    def timed_sync(stage: str) -> LatencyStats:
        rolling: dict[str, RollingWindow] = {}

        def step(window: list[Bar]) -> object:
            symbol = window[-1].symbol
            live = rolling.get(symbol)
            if live is None:
                live = rolling[symbol] = RollingWindow(DEFAULT_SPEC.lookback_bars)
            if stage == "whole":
                return compute_features(live.sync(window), 0.0)
            return live.sync(window)

        return time_each(step, windows, warmup=warmup)

    warmup = min(100, len(windows) // 10)
    whole = timed_sync("whole")
    sync = timed_sync("sync")
    arrays = [window_from_bars(w) for w in windows]
    arithmetic = time_each(lambda a: compute_features(a, 0.0), arrays, warmup=warmup)
    convert = time_each(window_from_bars, windows, warmup=warmup)
    return FeatureStats(whole=whole, sync=sync, arithmetic=arithmetic, convert=convert)


def bench_inference(
    policies: dict[str, OnnxPolicy], rows: npt.NDArray[np.float32], batch: int, calls: int
) -> dict[str, LatencyStats]:
    """Every precision on the same batches, interleaved call by call (the order alternating), so a noisy
    neighbour slows both alike: FP32 vs INT8 is compared within the same microseconds, not minutes apart."""
    n_rows = rows.shape[0]
    batches = [
        np.ascontiguousarray(rows[(i * batch) % (n_rows - batch) : (i * batch) % (n_rows - batch) + batch])
        for i in range(calls)
    ]
    recorders = {precision: LatencyRecorder() for precision in policies}
    order = list(policies.items())
    clock = time.perf_counter_ns
    warmup = min(100, calls // 10)
    for i, features in enumerate(batches):
        for precision, policy in order if i % 2 == 0 else order[::-1]:
            start = clock()
            policy.infer(features)
            elapsed = clock() - start
            if i >= warmup:
                recorders[precision].record_ns(elapsed)
    return {precision: recorder.stats() for precision, recorder in recorders.items()}


@dataclass(frozen=True, slots=True)
class Agreement:
    rows: int
    fp32_vs_int8_differ: int  # rows whose action differs between the precisions (batch 1)
    int8_batch_differ: int  # rows whose INT8 action at batch 32 differs from its batch-1 action
    fp32_batch_differ: int  # the same for FP32


def action_agreement(policies: dict[str, OnnxPolicy], rows: npt.NDArray[np.float32]) -> Agreement:
    """Do the precisions choose the same actions on the benchmark's windows, and does a row's action depend on
    the other rows of its batch (the engine batches the symbols whose bars close within 100 ms)?"""
    n = rows.shape[0] - rows.shape[0] % 32

    def actions(policy: OnnxPolicy, batch: int) -> npt.NDArray[np.int64]:
        return np.concatenate([policy.infer(rows[i : i + batch]) for i in range(0, n, batch)])

    one = {precision: actions(policy, 1) for precision, policy in policies.items()}
    batched = {precision: actions(policy, 32) for precision, policy in policies.items()}
    return Agreement(
        rows=n,
        fp32_vs_int8_differ=int(np.sum(one["fp32"] != one["int8"])),
        int8_batch_differ=int(np.sum(batched["int8"] != one["int8"])),
        fp32_batch_differ=int(np.sum(batched["fp32"] != one["fp32"])),
    )


def bench_risk(book: Book, signals: list[Signal]) -> tuple[LatencyStats, dict[str, int]]:
    guard = RiskGuard(book.config)
    outcomes = {o.value: 0 for o in Outcome}
    for signal in signals[:200]:  # warm the code paths before timing
        guard.evaluate_signal(signal, book.view)
    stats = time_each(lambda s: guard.evaluate_signal(s, book.view), signals, warmup=0)
    for signal in signals:
        outcomes[guard.evaluate_signal(signal, book.view).outcome.value] += 1
    return stats, outcomes


# --- the chain: bar -> features -> inference -> risk -> plan -> adapter -> transport ----------------------


@dataclass(slots=True)
class ChainStats:
    chain: LatencyStats
    decide: LatencyStats  # inside the chain: bar -> features -> inference -> signal -> risk (before planning)
    handoff: LatencyStats
    round_trip: LatencyStats
    forced: int  # iterations where the model's action planned no order and a 1-share buy stood in
    orders: int
    risk_resized: int


@dataclass(slots=True)
class _ChainTally:
    chain: LatencyRecorder
    decide: LatencyRecorder
    handoff: LatencyRecorder
    round_trip: LatencyRecorder
    forced: int = 0
    resized: int = 0
    orders: int = 0


def _signal_for(
    i: int, window: list[Bar], rolling: RollingWindow, policy: OnnxPolicy, book: Book, tally: _ChainTally
) -> Signal:
    """Features (the symbol's rolling window takes the new bar, as in PolicyActor) -> inference -> the
    target-exposure intent -> a Signal (a 1-share buy if it holds)."""
    symbol = window[-1].symbol
    row = compute_features(rolling.sync(window), 0.0)
    action_id = int(policy.infer(row[None, :])[0])
    intent = plan_target(decode_action(action_id), position_fraction=0.0, working_fraction=0.0)
    qty, execution = Decimal(0), ExecutionAction.MARKET
    if intent.submits and intent.direction is Direction.LONG and intent.execution is not None:
        allowed_usd = EQUITY_USD * book.config.max_position_fraction
        price = book.view.prices[symbol]
        qty = (Decimal(str(intent.delta_fraction)) * allowed_usd / price).to_integral_value(ROUND_DOWN)
        execution = intent.execution
    if qty < 1:
        tally.forced += 1
        qty, execution = Decimal(1), ExecutionAction.MARKET
    return Signal(
        signal_id=f"chain-{i}",
        model_id=policy.model_id,
        symbol=symbol,
        direction=Direction.LONG,
        quantity=qty,
        action=execution,
        ts_ns=window[-1].ts_ns,
    )


async def _chain(
    windows: list[list[Bar]], quotes: list[Quote], policy: OnnxPolicy, book: Book, seed: int
) -> ChainStats:
    guard = RiskGuard(book.config)
    # Simple orders: with bracket legs open, the next buy of the symbol is a wash trade at the venue (422).
    plan_config = PlanConfig(brackets=False)
    tally = _ChainTally(LatencyRecorder(), LatencyRecorder(), LatencyRecorder(), LatencyRecorder())
    clock = time.perf_counter_ns
    warmup = min(100, len(windows) // 10)
    rolling = {symbol: RollingWindow(DEFAULT_SPEC.lookback_bars) for symbol in {w[-1].symbol for w in windows}}
    for block in venue_blocks(len(windows)):
        async with venue_world(seed=seed) as world:
            for i in block:
                window, quote = windows[i], quotes[i]
                t0 = clock()
                signal = _signal_for(i, window, rolling[window[-1].symbol], policy, book, tally)
                decision = guard.evaluate_signal(signal, book.view)
                if decision.outcome is Outcome.RESIZE:
                    tally.resized += 1
                approved = decision.approved_qty if decision.passed else Decimal(1)
                t_plan = clock()
                request = plan_order(
                    signal_id=signal.signal_id,
                    attempt=0,
                    symbol=signal.symbol,
                    direction=signal.direction,
                    qty=approved,
                    action=signal.action,
                    quote=quote,
                    position_qty=Decimal(0),
                    config=plan_config,
                )
                order = Order(
                    order_id=f"exec-{i}",
                    client_order_id=request.client_order_id,
                    symbol=signal.symbol,
                    side=request.side,
                    qty=request.qty,
                )
                order.apply(OrderEvent.RISK_APPROVED)
                order.apply(OrderEvent.SUBMIT_SENT)
                await world.rest.submit_order(request)
                t_done = clock()
                if i >= warmup:
                    arrived = world.transport.last_arrival_ns
                    tally.chain.record_ns(arrived - t0)
                    tally.decide.record_ns(t_plan - t0)
                    tally.handoff.record_ns(arrived - t_plan)
                    tally.round_trip.record_ns(t_done - t_plan)
            tally.orders += world.transport.requests
    return ChainStats(
        chain=tally.chain.stats(),
        decide=tally.decide.stats(),
        handoff=tally.handoff.stats(),
        round_trip=tally.round_trip.stats(),
        forced=tally.forced,
        orders=tally.orders,
        risk_resized=tally.resized,
    )


def bench_chain(windows: list[list[Bar]], policy: OnnxPolicy, book: Book, seed: int) -> ChainStats:
    # The quote as the bar closes (the last instant inside it: at the session close there is none).
    quotes = [quote_at(w[-1].symbol, w[-1].ts_ns + 60 * NS_PER_S - 1, seed=seed) for w in windows]
    result: ChainStats = trio.run(_chain, windows, quotes, policy, book, seed)
    return result


# --- the group ----------------------------------------------------------------------------------------


def run(options: Options) -> Section:
    n = options.n(10_000, 200)
    days = 10 if not options.quick else 1
    rng = random.Random(options.seed)
    windows = bar_windows(days, n, options.seed)
    features = bench_features(windows)
    rows = np.stack([compute_features(window_from_bars(w), 0.0) for w in windows[: max(64, min(n, 2_048))]])
    inference: dict[tuple[str, int], LatencyStats] = {}
    policies = {precision: OnnxPolicy("default", precision) for precision in ("int8", "fp32")}
    for policy in policies.values():
        policy.warm_up()
    for batch in BATCH_SIZES:
        for precision, stats in bench_inference(policies, rows, batch, n).items():
            inference[(precision, batch)] = stats
    every_row = np.stack([compute_features(window_from_bars(w), 0.0) for w in windows])
    agreement = action_agreement(policies, every_row)  # every benchmark window
    default_precision = PolicySection().precision
    book = fifty_position_book(rng)
    risk, outcomes = bench_risk(book, random_signals(rng, book.universe, n))
    chain = bench_chain(windows, policies[default_precision], book, options.seed)
    from tools.bench.capture import bench_capture_frame

    capture, capture_bytes = bench_capture_frame(options)

    results = [
        latency_result("feature_extraction_us", features.whole),
        latency_result("feature_rolling_sync_us", features.sync),
        latency_result("feature_compute_us", features.arithmetic),
        latency_result("feature_window_from_bars_us", features.convert),
        latency_result("inference_int8_b1_us", inference[("int8", 1)]),
        latency_result("inference_fp32_b1_us", inference[("fp32", 1)]),
        latency_result("inference_int8_b32_us", inference[("int8", 32)]),
        latency_result("inference_fp32_b32_us", inference[("fp32", 32)]),
        latency_result("risk_check_us", risk),
        latency_result("order_handoff_us", chain.handoff),
        latency_result("order_round_trip_inprocess_us", chain.round_trip),
        latency_result("signal_to_order_us", chain.chain),
        latency_result("signal_to_order_decide_us", chain.decide),
        latency_result("capture_frame_us", capture),
    ]
    budget_rows: list[tuple[str, LatencyStats, float | None, str]] = [
        (
            "feature extraction (`RollingWindow.sync` + `compute_features`, cache miss)",
            features.whole,
            BUDGET_FEATURE_MS,
            "< 10 ms",
        ),
        ("  of which the new Decimal bar -> the rolling float window (`RollingWindow.sync`, alone)", features.sync,
         None, ""),
        ("  of which the numpy arithmetic (`compute_features`, timed alone)", features.arithmetic, None, ""),
        ("  for reference: a whole window of Decimal bars -> floats (`window_from_bars`: cold start)",
         features.convert, None, ""),
        ("inference INT8, batch 1", inference[("int8", 1)], BUDGET_INFERENCE_MS, "< 20 ms"),
        ("inference FP32, batch 1", inference[("fp32", 1)], BUDGET_INFERENCE_MS, "< 20 ms"),
        ("inference INT8, batch 32 (whole batch)", inference[("int8", 32)], BUDGET_INFERENCE_MS, "< 20 ms"),
        ("inference FP32, batch 32 (whole batch)", inference[("fp32", 32)], BUDGET_INFERENCE_MS, "< 20 ms"),
        (
            f"risk check (`RiskGuard.evaluate_signal`, {HELD_POSITIONS}-position book)",
            risk,
            BUDGET_RISK_MS,
            "< 5 ms",
        ),
        (
            "order hand-off (`plan_order` + order FSM + `AlpacaRest.submit_order` until the httpx transport)",
            chain.handoff,
            BUDGET_SUBMIT_MS,
            "< 100 ms (submission)",
        ),
        (
            f"**total signal-to-order** (bar -> features -> {default_precision.upper()} b1 -> risk -> plan -> "
            "transport)",
            chain.chain,
            BUDGET_SIGNAL_TO_ORDER_MS,
            "< 150 ms",
        ),
        (
            "  of which bar -> features -> inference -> risk, inside the chain (slower than the same stages "
            "timed alone: between two orders the adapter and the in-process venue run, likely leaving caches cold)",
            chain.decide,
            None,
            "",
        ),
        (
            "for reference: submit round trip incl. the in-process fake venue and response decoding",
            chain.round_trip,
            None,
            "",
        ),
        (
            f"wire capture of one received market-data frame (decode, scrub, JSON, gzip sync flush; "
            f"{capture_bytes:.0f} compressed bytes per frame), paid on the reader task, not the decision path",
            capture,
            None,
            "",
        ),
    ]
    rows_md = []
    for label, stats, budget_ms, budget_text in budget_rows:
        share = f"{100 * stats.p99_us / (budget_ms * 1_000):.2f} %" if budget_ms else ""
        rows_md.append(
            (
                label,
                f"{stats.count:,}",
                fmt(stats.p50_us),
                fmt(stats.p99_us),
                fmt(stats.max_us),
                budget_text,
                share,
            )
        )
    b32_int8 = inference[("int8", 32)].p50_us / 32
    b32_fp32 = inference[("fp32", 32)].p50_us / 32
    b1_int8, b1_fp32 = inference[("int8", 1)].p50_us, inference[("fp32", 1)].p50_us
    if b1_int8 < b1_fp32:
        int8_note = f"INT8 is {100 * (1 - b1_int8 / b1_fp32):.0f} % faster than FP32 at batch 1 (p50)."
    else:
        int8_note = (
            f"INT8 is not faster than FP32 here (batch 1 p50: {100 * (b1_int8 / b1_fp32 - 1):.0f} % slower): on a "
            "model this small the per-call overhead and INT8's dynamic quantisation of the input, not the "
            "arithmetic, dominate."
        )
    agreement_note = (
        f"Same windows, batch 1: FP32 and INT8 choose different actions on {agreement.fp32_vs_int8_differ:,} of "
        f"{agreement.rows:,} rows; batched by 32 instead of one by one, {agreement.int8_batch_differ:,} INT8 rows "
        f"and {agreement.fp32_batch_differ:,} FP32 rows change action (INT8 quantises activations with one scale "
        f"per batch). The engine and the chain below run the configured default, {default_precision.upper()} "
        "(`core.config.PolicySection`; adapters/policy/models/default/model_card.md says why)."
    )
    model = policies["int8"].meta
    md = [
        table(("stage", "samples", "p50 µs", "p99 µs", "max µs", "spec 3.1 budget", "p99 / budget"), rows_md),
        "",
        f"Model: `{model['model_id']}` (shipped default, MLP {model['n_features']} inputs -> 13 actions), "
        f"ONNX Runtime {version_of('onnxruntime')}, provider `{policies['int8'].provider}`, one intra-op "
        f"thread. Per row at batch 32 (p50): INT8 {b32_int8:.2f} µs, FP32 {b32_fp32:.2f} µs; batch 1: "
        f"INT8 {b1_int8:.2f} µs, FP32 {b1_fp32:.2f} µs (the two timed interleaved, call by call). {int8_note}",
        "",
        agreement_note,
        "",
        f"Data: the fake venue's one-minute bars for {', '.join(REPLAY_SYMBOLS)} from {START_DATE} "
        f"({days} session(s); real daily OHLC files bridged to minutes with seed {options.seed}), sliding "
        f"{DEFAULT_SPEC.lookback_bars}-bar windows. Risk: a seeded book of {HELD_POSITIONS} positions in "
        f"{SECTOR_COUNT} sectors, 5 pending orders, a {CORRELATION_DAYS}-day correlation matrix, {n:,} "
        f"random signals (outcomes: {outcomes['pass']:,} pass, {outcomes['resize']:,} resize, "
        f"{outcomes['reject']:,} reject).",
        "",
        f"Chain: {chain.orders:,} orders went through the real adapter (rate limiter opened wide) into the "
        f"in-process fake venue on trio's real clock (a fresh venue every {ORDERS_PER_VENUE} orders: see "
        "section 2), as simple orders (with bracket legs working, Alpaca and "
        "the fake refuse the next buy of the same symbol as a potential wash trade). The chain stops the "
        "clock when the request reaches the httpx transport; the network to Alpaca is not in it (add your "
        "RTT: that is what the 100 ms submission budget is for). Where the model's action planned no order "
        f"({chain.forced:,} of {len(windows):,} iterations: hold/flat with no position), a 1-share market "
        "buy stood in so every sample covers the whole path. Not in these numbers: the audit-log write and "
        "state persistence, which depend on the disk (section 2's simulations write both, without fsync).",
        "",
    ]
    return Section(key="latency", markdown="\n".join(md), results=results)
