"""Sans-IO decoders for Alpaca's two WebSocket streams: frames in, typed core messages out.

A frame that does not decode raises ``FrameDecodeError``; inside a market-data array each bad element is
skipped alone. The stream tasks log, count and skip; nothing here ever tears a connection down.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgpack
import msgspec

from adapters.alpaca import models as wire
from adapters.alpaca.errors import ResponseDecodeError
from core.model import Bar, Quote, TradeUpdate

MAX_FRAME_BYTES = 1_048_576  # trio-websocket's default max_message_size; anything larger is refused


class FrameDecodeError(ValueError):
    """A stream frame we cannot use (spec 3.2 "deserialization error": log, skip, count)."""


# --- trading stream -----------------------------------------------------------------------------------


class Authorized(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    status: str


class Listening(msgspec.Struct, frozen=True, kw_only=True):
    streams: tuple[str, ...]


class StreamError(msgspec.Struct, frozen=True, kw_only=True):
    message: str


class Ignored(msgspec.Struct, frozen=True, kw_only=True):
    stream: str


class _ListeningData(msgspec.Struct, kw_only=True):
    streams: list[str] = msgspec.field(default_factory=list)


TradingMessage = Authorized | Listening | TradeUpdate | StreamError | Ignored


def decode_trading_frame(data: str | bytes) -> TradingMessage:
    """One trading-stream frame (text or binary JSON, alpaca-wire.md §4) -> one message."""
    if len(data) > MAX_FRAME_BYTES:
        raise FrameDecodeError(f"frame of {len(data)} bytes exceeds {MAX_FRAME_BYTES}")
    try:
        env = msgspec.json.decode(data, type=wire.WireStreamEnvelope)
        raw = bytes(env.data)
        if env.stream == "trade_updates":
            return wire.trade_update_from_wire(msgspec.json.decode(raw, type=wire.WireTradeUpdate))
        if env.stream == "authorization":
            auth = msgspec.json.decode(raw if raw != b"null" else b"{}", type=wire.WireAuthorization)
            return Authorized(ok=auth.status == "authorized", status=auth.status)
        if env.stream == "listening":
            listening = msgspec.json.decode(raw if raw != b"null" else b"{}", type=_ListeningData)
            return Listening(streams=tuple(listening.streams))
        if env.stream == "error":
            return StreamError(message=raw.decode("utf-8", "replace")[:200])
        return Ignored(stream=env.stream)
    except (msgspec.DecodeError, msgspec.ValidationError, ResponseDecodeError, UnicodeDecodeError) as exc:
        raise FrameDecodeError(f"trading frame: {exc}") from None


def encode_trading_auth(key_id: str, secret_key: str) -> str:
    return msgspec.json.encode(
        {"action": "authenticate", "data": {"key_id": key_id, "secret_key": secret_key}}
    ).decode()


def encode_trading_listen(streams: Sequence[str] = ("trade_updates",)) -> str:
    return msgspec.json.encode({"action": "listen", "data": {"streams": list(streams)}}).decode()


# --- market data stream ---------------------------------------------------------------------------------


class Control(msgspec.Struct, frozen=True, kw_only=True):
    """``success`` / ``error`` / ``subscription`` control messages."""

    kind: str
    msg: str = ""
    code: int = 0


MarketMessage = Bar | Quote | Control

_BAR_TYPES = frozenset({"b", "u", "d"})
_IGNORED_TYPES = frozenset({"t", "s", "l", "c", "x", "i"})  # trades, statuses, LULD ... not subscribed to


def _unpack(data: str | bytes) -> Any:
    if isinstance(data, bytes) and data[:1] not in (b"[", b"{"):
        # timestamp=2: msgpack Timestamp ext -> int nanoseconds, no datetime rounding (alpaca-wire.md §5)
        return msgpack.unpackb(data, timestamp=2, strict_map_key=False, raw=False)
    return msgspec.json.decode(data)


def decode_market_frame(data: str | bytes) -> tuple[list[MarketMessage], int]:
    """A market-data frame (msgpack binary or JSON text) -> (messages, number of bad elements skipped).

    Floats on this wire are IEEE doubles already; they become Decimal via their shortest repr.
    """
    if len(data) > MAX_FRAME_BYTES:
        raise FrameDecodeError(f"frame of {len(data)} bytes exceeds {MAX_FRAME_BYTES}")
    try:
        payload = _unpack(data)
    except Exception as exc:  # msgpack raises a zoo of types (ExtraData, FormatError, ValueError, ...)
        raise FrameDecodeError(f"market frame: {exc.__class__.__name__}") from None
    items = payload if isinstance(payload, list) else [payload]
    out: list[MarketMessage] = []
    skipped = 0
    for item in items:
        try:
            message = _decode_market_item(item)
        except (msgspec.ValidationError, ResponseDecodeError, TypeError, ValueError, OverflowError):
            skipped += 1
            continue
        if message is not None:
            out.append(message)
    return out, skipped


def _decode_market_item(item: Any) -> MarketMessage | None:
    if not isinstance(item, dict):
        raise TypeError("market message is not a map")
    kind = item.get("T")
    if not isinstance(kind, str):
        raise TypeError("market message without T")
    if kind in _BAR_TYPES:
        bar = msgspec.convert(item, wire.StreamBar)
        return wire.bar_from_wire(bar.S, bar)
    if kind == "q":
        quote = msgspec.convert(item, wire.StreamQuote)
        return wire.quote_from_wire(quote.S, quote)
    if kind in ("success", "error", "subscription"):
        ctl = msgspec.convert(item, wire.StreamControl)
        return Control(kind=ctl.T, msg=ctl.msg, code=ctl.code)
    if kind in _IGNORED_TYPES:
        return None
    raise TypeError(f"unknown market message type {kind!r}")


def encode_market(message: dict[str, Any], *, codec: str) -> str | bytes:
    if codec == "msgpack":
        packed: bytes = msgpack.packb(message)
        return packed
    return msgspec.json.encode(message).decode()


def encode_market_auth(key_id: str, secret_key: str, *, codec: str) -> str | bytes:
    return encode_market({"action": "auth", "key": key_id, "secret": secret_key}, codec=codec)


def encode_market_subscribe(
    *, bars: Sequence[str], quotes: Sequence[str], codec: str, action: str = "subscribe"
) -> str | bytes:
    message: dict[str, Any] = {"action": action}
    if bars:
        message["bars"] = sorted(set(bars))
    if quotes:
        message["quotes"] = sorted(set(quotes))
    return encode_market(message, codec=codec)
