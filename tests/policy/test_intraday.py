"""Intraday training: the bars are the fake venue's own minutes rolled like the engine rolls them, episodes are
whole sessions, the touch is the venue's whole-cent quote, and the reward charges turnover."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from adapters.policy.actions import action_id_for
from adapters.tensortrade.env import (  # first: it keeps tensortrade.agents (TensorFlow) unloaded
    DailyBars,
    ExecutionModel,
    build_env,
    run_episode,
)
from adapters.tensortrade.intraday import load_session_bars, timeframe_seconds
from core.engine.market import BarRoller
from core.features import DEFAULT_SPEC
from core.model import Bar, Direction, ExecutionAction

LONG_1_MKT = action_id_for(Direction.LONG, 1.0, ExecutionAction.MARKET)
FLAT_MKT = action_id_for(Direction.NEUTRAL, 0.0, ExecutionAction.MARKET)
CANCEL = action_id_for(Direction.NEUTRAL, 0.0, ExecutionAction.CANCEL)


@pytest.fixture(scope="module")
def orcl() -> DailyBars:
    return load_session_bars("ORCL", first="2010-11-01", last="2010-12-31", path_seed=5)


def test_timeframes_are_whole_minutes() -> None:
    assert timeframe_seconds("5Min") == 300 and timeframe_seconds("1Min") == 60
    for bad in ("1Day", "5m", "0Min", "Min"):
        with pytest.raises(ValueError):
            timeframe_seconds(bad)


def test_the_bars_are_the_venues_minutes_rolled_as_the_engine_rolls_them(orcl: DailyBars) -> None:
    """Independent check: the fake venue's minute bars of one session through the engine's own BarRoller give
    exactly the training bars of that session."""
    from decimal import Decimal

    from adapters.fake.market_replay import ReplaySource
    from adapters.tensortrade.env import find_data_file

    date = "2010-12-03"
    day = ReplaySource({"ORCL": find_data_file("ORCL")}, bar_interval_s=60, seed=5).day_path("ORCL", date)
    assert day is not None
    roller = BarRoller(300 * 10**9)
    rolled: list[Bar] = []
    for k in range(day.n):
        bar = Bar(symbol="ORCL", ts_ns=day.open_ns + k * day.interval_ns, open=Decimal(int(day.bar_open[k])) / 100,
                  high=Decimal(int(day.bar_high[k])) / 100, low=Decimal(int(day.bar_low[k])) / 100,
                  close=Decimal(int(day.bar_close[k])) / 100, volume=Decimal(int(day.bar_volume[k])))
        closed = roller.add(bar)
        if closed is not None:
            rolled.append(closed)
    last = roller.flush("ORCL", day.open_ns + day.n * day.interval_ns)
    assert last is not None
    rolled.append(last)
    first = int(np.searchsorted(orcl.dates, np.datetime64(f"{date}T14:35", "m")))
    assert str(orcl.dates[first]).startswith(date) and first in orcl.sessions.tolist()  # type: ignore[union-attr]
    assert len(rolled) == 78
    for i, bar in enumerate(rolled):
        j = first + i
        assert (orcl.bars.open[j], orcl.bars.high[j], orcl.bars.low[j], orcl.bars.close[j], orcl.bars.volume[j]) \
            == (float(bar.open), float(bar.high), float(bar.low), float(bar.close), float(bar.volume)), i


def test_sessions_are_whole_days_and_episodes_never_cross_the_close(orcl: DailyBars) -> None:
    spans = orcl.session_spans(0, len(orcl))
    assert spans and all(b - a == 78 for a, b in spans[:-1] if str(orcl.dates[a])[:10] not in ("2010-11-26",
                                                                                                "2010-12-24"))
    assert spans[0][0] >= DEFAULT_SPEC.lookback_bars - 1  # a full feature window before the first decision
    env = build_env(orcl, first=0, stop=len(orcl), seed=3, execution=ExecutionModel(tick_usd=0.01))
    for _ in range(6):
        _, info = env.reset()
        start = int(info["bar_index"])
        assert start in orcl.sessions.tolist()  # type: ignore[union-attr]
        steps, done = 0, False
        while not done:
            _, _, terminated, truncated, info = env.step(LONG_1_MKT)
            assert not truncated  # the close ends the episode; it does not cut it short
            done = terminated
            steps += 1
        assert (start, int(info["bar_index"]) + 1) in spans


def test_the_touch_is_the_venues_whole_cent_quote(orcl: DailyBars) -> None:
    env = build_env(orcl, first=0, stop=len(orcl), seed=1, execution=ExecutionModel(tick_usd=0.01))
    for index in (100, 500, 900):
        close = float(orcl.bars.close[index])
        bid, ask = env.scheme.matcher.touch(index)
        assert bid == pytest.approx(close - 0.01) and ask == pytest.approx(close + 0.01), (close, bid, ask)
    daily = build_env(orcl, first=0, stop=len(orcl), seed=1)  # tick 0: the daily model's bps touch
    bid, ask = daily.scheme.matcher.touch(100)
    assert ask - bid == pytest.approx(2e-4 * float(orcl.bars.close[100]))


def test_the_reward_charges_turnover_on_top_of_the_costs(orcl: DailyBars) -> None:
    span = orcl.session_spans(0, len(orcl))[3]
    rewards = {}
    for penalty in (0.0, 10.0):
        env = build_env(orcl, first=0, stop=len(orcl), seed=2, execution=ExecutionModel(tick_usd=0.01),
                        turnover_penalty_bps=penalty)
        env.reset(options={"span": span})
        total = 0.0
        for action in (LONG_1_MKT, CANCEL, FLAT_MKT, LONG_1_MKT, FLAT_MKT):
            total += env.step(action)[1]
        traded = sum(f.shares * float(f.price) for f in env.scheme.matcher.fills)
        rewards[penalty] = (total, traded)
    (plain, traded), (charged, same) = rewards[0.0], rewards[10.0]
    assert traded == same > 0
    assert charged == pytest.approx(plain - 10e-4 * traded / 100_000, rel=0.02)


def test_a_churning_policy_pays_for_it_and_evaluation_replays_exactly(orcl: DailyBars) -> None:
    spans = orcl.session_spans(0, len(orcl))[:4]
    env = build_env(orcl, first=0, stop=len(orcl), seed=9, execution=ExecutionModel(tick_usd=0.01))
    flip = itertools.cycle([LONG_1_MKT, FLAT_MKT])
    churn = [run_episode(env, lambda _obs: np.array([next(flip)]), span) for span in spans]
    hold = [run_episode(env, lambda _obs: np.array([LONG_1_MKT]), span) for span in spans]
    for c, h in zip(churn, hold, strict=True):
        assert c.fills > 30 and h.fills == 1 and c.traded_usd > 30 * h.traded_usd / 2
    assert sum(c.log_return for c in churn) < sum(h.log_return for h in hold)
    again = build_env(orcl, first=0, stop=len(orcl), seed=9, execution=ExecutionModel(tick_usd=0.01))
    flip = itertools.cycle([LONG_1_MKT, FLAT_MKT])
    replay = [run_episode(again, lambda _obs: np.array([next(flip)]), span) for span in spans]
    replay += [run_episode(again, lambda _obs: np.array([LONG_1_MKT]), span) for span in spans]
    assert [r.log_return for r in replay] == [r.log_return for r in churn + hold]  # same seed, same everything
