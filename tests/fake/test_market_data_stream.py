"""The market-data stream session (sans-IO): alpaca-py's msgpack protocol, JSON, faults, data on advance."""

from __future__ import annotations

import json
from typing import Any

import msgpack
from alpaca.data.models import Bar, Quote, Trade

from adapters.fake.data_stream import CHANNELS, DataStreamSession, decode_frames
from adapters.fake.faults import FaultEvent, FaultPlan
from adapters.fake.interfaces import Close, Frame, Outgoing
from tests.fake.test_market_support import MINUTE_NS, NS, OPEN_NS, make_venue


def _msgs(items: list[Outgoing]) -> list[dict[str, Any]]:
    return decode_frames([i.data for i in items if isinstance(i, Frame)])


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj)


def _session(venue: Any | None = None, **kwargs: Any) -> tuple[Any, DataStreamSession]:
    venue = venue or make_venue()
    session = DataStreamSession(venue, "iex", **kwargs)
    venue.register_data_session(session)
    assert _msgs(session.on_open()) == [{"T": "success", "msg": "connected"}]
    return venue, session


def _authed(venue: Any | None = None, **kwargs: Any) -> tuple[Any, DataStreamSession]:
    venue, session = _session(venue, **kwargs)
    assert _msgs(session.receive(_pack({"action": "auth", "key": "key", "secret": "secret"}))) == [
        {"T": "success", "msg": "authenticated"}
    ]
    return venue, session


def test_auth_and_subscription_protocol() -> None:
    _, s = _session()
    assert _msgs(s.receive(_pack({"action": "subscribe", "bars": ["NVDA"]}))) == [
        {"T": "error", "code": 401, "msg": "not authenticated"}
    ]
    s.receive(_pack({"action": "auth", "key": "k", "secret": "s"}))
    assert _msgs(s.receive(_pack({"action": "auth", "key": "k", "secret": "s"}))) == [
        {"T": "error", "code": 403, "msg": "already authenticated"}
    ]
    ack = _msgs(
        s.receive(_pack({"action": "subscribe", "trades": ["nvda"], "quotes": ["*"], "bars": ["ORCL"]}))
    )
    assert ack == [
        {
            "T": "subscription",
            "trades": ["NVDA"],
            "quotes": ["*"],
            "bars": ["ORCL"],
            "updatedBars": [],
            "dailyBars": [],
            "statuses": [],
            "lulds": [],
            "corrections": ["NVDA"],
            "cancelErrors": ["NVDA"],
        }
    ]
    assert list(ack[0])[1:] == list(CHANNELS)
    ack = _msgs(s.receive(_pack({"action": "unsubscribe", "trades": ["NVDA"], "quotes": ["*"]})))[0]
    assert (
        ack["trades"] == [] and ack["quotes"] == [] and ack["corrections"] == [] and ack["bars"] == ["ORCL"]
    )


def test_wrong_credentials_get_402_and_the_session_stays_usable() -> None:
    _, s = _session(make_venue(key="key"))
    assert _msgs(s.receive(_pack({"action": "auth", "key": "key", "secret": "nope"}))) == [
        {"T": "error", "code": 402, "msg": "auth failed"}
    ]
    assert (
        _msgs(s.receive(_pack({"action": "auth", "key": "key", "secret": "secret"})))[0]["msg"]
        == "authenticated"
    )


def test_malformed_input_is_400_invalid_syntax_and_the_session_stays_up() -> None:
    _, s = _authed()
    bad_inputs: list[str | bytes] = [
        b"\xc1\xff not msgpack",
        _pack([1, 2, 3]),
        _pack({"action": "dance"}),
        _pack({"no": "action"}),
        "{not json",
        _pack({"action": "subscribe", "bars": "NVDA"}),
        _pack({"action": "subscribe", "bars": [1]}),
    ]
    for raw in bad_inputs:
        assert _msgs(s.receive(raw)) == [{"T": "error", "code": 400, "msg": "invalid syntax"}], raw
    assert not s.closed and s.errors_sent == len(bad_inputs)
    assert _msgs(s.receive(_pack({"action": "subscribe", "bars": ["NVDA"]})))[0]["T"] == "subscription"


def test_data_arrives_on_advance_with_msgpack_timestamps_that_alpaca_py_parses() -> None:
    venue, s = _authed()
    s.receive(
        _pack(
            {
                "action": "subscribe",
                "trades": ["ORCL"],
                "quotes": ["NVDA"],
                "bars": ["*"],
                "dailyBars": ["NVDA"],
            }
        )
    )
    venue.advance_to(OPEN_NS + 2 * MINUTE_NS)
    frames = [i for i in s.drain() if isinstance(i, Frame)]
    assert frames and all(isinstance(f.data, bytes) for f in frames)  # binary frames for alpaca-py
    raw = [m for f in frames for m in msgpack.unpackb(f.data, timestamp=0)]
    assert all(isinstance(m["t"], msgpack.Timestamp) for m in raw)  # ext type -1, as alpaca-py requires
    kinds = [(m["T"], m["S"]) for m in raw]
    # 09:31 and 09:32 ticks (the 09:30 tick was before we subscribed); bars as they complete
    assert kinds.count(("q", "NVDA")) == 2 and kinds.count(("t", "ORCL")) == 2
    assert (
        kinds.count(("b", "NVDA")) == 2
        and kinds.count(("b", "ORCL")) == 2
        and kinds.count(("b", "YHOO")) == 2
    )
    assert ("d", "NVDA") in kinds
    for m in raw:  # what alpaca-py's StockDataStream._cast does with each message
        symbol = m["S"]
        model = {"q": Quote, "t": Trade, "b": Bar, "d": Bar}[m["T"]]
        mapped = {k: v for k, v in m.items() if k not in ("T", "S")}
        mapped["t"] = m["t"].to_datetime()
        parsed = model(symbol, mapped)
        assert parsed.timestamp.tzinfo is not None
    bar = next(m for m in raw if m["T"] == "b")
    assert bar["t"].to_unix_nano() == OPEN_NS  # stamped at its start, sent when it completed
    stamps = [m["t"].to_unix_nano() for m in raw if m["T"] != "d"]
    assert max(stamps) <= venue.now_ns


def test_on_advance_is_idempotent_whoever_calls_it() -> None:
    venue, s = _authed()
    s.receive(_pack({"action": "subscribe", "quotes": ["NVDA"]}))
    venue.advance_to(OPEN_NS + 3 * MINUTE_NS)  # the venue calls on_advance itself
    s.on_advance(OPEN_NS, venue.now_ns)  # ...and so may a front-end
    s.on_advance(OPEN_NS + MINUTE_NS, venue.now_ns)
    quotes = [m for m in _msgs(s.drain()) if m["T"] == "q"]
    assert [m["t"] for m in quotes] == [OPEN_NS + k * MINUTE_NS for k in (1, 2, 3)]


def test_json_codec_sends_text_frames_with_rfc3339_times() -> None:
    venue = make_venue()
    s = DataStreamSession.for_headers(venue, "sip", {"content-type": "application/json"})
    venue.register_data_session(s)
    assert s.codec == "json"
    s.on_open()
    s.receive(json.dumps({"action": "auth", "key": "a", "secret": "b"}))
    s.receive(json.dumps({"action": "subscribe", "quotes": ["NVDA"]}))
    venue.advance_to(OPEN_NS + MINUTE_NS)
    (frame,) = s.drain()
    assert isinstance(frame, Frame) and isinstance(frame.data, str)
    (quote,) = json.loads(frame.data)
    assert quote["t"] == "2014-06-02T13:31:00.000000000Z" and quote["ax"] == "Q"  # sip feed exchange code
    assert (
        DataStreamSession.for_headers(venue, "iex", {"content-type": "application/msgpack"}).codec
        == "msgpack"
    )


def test_slow_client_outbox_is_bounded_drop_oldest() -> None:
    venue, s = _authed(outbox_max_frames=5)
    s.receive(_pack({"action": "subscribe", "quotes": ["NVDA"]}))
    for k in range(1, 13):
        venue.advance_to(OPEN_NS + k * MINUTE_NS)
    kept = _msgs(s.drain())
    assert len(kept) == 5 and s.dropped_frames == 7
    assert [m["t"] for m in kept] == [OPEN_NS + k * MINUTE_NS for k in range(8, 13)]  # the newest survive


def test_auth_timeout_closes_an_idle_connection() -> None:
    venue, s = _session()
    venue.advance_to(OPEN_NS + 9 * NS)
    assert s.drain() == []
    venue.advance_to(OPEN_NS + 10 * NS)
    items = s.drain()
    assert _msgs(items) == [{"T": "error", "code": 404, "msg": "auth timeout"}]
    assert isinstance(items[-1], Close) and s.closed


def test_symbol_limit_is_405_and_keeps_the_old_subscription() -> None:
    _, s = _authed(symbol_limit=1)
    s.receive(_pack({"action": "subscribe", "quotes": ["NVDA"]}))
    assert _msgs(s.receive(_pack({"action": "subscribe", "trades": ["ORCL"]}))) == [
        {"T": "error", "code": 405, "msg": "symbol limit exceeded"}
    ]
    assert s.subscriptions["quotes"] == {"NVDA"} and s.subscriptions["trades"] == set()


def _plan(**kwargs: Any) -> FaultPlan:
    events = tuple(FaultEvent(stream="data", **e) for e in kwargs.pop("events", ()))
    return FaultPlan(events=events, **kwargs)


def test_faults_mute_drop_close_and_evict() -> None:
    mute = _plan(events=[{"kind": "ws_mute", "at_ns": OPEN_NS + MINUTE_NS, "duration_s": 120.0}])
    venue, s = _authed(make_venue(faults=mute))
    s.receive(_pack({"action": "subscribe", "quotes": ["NVDA"]}))
    venue.advance_to(OPEN_NS + 5 * MINUTE_NS)
    stamps = [m["t"] for m in _msgs(s.drain())]
    assert OPEN_NS + 2 * MINUTE_NS not in stamps and OPEN_NS + 4 * MINUTE_NS in stamps  # lost while mute
    assert s.lost_messages > 0

    venue, s = _authed(make_venue(faults=_plan(market_data_drop_p=1.0)))
    s.receive(_pack({"action": "subscribe", "quotes": ["NVDA"]}))
    venue.advance_to(OPEN_NS + 3 * MINUTE_NS)
    assert _msgs(s.drain()) == [] and s.dropped_messages == 3

    close = _plan(events=[{"kind": "ws_close", "at_ns": OPEN_NS + MINUTE_NS, "code": 1006}])
    venue, s = _authed(make_venue(faults=close))
    venue.advance_to(OPEN_NS + 2 * MINUTE_NS)
    items = s.drain()
    assert items == [Close(1006, "fault: ws_close")] and s.closed

    evict = _plan(events=[{"kind": "eviction_406", "at_ns": OPEN_NS + MINUTE_NS, "duration_s": 60.0}])
    venue, s = _authed(make_venue(faults=evict))
    venue.advance_to(OPEN_NS + MINUTE_NS)
    items = s.drain()
    assert _msgs(items) == [{"T": "error", "code": 406, "msg": "connection limit exceeded"}]
    assert isinstance(items[-1], Close)
    late = DataStreamSession(venue, "iex")  # while the eviction window lasts, new connections get 406
    refused = late.on_open()
    assert _msgs(refused) == [{"T": "error", "code": 406, "msg": "connection limit exceeded"}]
    assert isinstance(refused[-1], Close)


def test_stale_quotes_fault_stops_quote_ticks() -> None:
    stale = FaultPlan(
        events=(FaultEvent(kind="quote_stale", at_ns=OPEN_NS + MINUTE_NS, symbol="NVDA", duration_s=180.0),)
    )
    venue, s = _authed(make_venue(faults=stale))
    s.receive(_pack({"action": "subscribe", "quotes": ["NVDA", "ORCL"]}))
    venue.advance_to(OPEN_NS + 6 * MINUTE_NS)
    ticks = {(m["S"], (m["t"] - OPEN_NS) // MINUTE_NS) for m in _msgs(s.drain())}
    assert {("NVDA", k) for k in (2, 3)}.isdisjoint(ticks)  # frozen while stale
    assert ("NVDA", 5) in ticks and {("ORCL", k) for k in range(1, 7)} <= ticks
