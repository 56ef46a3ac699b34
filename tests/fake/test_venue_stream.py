"""The fake venue's trading stream (/stream): handshake, listen, trade_updates frames, malformed input, limits."""

from __future__ import annotations

import json
from typing import Any

import pytest
from alpaca.trading.models import TradeUpdate

from adapters.fake import trading_stream
from adapters.fake.faults import FaultPlan
from adapters.fake.interfaces import Close, Frame
from tests.fake.test_venue_support import events, listening_session, make_venue, submit

AUTH = {"action": "authenticate", "data": {"key_id": "K", "secret_key": "S"}}
LISTEN = {"action": "listen", "data": {"streams": ["trade_updates"]}}


def _decode(items: list[Any]) -> list[Any]:
    return [json.loads(i.data) if isinstance(i, Frame) else i for i in items]


def test_handshake_has_no_greeting_then_authorization_and_listening() -> None:
    venue, _ = make_venue()
    session = venue.open_trading_stream()
    assert session.on_open() == []
    assert _decode(session.receive(json.dumps(AUTH))) == [
        {"stream": "authorization", "data": {"status": "authorized", "action": "authenticate"}}
    ]
    assert _decode(session.receive(json.dumps(LISTEN))) == [
        {"stream": "listening", "data": {"streams": ["trade_updates"]}}
    ]
    assert session.muted is False


def test_legacy_auth_and_binary_client_frames_are_accepted() -> None:
    venue, _ = make_venue()
    session = venue.open_trading_stream()
    reply = _decode(session.receive(json.dumps({"action": "auth", "key": "K", "secret": "S"}).encode()))
    assert reply[0]["data"]["status"] == "authorized"


def test_wrong_credentials_get_unauthorized_then_close() -> None:
    venue, _ = make_venue(key_id="K", secret_key="right")
    session = venue.open_trading_stream()
    reply = session.receive(json.dumps(AUTH))
    assert json.loads(reply[0].data)["data"] == {"status": "unauthorized", "action": "authenticate"}
    assert isinstance(reply[1], Close) and reply[1].code == 1008
    assert session.receive(json.dumps(AUTH)) == []  # closed sessions say nothing more


def test_listen_before_auth_is_refused_without_closing() -> None:
    venue, _ = make_venue()
    session = venue.open_trading_stream()
    assert _decode(session.receive(json.dumps(LISTEN))) == [
        {"stream": "authorization", "data": {"action": "listen", "status": "unauthorized"}}
    ]
    assert not session.closed


@pytest.mark.parametrize(
    ("message", "text"),
    [
        (b"\xff", "not JSON"),
        ("{oops", "not JSON"),
        ("[1]", "expected an object"),
        ('{"action": 5}', "expected an object"),
        ('{"action": "dance"}', "unknown action 'dance'"),
        ('{"action": "listen", "data": {"streams": "trade_updates"}}', "must be a list"),
    ],
)
def test_malformed_client_input_gets_an_error_frame_and_the_session_stays_up(message: Any, text: str) -> None:
    venue, _ = make_venue()
    session = venue.open_trading_stream()
    session.receive(json.dumps(AUTH))
    reply = _decode(session.receive(message))
    assert len(reply) == 1 and reply[0]["stream"] == "error" and text in reply[0]["data"]["error_message"]
    assert not session.closed
    assert _decode(session.receive(json.dumps(AUTH)))[0]["stream"] == "authorization"


def test_trade_updates_are_full_alpaca_payloads() -> None:
    venue, _ = make_venue()
    session = listening_session(venue)
    submit(venue)
    frames = session.drain()
    assert all(isinstance(f, Frame) and isinstance(f.data, str) for f in frames)
    new, fill = events(frames)
    assert set(new) == {"event", "order", "timestamp"}  # no execution fields on non-fills
    assert list(fill) == ["event", "execution_id", "order", "timestamp", "price", "qty", "position_qty"]
    parsed = TradeUpdate(**fill)
    assert parsed.event == "fill" and parsed.qty == 10.0 and parsed.position_qty == 10.0
    assert parsed.order.status == "filled" and parsed.timestamp.year == 2024
    assert session.delivered == 2 and venue.event_log[-1].event == "fill"


def test_binary_session_sends_binary_frames() -> None:
    venue, _ = make_venue()
    session = listening_session(venue, binary=True)
    submit(venue)
    frames = session.drain()
    assert frames and all(isinstance(f.data, bytes) for f in frames)
    assert json.loads(frames[-1].data)["data"]["event"] == "fill"


def test_unlisten_stops_updates_and_closed_sessions_are_forgotten() -> None:
    venue, _ = make_venue()
    session = listening_session(venue)
    session.drain()
    assert _decode(session.receive(json.dumps({"action": "listen", "data": {"streams": []}}))) == [
        {"stream": "listening", "data": {"streams": []}}
    ]
    submit(venue)
    assert session.drain() == []
    other = listening_session(venue)
    other.on_close()
    submit(venue, side="sell")
    assert other.drain() == [] and venue._trading_sessions == [session]


def test_every_listening_session_gets_each_update() -> None:
    venue, _ = make_venue()
    first, second = listening_session(venue), listening_session(venue)
    submit(venue)
    assert events(first.drain()) == events(second.drain()) != []


def test_one_stream_per_key_refuses_the_second_connection() -> None:
    venue, _ = make_venue(faults=FaultPlan(one_stream_per_key=True))
    first = listening_session(venue)
    second = venue.open_trading_stream()
    reply = second.receive(json.dumps({"action": "authenticate", "data": {"key_id": "KEY", "secret_key": "x"}}))
    assert json.loads(reply[0].data)["data"]["code"] == 406 and isinstance(reply[1], Close)
    assert not first.closed
    first.on_close()
    third = venue.open_trading_stream()
    assert (
        _decode(third.receive(json.dumps(AUTH | {"data": {"key_id": "KEY", "secret_key": "x"}})))[0]["data"]["status"]
        == "authorized"
    )


def test_a_client_that_stops_reading_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trading_stream, "STREAM_BUFFER_MAX_MESSAGES", 3)
    venue, _ = make_venue()
    session = listening_session(venue)
    submit(venue)  # new, fill
    submit(venue)  # new (3rd frame), fill -> overflow
    out = session.drain()
    assert len(out) == 4 and all(isinstance(f, Frame) for f in out[:3])
    assert isinstance(out[-1], Close) and out[-1].reason == "slow client" and session.closed
    assert venue._trading_sessions == []


def test_trading_stream_frames_are_binary_by_default_and_text_on_request() -> None:
    """Alpaca's paper trading stream sends JSON in binary frames; ``trading_stream_frames = "text"`` opts out."""
    from tests.fake.test_venue_support import make_venue as _make
    from tests.fake.test_venue_support import submit as _submit

    for frames, kind in (("binary", bytes), ("text", str)):
        venue, _ = _make(trading_stream_frames=frames)
        session = venue.open_trading_stream()
        session.receive('{"action":"authenticate","data":{"key_id":"k","secret_key":"s"}}')
        session.receive('{"action":"listen","data":{"streams":["trade_updates"]}}')
        _submit(venue)
        out = session.drain()
        assert out and all(isinstance(f.data, kind) for f in out)
    try:
        _make(trading_stream_frames="msgpack")
    except ValueError as exc:
        assert "trading_stream_frames" in str(exc)
    else:
        raise AssertionError("an unknown frame type must be refused")
