"""Wire decoding: exact Decimals, nanosecond times, and malformed frames that are skipped, never raised."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.alpaca import models as wire
from adapters.alpaca.decoders import (
    Authorized,
    Control,
    FrameDecodeError,
    Listening,
    decode_market_frame,
    decode_trading_frame,
)
from adapters.alpaca.errors import ResponseDecodeError
from core.model import Bar, OrderClass, OrderType, Quote, Side, TradeUpdate
from tests.alpaca.wire_samples import bar_msg, market_frame, order_json, quote_msg, trade_update_frame


def test_rfc3339_keeps_nanoseconds_and_offsets() -> None:
    assert wire.rfc3339_to_ns("1970-01-01T00:00:00Z") == 0
    assert wire.rfc3339_to_ns("2024-01-02T14:30:01.123456789Z") == 1_704_205_801_123_456_789
    assert wire.rfc3339_to_ns("2024-01-02T09:30:01.5-05:00") == 1_704_205_801_500_000_000
    assert wire.rfc3339_to_ns("2024-01-02T14:30:01+00:00") == 1_704_205_801_000_000_000
    with pytest.raises(ResponseDecodeError):
        wire.rfc3339_to_ns("yesterday")
    with pytest.raises(ResponseDecodeError):
        wire.rfc3339_to_ns("2024-13-02T14:30:01Z")


@given(st.integers(min_value=0, max_value=4_102_444_800 * 10**9))
def test_ns_rfc3339_round_trip(ts_ns: int) -> None:
    assert wire.rfc3339_to_ns(wire.ns_to_rfc3339(ts_ns)) == ts_ns


def test_order_decodes_strings_to_decimal_and_maps_enums() -> None:
    body = msgspec.json.encode(order_json(qty="10.5", filled_qty="3", filled_avg_price="185.123456789"))
    order = wire.order_from_wire(msgspec.json.decode(body, type=wire.WireOrder))
    assert order.qty == Decimal("10.5") and isinstance(order.qty, Decimal)
    assert order.filled_avg_price == Decimal("185.123456789")
    assert order.side is Side.BUY and order.type is OrderType.MARKET and order.order_class is OrderClass.SIMPLE
    assert order.created_at_ns == 1_704_205_800_100_000_000


def test_order_with_nan_or_unknown_side_is_a_decode_error() -> None:
    bad = msgspec.json.decode(msgspec.json.encode(order_json(qty="NaN")), type=wire.WireOrder)
    with pytest.raises(ResponseDecodeError, match="finite"):
        wire.order_from_wire(bad)
    bad = msgspec.json.decode(msgspec.json.encode(order_json(side="sideways")), type=wire.WireOrder)
    with pytest.raises(ResponseDecodeError, match="side"):
        wire.order_from_wire(bad)


def test_a_notional_order_decodes_in_a_listing_and_on_the_stream() -> None:
    """Alpaca's own example of a dollar-amount order ("notional": "500", "qty": null), as a user buying $500 of NVDA
    in Alpaca's app creates it: it must not break a listing (reconciliation, resync and the kill switch's cancel
    verification all list orders) nor be dropped from the trading stream (issue 17)."""
    page = msgspec.json.encode([order_json(client_order_id="app-1", symbol="NVDA", qty=None, notional="500"),
                                order_json()])
    orders = [wire.order_from_wire(w) for w in msgspec.json.decode(page, type=list[wire.WireOrder])]
    assert [(o.symbol, o.qty, o.notional) for o in orders] == [("NVDA", Decimal(0), Decimal(500)),
                                                              ("AAPL", Decimal(10), None)]
    frame = trade_update_frame("partial_fill", status="partially_filled", qty=None, notional="500",
                               filled_qty="2.5", filled_avg_price="185.12")
    update = decode_trading_frame(frame)
    assert isinstance(update, TradeUpdate)
    assert update.order.qty == Decimal("2.5") and update.order.notional == Decimal(500)  # filled so far stands in
    neither = msgspec.json.decode(msgspec.json.encode(order_json(qty=None)), type=wire.WireOrder)
    with pytest.raises(ResponseDecodeError, match="neither qty nor notional"):
        wire.order_from_wire(neither)


def test_trade_update_frame_text_and_binary() -> None:
    frame = trade_update_frame("fill", status="filled", filled_qty="10", filled_avg_price="185.12")
    for data in (frame, frame.decode()):
        msg = decode_trading_frame(data)
        assert isinstance(msg, TradeUpdate)
        assert msg.event == "fill" and msg.qty == Decimal("10") and msg.price == Decimal("185.12")
        assert msg.ts_ns == 1_704_205_801_123_456_789
        assert msg.order.filled_qty == Decimal("10")


def test_trading_control_frames() -> None:
    auth = decode_trading_frame(b'{"stream":"authorization","data":{"status":"authorized","action":"authenticate"}}')
    assert auth == Authorized(ok=True, status="authorized")
    denied = decode_trading_frame('{"stream":"authorization","data":{"status":"unauthorized"}}')
    assert isinstance(denied, Authorized) and not denied.ok
    assert decode_trading_frame('{"stream":"listening","data":{"streams":["trade_updates"]}}') == Listening(
        streams=("trade_updates",)
    )


@pytest.mark.parametrize(
    "frame",
    [b"", b"{", b"[]", b'{"stream":"trade_updates"}', b'{"stream":"trade_updates","data":{"event":"fill"}}',
     trade_update_frame()[:-7], trade_update_frame().replace(b'"qty":"10"', b'"qty":"ten"'), b"\xff\xfe"],
)
def test_malformed_trading_frames_raise_frame_decode_error(frame: bytes) -> None:
    with pytest.raises(FrameDecodeError):
        decode_trading_frame(frame)


def test_market_frame_msgpack_bars_quotes_and_controls() -> None:
    frame = market_frame({"T": "success", "msg": "authenticated"}, bar_msg(), quote_msg(), {"T": "t", "S": "AAPL"})
    messages, skipped = decode_market_frame(frame)
    assert skipped == 0
    assert messages[0] == Control(kind="success", msg="authenticated")
    bar, quote = messages[1], messages[2]
    assert isinstance(bar, Bar) and bar.close == Decimal("185.64") and bar.ts_ns == 1_704_205_800_000_000_000
    assert isinstance(quote, Quote) and quote.ask_size == Decimal(2) and quote.ts_ns == 1_704_205_800_000_000_001
    assert len(messages) == 3  # the trade message is ignored, not an error


def test_market_frame_json_text_with_rfc3339_time() -> None:
    text = '[{"T":"q","S":"MSFT","ap":10.5,"as":1,"bp":10.4,"bs":2,"t":"2024-01-02T14:30:00Z"}]'
    messages, skipped = decode_market_frame(text)
    assert skipped == 0 and isinstance(messages[0], Quote) and messages[0].bid_price == Decimal("10.4")


def test_one_bad_element_is_skipped_alone() -> None:
    bad = bar_msg()
    del bad["c"]
    messages, skipped = decode_market_frame(market_frame(bar_msg("A"), bad, {"T": "??"}, 7, quote_msg("B")))
    assert skipped == 3
    assert [m.symbol for m in messages if isinstance(m, Bar | Quote)] == ["A", "B"]


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_market_frames_never_raise_anything_but_frame_decode_error(data: bytes) -> None:
    with contextlib.suppress(FrameDecodeError):
        decode_market_frame(data)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_fuzz_truncated_and_mutated_trading_frames(data: st.DataObject) -> None:
    frame = trade_update_frame("partial_fill", status="partially_filled", filled_qty="4")
    cut = data.draw(st.integers(min_value=0, max_value=len(frame)))
    pos = data.draw(st.integers(min_value=0, max_value=len(frame) - 1))
    byte = data.draw(st.integers(min_value=0, max_value=255))
    for candidate in (frame[:cut], frame[:pos] + bytes([byte]) + frame[pos + 1 :]):
        with contextlib.suppress(FrameDecodeError):
            decode_trading_frame(candidate)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_fuzz_truncated_market_frames(data: st.DataObject) -> None:
    frame = market_frame(bar_msg(), quote_msg(), bar_msg("MSFT"))
    cut = data.draw(st.integers(min_value=0, max_value=len(frame)))
    try:
        messages, _skipped = decode_market_frame(frame[:cut])
    except FrameDecodeError:
        return
    assert all(isinstance(m, Bar | Quote | Control) for m in messages)


def test_a_non_trade_activity_decodes_as_alpaca_documents_it() -> None:
    """Alpaca's sample NTA (a dividend) and the sparse shapes fees and journals arrive in."""
    sample = (b'{"activity_type":"DIV","id":"20190801011955195::5f596936-6f23-4cef-bdf1-3806aae57dbf",'
              b'"date":"2019-08-01","net_amount":"1.02","symbol":"T","qty":"2","per_share_amount":"0.51"}')
    w = msgspec.json.decode(sample, type=wire.WireNonTradeActivity)
    activity = wire.non_trade_activity_from_wire(w)
    assert (activity.activity_type, activity.net_amount, activity.symbol, activity.qty) == (
        "DIV", Decimal("1.02"), "T", Decimal(2))
    assert activity.per_share_amount == Decimal("0.51")
    assert activity.ts_ns == wire.rfc3339_to_ns("2019-08-01T01:19:55.195Z")  # the id's time prefix
    fee = wire.non_trade_activity_from_wire(msgspec.json.decode(
        b'{"activity_type":"fee","id":"plain-id","date":"2024-03-05","net_amount":"-0.02","symbol":null,'
        b'"qty":null,"description":"REG FEE"}', type=wire.WireNonTradeActivity))
    assert (fee.activity_type, fee.net_amount, fee.symbol, fee.qty, fee.description) == (
        "FEE", Decimal("-0.02"), None, None, "REG FEE")
    assert fee.ts_ns == wire.rfc3339_to_ns("2024-03-05T00:00:00Z")  # no time in the id: its date
    with pytest.raises(ResponseDecodeError):
        wire.non_trade_activity_from_wire(wire.WireNonTradeActivity(id="x", activity_type="INT"))
