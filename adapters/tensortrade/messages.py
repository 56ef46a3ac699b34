"""What crosses the bridge's thread boundary: the errors, and the immutable values the trio side (host.py)
and the TensorTrade thread (client.py) hand each other through ``trio.from_thread.run``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from core.model import Bar, Direction, ExecutionAction

ZERO: Final = Decimal(0)


class BridgeError(RuntimeError):
    """The bridge cannot run as configured (bracket legs on, a short position, colliding symbol names)."""


class BridgeClosed(RuntimeError):
    """The session is over: no further bars will come."""


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

