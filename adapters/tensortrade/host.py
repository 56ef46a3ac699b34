"""The trio side of the TensorTrade bridge: BridgeHost paces the session's decision bars and serves the
TensorTrade thread's calls next to a running engine; BridgeHoldModel keeps the engine's own policy silent.

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
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import numpy as np
import trio
import trio.testing
from tensortrade.env.generic import TradingEnv

from adapters.policy.actions import NO_OP, OrderIntent
from adapters.tensortrade.client import BridgeClient
from adapters.tensortrade.episode import EpisodeSummary, run_episode
from adapters.tensortrade.messages import (
    ZERO,
    AccountView,
    BridgeError,
    Execution,
    OrderTicket,
    OrderUpdate,
    StepInput,
    SubmitOutcome,
)
from core.engine.market import carry_forward
from core.engine.state import deterministic_uuid
from core.engine.system import Engine
from core.model import NS_PER_S as NS
from core.model import Bar, Direction, ExecutionAction, Signal
from core.orderplan import client_order_id
from core.ports import HistoricalBars

MODEL_ID: Final = "tensortrade-bridge"
DECISION_DELAY_S: Final = 1.0  # the bar closes at t; the agent observes it and acts at t + 1 s
HISTORY_LOOKBACK_DAYS: Final = 7  # warm-up bars for the first observation (a week covers a weekend + holiday)
REST_TIMEOUT_S: Final = 60.0  # one bars request, retries included (style rule 8)




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
        interval_s: int | None = None,
        delay_s: float = DECISION_DELAY_S,
        target_weight: Decimal | None = None,
        history_days: int = HISTORY_LOOKBACK_DAYS,
    ) -> None:
        if interval_s is None:  # the engine's decision interval (the model contract's when the config leaves it)
            interval_s = int(engine.config.policy.interval_s)
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

