"""Contracts inside the fake venue: the sans-IO venue core and the front-ends that carry its wire.

The venue core never awaits. Front-ends (in-process httpx transport + memory WebSockets, or the loopback
server) turn bytes into ``RestRequest``/stream input, call the core, and write back what it returns.
Virtual time enters only through ``advance_to``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RestRequest:
    method: str  # "GET", "POST", "PATCH", "DELETE"
    path: str  # "/v2/orders", "/v2/orders:by_client_order_id", ... (no query string)
    query: dict[str, str]  # last value wins for repeated keys; values URL-decoded
    headers: dict[str, str]  # lower-case names
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class RestResponse:
    status: int
    body: bytes  # JSON (b"" for 204)
    headers: dict[str, str] = field(default_factory=dict)  # incl. X-Ratelimit-*, content-type
    # Fault hooks the front-end carries out after the core has *already applied* the request:
    drop_response_after_s: float | None = None  # sleep this long then raise a timeout (ambiguous submit)
    delay_s: float = 0.0  # degraded API: sleep before answering


@dataclass(frozen=True, slots=True)
class Frame:
    """One WebSocket message to send. ``data`` str => text frame, bytes => binary frame."""

    data: str | bytes


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection. code 1006 => abort the raw stream without a close handshake."""

    code: int = 1000
    reason: str = ""


Outgoing = Frame | Close


class StreamSession(Protocol):
    """One WebSocket connection's protocol state inside the venue (trading or market data)."""

    def on_open(self) -> list[Outgoing]: ...  # greeting (market data sends [{"T":"success",...}])
    def receive(self, data: str | bytes) -> list[Outgoing]: ...  # a client message -> replies
    def drain(self) -> list[Outgoing]: ...  # events produced by advance_to since the last drain
    def on_close(self) -> None: ...
    @property
    def muted(self) -> bool: ...  # connected-but-mute fault: front-end holds frames, answers nothing


@dataclass(frozen=True, slots=True)
class FakeQuote:
    symbol: str
    bid_price: Decimal
    ask_price: Decimal
    bid_size: int  # shares at the touch (round lots * 100)
    ask_size: int
    ts_ns: int


@dataclass(frozen=True, slots=True)
class FakeBar:
    symbol: str
    ts_ns: int  # bar start
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    trade_count: int
    vwap: Decimal


class MarketSource(Protocol):
    """Deterministic prices for the venue: replayed real bars or a seeded generator."""

    @property
    def symbols(self) -> Sequence[str]: ...
    def bar_interval_ns(self) -> int: ...
    def quote_at(self, symbol: str, ts_ns: int) -> FakeQuote | None: ...  # None: no data (gap/closed)
    def bars_between(self, symbol: str, start_ns: int, end_ns: int) -> list[FakeBar]: ...  # interval bars
    def daily_bars_between(self, symbol: str, start_ns: int, end_ns: int) -> list[FakeBar]: ...
    def sector(self, symbol: str) -> str: ...


class SessionCalendar(Protocol):
    """NYSE sessions (exchange-calendars) on the session clock."""

    def is_open(self, ts_ns: int) -> bool: ...
    def next_open_ns(self, ts_ns: int) -> int: ...
    def next_close_ns(self, ts_ns: int) -> int: ...
    def sessions_between(self, start_ns: int, end_ns: int) -> list[tuple[str, int, int]]:
        """(date 'YYYY-MM-DD', open_ns, close_ns) for each session in the range."""
        ...
