"""Shared helpers for the venue tests: a tiny deterministic market, a weekday calendar, request builders.

H3's real MarketSource / SessionCalendar plug into the same Protocols; these stubs keep venue tests exact.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from adapters.fake.interfaces import FakeBar, FakeQuote, RestRequest
from adapters.fake.venue import Venue, VenueConfig

ET = ZoneInfo("America/New_York")
NS = 1_000_000_000
MINUTE_NS = 60 * NS


def et_ns(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    when = dt.datetime(year, month, day, hour, minute, second, tzinfo=ET)
    return int(when.timestamp()) * NS


START_NS = et_ns(2024, 1, 2, 9, 30)  # a Tuesday open
CLOSE_NS = et_ns(2024, 1, 2, 16, 0)
NEXT_OPEN_NS = et_ns(2024, 1, 3, 9, 30)


@dataclass(frozen=True)
class _Touch:
    from_ns: int
    bid: Decimal
    ask: Decimal
    bid_size: int
    ask_size: int


class StubMarket:
    """Quotes that change only when a test says so (``set_quote(..., from_ns)``); quote ts = bar start."""

    def __init__(self, bar_interval_s: int = 60) -> None:
        self._interval_ns = bar_interval_s * NS
        self._touches: dict[str, list[_Touch]] = {}

    def set_quote(
        self, symbol: str, bid: str, ask: str, bid_size: int = 1000, ask_size: int = 1000, from_ns: int = 0
    ) -> None:
        touches = self._touches.setdefault(symbol, [])
        touches.append(_Touch(from_ns, Decimal(bid), Decimal(ask), bid_size, ask_size))
        touches.sort(key=lambda t: t.from_ns)

    @property
    def symbols(self) -> list[str]:
        return sorted(self._touches)

    def bar_interval_ns(self) -> int:
        return self._interval_ns

    def quote_at(self, symbol: str, ts_ns: int) -> FakeQuote | None:
        touches = self._touches.get(symbol, [])
        index = bisect.bisect_right([t.from_ns for t in touches], ts_ns) - 1
        if index < 0:
            return None
        t = touches[index]
        bar_start = max(ts_ns // self._interval_ns * self._interval_ns, t.from_ns)
        return FakeQuote(symbol, t.bid, t.ask, t.bid_size, t.ask_size, bar_start)

    def bars_between(self, symbol: str, start_ns: int, end_ns: int) -> list[FakeBar]:
        return []

    def daily_bars_between(self, symbol: str, start_ns: int, end_ns: int) -> list[FakeBar]:
        return []

    def sector(self, symbol: str) -> str:
        return "tech"


@functools.lru_cache(maxsize=1024)
def _session_bounds(day: dt.date) -> tuple[int, int]:
    return (et_ns(day.year, day.month, day.day, 9, 30), et_ns(day.year, day.month, day.day, 16, 0))


class WeekdayCalendar:
    """NYSE hours 09:30-16:00 ET on every weekday (no holidays): enough for the venue's own rules."""

    def _bounds(self, day: dt.date) -> tuple[int, int]:
        return _session_bounds(day)

    def _day(self, ts_ns: int) -> dt.date:
        return dt.datetime.fromtimestamp(ts_ns / NS, ET).date()

    def is_open(self, ts_ns: int) -> bool:
        day = self._day(ts_ns)
        opens, closes = self._bounds(day)
        return day.weekday() < 5 and opens <= ts_ns < closes

    def _next(self, ts_ns: int, which: int) -> int:
        day = self._day(ts_ns)
        for offset in range(10):
            candidate = day + dt.timedelta(days=offset)
            point = self._bounds(candidate)[which]
            if candidate.weekday() < 5 and point > ts_ns:
                return point
        raise AssertionError("unreachable")

    def next_open_ns(self, ts_ns: int) -> int:
        return self._next(ts_ns, 0)

    def next_close_ns(self, ts_ns: int) -> int:
        return self._next(ts_ns, 1)

    def sessions_between(self, start_ns: int, end_ns: int) -> list[tuple[str, int, int]]:
        day, last = self._day(start_ns) - dt.timedelta(days=1), self._day(end_ns)
        out = []
        while day <= last:
            opens, closes = self._bounds(day)
            if day.weekday() < 5 and closes > start_ns and opens <= end_ns:
                out.append((day.isoformat(), opens, closes))
            day += dt.timedelta(days=1)
        return out


def make_venue(
    *, start_ns: int = START_NS, quotes: dict[str, tuple[str, str]] | None = None, **config: Any
) -> tuple[Venue, StubMarket]:
    market = StubMarket()
    for symbol, (bid, ask) in (quotes or {"AAPL": ("100.00", "100.02"), "MSFT": ("50.00", "50.01")}).items():
        market.set_quote(symbol, bid, ask)
    config.setdefault("rate_limit_per_min", 0)
    venue = Venue(VenueConfig(**config), market, WeekdayCalendar(), start_ns)
    return venue, market


def request(
    method: str,
    path: str,
    *,
    body: Any = None,
    raw: bytes | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> RestRequest:
    payload = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    base = {"apca-api-key-id": "KEY", "apca-api-secret-key": "SECRET"}
    return RestRequest(method, path, dict(query or {}), {**base, **(headers or {})}, payload)


def call(venue: Venue, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    response = venue.handle_rest(request(method, path, **kwargs))
    return response.status, (json.loads(response.body) if response.body else None)


def ok(venue: Venue, method: str, path: str, **kwargs: Any) -> Any:
    status, body = call(venue, method, path, **kwargs)
    assert status in (200, 207), (status, body, venue.internal_errors)
    return body


def submit(venue: Venue, **order: Any) -> tuple[int, Any]:
    base = {"symbol": "AAPL", "qty": "10", "side": "buy", "type": "market", "time_in_force": "day"}
    return call(venue, "POST", "/v2/orders", body={**base, **order})


def events(frames: list[Any]) -> list[dict[str, Any]]:
    """Decode trade_updates frames from a drained outbox."""
    out = []
    for item in frames:
        data = getattr(item, "data", None)
        if data is None:
            continue
        message = json.loads(data)
        if message.get("stream") == "trade_updates":
            out.append(message["data"])
    return out


def listening_session(venue: Venue, *, binary: bool = False) -> Any:
    session = venue.open_trading_stream(binary=binary)
    assert session.on_open() == []
    session.receive(json.dumps({"action": "authenticate", "data": {"key_id": "KEY", "secret_key": "SECRET"}}))
    session.receive(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
    return session


# --- tests of the stubs themselves (the venue tests lean on their semantics) ----------------------------


def test_weekday_calendar_bounds() -> None:
    cal = WeekdayCalendar()
    assert cal.is_open(START_NS) and not cal.is_open(CLOSE_NS)
    assert cal.next_close_ns(START_NS) == CLOSE_NS
    assert cal.next_open_ns(START_NS) == NEXT_OPEN_NS
    friday_close = et_ns(2024, 1, 5, 16, 0)
    assert cal.next_open_ns(friday_close) == et_ns(2024, 1, 8, 9, 30)
    assert [d for d, _, _ in cal.sessions_between(START_NS, et_ns(2024, 1, 8, 12))] == [
        "2024-01-02",
        "2024-01-03",
        "2024-01-04",
        "2024-01-05",
        "2024-01-08",
    ]


def test_stub_market_quotes_follow_schedule() -> None:
    market = StubMarket()
    market.set_quote("AAPL", "10", "10.02")
    market.set_quote("AAPL", "11", "11.02", from_ns=START_NS + MINUTE_NS)
    first = market.quote_at("AAPL", START_NS + 5 * NS)
    later = market.quote_at("AAPL", START_NS + MINUTE_NS + 5 * NS)
    assert first is not None and first.bid_price == Decimal("10") and first.ts_ns == START_NS
    assert later is not None and later.bid_price == Decimal("11")
    assert market.quote_at("MSFT", START_NS) is None
