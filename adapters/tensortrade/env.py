"""The TensorTrade 1.0.3 training environment: real daily bars, executed the way the ttlive venue executes.

Built with ``tensortrade.env.default.create`` from a real Exchange (its service is ``VenueMatcher``), Portfolio
and Wallets, a Broker that routes around TensorTrade's bugs, the target-exposure action scheme of
``adapters.policy.actions``, and a feed whose observation is ``core.features.compute_features`` - the very
function the live engine calls, so training and live see the same vectors.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal
from pathlib import Path
from typing import Any, Final

import numpy as np

from adapters.tensortrade import _keep_tensortrade_agents_unloaded  # before any tensortrade import

_keep_tensortrade_agents_unloaded()

import gymnasium  # noqa: E402
import tensortrade.env.default as tt_default  # noqa: E402
from tensortrade.env.default.actions import TensorTradeActionScheme  # noqa: E402
from tensortrade.env.default.rewards import TensorTradeRewardScheme  # noqa: E402
from tensortrade.env.generic import TradingEnv  # noqa: E402
from tensortrade.feed.core import DataFeed, Stream  # noqa: E402
from tensortrade.oms.exchanges import Exchange, ExchangeOptions  # noqa: E402
from tensortrade.oms.instruments import ExchangePair, Instrument, Quantity  # noqa: E402
from tensortrade.oms.orders import Broker, Order, Trade, TradeSide, TradeType  # noqa: E402
from tensortrade.oms.wallets import Portfolio, Wallet  # noqa: E402

from adapters.fake.market import market_data_dir  # noqa: E402
from adapters.policy.actions import N_ACTIONS, OrderIntent, decode_action, plan_target  # noqa: E402
from core.features import DEFAULT_SPEC, FeatureSpec, OhlcvWindow, compute_features, feature_names  # noqa: E402
from core.model import Direction, ExecutionAction  # noqa: E402
from core.orderplan import PlanConfig  # noqa: E402

DEFAULT_DATA_DIR: Final = market_data_dir()  # the repo's copy, or $TTLIVE_MARKET_DATA
USD_DECIMALS: Final = 4  # adjusted early prices are cents-sized: keep sub-cent precision in the simulation
PRICE_QUANTUM: Final = Decimal(1).scaleb(-USD_DECIMALS)
BPS: Final = 1e-4


# --- market data ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DailyBars:
    """One symbol's daily bars, adjusted by Adj Close / Close so dividends (and any split a file left raw) are
    not mistaken for returns."""

    symbol: str
    dates: np.ndarray  # datetime64[D] (daily) or datetime64[m] bar ends in UTC (intraday), ascending
    bars: OhlcvWindow
    path: str
    sha256: str
    sessions: np.ndarray | None = None  # intraday: index of each session's first bar (episodes are sessions)
    timeframe: str = "1Day"

    def __len__(self) -> int:
        return len(self.bars)

    def window_ending_at(self, index: int, spec: FeatureSpec = DEFAULT_SPEC) -> OhlcvWindow:
        start = index - spec.lookback_bars + 1
        assert start >= 0, f"bar {index} has no {spec.lookback_bars}-bar history"
        b = self.bars
        stop = index + 1
        return OhlcvWindow(b.open[start:stop], b.high[start:stop], b.low[start:stop], b.close[start:stop],
                           b.volume[start:stop])

    def first_index_after(self, date: str) -> int:
        """Index of the first bar strictly after the day ``date`` (YYYY-MM-DD); len(self) if none."""
        next_day = (np.datetime64(date, "D") + 1).astype(self.dates.dtype)
        return int(np.searchsorted(self.dates, next_day, side="left"))

    def session_spans(self, first: int, stop: int, spec: FeatureSpec = DEFAULT_SPEC) -> list[tuple[int, int]]:
        """The whole sessions [start, end) inside bars [first, stop) that have a full feature window before
        their first decision; daily bars have none (an episode there is any window)."""
        if self.sessions is None:
            return []
        bounds = [*self.sessions.tolist(), len(self)]
        return [(a, b) for a, b in itertools.pairwise(bounds)
                if a >= max(first, spec.lookback_bars - 1) and b <= stop]

    def date(self, index: int) -> str:
        return str(self.dates[index])


def find_data_file(symbol: str, data_dir: Path = DEFAULT_DATA_DIR) -> Path:
    matches = sorted(data_dir.glob(f"{symbol.lower()}-*.txt"))
    if len(matches) != 1:
        raise FileNotFoundError(f"expected one {symbol.lower()}-*.txt in {data_dir}, found {len(matches)}")
    return matches[0]


def load_daily_bars(symbol: str, data_dir: Path = DEFAULT_DATA_DIR) -> DailyBars:
    """Parse ``Date,Open,High,Low,Close,Adj Close,Volume``; scale OHLC by Adj Close / Close, volume inversely."""
    path = find_data_file(symbol, data_dir)
    raw = path.read_bytes()
    rows = [line.split(",") for line in raw.decode().splitlines()[1:] if line.strip()]
    dates = np.array([row[0] for row in rows], dtype="datetime64[D]")
    table = np.array([[float(v) for v in row[1:7]] for row in rows], dtype=np.float64)
    opens, highs, lows, closes, adj_closes, volumes = table.T
    factor = adj_closes / closes
    order = np.argsort(dates, kind="stable")
    bars = OhlcvWindow(
        (opens * factor)[order], (highs * factor)[order], (lows * factor)[order], (closes * factor)[order],
        (volumes / factor)[order],
    )
    return DailyBars(symbol.upper(), dates[order], bars, str(path), hashlib.sha256(raw).hexdigest())


# --- execution model ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionModel:
    """The fake venue's fill rules on daily bars (spec 5.2): market fills at the touch plus 0.5-2 bps seeded
    slippage; an aggressive day limit crosses the spread (core.orderplan) and fills on arrival if marketable,
    else expires after one bar; a passive gtc limit rests at our touch and fills at the limit or better when a
    later bar trades through it, or with a seeded probability when the bar only reaches the touch."""

    half_spread_bps: float = 1.0
    slippage_bps_min: float = 0.5
    slippage_bps_max: float = 2.0
    aggressive_cross_bps: float = float(PlanConfig().aggressive_cross_bps)
    passive_touch_fill_probability: float = 0.5
    initial_cash_usd: Decimal = Decimal(100_000)
    # The fake venue's quotes are whole cents around the price, at least half a cent each side
    # (adapters.fake.market_paths.DayPath): on a $20 stock the touch is 5 bps away, not 1. Intraday training
    # prices that (tick 0.01); daily training keeps the bps-only touch of the model trained on it (tick 0).
    tick_usd: float = 0.0


def _price(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP)


@dataclass(slots=True)
class FillRecord:
    bar_index: int
    side: str
    shares: int
    price: Decimal
    execution: str


@dataclass(slots=True)
class _Working:
    shares: int  # signed, buys positive
    execution: ExecutionAction
    limit: Decimal | None


class VenueMatcher:
    """Decides when an order is executable (TensorTrade ``criteria``) and fills it (the Exchange ``service``).

    Two phases per decision: ARRIVAL at the decision bar's close (market and marketable limits), then THROUGH
    the next bar (resting limits against its high/low). All-or-nothing fills: daily volume dwarfs our size.
    """

    def __init__(self, data: DailyBars, model: ExecutionModel, rng: random.Random) -> None:
        self.data = data
        self.model = model
        self.rng = rng
        self.phase = "IDLE"
        self.bar_index = -1
        self.working: dict[str, _Working] = {}  # order id -> what the order is, for pricing
        self.fills: list[FillRecord] = []
        self._touch_draws: dict[tuple[str, int], bool] = {}

    def reset(self) -> None:
        self.phase, self.bar_index = "IDLE", -1
        self.working.clear()
        self.fills.clear()
        self._touch_draws.clear()

    def arrive(self, bar_index: int) -> None:
        self.phase, self.bar_index = "ARRIVAL", bar_index

    def trade_through(self, bar_index: int) -> None:
        self.phase, self.bar_index = "THROUGH", bar_index

    def idle(self) -> None:
        self.phase = "IDLE"

    def touch(self, bar_index: int) -> tuple[float, float]:
        """(bid, ask) around a bar's close, as the fake venue quotes it (the files carry no quotes)."""
        close = float(self.data.bars.close[bar_index])
        half = self.model.half_spread_bps * BPS
        tick = self.model.tick_usd
        if tick <= 0.0:
            return close * (1.0 - half), close * (1.0 + half)
        half_ticks = max(0.5, close * half / tick)
        ticks = close / tick
        bid = max(1.0, float(np.floor(ticks - half_ticks + 1e-9)))
        ask = max(float(np.ceil(ticks + half_ticks - 1e-9)), bid + 1.0)
        return min(bid, ask - 1.0) * tick, ask * tick

    def criteria(self, order: Order, exchange: Exchange) -> bool:
        working = self.working.get(order.id)
        if working is None:
            return False
        is_new = order.step == exchange.clock.step
        if self.phase == "ARRIVAL":
            if not is_new:
                return False
            if working.limit is None:
                return True
            bid, ask = self.touch(self.bar_index)
            return float(working.limit) >= ask if working.shares > 0 else float(working.limit) <= bid
        if self.phase == "THROUGH" and working.limit is not None:
            return self._crossed(order.id, working)
        return False

    def _crossed(self, order_id: str, working: _Working) -> bool:
        limit = float(working.limit)  # type: ignore[arg-type]
        bars, i = self.data.bars, self.bar_index
        if working.shares > 0:
            through = float(bars.low[i]) < limit
            touched = float(bars.low[i]) <= limit * (1.0 + self.model.half_spread_bps * BPS)
        else:
            through = float(bars.high[i]) > limit
            touched = float(bars.high[i]) >= limit * (1.0 - self.model.half_spread_bps * BPS)
        if through:
            return True
        if not touched:
            return False
        key = (order_id, i)
        if key not in self._touch_draws:  # one draw per order and bar, however often TensorTrade asks
            self._touch_draws[key] = self.rng.random() < self.model.passive_touch_fill_probability
        return self._touch_draws[key]

    def fill_price(self, working: _Working) -> Decimal:
        buy = working.shares > 0
        if self.phase == "ARRIVAL":
            bid, ask = self.touch(self.bar_index)
            slip = self.rng.uniform(self.model.slippage_bps_min, self.model.slippage_bps_max) * BPS
            price = _price(ask * (1.0 + slip) if buy else bid * (1.0 - slip))
            if working.limit is not None:  # a limit never fills worse than its price
                price = min(price, working.limit) if buy else max(price, working.limit)
            return price
        assert self.phase == "THROUGH" and working.limit is not None
        opening = _price(float(self.data.bars.open[self.bar_index]))
        return min(opening, working.limit) if buy else max(opening, working.limit)  # limit or better

    def service(
        self,
        order: Order,
        base_wallet: Wallet,
        quote_wallet: Wallet,
        current_price: Decimal,
        options: ExchangeOptions,
        clock: Any,
    ) -> Trade:
        """The Exchange's ``execute_order`` service: move the funds on the order's path, return the Trade."""
        working = self.working.pop(order.id)
        price = self.fill_price(working)
        shares = Decimal(abs(working.shares))
        cash = (shares * price).quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP)
        path = order.path_id
        if working.shares > 0:
            spent = base_wallet.withdraw(Quantity(base_wallet.instrument, cash, path), "FILL BUY")
            quote_wallet.deposit(Quantity(quote_wallet.instrument, shares, path), "BOUGHT")
            moved = spent
        else:
            moved = quote_wallet.withdraw(Quantity(quote_wallet.instrument, shares, path), "FILL SELL")
            base_wallet.deposit(Quantity(base_wallet.instrument, cash, path), "SOLD")
        # All-or-nothing: what this fill consumes is all that remains, so Order.fill leaves exactly zero and
        # the broker completes the order (TensorTrade otherwise keeps rounding leftovers open forever).
        order.remaining = Quantity(moved.instrument, moved.size, path)
        side = TradeSide.BUY if working.shares > 0 else TradeSide.SELL
        self.fills.append(FillRecord(self.bar_index, side.value, int(shares), price, working.execution.value))
        return Trade(order.id, clock.step, order.exchange_pair, side, order.type, moved, price,
                     Quantity(moved.instrument, Decimal(0), path))


class VenueBroker(Broker):
    """TensorTrade's Broker with its bugs routed around: ``update`` no longer removes from the list it walks
    (which skipped every second ready order), finished orders leave ``executed``/``trades`` instead of
    piling up forever, and cancelling an already finished order is a no-op."""

    def update(self) -> None:
        for order in list(self.unexecuted):
            if order.is_executable:
                self.unexecuted.remove(order)
                self.executed[order.id] = order
                order.attach(self)
                order.execute()
        for order in [o for o in self.executed.values() if not o.is_active]:
            self.finished_order(order)

    def finished_order(self, order: Order) -> None:
        """An executed order is no longer active: forget it (a subclass may record how it ended)."""
        del self.executed[order.id]
        self.trades.pop(order.id, None)

    def cancel(self, order: Order) -> None:
        if order.is_active:
            super().cancel(order)

    def expire(self, step: int) -> None:
        """Day orders whose session is over (``end`` reached) are cancelled, as the venue expires them."""
        for order in list(self.unexecuted):
            if order.end is not None and step >= order.end:
                self.cancel(order)


# --- action scheme, reward, feed -------------------------------------------------------------------------------


class TargetExposureActions(TensorTradeActionScheme):
    """The ttlive action space (adapters.policy.actions) as a TensorTrade ActionScheme, long-only.

    "Allowed" exposure in training is the whole net worth; live, risk decides it. Each decision: apply the
    intent (cancel the working order and/or submit one), fill what is marketable at the close, then let the
    next bar trade through resting limits - so the next observation already includes those fills."""

    registered_name = "ttlive-target-exposure"

    def __init__(self, data: DailyBars, cursor: BarCursor, matcher: VenueMatcher) -> None:
        super().__init__()
        self.broker = VenueBroker()
        self.data = data
        self.cursor = cursor
        self.matcher = matcher
        self.exchange_pair: ExchangePair | None = None
        self.action_counts = np.zeros(N_ACTIONS, dtype=np.int64)
        self.last_intent: OrderIntent | None = None

    @property
    def action_space(self) -> Any:
        from gym.spaces import Discrete

        return Discrete(N_ACTIONS)

    # wallets ----------------------------------------------------------------------------------------------------
    def _wallets(self) -> tuple[Wallet, Wallet]:
        assert self.exchange_pair is not None
        exchange_id = self.exchange_pair.exchange.id
        pair = self.exchange_pair.pair
        return self.portfolio.get_wallet(exchange_id, pair.base), self.portfolio.get_wallet(exchange_id, pair.quote)

    def exposure(self, bar_index: int) -> tuple[float, float, float]:
        """(position fraction, working-order fraction, allowed value in USD) at a bar's close."""
        cash, stock = self._wallets()
        close = float(self.data.bars.close[bar_index])
        shares = float(stock.total_balance.size)
        allowed = float(cash.total_balance.size) + shares * close
        if allowed <= 0.0:
            return 0.0, 0.0, 0.0
        working = sum(w.shares for w in self.matcher.working.values()) * close
        return shares * close / allowed, working / allowed, allowed

    # TensorTrade hooks --------------------------------------------------------------------------------------------
    def perform(self, env: TradingEnv, action: Any) -> None:
        bar = self.cursor.index
        self.matcher.arrive(bar)
        for order in self.get_orders(action, self.portfolio):
            self.broker.submit(order)
        self.broker.update()
        if bar + 1 < min(len(self.data), self.cursor.stop):  # the next bar of this episode (not the next day's)
            self.matcher.trade_through(bar + 1)
            self.broker.update()
        self.broker.expire(self.clock.step + 1)
        live = {order.id for order in self.broker.unexecuted}
        for order_id in [oid for oid in self.matcher.working if oid not in live]:
            del self.matcher.working[order_id]  # expired day orders
        self.matcher.idle()

    def get_orders(self, action: Any, portfolio: Portfolio) -> list[Order]:
        action_id = int(action)
        self.action_counts[action_id] += 1
        position, working, allowed = self.exposure(self.cursor.index)
        intent = plan_target(decode_action(action_id), position_fraction=position, working_fraction=working)
        self.last_intent = intent
        if intent.cancel_working:
            for order in list(self.broker.unexecuted):
                self.broker.cancel(order)
                self.matcher.working.pop(order.id, None)
        order = self._order_for(intent, allowed) if intent.submits else None
        return [order] if order is not None else []

    def _order_for(self, intent: OrderIntent, allowed_usd: float) -> Order | None:
        assert intent.direction is not None and intent.execution is not None and self.exchange_pair is not None
        cash, stock = self._wallets()
        held = int(stock.balance.size)
        bar = self.cursor.index
        bid, ask = self.matcher.touch(bar)
        model = self.matcher.model
        buy = intent.direction is Direction.LONG
        if intent.execution is ExecutionAction.MARKET:
            limit = None
        elif intent.execution is ExecutionAction.LIMIT_AGGRESSIVE:
            cross = model.aggressive_cross_bps * BPS
            limit = _price(ask * (1.0 + cross) if buy else bid * (1.0 - cross))
        else:
            limit = _price(bid if buy else ask)
        if buy:
            worst = limit if limit is not None else _price(ask * (1.0 + model.slippage_bps_max * BPS))
            affordable = int(cash.balance.size / worst)
            shares = min(int(intent.delta_fraction * allowed_usd / float(worst)), affordable)
        elif intent.direction is Direction.NEUTRAL:
            shares = held
        else:
            shares = min(int(intent.delta_fraction * allowed_usd / bid), held)
        if shares <= 0:
            return None
        if buy:
            lock = (Decimal(shares) * worst).quantize(PRICE_QUANTUM, rounding=ROUND_UP)
            if lock > cash.balance.size:  # rounding up the lock may pass the last cent: one share fewer
                shares -= 1
                lock = (Decimal(shares) * worst).quantize(PRICE_QUANTUM, rounding=ROUND_UP)
            if shares <= 0:
                return None
            quantity = Quantity(cash.instrument, lock)
        else:
            quantity = Quantity(stock.instrument, Decimal(shares).quantize(Decimal(1), rounding=ROUND_DOWN))
        step = self.clock.step
        day_order = intent.execution is not ExecutionAction.LIMIT_PASSIVE  # passive is gtc (spec 1.2)
        order = Order(
            step=step,
            side=TradeSide.BUY if buy else TradeSide.SELL,
            trade_type=TradeType.MARKET if limit is None else TradeType.LIMIT,
            exchange_pair=self.exchange_pair,
            quantity=quantity,
            portfolio=self.portfolio,
            price=limit if limit is not None else _price(float(self.data.bars.close[bar])),
            criteria=self.matcher.criteria,  # without criteria TensorTrade tries a limit once, never again
            end=step + 1 if day_order else None,
        )
        self.matcher.working[order.id] = _Working(shares if buy else -shares, intent.execution, limit)
        return order

    def reset(self) -> None:
        super().reset()
        self.matcher.reset()
        self.last_intent = None


class LogReturnReward(TensorTradeRewardScheme):
    """Reward = log(net worth now / net worth one step ago) - a turnover penalty: additive over an episode.

    Transaction costs are already in the net worth (the touch, slippage); ``turnover_penalty_bps`` charges on
    top every dollar traded since the last step, as a fraction of the net worth, so churn that nets zero is
    paid for and the policy learns to trade when the move beats the round trip."""

    registered_name = "ttlive-log-return"

    def __init__(self, matcher: VenueMatcher | None = None, turnover_penalty_bps: float = 0.0) -> None:
        self._previous: float | None = None
        self._matcher = matcher
        self._penalty = turnover_penalty_bps * BPS
        self._fills_seen = 0

    def get_reward(self, portfolio: Portfolio) -> float:
        now = float(portfolio.net_worth)
        previous = self._previous if self._previous is not None else float(portfolio.initial_net_worth)
        self._previous = now
        reward = float(np.log(now / previous))
        if self._matcher is not None and self._penalty > 0.0:
            fills = self._matcher.fills
            traded = sum(f.shares * float(f.price) for f in fills[self._fills_seen:])
            self._fills_seen = len(fills)
            reward -= self._penalty * traded / previous
        return reward

    def reset(self) -> None:
        self._previous = None
        self._fills_seen = 0


class BarCursor(Stream[int]):
    """The bar index the feed is at; every other stream derives from it, so one cursor moves them all."""

    def __init__(self, start: int, stop: int) -> None:
        super().__init__(name="bar-index")
        self.start, self.stop = start, stop
        self._next = start

    def plan(self, start: int, stop: int) -> None:
        assert 0 <= start < stop
        self.start, self.stop = start, stop

    @property
    def index(self) -> int:
        assert self.value is not None, "cursor has not produced a bar yet"
        return int(self.value)

    def forward(self) -> int:
        index = self._next
        self._next += 1
        return index

    def has_next(self) -> bool:
        return self._next < self.stop

    def reset(self) -> None:
        self._next = self.start
        super().reset()


class FeatureVectorStream(Stream[np.ndarray]):
    """Calls core.features.compute_features on the window ending at the cursor's bar, with the position the
    portfolio holds at that bar's close - the observation *is* the live feature vector."""

    def __init__(self, data: DailyBars, position_fraction: Callable[[int], float], spec: FeatureSpec) -> None:
        super().__init__(name="features")
        self.data = data
        self.position_fraction = position_fraction
        self.spec = spec

    def forward(self) -> np.ndarray:
        index = int(self.inputs[0].value)
        return compute_features(self.data.window_ending_at(index, self.spec), self.position_fraction(index),
                                self.spec)

    def has_next(self) -> bool:
        return True


# --- episodes and the gymnasium adapter --------------------------------------------------------------------------


@dataclass(slots=True)
class EpisodeSampler:
    """Fixed range (evaluation), seeded random windows of ``episode_bars`` inside [first, stop), or - intraday -
    seeded random whole sessions (``spans``)."""

    first: int
    stop: int
    episode_bars: int | None = None
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    spans: list[tuple[int, int]] = field(default_factory=list)

    def next_episode(self) -> tuple[int, int]:
        if self.spans:
            return self.spans[self.rng.randrange(len(self.spans))]
        if self.episode_bars is None or self.stop - self.first <= self.episode_bars:
            return self.first, self.stop
        start = self.rng.randrange(self.first, self.stop - self.episode_bars + 1)
        return start, start + self.episode_bars


class TradingGymEnv(gymnasium.Env):  # type: ignore[type-arg]
    """gymnasium API over TensorTrade's old-gym TradingEnv: one observation vector, end of data = truncated."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, tt_env: TradingEnv, scheme: TargetExposureActions, cursor: BarCursor,
                 sampler: EpisodeSampler, spec: FeatureSpec) -> None:
        self.tt_env = tt_env
        self.scheme = scheme
        self.cursor = cursor
        self.sampler = sampler
        self.spec = spec
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (spec.n_features,), np.float32)
        self.action_space = gymnasium.spaces.Discrete(N_ACTIONS)

    @property
    def data(self) -> DailyBars:
        return self.scheme.data

    @property
    def net_worth(self) -> float:
        return float(self.scheme.portfolio.net_worth)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """``options={"span": (start, stop)}`` plays exactly those bars (an evaluation's session)."""
        super().reset(seed=seed)
        if seed is not None:
            self.sampler.rng.seed(seed)
        span = (options or {}).get("span")
        start, stop = (int(span[0]), int(span[1])) if span is not None else self.sampler.next_episode()
        self.cursor.plan(start, stop)
        observation = self.tt_env.reset()
        return observation[0], {"bar_index": self.cursor.index}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        observation, reward, done, info = self.tt_env.step(int(action))
        # The end of the data truncates a daily episode (the world goes on); the end of a session ends an
        # intraday one (the policy is judged at the close).
        truncated = bool(done and not self.tt_env.observer.has_next() and self.data.sessions is None)
        info = dict(info, bar_index=self.cursor.index)
        return observation[0], float(reward), bool(done and not truncated), truncated, info


def build_env(
    data: DailyBars,
    *,
    first: int,
    stop: int,
    episode_bars: int | None = None,
    seed: int = 0,
    execution: ExecutionModel = ExecutionModel(),
    spec: FeatureSpec = DEFAULT_SPEC,
    turnover_penalty_bps: float = 0.0,
) -> TradingGymEnv:
    """A TensorTrade env over bars [first, stop) of one symbol; ``first`` needs ``spec.lookback_bars - 1`` bars
    of history before it (features look back, never forward). Intraday bars (``data.sessions``): each episode
    is one whole session drawn from those inside the range."""
    first = max(first, spec.lookback_bars - 1)
    assert first < stop <= len(data), f"empty range {first}..{stop} for {data.symbol}"
    usd = Instrument("USD", USD_DECIMALS, "U.S. Dollar")
    stock = Instrument(data.symbol, 0, data.symbol)  # whole shares, as the venue trades by default
    rng = random.Random(seed)
    matcher = VenueMatcher(data, execution, random.Random(rng.getrandbits(64)))
    cursor = BarCursor(first, stop)
    price = cursor.apply(lambda i: float(data.bars.close[i]), dtype="float").rename(f"USD-{data.symbol}")
    options = ExchangeOptions(commission=0.0, min_trade_size=1e-8, max_trade_size=1e15, max_trade_price=1e15)
    exchange = Exchange("venue", service=matcher.service, options=options)(price)
    portfolio = Portfolio(usd, [Wallet(exchange, Quantity(usd, execution.initial_cash_usd)),
                                Wallet(exchange, Quantity(stock, Decimal(0)))])
    scheme = TargetExposureActions(data, cursor, matcher)
    scheme.exchange_pair = ExchangePair(exchange, usd / stock)

    def position_fraction(index: int) -> float:
        return scheme.exposure(index)[0]

    vector = FeatureVectorStream(data, position_fraction, spec)(cursor)
    columns = [
        vector.apply(lambda v, i=i: float(v[i]), dtype="float").rename(name)
        for i, name in enumerate(feature_names(spec))
    ]
    tt_env = tt_default.create(
        portfolio=portfolio,
        action_scheme=scheme,
        reward_scheme=LogReturnReward(matcher, turnover_penalty_bps),
        feed=DataFeed(columns),
        window_size=1,
        max_allowed_loss=0.99,  # an evaluation must cover the whole window, crashes included
    )
    sampler = EpisodeSampler(first, stop, episode_bars, random.Random(rng.getrandbits(64)),
                             data.session_spans(first, stop, spec))
    if data.sessions is not None and not sampler.spans:
        raise ValueError(f"{data.symbol}: no whole session with a feature window inside bars {first}..{stop}")
    return TradingGymEnv(tt_env, scheme, cursor, sampler, spec)


def buy_and_hold_log_return(data: DailyBars, first: int, stop: int) -> float:
    """Log return of holding from the close of bar ``first`` to the close of bar ``stop - 1`` (no costs)."""
    closes = data.bars.close
    return float(np.log(closes[stop - 1] / closes[first]))


@dataclass(slots=True)
class EpisodeResult:
    symbol: str
    first_date: str
    last_date: str
    log_return: float
    buy_and_hold_log_return: float
    steps: int
    fills: int
    action_counts: list[int]
    observations: np.ndarray  # (steps, n_features) float32: what the policy saw
    traded_usd: float = 0.0  # notional of every fill: turnover is this over the starting net worth
    start_usd: float = 0.0


def run_episode(
    env: TradingGymEnv, choose: Callable[[np.ndarray], Sequence[int] | np.ndarray],
    span: tuple[int, int] | None = None,
) -> EpisodeResult:
    """Play one whole episode (``span``: exactly those bars) with a deterministic chooser (batch of observations
    -> action ids)."""
    observation, info = env.reset(options={"span": span} if span is not None else None)
    first = int(info["bar_index"])
    env.scheme.action_counts[:] = 0
    seen = [observation]
    start_worth = float(env.scheme.portfolio.net_worth)
    while True:
        action = int(choose(observation[None, :])[0])
        observation, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
        seen.append(observation)
    last = int(info["bar_index"])
    fills = len(env.scheme.matcher.fills)
    return EpisodeResult(
        symbol=env.data.symbol,
        first_date=env.data.date(first),
        last_date=env.data.date(last),
        log_return=float(np.log(env.net_worth / start_worth)),
        buy_and_hold_log_return=buy_and_hold_log_return(env.data, first, last + 1),
        steps=last - first,
        fills=fills,
        action_counts=[int(c) for c in env.scheme.action_counts],
        observations=np.stack(seen).astype(np.float32),
        traded_usd=float(sum(f.shares * f.price for f in env.scheme.matcher.fills)),
        start_usd=start_worth,
    )
