"""The TensorTrade side of the bridge: BridgeClient makes the thread's blocking calls into the host and keeps
the bridge's TensorTrade-side books (decision-bar windows, the orders the engine knows about).

Only the TensorTrade thread uses a client after construction; ``current_client`` finds the episode's client on
that thread, so the spec 5.1 pattern need not name it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import trio

from adapters.tensortrade.messages import (
    ZERO,
    AccountView,
    BridgeClosed,
    BridgeError,
    OrderTicket,
    OrderUpdate,
    StepInput,
    SubmitOutcome,
)
from core.engine.state import DECISION_BARS_KEPT
from core.model import Bar

if TYPE_CHECKING:
    from adapters.tensortrade.host import BridgeHost

_current = threading.local()


@contextmanager
def episode_client(client: BridgeClient) -> Iterator[None]:
    """Make ``client`` this thread's ``current_client`` for the episode's duration (run_episode)."""
    _current.client = client
    try:
        yield
    finally:
        _current.client = None


def current_client() -> BridgeClient:
    """The client of the episode on this thread: ``AlpacaDataFeed(symbols=[...])`` needs no client=..."""
    client: BridgeClient | None = getattr(_current, "client", None)
    if client is None:
        raise BridgeError("no bridge client: pass client=..., or build the environment inside run_episode")
    return client


@dataclass(slots=True)
class BridgeOrder:
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
        self.orders: dict[str, BridgeOrder] = {}  # TensorTrade order id -> ticket and the engine's answer
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

    def stale(self, symbol: str) -> bool:
        """The symbol's latest decision bar is a carry-forward the engine filled in (no trade in its bucket)."""
        window = self.windows[symbol]
        return bool(window) and window[-1].interpolated

    def last_close(self, symbol: str) -> Decimal:
        window = self.windows[symbol]
        if not window:
            raise BridgeError(f"no bar for {symbol} yet")
        return window[-1].close

    def submit(self, ticket: OrderTicket) -> SubmitOutcome:
        self.orders_sent += 1
        outcome = trio.from_thread.run(self._host.submit, ticket)
        self.orders[ticket.tt_order_id] = BridgeOrder(ticket=ticket, outcome=outcome)
        return outcome

    def cancel(self, tt_order_id: str) -> bool:
        return trio.from_thread.run(self._host.cancel, tt_order_id)

