"""Ports: what the core needs from the world, in domain words. Adapters implement them.

A fake venue, real Alpaca, or a port-level simulator all plug in here; the core never knows which.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from core.audit import AuditEntry
from core.model import (
    Account,
    AccountConfig,
    Activity,
    Bar,
    BrokerOrder,
    CashActivity,
    Direction,
    ExecutionAction,
    MarketClock,
    OrderRequest,
    Position,
    Quote,
)


class BrokerError(Exception):
    """The broker refused or failed; raised by adapters, translated from the wire (style rule 10)."""

    def __init__(self, message: str, *, status: int = 0, code: int = 0, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retryable = retryable


class OrderNotFound(BrokerError):
    pass


class InsufficientBuyingPower(BrokerError):
    pass


class DuplicateClientOrderId(BrokerError):
    pass


class NotCancelable(BrokerError):
    pass


class RateLimited(BrokerError):
    pass


class BrokerUnavailable(BrokerError):
    """Retries exhausted on timeouts / 5xx: the broker cannot be reached right now."""


# The order gate: asked immediately before every attempt to put an order-creating request on the wire (the first
# attempt, each retry, after every rate-limiter wait). False once the kill switch has latched.
SendGate = Callable[[], bool]


def gate_open() -> bool:
    return True


class OrderGateClosed(BrokerError):
    """The order gate closed before this order-creating request could be (re)sent; nothing more was sent.

    ``sent``: an earlier attempt did go out and its answer was lost, so the order may have landed: the caller
    resolves it by a lookup by ``client_order_id``, never by another POST.
    """

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


@runtime_checkable
class BrokerRest(Protocol):
    """Alpaca trading REST, spec 1.2 / 2.2 / 2.3 / 4.4."""

    async def submit_order(self, request: OrderRequest, *, gate: SendGate = gate_open) -> BrokerOrder: ...
    async def cancel_order(self, order_id: str) -> None: ...
    async def cancel_all_orders(self) -> list[tuple[str, int]]: ...  # (order id, status) per order
    async def get_order(self, order_id: str) -> BrokerOrder: ...
    async def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder: ...
    async def list_orders(
        self, *, status: str = "open", after_ts_ns: int | None = None, limit: int = 500
    ) -> list[BrokerOrder]: ...
    async def get_positions(self) -> list[Position]: ...
    async def close_all_positions(self, *, cancel_orders: bool = True) -> list[tuple[str, int]]: ...
    async def get_account(self) -> Account: ...
    async def get_configurations(self) -> AccountConfig: ...
    async def patch_configurations(self, **changes: Any) -> AccountConfig: ...
    async def get_activities(self, *, after_ts_ns: int | None = None) -> list[Activity]: ...
    async def get_cash_activities(self, *, after_ts_ns: int | None = None) -> list[CashActivity]: ...
    # period ("1M", "1W", ...) and timeframe ("1D", "1Min", ...) as Alpaca takes them; None: the broker's default.
    async def get_portfolio_history(
        self, *, period: str | None = None, timeframe: str | None = None
    ) -> dict[str, Any]: ...
    async def get_clock(self) -> MarketClock: ...


class EventStream(Protocol):
    """A stream the engine consumes (``trade_updates``, market data): ``serve`` runs until cancelled, handing each
    decoded event to ``deliver``; ``task_status.started()`` once subscribed."""

    async def serve(self, deliver: Callable[[Any], Awaitable[None]], *, task_status: Any = ...) -> None: ...


class HistoricalBars(Protocol):
    async def get_bars(
        self, symbols: Sequence[str], *, start_ts_ns: int, end_ts_ns: int, timeframe: str = "1Min"
    ) -> dict[str, list[Bar]]: ...

    async def get_latest_quotes(self, symbols: Sequence[str]) -> dict[str, Quote]: ...


class Clock(Protocol):
    """The session clock: virtual time in simulation, wall time live."""

    def now_ns(self) -> int: ...


class IdFactory(Protocol):
    """Ids from a seeded source in simulation; uuid4 live. ``kind`` namespaces them (signal, exec...)."""

    def new_id(self, kind: str) -> str: ...


class Intent(Protocol):
    """What to do for one symbol now (read-only: adapters return frozen dataclasses)."""

    @property
    def cancel_working(self) -> bool: ...
    @property
    def direction(self) -> Direction | None: ...
    @property
    def delta_fraction(self) -> float: ...
    @property
    def execution(self) -> ExecutionAction | None: ...


class DecisionModel(Protocol):
    """The policy port as the engine uses it (adapters.policy wraps ONNX Runtime or the rule baseline)."""

    model_id: str

    def warm_up(self) -> None: ...
    def infer(self, features: Any) -> Any: ...  # float32 (n, n_features) -> int action ids (n,)
    def intent(self, action_id: int, *, position_fraction: float, working_fraction: float) -> Intent: ...


class AlertSink(Protocol):
    async def send(self, *, severity: str, key: str, message: str, ts_ns: int) -> None: ...


class AuditSink(Protocol):
    """Durable append-only log. ``write`` returns once the record is durable (fsync for orders/fills);
    the stream follows from the entry's event_type (core.audit.stream_for). Raises on a failed write."""

    def write(self, entry: AuditEntry) -> None: ...


class StateStore(Protocol):
    """Persisted engine state (halt latch, order id map) that must survive a crash."""

    def load(self) -> dict[str, Any] | None: ...
    def save(self, state: dict[str, Any]) -> None: ...


class Monitor(Protocol):
    def observe_latency(self, name: str, value_s: float) -> None: ...
    def incr(self, name: str, value: int = 1) -> None: ...


class NullMonitor:
    """A Monitor that discards everything: the default when nobody listens."""

    def observe_latency(self, name: str, value_s: float) -> None:
        return None

    def incr(self, name: str, value: int = 1) -> None:
        return None


__all__ = [
    "AlertSink",
    "AuditSink",
    "BrokerError",
    "BrokerRest",
    "BrokerUnavailable",
    "Clock",
    "Decimal",
    "DecisionModel",
    "DuplicateClientOrderId",
    "EventStream",
    "HistoricalBars",
    "IdFactory",
    "InsufficientBuyingPower",
    "Intent",
    "Monitor",
    "NotCancelable",
    "NullMonitor",
    "OrderGateClosed",
    "OrderNotFound",
    "RateLimited",
    "SendGate",
    "StateStore",
    "gate_open",
]
