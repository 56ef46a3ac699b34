"""The TensorTrade side of the bridge against a scripted host: fills reach the wallets before the next
observation, risk resizes and refusals release funds, a cancel completes only when the venue confirms it, and
the spec 5.1 pattern builds without naming the client twice."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
import trio

from adapters.policy.actions import action_id_for
from adapters.tensortrade.client import BridgeClient, current_client
from adapters.tensortrade.components import (
    HOLD,
    AlpacaBroker,
    AlpacaDataFeed,
    AlpacaExchange,
    TradingEnvironment,
)
from adapters.tensortrade.episode import run_episode
from adapters.tensortrade.messages import (
    AccountView,
    BridgeError,
    Execution,
    OrderTicket,
    OrderUpdate,
    StepInput,
    SubmitOutcome,
)
from core.features import DEFAULT_SPEC, feature_names
from core.model import Bar, Direction, ExecutionAction

SYMBOLS = ("AAA", "BBB")
CLOSES = {"AAA": Decimal("100.00"), "BBB": Decimal("50.00")}
START_NS = 1_401_716_400 * 1_000_000_000  # 2014-06-02 13:40 UTC, any instant works
BAR_NS = 300 * 1_000_000_000
LONG_1_MKT = action_id_for(Direction.LONG, 1.0, ExecutionAction.MARKET)
LONG_H_PAS = action_id_for(Direction.LONG, 0.5, ExecutionAction.LIMIT_PASSIVE)
FLAT_MKT = action_id_for(Direction.NEUTRAL, 0.0, ExecutionAction.MARKET)
CANCEL = action_id_for(Direction.NEUTRAL, 0.0, ExecutionAction.CANCEL)
POSITION = feature_names(DEFAULT_SPEC).index("position_fraction")


def bar(symbol: str, i: int) -> Bar:
    """A gently oscillating bar around the symbol's close (features need some variance)."""
    base = CLOSES[symbol]
    wiggle = Decimal(i % 3 - 1) / 100
    close = base + wiggle
    spread = Decimal("0.05")
    return Bar(symbol=symbol, open=close, high=close + spread, low=close - spread, close=close,
               volume=Decimal(10_000), ts_ns=START_NS + i * BAR_NS)


class ScriptedHost:
    """Plays the trio side: bars every step, answers submits by ``decide``, and reports what ``venue`` says
    happened to each ticket by the next step. Records every call (a fake that records, not a mock)."""

    def __init__(self, steps: int, decide: Callable[[OrderTicket], Decimal | None],
                 venue: Callable[[int, list[OrderTicket]], tuple[OrderUpdate, ...]]) -> None:
        self.symbols = list(SYMBOLS)
        self.steps = steps
        self.decide = decide
        self.venue = venue
        self.tickets: list[OrderTicket] = []
        self.cancels: list[str] = []
        self.delivered = 0

    async def account(self) -> AccountView:
        return AccountView(cash_usd=Decimal(100_000), positions={}, equity_usd=Decimal(100_000),
                           target_weight=Decimal("0.05"))

    async def next_step(self) -> StepInput | None:
        if self.delivered == self.steps:
            return None
        self.delivered += 1
        k = self.delivered
        history = range(0, 40) if k == 1 else range(39 + k - 1, 39 + k)
        return StepInput(seq=k, ts_ns=START_NS + (39 + k) * BAR_NS,
                         bars={s: tuple(bar(s, i) for i in history) for s in SYMBOLS},
                         updates=self.venue(k, self.tickets), account=await self.account(),
                         last=k == self.steps)

    async def submit(self, ticket: OrderTicket) -> SubmitOutcome:
        self.tickets.append(ticket)
        qty = self.decide(ticket)
        n = len(self.tickets)
        return SubmitOutcome(signal_id=f"sig-{n}", client_order_id=f"tt-sig-{n}-0", placed=qty is not None,
                             qty=qty or Decimal(0))

    async def cancel(self, tt_order_id: str) -> bool:
        self.cancels.append(tt_order_id)
        return True


def spec_pattern(client: BridgeClient) -> TradingEnvironment:
    # Spec 5.1, literally: the data feed finds the episode's client by itself.
    return TradingEnvironment(
        data_feed=AlpacaDataFeed(symbols=list(SYMBOLS)),
        exchange=AlpacaExchange(client=client),
        broker=AlpacaBroker(client=client),
    )


class Script:
    """An agent that plays fixed actions and remembers what it saw."""

    def __init__(self, plan: list[list[int]]) -> None:
        self.plan = plan
        self.seen: list[np.ndarray] = []

    def __call__(self, observation: np.ndarray, env: Any) -> list[int]:
        self.seen.append(observation)
        return self.plan[len(self.seen) - 1] if len(self.seen) <= len(self.plan) else [HOLD, HOLD]

    def position(self, call: int, symbol: str) -> float:
        row = self.seen[call][-1].reshape(len(SYMBOLS), -1)
        return float(row[SYMBOLS.index(symbol), POSITION])


async def test_fills_resizes_refusals_and_a_racing_cancel_reach_the_wallets() -> None:
    def decide(ticket: OrderTicket) -> Decimal | None:
        if ticket.direction is Direction.NEUTRAL:
            return None  # risk refuses the exit: nothing placed
        return Decimal(30) if ticket.symbol == "BBB" else ticket.shares  # BBB resized to 30

    def execution(execution_id: str, qty: int, price: str) -> tuple[Execution, ...]:
        return (Execution(execution_id=execution_id, qty=Decimal(qty), price=Decimal(price)),)

    def venue(step: int, tickets: list[OrderTicket]) -> tuple[OrderUpdate, ...]:
        if step == 2:
            aaa, bbb = tickets[0], tickets[1]
            return (OrderUpdate(tt_order_id=aaa.tt_order_id, final_status="filled",
                                executions=execution("e1", 50, "100.05")),
                    OrderUpdate(tt_order_id=bbb.tt_order_id, executions=execution("e2", 10, "49.99")))
        if step == 3:  # a fill raced the cancel, then the venue confirmed it
            return (OrderUpdate(tt_order_id=tickets[1].tt_order_id, final_status="canceled",
                                executions=execution("e3", 5, "49.98")),)
        return ()

    host = ScriptedHost(4, decide, venue)
    client = BridgeClient(host)  # type: ignore[arg-type]  # the scripted host stands in for BridgeHost
    agent = Script([[LONG_1_MKT, LONG_H_PAS], [HOLD, CANCEL], [FLAT_MKT, HOLD]])
    summary = await trio.to_thread.run_sync(run_episode, client, spec_pattern, agent)

    assert summary.steps == 3  # four bars: reset observes the first, three steps observe the rest
    assert [(t.symbol, t.direction, t.shares, t.action) for t in host.tickets] == [
        ("AAA", Direction.LONG, Decimal(50), ExecutionAction.MARKET),  # 1.0 x (5% of 100k) / 100
        ("BBB", Direction.LONG, Decimal(50), ExecutionAction.LIMIT_PASSIVE),  # 0.5 x 5000 / 50
        ("AAA", Direction.NEUTRAL, Decimal(50), ExecutionAction.MARKET),
    ]
    assert host.cancels == [host.tickets[1].tt_order_id]
    # Cash: 100000 - 50 x 100.05 - 10 x 49.99 - 5 x 49.98; the refused exit left the AAA shares free again.
    assert summary.cash_usd == Decimal("94247.70")
    assert summary.locked_cash_usd == 0
    assert summary.shares == {"AAA": Decimal(50), "BBB": Decimal(15)}
    assert summary.finished_orders == [("AAA", "filled"), ("BBB", "canceled"), ("AAA", "not_placed")]
    assert summary.orders_sent == 3 and summary.orders_placed == 2
    # The observation after step 1 already holds step 2's fills (50 AAA ~ the whole allowed 5%).
    assert agent.position(0, "AAA") == 0.0
    assert agent.position(1, "AAA") == pytest.approx(50 * 100 / (0.05 * 99_997.6), rel=2e-3)
    assert agent.position(1, "BBB") == pytest.approx(10 * 50 / (0.05 * 99_997.6), rel=2e-3)


async def test_a_cancel_before_any_fill_releases_the_whole_lock() -> None:
    def venue(step: int, tickets: list[OrderTicket]) -> tuple[OrderUpdate, ...]:
        if step == 3:
            return (OrderUpdate(tt_order_id=tickets[0].tt_order_id, final_status="canceled"),)
        return ()

    host = ScriptedHost(3, lambda ticket: ticket.shares, venue)
    client = BridgeClient(host)  # type: ignore[arg-type]
    agent = Script([[LONG_H_PAS, HOLD], [CANCEL, HOLD]])
    summary = await trio.to_thread.run_sync(run_episode, client, spec_pattern, agent)

    assert host.cancels == [host.tickets[0].tt_order_id]
    assert summary.cash_usd == Decimal(100_000) and summary.locked_cash_usd == 0
    assert summary.shares == {"AAA": 0, "BBB": 0}
    assert summary.finished_orders == [("AAA", "canceled")]


def test_plain_tensortrade_orders_become_tickets() -> None:
    """Orders from any TensorTrade action scheme work too (without a ticket the order itself is read)."""
    from tensortrade.core import Clock
    from tensortrade.feed.core import Stream
    from tensortrade.oms.instruments import ExchangePair, Instrument, Quantity
    from tensortrade.oms.orders import Order, TradeSide, TradeType
    from tensortrade.oms.wallets import Portfolio, Wallet

    host = ScriptedHost(1, lambda ticket: ticket.shares, lambda step, tickets: ())
    client = BridgeClient(host)  # type: ignore[arg-type]
    exchange = AlpacaExchange(client=client)
    usd, aaa = Instrument("USD", 4, "U.S. Dollar"), Instrument("AAA", 0, "AAA")
    portfolio = Portfolio(usd, [Wallet(exchange, Quantity(usd, Decimal(10_000))),
                                Wallet(exchange, Quantity(aaa, Decimal(20)))])
    pair = ExchangePair(exchange, usd / aaa)
    price = Stream.source([100.0], dtype="float").rename("USD-AAA")
    exchange(price)
    price.run()
    exchange.clock = Clock()
    gtc_buy = Order(step=0, side=TradeSide.BUY, trade_type=TradeType.LIMIT, exchange_pair=pair,
                    quantity=Quantity(usd, Decimal(1_000)), portfolio=portfolio, price=99.0)
    day_buy = Order(step=0, side=TradeSide.BUY, trade_type=TradeType.LIMIT, exchange_pair=pair,
                    quantity=Quantity(usd, Decimal(500)), portfolio=portfolio, price=100.0, end=1)
    sell = Order(step=0, side=TradeSide.SELL, trade_type=TradeType.MARKET, exchange_pair=pair,
                 quantity=Quantity(aaa, Decimal(5)), portfolio=portfolio, price=100.0)
    tickets = [exchange.ticket_for(o) for o in (gtc_buy, day_buy, sell)]
    assert [(t.direction, t.shares, t.action) for t in tickets] == [
        (Direction.LONG, Decimal(10), ExecutionAction.LIMIT_PASSIVE),  # 1000 USD / 99 -> 10 whole shares
        (Direction.LONG, Decimal(5), ExecutionAction.LIMIT_AGGRESSIVE),
        (Direction.SHORT, Decimal(5), ExecutionAction.MARKET),
    ]
    assert {t.symbol for t in tickets} == {"AAA"}


def test_the_data_feed_needs_a_client_outside_an_episode() -> None:
    with pytest.raises(BridgeError, match="no bridge client"):
        current_client()
    with pytest.raises(BridgeError, match="no bridge client"):
        AlpacaDataFeed(symbols=["AAA"])
