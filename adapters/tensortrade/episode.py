"""One TensorTrade episode on the bridge's thread: run_episode builds the environment, resets it and steps
the agent until it is done, then sums up what the TensorTrade side saw (EpisodeSummary) for the host.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
from tensortrade.env.generic import TradingEnv

from adapters.tensortrade.client import BridgeClient, episode_client
from adapters.tensortrade.components import AlpacaBroker, BridgeBook
from adapters.tensortrade.messages import ZERO, BridgeClosed


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
    """The TensorTrade thread's body: build the environment, reset, step the agent until it is done (or the
    session ends without a last bar: the stream died, the engine stopped deciding - ``interrupted``)."""
    with episode_client(client):
        summary = EpisodeSummary()
        env: TradingEnv | None = None
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
        except BridgeClosed:
            summary.interrupted = True
        if env is not None:
            _summarise(env, client, summary)
        return summary


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
