"""The market-data WebSocket (/v2/iex, /v2/sip) of the fake venue as a sans-IO session (alpaca-wire.md §5).

msgpack binary frames when the client asked for ``application/msgpack`` (alpaca-py always does), JSON
text otherwise. Data for subscribed symbols is pushed as the venue clock advances; ``t`` is a msgpack
Timestamp (JSON: RFC3339).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import msgpack

from adapters.fake.interfaces import Close, FakeBar, FakeQuote, Frame, Outgoing
from adapters.fake.market import FakeTrade, TickSource
from adapters.fake.market_ticks import ticks
from adapters.fake.wire import encode, rfc3339_ns
from core.limits import WS_HANDSHAKE_TIMEOUT_S
from core.model import NS_PER_S

Codec = Literal["msgpack", "json"]
CHANNELS = (  # subscription keys of the stock stream, in the order the ack lists them
    "trades",
    "quotes",
    "bars",
    "updatedBars",
    "dailyBars",
    "statuses",
    "lulds",
    "corrections",
    "cancelErrors",
)
_AUTO_WITH_TRADES = ("corrections", "cancelErrors")  # subscribed together with trades, never directly
OUTBOX_MAX_FRAMES = 4_096  # frames held for a slow client before the oldest are dropped
MAX_MESSAGES_PER_FRAME = 1_000  # one frame carries at most this many data messages
AUTH_TIMEOUT_NS = round(WS_HANDSHAKE_TIMEOUT_S * NS_PER_S)  # unauthenticated sockets close (wire §5)
_T_ORDER = {"t": 0, "q": 1, "b": 2, "d": 3}  # within one instant: trades, quotes, bars, daily bars


def _codec_for(content_type: str | None) -> Codec:
    return "msgpack" if content_type and "msgpack" in content_type.lower() else "json"


class DataStreamSession:
    """One market-data connection: connect greeting, auth, subscriptions, and data on each clock advance.

    Implements interfaces.StreamSession. ``on_advance`` is idempotent over time: the session keeps its
    own cursor, so it does not matter whether the venue, the front-end, or both call it.
    """

    def __init__(
        self,
        venue: Any,
        feed: str = "iex",
        *,
        codec: Codec = "msgpack",
        symbol_limit: int | None = None,
        auth_timeout_ns: int | None = AUTH_TIMEOUT_NS,
        outbox_max_frames: int = OUTBOX_MAX_FRAMES,
    ) -> None:
        self.venue = venue
        self.feed = feed
        self.codec: Codec = codec
        self.symbol_limit = symbol_limit
        self.auth_timeout_ns = auth_timeout_ns
        self._ticks: TickSource = ticks(venue.market)
        self._outbox: deque[Outgoing] = deque()
        self._outbox_max = outbox_max_frames
        self.dropped_frames = 0  # outbox overflow (slow client): oldest frames dropped
        self.dropped_messages = 0  # market_data_drop_p fault draws
        self.lost_messages = 0  # data produced while the stream was muted
        self.errors_sent = 0  # {"T":"error"} replies (bad input, auth, limits)
        self.subscriptions: dict[str, set[str]] = {c: set() for c in CHANNELS}
        self.authenticated = False
        self.closed = False
        self._opened_ns = venue.now_ns
        self._cursor_ns = venue.now_ns  # data up to and including this instant has been considered

    @classmethod
    def for_headers(cls, venue: Any, feed: str, headers: dict[str, str], **kwargs: Any) -> DataStreamSession:
        """Pick the codec from the handshake's Content-Type, as the real server does."""
        return cls(venue, feed, codec=_codec_for(headers.get("content-type")), **kwargs)

    # --- StreamSession --------------------------------------------------------------------------------
    def on_open(self) -> list[Outgoing]:
        refusal = self._venue_call("stream_refusal", "data")
        if refusal == 406:
            self.closed = True
            return [
                self._frame([self._error(406, "connection limit exceeded")]),
                Close(1000, "connection limit"),
            ]
        if refusal is not None:
            self.closed = True
            return [Close(int(refusal), "refused")]
        return [self._frame([{"T": "success", "msg": "connected"}])]

    def receive(self, data: str | bytes) -> list[Outgoing]:
        if self.closed:
            return []
        msg = self._decode(data)
        if not isinstance(msg, dict):
            return [self._frame([self._error(400, "invalid syntax")])]
        action = msg.get("action")
        if action == "auth":
            return [self._frame([self._auth(msg)])]
        if action in ("subscribe", "unsubscribe"):
            if not self.authenticated:
                return [self._frame([self._error(401, "not authenticated")])]
            return [self._frame([self._subscribe(msg, add=action == "subscribe")])]
        return [self._frame([self._error(400, "invalid syntax")])]

    def drain(self) -> list[Outgoing]:
        out = list(self._outbox)
        self._outbox.clear()
        return out

    def on_close(self) -> None:
        self.closed = True
        self._outbox.clear()

    @property
    def muted(self) -> bool:
        return bool(self._venue_call("stream_muted", "data"))

    # --- the clock ----------------------------------------------------------------------------------
    def on_advance(self, prev_ns: int, now_ns: int) -> None:
        """Queue everything that happened in (cursor, now_ns] for the subscribed symbols."""
        if self.closed or now_ns <= self._cursor_ns:
            return
        start = self._cursor_ns
        self._cursor_ns = now_ns
        if not self.authenticated:
            if self.auth_timeout_ns is not None and now_ns - self._opened_ns >= self.auth_timeout_ns:
                self._push(self._frame([self._error(404, "auth timeout")]))
                self._push(Close(1000, "auth timeout"))
                self.closed = True
            return
        if self.muted:  # connected but mute: what happens meanwhile is lost, as on the real feed
            self.lost_messages += len(self._data_between(start, now_ns))
            return
        messages = self._data_between(start, now_ns)
        for i in range(0, len(messages), MAX_MESSAGES_PER_FRAME):
            self._push(self._frame(messages[i : i + MAX_MESSAGES_PER_FRAME]))

    # --- venue-side hooks (adapters.fake.venue calls these on ws_close / venue_restart / eviction_406) ---
    def force_close(self, code: int, reason: str) -> None:
        """The front-end carries the Close out after sending what is queued before it."""
        if not self.closed:
            self._push(Close(code, reason))
            self.closed = True

    def evict(self) -> None:
        """Another connection took the only slot: Alpaca says 406, then closes."""
        if not self.closed:
            self._push(self._frame([self._error(406, "connection limit exceeded")]))
            self.force_close(1000, "connection limit exceeded")

    # --- protocol -------------------------------------------------------------------------------------
    def _auth(self, msg: dict[str, Any]) -> dict[str, Any]:
        if self.authenticated:
            return self._error(403, "already authenticated")
        key, secret = msg.get("key"), msg.get("secret")
        if not isinstance(key, str) or not isinstance(secret, str):
            return self._error(402, "auth failed")
        check = getattr(self.venue, "check_credentials", None)
        if check is not None and not check(key, secret):
            return self._error(402, "auth failed")
        self.authenticated = True
        return {"T": "success", "msg": "authenticated"}

    def _subscribe(self, msg: dict[str, Any], *, add: bool) -> dict[str, Any]:
        changes: dict[str, set[str]] = {}
        for key, value in msg.items():
            if key == "action" or key not in CHANNELS or key in _AUTO_WITH_TRADES:
                continue
            if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
                return self._error(400, "invalid syntax")
            changes[key] = {s.upper() if s != "*" else s for s in value}
        proposed = {c: set(s) for c, s in self.subscriptions.items()}
        for channel, symbols in changes.items():
            if add:
                proposed[channel] |= symbols
            else:
                proposed[channel] -= symbols
        for auto in _AUTO_WITH_TRADES:
            proposed[auto] = set(proposed["trades"])
        if self.symbol_limit is not None:
            counted = (proposed["trades"] | proposed["quotes"]) - {"*"}
            if len(counted) > self.symbol_limit or (
                "*" in proposed["trades"] | proposed["quotes"]
                and self.symbol_limit < len(self._ticks.symbols)
            ):
                return self._error(405, "symbol limit exceeded")
        self.subscriptions = proposed
        return {"T": "subscription", **{c: sorted(self.subscriptions[c]) for c in CHANNELS}}

    def _error(self, code: int, text: str) -> dict[str, Any]:
        self.errors_sent += 1
        return {"T": "error", "code": code, "msg": text}

    # --- data -----------------------------------------------------------------------------------------
    def _symbols(self, channel: str) -> list[str]:
        wanted = self.subscriptions[channel]
        if "*" in wanted:
            return sorted(self._ticks.symbols)
        return sorted(wanted)

    def _data_between(self, start_ns: int, now_ns: int) -> list[dict[str, Any]]:
        """Messages for (start_ns, now_ns], ordered by time, kind, symbol."""
        items: list[tuple[int, int, str, dict[str, Any]]] = []
        iv = self._ticks.bar_interval_ns()
        for symbol in self._symbols("trades"):
            for t in self._ticks.trades_between(symbol, start_ns + 1, now_ns + 1):
                items.append((t.ts_ns, _T_ORDER["t"], symbol, self._trade_msg(t)))
        for symbol in self._symbols("quotes"):
            for q in self._ticks.quotes_between(symbol, start_ns + 1, now_ns + 1):
                items.append((q.ts_ns, _T_ORDER["q"], symbol, self._quote_msg(q)))
        # A bar is published when it completes: start + interval in (start_ns, now_ns].
        completed: dict[str, list[FakeBar]] = {}
        for channel in ("bars", "dailyBars"):
            for symbol in self._symbols(channel):
                if symbol not in completed:
                    completed[symbol] = self._ticks.bars_between(symbol, start_ns - iv + 1, now_ns - iv + 1)
        for symbol in self._symbols("bars"):
            for b in completed[symbol]:
                items.append((b.ts_ns + iv, _T_ORDER["b"], symbol, self._bar_msg("b", b)))
        for symbol in self._symbols("dailyBars"):
            if completed[symbol]:
                last_end = completed[symbol][-1].ts_ns + iv
                stamp_from = last_end - 86_400 * NS_PER_S
                daily = self._ticks.daily_bars_asof(symbol, stamp_from, last_end, last_end)
                if daily:
                    items.append((last_end, _T_ORDER["d"], symbol, self._bar_msg("d", daily[-1])))
        items.sort(key=lambda item: item[:3])
        out: list[dict[str, Any]] = []
        for _, _, _, message in items:
            if self._venue_call("draw_market_data_drop"):
                self.dropped_messages += 1
                continue
            out.append(message)
        return out

    def _trade_msg(self, t: FakeTrade) -> dict[str, Any]:
        return {
            "T": "t",
            "S": t.symbol,
            "i": t.trade_id,
            "x": self._exchange(),
            "p": float(t.price),
            "s": t.size,
            "c": ["@"],
            "t": self._time(t.ts_ns),
            "z": "C",
        }

    def _quote_msg(self, q: FakeQuote) -> dict[str, Any]:
        x = self._exchange()
        return {
            "T": "q",
            "S": q.symbol,
            "ax": x,
            "ap": float(q.ask_price),
            "as": q.ask_size,
            "bx": x,
            "bp": float(q.bid_price),
            "bs": q.bid_size,
            "c": ["R"],
            "t": self._time(q.ts_ns),
            "z": "C",
        }

    def _bar_msg(self, kind: str, b: FakeBar) -> dict[str, Any]:
        return {
            "T": kind,
            "S": b.symbol,
            "o": float(b.open),
            "h": float(b.high),
            "l": float(b.low),
            "c": float(b.close),
            "v": b.volume,
            "n": b.trade_count,
            "vw": float(b.vwap),
            "t": self._time(b.ts_ns),
        }

    def _exchange(self) -> str:
        return "V" if self.feed == "iex" else "Q"

    def _time(self, ts_ns: int) -> Any:
        if self.codec == "msgpack":
            return msgpack.Timestamp.from_unix_nano(ts_ns)
        return rfc3339_ns(ts_ns)

    # --- codec, outbox, faults ------------------------------------------------------------------------
    def _frame(self, messages: Sequence[dict[str, Any]]) -> Frame:
        if self.codec == "msgpack":
            return Frame(msgpack.packb(list(messages), use_bin_type=True))
        return Frame(encode(list(messages)).decode())

    def _decode(self, data: str | bytes) -> Any:
        try:
            if isinstance(data, str):
                return json.loads(data)
            if self.codec == "msgpack":
                try:
                    return msgpack.unpackb(data, raw=False, timestamp=0)
                except (ValueError, msgpack.UnpackException):
                    pass  # a JSON client on a msgpack socket: fall through to JSON
            return json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None

    def _push(self, item: Outgoing) -> None:
        if len(self._outbox) >= self._outbox_max:
            self._outbox.popleft()
            self.dropped_frames += 1
        self._outbox.append(item)

    def _venue_call(self, method: str, *args: Any) -> Any:
        """Fault questions go to the venue (its FaultInjector decides); a venue without them has no faults."""
        fn = getattr(self.venue, method, None)
        return fn(*args) if fn is not None else None


def decode_frames(frames: Iterable[str | bytes]) -> list[dict[str, Any]]:
    """Every message in a run of frames (tests, diagnostics); msgpack Timestamps decode to epoch ns."""
    out: list[dict[str, Any]] = []
    for data in frames:
        batch = json.loads(data) if isinstance(data, str) else msgpack.unpackb(data, raw=False, timestamp=2)
        out.extend(batch)
    return out
