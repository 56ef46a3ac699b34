"""TensorTrade's OMS on ttlive: AlpacaDataFeed, AlpacaExchange and AlpacaBroker subclass TensorTrade's
DataFeed, Exchange and Broker, so a TensorTrade agent trades through RiskGuard and the engine, not past them.

The spec 5.1 pattern works as written::

    env = TradingEnvironment(
        data_feed=AlpacaDataFeed(symbols=["NVDA", "ORCL"]),
        exchange=AlpacaExchange(client=client),
        broker=AlpacaBroker(client=client),
    )

``client`` is a ``BridgeClient``: the TensorTrade side of a ``BridgeHost``, which runs on the trio side next
to a running ``core.engine.system.Engine`` (the fake venue in simulation, Alpaca paper or live otherwise).
Nothing the agent does reaches the broker except as a ``Signal`` (model_id ``tensortrade-bridge``) sent into
the engine's signal channel: the risk actor checks it (RiskGuard, audited ``risk_check``), the execution actor
turns it into an order (client order id ``tt-<signal_id>-<attempt>``, audited ``order``), and fills come back
through the engine's trade-update stream and ledger (audited ``fill``). The engine's own policy actor runs
``BridgeHoldModel``, which never trades, so the TensorTrade agent is the only decision maker.

Threading. TensorTrade is synchronous; the engine is trio. One dedicated thread (started with
``trio.to_thread.run_sync``) owns every TensorTrade object and runs ``env.reset``/``env.step``; the trio side
never touches them. The thread talks to trio only by *calling into it* with ``trio.from_thread.run``, which
runs the call in the task that started the thread and blocks the thread until it returns:

* ``next_step`` - the observer, at each ``observe``, asks for the next decision bar. The host's conductor task
  sleeps (virtual time) until a bar has closed, fetches it with ``GET /v2/stocks/bars``, adds what the engine
  did with the bridge's orders (executions de-duplicated by execution id, terminal states), and hands it over.
* ``submit`` / ``cancel`` - AlpacaExchange.execute_order and AlpacaBroker.cancel; the handler sends the signal
  and returns once every trio task is blocked again (``wait_all_tasks_blocked``), i.e. once risk decided and
  the order (if any) went out. The answer says whether an order exists: a refused signal releases its funds.

Virtual time. trio's MockClock autojumps whenever trio is idle, and it is idle while the thread computes a
step. So the host switches autojump off the moment a bar is handed to the thread and back on when the thread
asks for the next one: virtual time stands still while the agent thinks (inference is instantaneous in
simulation), every call from the thread lands at the same virtual instant, and since trio is quiescent at each
hand-over the order of audit records does not depend on thread timing. Same scenario + seed => same audit
bytes. Under a real clock (paper) nothing is toggled: the bar clock simply waits for wall time.

Fills reach TensorTrade's wallets in the observer, before the feed runs, so an observation always includes
every execution up to its bar (the feed's sensor streams run in no fixed order). Limits: long-only whole
shares (wallets cannot go negative); bracket legs must be off (their fills would move the position behind
TensorTrade's back); TensorTrade's limit prices are unused - the engine prices limits from its quote (5.2).
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal
from typing import Any, Final

import numpy as np
import trio
import trio.testing
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

from adapters.policy.actions import N_ACTIONS, NO_OP, OrderIntent, decode_action, plan_target
from adapters.tensortrade.env import PRICE_QUANTUM, USD_DECIMALS, LogReturnReward, VenueBroker
from core.engine.market import carry_forward
from core.engine.state import DECISION_BARS_KEPT, deterministic_uuid
from core.engine.system import Engine
from core.features import (
    DEFAULT_SPEC,
    FeatureError,
    FeatureSpec,
    compute_features,
    feature_names,
    window_from_bars,
)
from core.model import NS_PER_S as NS
from core.model import Bar, Direction, ExecutionAction, Signal
from core.orderplan import client_order_id
from core.ports import HistoricalBars

log = logging.getLogger("ttlive.bridge")

MODEL_ID: Final = "tensortrade-bridge"
HOLD: Final = N_ACTIONS  # one more action per symbol: do nothing (not in the trained table)
DECISION_DELAY_S: Final = 1.0  # the bar closes at t; the agent observes it and acts at t + 1 s
HISTORY_LOOKBACK_DAYS: Final = 7  # warm-up bars for the first observation (a week covers a weekend + holiday)
REST_TIMEOUT_S: Final = 60.0  # one bars request, retries included (style rule 8)
BUY_LOCK_HEADROOM: Final = Decimal("0.01")  # cash a buy locks beyond shares x close: spread, slippage, drift
ZERO: Final = Decimal(0)


class BridgeError(RuntimeError):
    """The bridge cannot run as configured (bracket legs on, a short position, colliding symbol names)."""


class BridgeClosed(RuntimeError):
    """The session is over: no further bars will come."""


# --- what crosses the thread boundary (immutable) -----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountView:
    """The engine's book as the TensorTrade portfolio should mirror it."""

    cash_usd: Decimal
    positions: dict[str, Decimal]
    equity_usd: Decimal
    target_weight: Decimal  # "allowed" position / equity, as the engine's policy actor sizes orders


@dataclass(frozen=True, slots=True, kw_only=True)
class Execution:
    execution_id: str
    qty: Decimal
    price: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderUpdate:
    """What the engine did with one bridge order since the last step: new executions, and the terminal status
    (``filled``, ``canceled``, ``expired``, ``rejected``, ...) once every attempt of the order is final."""

    tt_order_id: str
    executions: tuple[Execution, ...] = ()
    final_status: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StepInput:
    seq: int
    ts_ns: int  # the decision instant (bar close + DECISION_DELAY_S)
    bars: dict[str, tuple[Bar, ...]]  # per symbol: warm-up history on the first step, then the new bar
    updates: tuple[OrderUpdate, ...]
    account: AccountView
    last: bool  # the session's final bar: TensorTrade's stopper ends the episode on it


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderTicket:
    """A TensorTrade order as the engine should hear it."""

    tt_order_id: str
    symbol: str
    direction: Direction  # LONG buys, SHORT sells part, NEUTRAL flattens
    shares: Decimal
    action: ExecutionAction


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitOutcome:
    signal_id: str
    client_order_id: str
    placed: bool  # False: risk refused it (or the engine is halted / could not plan it): no order exists
    qty: Decimal  # what the order asks for after risk (RESIZE) and depth capping; 0 when not placed


@dataclass(slots=True)
class EpisodeSummary:
    """What the TensorTrade side saw, for reports and tests (built in the TensorTrade thread)."""

    steps: int = 0
    actions: list[list[int]] = field(default_factory=list)
    orders_sent: int = 0
    orders_placed: int = 0
    net_worth_usd: float = 0.0
    cash_usd: Decimal = ZERO  # free + locked
    shares: dict[str, Decimal] = field(default_factory=dict)  # free + locked
    locked_cash_usd: Decimal = ZERO
    rewards: list[float] = field(default_factory=list)
    finished_orders: list[tuple[str, str]] = field(default_factory=list)  # (symbol, final status), in order
    interrupted: bool = False


# --- the engine side ----------------------------------------------------------------------------------------


class BridgeHoldModel:
    """The engine's policy actor runs this while the TensorTrade agent decides: it never asks for an order."""

    model_id = MODEL_ID

    def warm_up(self) -> None:
        """Nothing to load."""

    def infer(self, features: Any) -> np.ndarray:
        return np.zeros(len(features), dtype=np.int64)

    def intent(self, action_id: int, *, position_fraction: float, working_fraction: float) -> OrderIntent:
        return NO_OP


@dataclass(slots=True)
class _HostOrder:
    signal_id: str
    symbol: str
    forwarded: set[str] = field(default_factory=set)  # execution ids already handed to TensorTrade
    final: bool = False


class BridgeHost:
    """The trio side of the bridge for one running engine: paces the bars, serves the thread's calls.

    ``history`` is the engine's market-data REST (``AlpacaData``); bars come from ``GET /v2/stocks/bars`` at
    the decision interval. ``target_weight`` overrides the engine's max_position_pct as the agent's "allowed"
    size (a larger one makes RiskGuard resize, which tests use).
    """

    def __init__(
        self,
        engine: Engine,
        history: HistoricalBars,
        *,
        interval_s: int = 300,
        delay_s: float = DECISION_DELAY_S,
        target_weight: Decimal | None = None,
        history_days: int = HISTORY_LOOKBACK_DAYS,
    ) -> None:
        assert interval_s >= 60 and interval_s % 60 == 0, "decision bars are whole minutes"
        if engine.config.execution.brackets:
            raise BridgeError("the TensorTrade bridge needs execution.brackets = false: bracket legs would "
                              "move the position behind TensorTrade's wallets")
        self.engine = engine
        self.history = history
        self.symbols = list(engine.config.symbols)
        self.interval_ns = interval_s * NS
        self.timeframe = f"{interval_s // 60}Min"
        self.delay_ns = int(delay_s * NS)
        self.target_weight = (target_weight if target_weight is not None
                              else Decimal(engine.config.risk.max_position_pct) / 100)
        self.history_days = history_days
        self.orders: dict[str, _HostOrder] = {}  # TensorTrade order id -> what the engine calls it
        self.signals_sent = 0
        self.steps_delivered = 0
        self._last_bar: dict[str, Bar] = {}
        self._steps_send, self._steps_recv = trio.open_memory_channel[StepInput](0)
        self._saved_autojump: float | None = None

    # --- running one session -------------------------------------------------------------------------------

    async def run_session(
        self,
        *,
        open_ns: int,
        close_ns: int,
        make_env: Callable[[BridgeClient], TradingEnv],
        agent: Callable[[np.ndarray, TradingEnv], Any],
    ) -> EpisodeSummary:
        """One TensorTrade episode over the session's decision bars; returns when the episode is done (or
        early, ``interrupted``, when the engine stops first)."""
        client = BridgeClient(self)
        summary: EpisodeSummary | None = None
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._end_with_engine, scope)
                await self._wait_started()
                nursery.start_soon(self._conduct, open_ns, close_ns)
                summary = await self._run_thread(client, make_env, agent)
                nursery.cancel_scope.cancel()
        return summary if summary is not None else EpisodeSummary(interrupted=True)

    async def _wait_started(self) -> None:
        await self.engine.started.wait()
        if not self.engine.snapshot().ready:
            raise BridgeError("engine reports started without its actors")

    async def _end_with_engine(self, scope: trio.CancelScope) -> None:
        await self.engine.stopped.wait()
        scope.cancel()  # the thread's pending call raises Cancelled and the episode unwinds

    async def _run_thread(self, client: BridgeClient, make_env: Callable[[BridgeClient], TradingEnv],
                          agent: Callable[[np.ndarray, TradingEnv], Any]) -> EpisodeSummary:
        self._freeze_time()  # the thread builds the environment: no virtual time may pass meanwhile
        try:
            return await trio.to_thread.run_sync(run_episode, client, make_env, agent,
                                                 abandon_on_cancel=False)
        finally:
            self._release_time()

    async def _conduct(self, open_ns: int, close_ns: int) -> None:
        """Deliver each decision bar of the session to the thread; the last one is flagged ``last``."""
        steps = (close_ns - open_ns) // self.interval_ns
        first = True
        for k in range(1, steps + 1):
            bar_end_ns = open_ns + k * self.interval_ns
            if bar_end_ns + self.delay_ns < self._now_ns() and k < steps:
                continue  # an engine restarted mid-session: start at the next bar, no replay
            await self._sleep_until_ns(bar_end_ns + self.delay_ns)
            start_ns = open_ns - self.history_days * 86_400 * NS if first else bar_end_ns - self.interval_ns
            first = False
            with trio.fail_after(REST_TIMEOUT_S):
                fetched = await self.history.get_bars(self.symbols, start_ts_ns=start_ns,
                                                      end_ts_ns=bar_end_ns - 1, timeframe=self.timeframe)
            step = StepInput(seq=k, ts_ns=self._now_ns(), bars=self._new_bars(fetched, bar_end_ns),
                             updates=self.collect_updates(), account=self.account_view(), last=k == steps)
            await self._steps_send.send(step)
            self.steps_delivered += 1
        await self._steps_send.aclose()  # a thread asking past the last bar hears BridgeClosed, not silence

    def _new_bars(self, fetched: dict[str, list[Bar]], bar_end_ns: int) -> dict[str, tuple[Bar, ...]]:
        """Completed bars not delivered yet; a symbol without one gets its last bar carried forward (spec
        1.1)."""
        out: dict[str, tuple[Bar, ...]] = {}
        for symbol in self.symbols:
            last = self._last_bar.get(symbol)
            fresh = [b for b in fetched.get(symbol, [])
                     if b.ts_ns + self.interval_ns <= bar_end_ns and (last is None or b.ts_ns > last.ts_ns)]
            if not fresh and last is not None:
                fresh = [carry_forward(last, bar_end_ns - self.interval_ns)]
            if fresh:
                self._last_bar[symbol] = fresh[-1]
            out[symbol] = tuple(fresh)
        return out

    # --- engine reads ---------------------------------------------------------------------------------------

    def _now_ns(self) -> int:
        return self.engine.clock.now_ns()

    async def _sleep_until_ns(self, ts_ns: int) -> None:
        now = self._now_ns()
        if ts_ns > now:
            await trio.sleep((ts_ns - now) / NS)

    def account_view(self) -> AccountView:
        book = self.engine.snapshot()
        assert book.ready, "the bridge reads the book of a started engine"
        return AccountView(cash_usd=book.cash_usd, positions=dict(book.holdings),
                           equity_usd=book.equity_usd, target_weight=self.target_weight)

    def collect_updates(self) -> tuple[OrderUpdate, ...]:
        """New executions and terminal states of the bridge's orders, from the execution actor's order
        machines (the engine's truth, fills de-duplicated there); each execution id is forwarded once."""
        out: list[OrderUpdate] = []
        for tt_order_id, record in self.orders.items():
            if record.final:
                continue
            machines = self.engine.orders_for_signal(record.signal_id)
            executions: list[Execution] = []
            for machine in machines:
                for entry in machine.log:
                    if entry.execution_id and entry.execution_id not in record.forwarded:
                        assert entry.qty is not None and entry.price is not None
                        record.forwarded.add(entry.execution_id)
                        executions.append(Execution(execution_id=entry.execution_id, qty=entry.qty,
                                                    price=entry.price))
            final = None
            if machines and all(m.is_terminal for m in machines):
                final = machines[-1].state.value
                record.final = True
            if executions or final is not None:
                out.append(OrderUpdate(tt_order_id=tt_order_id, executions=tuple(executions),
                                       final_status=final))
        return tuple(out)

    # --- the thread's calls (each runs in the trio task that started the thread) ----------------------------

    async def account(self) -> AccountView:
        return self.account_view()

    async def next_step(self) -> StepInput | None:
        self._release_time()  # the thread waits for the market now: let virtual time run
        try:
            step: StepInput | None = await self._steps_recv.receive()
        except trio.EndOfChannel:
            step = None
        await trio.testing.wait_all_tasks_blocked()
        self._freeze_time()
        return step

    async def submit(self, ticket: OrderTicket) -> SubmitOutcome:
        now = self._now_ns()
        self.signals_sent += 1
        signal_id = deterministic_uuid(MODEL_ID, ticket.symbol, now, self.signals_sent)
        signal = Signal(signal_id=signal_id, model_id=MODEL_ID, symbol=ticket.symbol,
                        direction=ticket.direction, quantity=ticket.shares, action=ticket.action, ts_ns=now,
                        reduce_only=ticket.direction is Direction.NEUTRAL)
        await self._raise(signal)
        coid = client_order_id(signal_id, 0)
        placed = self.engine.orders_for_signal(signal_id)
        if not placed:
            return SubmitOutcome(signal_id=signal_id, client_order_id=coid, placed=False, qty=ZERO)
        self.orders[ticket.tt_order_id] = _HostOrder(signal_id=signal_id, symbol=ticket.symbol)
        return SubmitOutcome(signal_id=signal_id, client_order_id=coid, placed=True, qty=placed[0].qty)

    async def cancel(self, tt_order_id: str) -> bool:
        """Ask the engine to cancel the order (a CANCEL signal); False when there is nothing to cancel."""
        record = self.orders.get(tt_order_id)
        if record is None or record.final:
            return False
        working = [m for m in self.engine.orders_for_signal(record.signal_id) if not m.is_terminal and m.venue_order_id]
        if not working:
            return False
        self.signals_sent += 1
        now = self._now_ns()
        signal = Signal(signal_id=deterministic_uuid(record.signal_id, "cancel", self.signals_sent),
                        model_id=MODEL_ID, symbol=record.symbol, direction=Direction.NEUTRAL, quantity=ZERO,
                        action=ExecutionAction.CANCEL, ts_ns=now, cancel_order_id=working[-1].venue_order_id)
        await self._raise(signal)
        return True

    async def _raise(self, signal: Signal) -> None:
        """Hand the signal to the engine (audited, then RiskGuard and execution) and wait until the engine has
        done everything it will do with it for now."""
        await self.engine.submit_signal(signal, source="tensortrade")
        await trio.testing.wait_all_tasks_blocked()

    # --- virtual time ---------------------------------------------------------------------------------------

    def _freeze_time(self) -> None:
        clock = trio.lowlevel.current_clock()
        if isinstance(clock, trio.testing.MockClock) and self._saved_autojump is None:
            self._saved_autojump = clock.autojump_threshold
            clock.autojump_threshold = math.inf

    def _release_time(self) -> None:
        clock = trio.lowlevel.current_clock()
        if isinstance(clock, trio.testing.MockClock) and self._saved_autojump is not None:
            clock.autojump_threshold = self._saved_autojump
            self._saved_autojump = None


# --- the TensorTrade side -----------------------------------------------------------------------------------

_current = threading.local()


def current_client() -> BridgeClient:
    """The client of the episode on this thread: ``AlpacaDataFeed(symbols=[...])`` needs no client=..."""
    client: BridgeClient | None = getattr(_current, "client", None)
    if client is None:
        raise BridgeError("no bridge client: pass client=..., or build the environment inside run_episode")
    return client


@dataclass(slots=True)
class TrackedOrder:
    """A TensorTrade order the engine knows about (TensorTrade thread only)."""

    ticket: OrderTicket
    outcome: SubmitOutcome
    filled_shares: Decimal = ZERO
    cancel_sent: bool = False


class BridgeClient:
    """Blocking calls from the TensorTrade thread into the host, and the bridge's TensorTrade-side books.

    Only the TensorTrade thread uses an instance after construction.
    """

    def __init__(self, host: BridgeHost) -> None:
        self._host = host
        self.symbols: tuple[str, ...] = tuple(host.symbols)
        self.current: StepInput | None = None
        self.windows: dict[str, deque[Bar]] = {s: deque(maxlen=DECISION_BARS_KEPT) for s in self.symbols}
        self.orders: dict[str, TrackedOrder] = {}  # TensorTrade order id -> ticket and the engine's answer
        self.tickets: dict[str, OrderTicket] = {}  # from an action scheme that knows the shares it means
        self.orders_sent = 0
        self._listeners: list[Callable[[tuple[OrderUpdate, ...]], None]] = []

    def listen(self, listener: Callable[[tuple[OrderUpdate, ...]], None]) -> None:
        self._listeners.append(listener)

    def account(self) -> AccountView:
        return trio.from_thread.run(self._host.account)

    def ensure_started(self) -> StepInput:
        return self.current if self.current is not None else self.advance()

    def advance(self) -> StepInput:
        """Block until the next decision bar; fold its bars in and apply its order updates (listeners)."""
        step = trio.from_thread.run(self._host.next_step)
        if step is None:
            raise BridgeClosed("the session has no more bars")
        for symbol in self.symbols:
            self.windows[symbol].extend(step.bars.get(symbol, ()))
        self.current = step
        for listener in self._listeners:
            listener(step.updates)
        return step

    def last_close(self, symbol: str) -> Decimal:
        window = self.windows[symbol]
        if not window:
            raise BridgeError(f"no bar for {symbol} yet")
        return window[-1].close

    def submit(self, ticket: OrderTicket) -> SubmitOutcome:
        self.orders_sent += 1
        outcome = trio.from_thread.run(self._host.submit, ticket)
        self.orders[ticket.tt_order_id] = TrackedOrder(ticket=ticket, outcome=outcome)
        return outcome

    def cancel(self, tt_order_id: str) -> bool:
        return trio.from_thread.run(self._host.cancel, tt_order_id)


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

    def _apply_execution(self, order: Order, tracked: TrackedOrder, execution: Execution) -> None:
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


class PolicyAgent:
    """A ttlive policy runtime (ONNX model or rule baseline) as a TensorTrade agent: one feature row per
    symbol in, one action id per symbol out."""

    def __init__(self, runtime: Any, n_symbols: int) -> None:
        self.runtime = runtime
        self.n_symbols = n_symbols

    def __call__(self, observation: np.ndarray, env: TradingEnv) -> np.ndarray:
        rows = np.asarray(observation, dtype=np.float32)[-1].reshape(self.n_symbols, -1)
        return np.asarray(self.runtime.infer(rows), dtype=np.int64)


def run_episode(client: BridgeClient, make_env: Callable[[BridgeClient], TradingEnv],
                agent: Callable[[np.ndarray, TradingEnv], Any]) -> EpisodeSummary:
    """The TensorTrade thread's body: build the environment, reset, step the agent until it is done."""
    _current.client = client
    summary = EpisodeSummary()
    try:
        env = make_env(client)
        observation = env.reset()
        while True:
            action = agent(observation, env)
            summary.actions.append([int(a) for a in np.atleast_1d(np.asarray(action))])
            observation, reward, done, _info = env.step(action)
            summary.steps += 1
            summary.rewards.append(float(reward))
            if done:
                break
        _summarise(env, client, summary)
        return summary
    finally:
        _current.client = None


def _summarise(env: TradingEnv, client: BridgeClient, summary: EpisodeSummary) -> None:
    summary.orders_sent = client.orders_sent
    summary.orders_placed = sum(1 for t in client.orders.values() if t.outcome.placed)
    broker = getattr(env, "broker", None)
    if isinstance(broker, AlpacaBroker):
        summary.finished_orders = list(broker.finished)
    book: BridgeBook | None = getattr(env, "book", None)
    if book is None:
        return
    cash = book.wallet(book.usd)
    summary.cash_usd = Decimal(cash.total_balance.size)
    summary.locked_cash_usd = Decimal(cash.locked_balance.size)
    summary.shares = {s: book.shares_total(s) for s in sorted(book.stocks)}
    summary.net_worth_usd = float(book.net_worth())
