"""The trio side of the TensorTrade bridge: BridgeHost paces the session's decision bars and serves the
TensorTrade thread's calls next to a running engine; BridgeHoldModel keeps the engine's own policy silent.

Threading. TensorTrade is synchronous; the engine is trio. One dedicated thread (started with
``trio.to_thread.run_sync``) owns every TensorTrade object and runs ``env.reset``/``env.step``; the trio side
never touches them. The thread talks to trio only by *calling into it* with ``trio.from_thread.run``, which
runs the call in the task that started the thread and blocks the thread until it returns:

* ``next_step`` - the observer, at each ``observe``, asks for the next decision bar. The host's conductor task
  waits for the engine's decision clock (``Engine.decision_observers``: the market actor closed a decision
  bucket), takes the bars the engine itself decides on (``Engine.decision_bars``: the market-data stream's bars
  rolled to the decision interval, REST gap fill, silent symbols carried forward and marked ``interpolated``;
  warm-up history on the first step), adds what the engine did with the bridge's orders (executions
  de-duplicated by execution id, terminal states), and hands it over. The agent thus sees exactly the bars,
  at exactly the instants, the engine's own policy would.
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

import logging
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
from core.engine.messages import DecisionDue
from core.engine.state import deterministic_uuid
from core.engine.system import Engine
from core.model import NS_PER_S as NS
from core.model import Bar, Direction, ExecutionAction, Signal
from core.orderplan import client_order_id

log = logging.getLogger("ttlive.bridge")

MODEL_ID: Final = "tensortrade-bridge"
DECISIONS_QUEUED: Final = 1024  # decision instants waiting for a slow agent (paper: wall time) before one drops




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

    Bars and decision instants are the engine's (module docstring). ``target_weight`` overrides the engine's
    max_position_pct as the agent's "allowed" size (a larger one makes RiskGuard resize, which tests use).
    """

    def __init__(self, engine: Engine, *, target_weight: Decimal | None = None) -> None:
        if engine.config.execution.brackets:
            raise BridgeError("the TensorTrade bridge needs execution.brackets = false: bracket legs would "
                              "move the position behind TensorTrade's wallets")
        self.engine = engine
        self.symbols = list(engine.config.symbols)
        self.interval_ns = int(engine.config.policy.interval_s * NS)
        self.target_weight = (target_weight if target_weight is not None
                              else Decimal(engine.config.risk.max_position_pct) / 100)
        self.orders: dict[str, _HostOrder] = {}  # TensorTrade order id -> what the engine calls it
        self.signals_sent = 0
        self.steps_delivered = 0
        self.interpolated_bars = 0  # carry-forward bars the engine filled in and the agent saw
        self.decisions_dropped = 0
        self._last_bar: dict[str, Bar] = {}
        self._steps_send, self._steps_recv = trio.open_memory_channel[StepInput](0)
        self._due_send, self._due_recv = trio.open_memory_channel[int](DECISIONS_QUEUED)
        self._saved_autojump: float | None = None
        engine.decision_observers.append(self._decision_due)

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

    def _decision_due(self, due: DecisionDue) -> None:
        """Engine.decision_observers: the market actor closed a decision bucket ending at ``due.ts_ns``."""
        try:
            self._due_send.send_nowait(due.ts_ns)
        except trio.WouldBlock:  # the agent is DECISIONS_QUEUED decisions behind: it skips this one
            self.decisions_dropped += 1
        except trio.ClosedResourceError:
            pass  # the episode is over

    async def _conduct(self, open_ns: int, close_ns: int) -> None:
        """Deliver each decision of the session to the thread as the engine makes it; the one whose bucket is
        the session's last full one is flagged ``last``. No decision by the close plus one interval (the
        stream died, the engine stopped deciding) ends the episode too: the thread then hears BridgeClosed."""
        seq = 0
        with trio.move_on_after(max(0.0, (close_ns + self.interval_ns - self._now_ns()) / NS)):
            async for ended_ns in self._due_recv:
                if ended_ns <= open_ns or ended_ns > close_ns:
                    continue  # the engine's clock runs from the pre-open; the episode is the session
                bars = self._new_bars()
                if any(s not in self._last_bar for s in self.symbols):
                    log.warning("decision at %s skipped: no bar yet for %s", ended_ns,
                                ", ".join(s for s in self.symbols if s not in self._last_bar))
                    continue
                seq += 1
                last = ended_ns + self.interval_ns >= close_ns
                step = StepInput(seq=seq, ts_ns=self._now_ns(), bars=bars, updates=self.collect_updates(),
                                 account=self.account_view(), last=last)
                await self._steps_send.send(step)
                self.steps_delivered += 1
                if last:
                    break
        self._due_send.close()
        await self._steps_send.aclose()  # a thread asking past the last bar hears BridgeClosed, not silence

    def _new_bars(self) -> dict[str, tuple[Bar, ...]]:
        """The engine's decision bars not delivered yet (all of them on the first step: the warm-up)."""
        out: dict[str, tuple[Bar, ...]] = {}
        for symbol in self.symbols:
            last = self._last_bar.get(symbol)
            fresh = [b for b in self.engine.decision_bars(symbol) if last is None or b.ts_ns > last.ts_ns]
            if fresh:
                self._last_bar[symbol] = fresh[-1]
                self.interpolated_bars += sum(1 for b in fresh if b.interpolated)
            out[symbol] = tuple(fresh)
        return out

    # --- engine reads ---------------------------------------------------------------------------------------

    def _now_ns(self) -> int:
        return self.engine.clock.now_ns()

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

