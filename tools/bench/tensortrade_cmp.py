"""Issue 11 §3: ``env.step`` rate of a stock TensorTrade env vs ttlive's bridge env, and the policy path.

Same NVDA daily bars, same episode length, seeded random actions. The stock env is TensorTrade's README
set-up (simulated exchange, managed-risk actions, risk-adjusted reward, five price streams, window 20).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import adapters.tensortrade.env as bridge  # first: it keeps tensortrade.agents (TensorFlow) from loading
from adapters.policy.actions import N_ACTIONS
from adapters.policy.onnx_policy import OnnxPolicy
from tools.bench.common import Options, Result, Section, fmt, ratio, table, version_of

SYMBOL: Final = "NVDA"
FIRST_BAR: Final = 1_000  # 2003-01: well inside the file, with history for the 33-bar feature window
STOCK_WINDOW: Final = 20


@dataclass(frozen=True, slots=True)
class StepRate:
    label: str
    steps: int
    wall_s: float
    fills: int = 0

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def us_per_step(self) -> float:
        return 1e6 * self.wall_s / self.steps if self.steps else 0.0


def _timed(label: str, step: Callable[[], bool], max_steps: int, fills: Callable[[], int]) -> StepRate:
    """Call ``step`` until it says done or ``max_steps``; returns the rate (reset is not timed)."""
    steps = 0
    started = time.perf_counter()
    while steps < max_steps:
        steps += 1
        if step():
            break
    return StepRate(label, steps, time.perf_counter() - started, fills())


def median_rate(samples: list[StepRate]) -> StepRate:
    """The run with the median wall time (each run of one config does the same steps)."""
    ordered = sorted(samples, key=lambda s: s.wall_s)
    return ordered[len(ordered) // 2]


def stock_env(data: bridge.DailyBars, steps: int, seed: int) -> StepRate:
    import tensortrade.env.default as default
    from tensortrade.feed.core import DataFeed, Stream
    from tensortrade.oms.exchanges import Exchange
    from tensortrade.oms.instruments import USD, Instrument
    from tensortrade.oms.services.execution.simulated import execute_order
    from tensortrade.oms.wallets import Portfolio, Wallet

    closes = [float(x) for x in data.bars.close[FIRST_BAR : FIRST_BAR + steps + 1]]
    price = Stream.source(closes, dtype="float").rename(f"USD-{SYMBOL}")
    exchange = Exchange("simulated", service=execute_order)(price)
    stock = Instrument(SYMBOL, 2, SYMBOL)
    portfolio = Portfolio(USD, [Wallet(exchange, 100_000 * USD), Wallet(exchange, 0 * stock)])
    feed = DataFeed(
        [
            price,
            price.rolling(window=10).mean().rename("fast"),
            price.rolling(window=50).mean().rename("medium"),
            price.rolling(window=100).mean().rename("slow"),
            price.log().diff().fillna(0).rename("lr"),
        ]
    )
    env = default.create(
        portfolio=portfolio,
        action_scheme="managed-risk",
        reward_scheme="risk-adjusted",
        feed=feed,
        window_size=STOCK_WINDOW,
    )
    env.action_space.seed(seed)
    env.reset()

    def step() -> bool:
        _, _, done, _ = env.step(env.action_space.sample())
        return bool(done)

    broker = env.action_scheme.broker
    return _timed("stock TensorTrade env", step, steps, lambda: sum(len(t) for t in broker.trades.values()))


def bridge_env(data: bridge.DailyBars, steps: int, seed: int, policy: OnnxPolicy | None) -> StepRate:
    env = bridge.build_env(data, first=FIRST_BAR, stop=FIRST_BAR + steps + 1, seed=seed)
    rng = random.Random(seed)
    observation: list[Any] = [env.reset()[0]]

    def step() -> bool:
        if policy is None:
            action = rng.randrange(N_ACTIONS)
        else:
            action = int(policy.infer(observation[0][None, :])[0])
        obs, _, terminated, truncated, _ = env.step(action)
        observation[0] = obs
        return bool(terminated or truncated)

    label = "ttlive bridge env + INT8 policy (obs -> ONNX -> step)" if policy else "ttlive bridge env"
    return _timed(label, step, steps, lambda: len(env.scheme.matcher.fills))


def run(options: Options) -> Section:
    steps = options.n(1_000, 30)
    rounds = options.n(3, 1)
    data = bridge.load_daily_bars(SYMBOL)
    policy = OnnxPolicy("default", "int8")
    policy.warm_up()
    configs: list[Callable[[], StepRate]] = [
        lambda: stock_env(data, steps, options.seed),
        lambda: bridge_env(data, steps, options.seed, None),
        lambda: bridge_env(data, steps, options.seed, policy),
    ]
    samples: list[list[StepRate]] = [[] for _ in configs]
    for r in range(rounds):  # rotate the order each round: a burst of load elsewhere hits every config
        for i in range(len(configs)):
            k = (i + r) % len(configs)
            samples[k].append(configs[k]())
    stock, ours, with_policy = (median_rate(s) for s in samples)
    r = ratio(ours.steps_per_s, stock.steps_per_s)
    peer = f"tensortrade {version_of('tensortrade')} stock env"
    results = [
        Result(
            name="tensortrade_steps_per_s_ratio",
            unit="steps/s",
            value=round(ours.steps_per_s, 2),
            peer=peer,
            peer_value=round(stock.steps_per_s, 2),
            ratio=r,
        ),
        Result(
            name="tensortrade_policy_path_steps_per_s",
            unit="steps/s",
            value=round(with_policy.steps_per_s, 2),
            peer=peer,
            peer_value=round(stock.steps_per_s, 2),
            ratio=ratio(with_policy.steps_per_s, stock.steps_per_s),
        ),
    ]
    rows = [
        (
            s.label,
            f"{s.steps:,}",
            f"{s.fills:,}",
            fmt(s.steps_per_s),
            fmt(s.us_per_step),
            f"{ratio(s.steps_per_s, stock.steps_per_s):.2f}x",
        )
        for s in (stock, ours, with_policy)
    ]
    first_date, last_date = data.date(FIRST_BAR), data.date(min(len(data) - 1, FIRST_BAR + steps))
    md = [
        table(("env", "steps", "fills", "steps/s", "µs/step", "vs stock"), rows),
        "",
        f"Data: {SYMBOL} daily bars {first_date} .. {last_date} from `{data.path.rsplit('/', 1)[-1]}` "
        f"(sha256 {data.sha256[:12]}...), one episode of {steps:,} steps each, seeded random actions "
        f"(seed {options.seed}) except on the policy row; each row is the median of {rounds} run(s), the "
        f"order rotated per round. TensorTrade {version_of('tensortrade')}, gymnasium "
        f"{version_of('gymnasium')}.",
        "",
        "What differs, and explains the numbers: the stock env observes 5 price streams over a 20-bar "
        "window and rewards with `risk-adjusted` (Sharpe over the whole net-worth history, so each step "
        "costs more as the episode grows); its `managed-risk` actions send bracket-like order chains to "
        "TensorTrade's instant simulated fill. ttlive's bridge env computes the full 135-value "
        "`core.features` vector every step (the same function live inference uses), matches orders the "
        "way the fake venue does (touch/limit/slippage model), and rewards with a one-step log return. "
        "The policy path adds one ONNX Runtime INT8 call per step (tens of µs, see section 1); it also "
        "trades differently from random actions (fills column), which changes the env's own work per "
        "step, so the two ttlive rows differ by more than the inference.",
        "",
    ]
    return Section(
        key="tensortrade",
        markdown="\n".join(md),
        results=results,
    )
