"""Alpaca market-data REST (/v2/stocks/...) for the fake venue: bars, quotes, trades, latest, snapshots.

Served from the venue's MarketSource as of the venue clock: nothing with a timestamp after ``venue.now_ns``
and no bar that has not completed yet (no look-ahead). Shapes per alpaca-wire.md §3.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from adapters.fake.calendar import NS_PER_DAY, et_date_of, ns_at
from adapters.fake.interfaces import FakeBar, FakeQuote, MarketSource, RestRequest, RestResponse
from adapters.fake.market import FakeTrade, TickSource
from adapters.fake.market_ticks import ticks
from adapters.fake.wire import JSON_HEADERS, ApiError, encode, parse_time_ns, rfc3339_ns
from core.model import NS_PER_S

DEFAULT_LIMIT = 1000  # Alpaca's default page size for historical data
MAX_LIMIT = 10_000  # Alpaca's maximum page size
MAX_SYMBOLS = 100  # our bound on symbols per request (keeps one request's work bounded)
LOOKBACK_LATEST_NS = 14 * NS_PER_DAY  # how far back "latest" looks for the last print
FEEDS = frozenset({"iex", "sip", "delayed_sip", "otc", "boats", "overnight"})
ADJUSTMENTS = frozenset({"raw", "split", "dividend", "spin-off", "all"})
_TIMEFRAME = re.compile(r"^(\d+)(Min|T|Hour|H|Day|D)$")
_KINDS = ("bars", "quotes", "trades")
_SINGULAR = {"bars": "bar", "quotes": "quote", "trades": "trade"}


def handle_data(venue: Any, req: RestRequest) -> RestResponse:
    """Answer one /v2/stocks/... request from ``venue.market`` as of ``venue.now_ns``."""
    try:
        if req.method != "GET":
            raise ApiError(405, 40510000, "method not allowed")
        return _route(_Ctx(venue), req)
    except ApiError as err:
        return RestResponse(status=err.status, body=encode(err.body()), headers=dict(JSON_HEADERS))


def _ok(body: Any) -> RestResponse:
    return RestResponse(status=200, body=encode(body), headers=dict(JSON_HEADERS))


def _bad(message: str) -> ApiError:
    return ApiError(400, 40010001, message)


class _Ctx:
    """What a request sees: the market as a TickSource, the venue clock, the feed's exchange code."""

    def __init__(self, venue: Any) -> None:
        market: MarketSource = venue.market
        self.market = market
        self.ticks: TickSource = ticks(market)
        self.now_ns: int = venue.now_ns
        self.interval_ns = market.bar_interval_ns()
        self.exchange = "V"

    def bar_json(self, b: FakeBar) -> dict[str, Any]:
        return {
            "t": _ts(b.ts_ns),
            "o": float(b.open),
            "h": float(b.high),
            "l": float(b.low),
            "c": float(b.close),
            "v": b.volume,
            "n": b.trade_count,
            "vw": float(b.vwap),
        }

    def quote_json(self, q: FakeQuote) -> dict[str, Any]:
        return {
            "t": _ts(q.ts_ns),
            "ax": self.exchange,
            "ap": float(q.ask_price),
            "as": q.ask_size,
            "bx": self.exchange,
            "bp": float(q.bid_price),
            "bs": q.bid_size,
            "c": ["R"],
            "z": "C",
        }

    def trade_json(self, t: FakeTrade) -> dict[str, Any]:
        return {
            "t": _ts(t.ts_ns),
            "x": self.exchange,
            "p": float(t.price),
            "s": t.size,
            "c": ["@"],
            "i": t.trade_id,
            "z": "C",
        }


def _ts(ts_ns: int) -> str:
    """Bars and whole-second prints as ``...:00Z`` like Alpaca; sub-second ones with nanoseconds."""
    if ts_ns % NS_PER_S == 0:
        return rfc3339_ns(ts_ns)[:19] + "Z"
    return rfc3339_ns(ts_ns)


# --- routing ------------------------------------------------------------------------------------------


def _route(ctx: _Ctx, req: RestRequest) -> RestResponse:
    parts = [p for p in req.path.split("/") if p]
    if parts[:2] != ["v2", "stocks"] or len(parts) < 3:
        raise ApiError(404, 40410000, "endpoint not found")
    rest = parts[2:]
    q = req.query
    if rest[0] in _KINDS and len(rest) == 1:
        return _ok(_historical(ctx, rest[0], _symbols(q), q, single=None))
    if rest[0] in _KINDS and rest[1:] == ["latest"]:
        return _ok({rest[0]: _latest(ctx, rest[0], _symbols(q), q)})
    if rest == ["snapshots"]:
        return _ok(_snapshots(ctx, _symbols(q), q))
    symbol = rest[0].upper()
    if len(rest) == 2 and rest[1] in _KINDS:
        return _ok(_historical(ctx, rest[1], [symbol], q, single=symbol))
    if len(rest) == 3 and rest[1] in _KINDS and rest[2] == "latest":
        found = _latest(ctx, rest[1], [symbol], q)
        return _ok({"symbol": symbol, _SINGULAR[rest[1]]: found.get(symbol)})
    if rest[1:] == ["snapshot"]:
        snap = _snapshots(ctx, [symbol], q).get(symbol, _empty_snapshot())
        return _ok({"symbol": symbol, **snap})
    raise ApiError(404, 40410000, "endpoint not found")


def _symbols(q: dict[str, str]) -> list[str]:
    raw = q.get("symbols", "")
    symbols = sorted({s.strip().upper() for s in raw.split(",") if s.strip()})
    if not symbols:
        raise _bad("missing symbols")
    if len(symbols) > MAX_SYMBOLS:
        raise _bad(f"too many symbols (max {MAX_SYMBOLS})")
    for s in symbols:
        if not re.fullmatch(r"[A-Z0-9.\-/]{1,15}", s):
            raise _bad(f"invalid symbol: {s}")
    return symbols


def _check_common(ctx: _Ctx, q: dict[str, str]) -> None:
    feed = q.get("feed", "iex")
    if feed not in FEEDS:
        raise _bad(f"invalid feed: {feed}")
    ctx.exchange = "V" if feed == "iex" else "Q"
    adjustment = q.get("adjustment", "raw")
    if any(a not in ADJUSTMENTS for a in adjustment.split(",")):
        raise _bad(f"invalid adjustment: {adjustment}")


# --- historical ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Query:
    start_ns: int
    end_ns: int  # exclusive, already capped at now + 1
    limit: int
    descending: bool
    token: tuple[str, int] | None


def _parse_query(ctx: _Ctx, q: dict[str, str]) -> _Query:
    _check_common(ctx, q)
    try:
        start = parse_time_ns(q["start"]) if q.get("start") else ns_at(et_date_of(ctx.now_ns))
    except ValueError:
        raise _bad(f"invalid start: {q.get('start')}") from None
    try:
        end = parse_time_ns(q["end"]) if q.get("end") else ctx.now_ns
    except ValueError:
        raise _bad(f"invalid end: {q.get('end')}") from None
    if q.get("start") and q.get("end") and end < start:
        raise _bad("end should not be before start")
    try:
        limit = int(q.get("limit") or DEFAULT_LIMIT)
    except ValueError:
        raise _bad(f"invalid limit: {q.get('limit')}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise _bad(f"invalid limit: must be between 1 and {MAX_LIMIT}")
    sort = q.get("sort", "asc")
    if sort not in ("asc", "desc"):
        raise _bad(f"invalid sort: {sort}")
    token = _decode_token(q["page_token"]) if q.get("page_token") else None
    return _Query(start, min(end, ctx.now_ns) + 1, limit, sort == "desc", token)


def _encode_token(symbol: str, ts_ns: int) -> str:
    return base64.urlsafe_b64encode(f"{symbol}|{ts_ns}".encode()).decode().rstrip("=")


def _decode_token(token: str) -> tuple[str, int]:
    try:
        symbol, ts = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().split("|")
        return symbol, int(ts)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _bad("invalid page_token") from None


Fetch = Callable[[str, int, int, int, bool], list[tuple[int, dict[str, Any]]]]


def _historical(
    ctx: _Ctx, kind: str, symbols: Sequence[str], q: dict[str, str], *, single: str | None
) -> dict[str, Any]:
    query = _parse_query(ctx, q)
    fetch = _bar_fetcher(ctx, q.get("timeframe")) if kind == "bars" else _tick_fetcher(ctx, kind)
    remaining = query.limit
    found: dict[str, list[dict[str, Any]]] = {}
    next_token: str | None = None
    for symbol in symbols:
        start, end = query.start_ns, query.end_ns
        if query.token is not None:
            token_symbol, token_ts = query.token
            if symbol < token_symbol:
                continue
            if symbol == token_symbol:
                if query.descending:
                    end = min(end, token_ts + 1)
                else:
                    start = max(start, token_ts)
        if start >= end:
            continue
        items = fetch(symbol, start, end, remaining + 1, query.descending)
        if len(items) > remaining:
            next_token = _encode_token(symbol, items[remaining][0])
            items = items[:remaining]
        if items:
            found[symbol] = [body for _, body in items]
            remaining -= len(items)
        if next_token is not None:
            break
        if remaining == 0:
            # The page is full; is there anything after it? Peek at the next symbols cheaply.
            for later in symbols[symbols.index(symbol) + 1 :]:
                peek = fetch(later, query.start_ns, query.end_ns, 1, query.descending)
                if peek:
                    next_token = _encode_token(later, peek[0][0])
                    break
            break
    if single is not None:
        return {kind: found.get(single, []), "symbol": single, "next_page_token": next_token}
    return {kind: found, "next_page_token": next_token}


def _tick_fetcher(ctx: _Ctx, kind: str) -> Fetch:
    def fetch(symbol: str, start: int, end: int, limit: int, desc: bool) -> list[tuple[int, dict[str, Any]]]:
        if kind == "quotes":
            return [
                (x.ts_ns, ctx.quote_json(x))
                for x in ctx.ticks.quotes_between(symbol, start, end, limit=limit, descending=desc)
            ]
        return [
            (t.ts_ns, ctx.trade_json(t))
            for t in ctx.ticks.trades_between(symbol, start, end, limit=limit, descending=desc)
        ]

    return fetch


def _parse_timeframe(text: str | None) -> tuple[int, str]:
    if not text:
        raise _bad("missing timeframe")
    m = _TIMEFRAME.match(text)
    if m is None:
        raise _bad(f"invalid timeframe: {text}")
    amount, unit = int(m[1]), m[2][0]
    limits = {"M": 59, "H": 23, "D": 1}
    if not 1 <= amount <= limits[unit]:
        raise _bad(f"invalid timeframe: {text}")
    return amount, unit


def _bar_fetcher(ctx: _Ctx, timeframe: str | None) -> Fetch:
    amount, unit = _parse_timeframe(timeframe)
    if unit == "D":
        return lambda s, start, end, limit, desc: _daily_bars(ctx, s, start, end, limit, desc)
    bucket_ns = amount * (60 if unit == "M" else 3600) * NS_PER_S
    iv = ctx.interval_ns
    per_bucket = max(1, bucket_ns // iv)

    def fetch(symbol: str, start: int, end: int, limit: int, desc: bool) -> list[tuple[int, dict[str, Any]]]:
        # Buckets stamped in [start, end); a source bar counts once it has completed (start + iv <= now).
        src_start = -(-start // bucket_ns) * bucket_ns
        src_end = min(-(-end // bucket_ns) * bucket_ns, ctx.now_ns - iv + 1)
        if src_end <= src_start:
            return []
        bars = ctx.ticks.bars_between(
            symbol, src_start, src_end, limit=(limit + 1) * per_bucket, descending=desc
        )
        groups: dict[int, list[FakeBar]] = {}
        for b in bars:
            groups.setdefault(b.ts_ns // bucket_ns * bucket_ns, []).append(b)
        out: list[tuple[int, dict[str, Any]]] = []
        for stamp, members in groups.items():
            out.append(
                (stamp, ctx.bar_json(_aggregate(symbol, stamp, sorted(members, key=lambda b: b.ts_ns))))
            )
            if len(out) >= limit:
                break
        return out

    return fetch


def _aggregate(symbol: str, stamp: int, bars: Sequence[FakeBar]) -> FakeBar:
    if len(bars) == 1 and bars[0].ts_ns == stamp:
        return bars[0]
    volume = sum(b.volume for b in bars)
    vwap = (
        (sum((b.vwap * b.volume for b in bars), Decimal(0)) / volume).quantize(Decimal("0.0001"))
        if volume
        else bars[-1].vwap
    )
    return FakeBar(
        symbol=symbol,
        ts_ns=stamp,
        open=bars[0].open,
        high=max(b.high for b in bars),
        low=min(b.low for b in bars),
        close=bars[-1].close,
        volume=volume,
        trade_count=sum(b.trade_count for b in bars),
        vwap=vwap,
    )


def _daily_bars(
    ctx: _Ctx, symbol: str, start: int, end: int, limit: int, desc: bool
) -> list[tuple[int, dict[str, Any]]]:
    """Daily bars stamped (ET midnight) in [start, end): closed sessions and today's running bar."""
    bars = ctx.ticks.daily_bars_asof(symbol, start, end, ctx.now_ns)
    if desc:
        bars.reverse()
    return [(b.ts_ns, ctx.bar_json(b)) for b in bars[:limit]]


# --- latest and snapshots -------------------------------------------------------------------------------


def _latest_bar(ctx: _Ctx, symbol: str) -> FakeBar | None:
    end = ctx.now_ns - ctx.interval_ns + 1  # completed bars only
    got = ctx.ticks.bars_between(symbol, end - LOOKBACK_LATEST_NS, end, limit=1, descending=True)
    return got[0] if got else None


def _latest(ctx: _Ctx, kind: str, symbols: Sequence[str], q: dict[str, str]) -> dict[str, Any]:
    _check_common(ctx, q)
    out: dict[str, Any] = {}
    for symbol in symbols:
        if kind == "quotes":
            quote = ctx.ticks.latest_quote(symbol, ctx.now_ns)
            if quote is not None:
                out[symbol] = ctx.quote_json(quote)
        elif kind == "trades":
            trade = ctx.ticks.latest_trade(symbol, ctx.now_ns)
            if trade is not None:
                out[symbol] = ctx.trade_json(trade)
        else:
            bar = _latest_bar(ctx, symbol)
            if bar is not None:
                out[symbol] = ctx.bar_json(bar)
    return out


def _empty_snapshot() -> dict[str, Any]:
    return {
        "latestTrade": None,
        "latestQuote": None,
        "minuteBar": None,
        "dailyBar": None,
        "prevDailyBar": None,
    }


def _snapshots(ctx: _Ctx, symbols: Sequence[str], q: dict[str, str]) -> dict[str, Any]:
    _check_common(ctx, q)
    out: dict[str, Any] = {}
    for symbol in symbols:
        trade = ctx.ticks.latest_trade(symbol, ctx.now_ns)
        quote = ctx.ticks.latest_quote(symbol, ctx.now_ns)
        minute = _latest_bar(ctx, symbol)
        if trade is None and quote is None and minute is None:
            continue
        today = ns_at(et_date_of(ctx.now_ns))
        daily = ctx.ticks.daily_bars_asof(symbol, today - LOOKBACK_LATEST_NS, today + 1, ctx.now_ns)
        snap = _empty_snapshot()
        snap["latestTrade"] = ctx.trade_json(trade) if trade else None
        snap["latestQuote"] = ctx.quote_json(quote) if quote else None
        snap["minuteBar"] = ctx.bar_json(minute) if minute else None
        snap["dailyBar"] = ctx.bar_json(daily[-1]) if daily else None
        snap["prevDailyBar"] = ctx.bar_json(daily[-2]) if len(daily) > 1 else None
        out[symbol] = snap
    return out


__all__ = ["handle_data"]
