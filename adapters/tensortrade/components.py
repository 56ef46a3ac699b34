"""TensorTrade's OMS on ttlive: AlpacaDataFeed, AlpacaExchange and AlpacaBroker subclass TensorTrade's
DataFeed, Exchange and Broker, so a TensorTrade agent trades through RiskGuard and the engine, not past them.

The spec 5.1 pattern works as written::

    env = TradingEnvironment(
        data_feed=AlpacaDataFeed(symbols=["NVDA", "ORCL"]),
        exchange=AlpacaExchange(client=client),
        broker=AlpacaBroker(client=client),
    )

``client`` is the episode's ``BridgeClient`` (client.py); the action scheme (TargetExposureOrders), the
observer (BridgeObserver) and the portfolio arithmetic (BridgeBook) complete the environment.

Fills reach TensorTrade's wallets in the observer, before the feed runs, so an observation always includes
every execution up to its bar (the feed's sensor streams run in no fixed order). Limits: long-only whole
shares (wallets cannot go negative); bracket legs must be off (their fills would move the position behind
TensorTrade's back); TensorTrade's limit prices are unused - the engine prices limits from its quote (5.2).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal
from typing import Any, Final

import numpy as np
from gym.spaces import MultiDiscrete  # TensorTrade 1.0.3 speaks the old gym API
from tensortrade.env.default.actions import TensorTradeActionScheme
from tensortrade.env.default.informers import TensorTradeInformer
from tensortrade.env.default.observers import TensorTradeObserver
from tensortrade.env.default.renderers import EmptyRenderer
from tensortrade.env.default.stoppers import MaxLossStopper
from tensortrade.env.generic import RewardScheme, TradingEnv
from tensortrade.feed.core import DataFeed, Stream
from tensortrade.oms.exchanges import Exchange, ExchangeOptions
from tensortrade.oms.instruments import ExchangePair, Instrument, Quantity
from tensortrade.oms.orders import Order, Trade, TradeSide, TradeType
from tensortrade.oms.wallets import Portfolio, Wallet

from adapters.policy.actions import N_ACTIONS, OrderIntent, decode_action, plan_target
from adapters.tensortrade.client import BridgeClient, BridgeOrder, current_client
from adapters.tensortrade.env import PRICE_QUANTUM, USD_DECIMALS, LogReturnReward, VenueBroker
from adapters.tensortrade.messages import ZERO, BridgeError, Execution, OrderTicket, OrderUpdate, StepInput
from core.features import (
    DEFAULT_SPEC,
    FeatureError,
    FeatureSpec,
    compute_features,
    feature_names,
    window_from_bars,
)
from core.model import Direction, ExecutionAction

log = logging.getLogger("ttlive.bridge")

HOLD: Final = N_ACTIONS  # one more action per symbol: do nothing (not in the trained table)
BUY_LOCK_HEADROOM: Final = Decimal("0.01")  # cash a buy locks beyond shares x close: spread, slippage, drift


class _StepSource(Stream[StepInput]):
    """The feed's one source: the current step. It never blocks after the first bar - the observer advances
    the client before the feed runs (so wallets already hold the step's fills)."""

    def __init__(self, client: BridgeClient) -> None:
        super().__init__(name="step")
        self.client = client

    def forward(self) -> StepInput:
        return self.client.ensure_started()

    def has_next(self) -> bool:
        return self.client.current is None or not self.client.current.last


class _FeatureVector(Stream[np.ndarray]):
    """core.features over the symbol's decision bars and the portfolio's position: the live feature vector."""

    def __init__(self, feed: AlpacaDataFeed, symbol: str) -> None:
        super().__init__(name=f"{symbol}:features")
        self.feed = feed
        self.symbol = symbol

    def forward(self) -> np.ndarray:
        spec = self.feed.spec
        window = list(self.feed.client.windows[self.symbol])[-spec.lookback_bars:]
        try:
            return compute_features(window_from_bars(window), self.feed.position_fraction(self.symbol), spec)
        except FeatureError as exc:
            log.warning("no features for %s at step %s: %s", self.symbol, self.inputs[0].value.seq, exc)
            return np.zeros(spec.n_features, dtype=np.float32)

    def has_next(self) -> bool:
        return True


class AlpacaDataFeed(DataFeed):
    """Decision bars from Alpaca's market data as a TensorTrade DataFeed: per symbol, the core.features vector
    (the same one the engine's policy and TensorTrade training see), one named column per feature."""

    def __init__(self, symbols: Sequence[str], *, client: BridgeClient | None = None,
                 spec: FeatureSpec = DEFAULT_SPEC) -> None:
        self.client = client if client is not None else current_client()
        unknown = sorted(set(symbols) - set(self.client.symbols))
        if unknown:
            raise BridgeError(f"symbols not traded by the engine: {', '.join(unknown)}")
        self.symbols = tuple(symbols)
        self.spec = spec
        self.source = _StepSource(self.client)
        self.position_fraction: Callable[[str], float] = lambda symbol: 0.0  # bound by TradingEnvironment
        columns: list[Stream[float]] = []
        for symbol in self.symbols:
            vector = _FeatureVector(self, symbol)(self.source)
            columns += [vector.apply(lambda v, i=i: float(v[i]), dtype="float").rename(f"{symbol}:{name}")
                        for i, name in enumerate(feature_names(spec))]
        super().__init__(columns)

    def price_streams(self) -> list[Stream[float]]:
        """Fresh close-price streams ``USD-<symbol>`` for an Exchange (which renames the streams it gets)."""
        return [self.source.apply(lambda _step, s=s: float(self.client.last_close(s)), dtype="float")
                .rename(f"USD-{s}") for s in self.symbols]


class AlpacaExchange(Exchange):
    """An Exchange whose ``execute_order`` only sends: the order becomes a signal for the engine's risk actor.

    What happens to it (fills, cancels) comes back through AlpacaBroker at the next bar. TensorTrade's limit
    price is not used: the engine prices limits from its own quote (spec 5.2)."""

    def __init__(self, client: BridgeClient | None = None, *, name: str = "alpaca",
                 options: ExchangeOptions | None = None) -> None:
        options = options or ExchangeOptions(commission=0.0, min_trade_size=1e-8, max_trade_size=1e15,
                                             max_trade_price=1e15, is_live=True)
        super().__init__(name, service=None, options=options)
        self.client = client if client is not None else current_client()

    def ticket_for(self, order: Order) -> OrderTicket:
        """The action scheme's ticket, or one read off a plain TensorTrade order (market -> MARKET; a limit
        with an end step -> LIMIT_AGGRESSIVE day order; without -> LIMIT_PASSIVE gtc)."""
        ticket = self.client.tickets.pop(order.id, None)
        if ticket is not None:
            return ticket
        symbol = order.pair.quote.symbol
        if order.is_buy:
            shares = (order.quantity.size / Decimal(str(order.price))).to_integral_value(rounding=ROUND_DOWN)
            direction = Direction.LONG
        else:
            shares = order.quantity.size.to_integral_value(rounding=ROUND_DOWN)
            direction = Direction.SHORT
        if order.is_market_order:
            action = ExecutionAction.MARKET
        else:
            day_order = order.end is not None
            action = ExecutionAction.LIMIT_AGGRESSIVE if day_order else ExecutionAction.LIMIT_PASSIVE
        return OrderTicket(tt_order_id=order.id, symbol=symbol, direction=direction, shares=shares,
                           action=action)

    def execute_order(self, order: Order, portfolio: Portfolio) -> None:
        ticket = self.ticket_for(order)
        outcome = self.client.submit(ticket) if ticket.shares > 0 else None
        if outcome is None or not outcome.placed:
            order.cancel("NOT PLACED")  # risk refused it (audited), or nothing to send: release the funds


class AlpacaBroker(VenueBroker):
    """TensorTrade's Broker over the engine's order book.

    ``update`` (VenueBroker's) sends what is ready and keeps nothing it finished; a cancel of a sent order
    completes only when the venue confirms, so a fill racing it still finds its funds; executions move funds on
    the order's path (``Wallet.withdraw``/``deposit``), then ``order.fill``; a final status completes or cancels
    the rest."""

    def __init__(self, client: BridgeClient | None = None) -> None:
        super().__init__()
        self.client = client if client is not None else current_client()
        self.client.listen(self.apply_updates)
        self.finished: list[tuple[str, str]] = []  # (symbol, final status) of each order done with, in order

    def finished_order(self, order: Order) -> None:
        self._forget(order, "not_placed" if order.is_cancelled else "filled")

    def cancel(self, order: Order) -> None:
        if not order.is_active:
            return
        if order in self.unexecuted:  # never sent: cancel here
            self.unexecuted.remove(order)
            order.cancel()
            return
        tracked = self.client.orders.get(order.id)
        if tracked is None or not tracked.outcome.placed:
            order.cancel()
        elif not tracked.cancel_sent:
            tracked.cancel_sent = self.client.cancel(order.id)

    def on_fill(self, order: Order, trade: Trade) -> None:
        self.trades.setdefault(order.id, []).append(trade)  # completion is the venue's word, not a size check

    def working(self, symbol: str) -> list[Order]:
        return [o for o in [*self.unexecuted, *self.executed.values()]
                if o.is_active and o.pair.quote.symbol == symbol]

    def working_shares(self, symbol: str) -> Decimal:
        """Signed shares still to execute on active orders (buys positive)."""
        total = ZERO
        for order in self.working(symbol):
            tracked = self.client.orders.get(order.id)
            if tracked is not None:
                leaves = tracked.outcome.qty - tracked.filled_shares
            else:
                ticket = self.client.tickets.get(order.id)
                leaves = ticket.shares if ticket is not None else ZERO
            total += leaves if order.is_buy else -leaves
        return total

    def apply_updates(self, updates: tuple[OrderUpdate, ...]) -> None:
        for update in updates:
            order = self.executed.get(update.tt_order_id)
            tracked = self.client.orders.get(update.tt_order_id)
            if order is None or tracked is None:
                continue  # finished here already (an episode reset), nothing to move
            for execution in update.executions:
                self._apply_execution(order, tracked, execution)
            if update.final_status is None:
                continue
            if update.final_status == "filled":
                order.complete()
            else:
                order.cancel(update.final_status.upper())
            self._forget(order, update.final_status)

    def _apply_execution(self, order: Order, tracked: BridgeOrder, execution: Execution) -> None:
        exchange_id = order.exchange_pair.exchange.id
        cash = order.portfolio.get_wallet(exchange_id, order.pair.base)
        stock = order.portfolio.get_wallet(exchange_id, order.pair.quote)
        path = order.path_id
        shares = execution.qty
        notional = (shares * execution.price).quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP)
        if order.is_buy:
            locked = cash.locked.get(path)
            shortfall = notional - (locked.size if locked is not None else ZERO)
            if shortfall > 0:  # the fill cost more than the lock's headroom: lock the difference too
                cash.lock(Quantity(cash.instrument, shortfall), order, "TOP UP FOR FILL")
                order.remaining = order.remaining + Quantity(cash.instrument, shortfall, path)
            moved = cash.withdraw(Quantity(cash.instrument, notional, path), "FILL BUY")
            stock.deposit(Quantity(stock.instrument, shares, path), "BOUGHT")
            side = TradeSide.BUY
        else:
            moved = stock.withdraw(Quantity(stock.instrument, shares, path), "FILL SELL")
            cash.deposit(Quantity(cash.instrument, notional, path), "SOLD")
            side = TradeSide.SELL
        tracked.filled_shares += shares
        order.fill(Trade(order.id, self.clock.step, order.exchange_pair, side, order.type, moved,
                         execution.price, Quantity(moved.instrument, ZERO, path)))

    def _forget(self, order: Order, status: str) -> None:
        self.executed.pop(order.id, None)
        self.trades.pop(order.id, None)
        self.finished.append((order.pair.quote.symbol, status))

    def reset(self) -> None:
        super().reset()
        self.finished.clear()


class BridgeBook:
    """Portfolio arithmetic in the engine's terms: "allowed" = net worth x target weight, fractions of it."""

    def __init__(self, portfolio: Portfolio, exchange: Exchange, usd: Instrument,
                 stocks: dict[str, Instrument], client: BridgeClient, broker: AlpacaBroker,
                 target_weight: Decimal) -> None:
        self.portfolio = portfolio
        self.exchange = exchange
        self.usd = usd
        self.stocks = stocks
        self.client = client
        self.broker = broker
        self.target_weight = target_weight

    def wallet(self, instrument: Instrument) -> Wallet:
        return self.portfolio.get_wallet(self.exchange.id, instrument)

    def close(self, symbol: str) -> Decimal:
        return self.client.last_close(symbol)

    def cash_free(self) -> Decimal:
        return Decimal(self.wallet(self.usd).balance.size)

    def shares_free(self, symbol: str) -> Decimal:
        return Decimal(self.wallet(self.stocks[symbol]).balance.size)

    def shares_total(self, symbol: str) -> Decimal:
        return Decimal(self.wallet(self.stocks[symbol]).total_balance.size)

    def net_worth(self) -> Decimal:
        worth = Decimal(self.wallet(self.usd).total_balance.size)
        return worth + sum((self.shares_total(s) * self.close(s) for s in sorted(self.stocks)), ZERO)

    def allowed_usd(self) -> Decimal:
        return self.net_worth() * self.target_weight

    def position_fraction(self, symbol: str) -> float:
        allowed = self.allowed_usd()
        return float(self.shares_total(symbol) * self.close(symbol) / allowed) if allowed > 0 else 0.0

    def working_fraction(self, symbol: str) -> float:
        allowed = self.allowed_usd()
        if allowed <= 0:
            return 0.0
        return float(self.broker.working_shares(symbol) * self.close(symbol) / allowed)


class TargetExposureOrders(TensorTradeActionScheme):
    """The ttlive action table (adapters.policy.actions) per symbol, plus HOLD: ``MultiDiscrete([14] * n)``.

    Each symbol's action is planned exactly as the engine's policy actor plans it (``plan_target`` against the
    position and working order as fractions of "allowed"), then expressed as one TensorTrade order."""

    registered_name = "ttlive-bridge-target-exposure"

    def __init__(self, symbols: Sequence[str]) -> None:
        super().__init__()
        self.symbols = tuple(symbols)
        self.book: BridgeBook | None = None
        self.pairs: dict[str, ExchangePair] = {}
        self.intents: list[tuple[int, str, OrderIntent]] = []  # (step, symbol, intent) of the episode

    @property
    def action_space(self) -> Any:
        return MultiDiscrete([N_ACTIONS + 1] * len(self.symbols))

    def bind(self, book: BridgeBook, pairs: dict[str, ExchangePair]) -> None:
        self.book, self.pairs = book, pairs

    def get_orders(self, action: Any, portfolio: Portfolio) -> list[Order]:
        book = self.book
        assert book is not None, "TargetExposureOrders is bound by TradingEnvironment"
        ids = np.atleast_1d(np.asarray(action, dtype=np.int64))
        if ids.shape != (len(self.symbols),):
            raise ValueError(f"expected one action per symbol {self.symbols}, got {action!r}")
        orders: list[Order] = []
        for symbol, action_id in zip(self.symbols, ids.tolist(), strict=True):
            if action_id == HOLD:
                continue
            intent = plan_target(decode_action(action_id), position_fraction=book.position_fraction(symbol),
                                 working_fraction=book.working_fraction(symbol))
            if intent.cancel_working or intent.submits:
                self.intents.append((self.clock.step, symbol, intent))
            if intent.cancel_working:
                for order in self.broker.working(symbol):
                    self.broker.cancel(order)
            if intent.submits:
                order = self._order_for(symbol, intent)
                if order is not None:
                    orders.append(order)
        return orders

    def _order_for(self, symbol: str, intent: OrderIntent) -> Order | None:
        """Shares as the policy actor sizes them; a buy locks shares x close + headroom (<= free cash)."""
        book = self.book
        assert book is not None and intent.direction is not None and intent.execution is not None
        close = book.close(symbol)
        allowed = book.allowed_usd()
        delta = Decimal(str(intent.delta_fraction))
        wanted = (delta * allowed / close).to_integral_value(rounding=ROUND_DOWN)
        pair = self.pairs[symbol]
        if intent.direction is Direction.LONG:
            worst = close * (1 + BUY_LOCK_HEADROOM)
            affordable = (book.cash_free() / worst).to_integral_value(rounding=ROUND_DOWN)
            shares = min(wanted, affordable)
            if shares <= 0:
                return None
            lock = min((shares * worst).quantize(PRICE_QUANTUM, rounding=ROUND_UP), book.cash_free())
            quantity = Quantity(book.usd, lock)
            side = TradeSide.BUY
        else:
            held = book.shares_free(symbol)
            shares = held if intent.direction is Direction.NEUTRAL else min(wanted, held)
            if shares <= 0:
                return None
            quantity = Quantity(book.stocks[symbol], shares)
            side = TradeSide.SELL
        market = intent.execution is ExecutionAction.MARKET
        trade_type = TradeType.MARKET if market else TradeType.LIMIT
        order = Order(step=self.clock.step, side=side, trade_type=trade_type,
                      exchange_pair=pair, quantity=quantity, portfolio=self.portfolio, price=float(close))
        self.client.tickets[order.id] = OrderTicket(tt_order_id=order.id, symbol=symbol,
                                                    direction=intent.direction, shares=shares,
                                                    action=intent.execution)
        return order

    @property
    def client(self) -> BridgeClient:
        assert self.book is not None
        return self.book.client

    def reset(self) -> None:
        super().reset()
        self.intents.clear()


class BridgeObserver(TensorTradeObserver):
    """TensorTrade's observer, except that each ``observe`` first advances the client to the next bar
    (applying its fills to the wallets) and only then runs the feed. The first observe after a reset reuses
    the bar the feed already has: a live episode starts now, not with a replay."""

    def __init__(self, portfolio: Portfolio, feed: AlpacaDataFeed, window_size: int = 1) -> None:
        self.client = feed.client
        self._fresh = True
        super().__init__(portfolio=portfolio, feed=feed, window_size=window_size)

    def observe(self, env: TradingEnv) -> np.ndarray:
        if self._fresh:
            self._fresh = False
        else:
            self.client.advance()
        return super().observe(env)

    def reset(self) -> None:
        super().reset()
        self._fresh = True


class TradingEnvironment(TradingEnv):
    """``TradingEnvironment(data_feed=AlpacaDataFeed(...), exchange=AlpacaExchange(...),
    broker=AlpacaBroker(...))`` (spec 5.1): a TensorTrade ``TradingEnv`` whose portfolio starts as a mirror
    of the engine's account.

    Call inside ``run_episode`` (the TensorTrade thread): building it waits for the session's first bar."""

    def __init__(
        self,
        *,
        data_feed: AlpacaDataFeed,
        exchange: AlpacaExchange,
        broker: AlpacaBroker,
        action_scheme: TensorTradeActionScheme | None = None,
        reward_scheme: RewardScheme | None = None,
        window_size: int = 1,
        max_allowed_loss: float = 0.5,
    ) -> None:
        client = data_feed.client
        if exchange.client is not client or broker.client is not client:
            raise BridgeError("data_feed, exchange and broker must share one BridgeClient")
        account = client.account()
        shorts = sorted(s for s, q in account.positions.items() if q < 0)
        if shorts:
            raise BridgeError(f"TensorTrade wallets cannot hold short positions: {', '.join(shorts)}")
        usd = Instrument("USD", USD_DECIMALS, "U.S. Dollar")
        stocks = {s: Instrument(s, 0, s) for s in data_feed.symbols}
        exchange(*data_feed.price_streams())
        names = [stream.name for stream in exchange.streams()]
        for symbol in data_feed.symbols:  # TensorTrade finds a wallet's price by name suffix: no ambiguity
            if sum(name.endswith(symbol) for name in names) != 1:
                raise BridgeError(f"symbol {symbol} is a suffix of another price stream: {names}")
        wallets = [Wallet(exchange, Quantity(usd, account.cash_usd.quantize(PRICE_QUANTUM)))]
        wallets += [Wallet(exchange, Quantity(stocks[s], account.positions.get(s, ZERO)))
                    for s in data_feed.symbols]
        portfolio = Portfolio(usd, wallets)
        book = BridgeBook(portfolio, exchange, usd, stocks, client, broker, account.target_weight)
        data_feed.position_fraction = book.position_fraction
        scheme = action_scheme if action_scheme is not None else TargetExposureOrders(data_feed.symbols)
        scheme.portfolio = portfolio
        scheme.broker = broker
        if isinstance(scheme, TargetExposureOrders):
            scheme.bind(book, {s: ExchangePair(exchange, usd / stocks[s]) for s in data_feed.symbols})
        observer = BridgeObserver(portfolio, data_feed, window_size)
        super().__init__(
            action_scheme=scheme,
            reward_scheme=reward_scheme if reward_scheme is not None else LogReturnReward(),
            observer=observer,
            stopper=MaxLossStopper(max_allowed_loss=max_allowed_loss),
            informer=TensorTradeInformer(),
            renderer=EmptyRenderer(),
        )
        self.client = client
        self.book = book
        self.portfolio = portfolio
        self.broker = broker


def default_environment(client: BridgeClient) -> TradingEnvironment:
    """The spec 5.1 pattern over every symbol the engine trades."""
    return TradingEnvironment(
        data_feed=AlpacaDataFeed(symbols=list(client.symbols), client=client),
        exchange=AlpacaExchange(client=client),
        broker=AlpacaBroker(client=client),
    )

