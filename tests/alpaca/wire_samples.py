"""Alpaca wire samples (alpaca-wire.md §2, §4, §5) shared by the decoder tests."""

from __future__ import annotations

from typing import Any

import msgpack
import msgspec


def order_json(**overrides: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "id": "61e69015-8549-4bfd-b9c3-01e75843f47d",
        "client_order_id": "coid-1",
        "created_at": "2024-01-02T14:30:00.1Z",
        "updated_at": "2024-01-02T14:30:00.1Z",
        "submitted_at": "2024-01-02T14:30:00.1Z",
        "filled_at": None,
        "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415",
        "symbol": "AAPL",
        "asset_class": "us_equity",
        "notional": None,
        "qty": "10",
        "filled_qty": "0",
        "filled_avg_price": None,
        "order_class": "",
        "order_type": "market",
        "type": "market",
        "side": "buy",
        "time_in_force": "day",
        "limit_price": None,
        "stop_price": None,
        "status": "accepted",
        "extended_hours": False,
        "legs": None,
    }
    order.update(overrides)
    return order


def trade_update_frame(event: str = "fill", **order_overrides: Any) -> bytes:
    data: dict[str, Any] = {
        "event": event,
        "order": order_json(**order_overrides),
        "timestamp": "2024-01-02T14:30:01.123456789Z",
    }
    if event in ("fill", "partial_fill"):
        data.update(execution_id="e-1", price="185.12", qty="10", position_qty="10")
    return msgspec.json.encode({"stream": "trade_updates", "data": data})


def market_frame(*items: dict[str, Any]) -> bytes:
    packed: bytes = msgpack.packb(list(items), datetime=False)
    return packed


def ts(ns: int) -> msgpack.Timestamp:
    return msgpack.Timestamp.from_unix_nano(ns)


def bar_msg(symbol: str = "AAPL", t_ns: int = 1_704_205_800_000_000_000, close: float = 185.64) -> dict[str, Any]:
    return {"T": "b", "S": symbol, "o": 187.15, "h": 188.44, "l": 183.89, "c": close, "v": 82488700,
            "n": 1009074, "vw": 185.9, "t": ts(t_ns)}


def quote_msg(symbol: str = "AAPL", t_ns: int = 1_704_205_800_000_000_001) -> dict[str, Any]:
    return {"T": "q", "S": symbol, "ax": "V", "ap": 185.1, "as": 2, "bx": "V", "bp": 185.0, "bs": 3,
            "c": ["R"], "z": "C", "t": ts(t_ns)}
