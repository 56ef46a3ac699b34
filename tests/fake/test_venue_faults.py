"""Fault injection and rate limiting on the fake venue: plan parsing, every fault kind, 429 bucket and headers."""

from __future__ import annotations

import json
import tomllib
from decimal import Decimal
from typing import Any

import pytest

from adapters.fake.faults import FaultEvent, FaultInjector, FaultPlan, FaultPlanError
from adapters.fake.interfaces import Close, Frame
from tests.fake.test_venue_support import (
    MINUTE_NS,
    NS,
    START_NS,
    StubMarket,
    call,
    et_ns,
    events,
    listening_session,
    make_venue,
    ok,
    request,
    submit,
)

SCENARIO_FAULTS = """
[faults]
rest_429_p = 0.0
rest_5xx_p = 0.01
rest_timeout_after_accept_p = 0.0
trade_update_drop_p = 0.0
trade_update_duplicate_p = 0.0
trade_update_reorder_p = 0.0
market_data_drop_p = 0.0

[[faults.events]]
at = "10:15:00"
kind = "ws_close"
stream = "trading"
code = 1006
duration_s = 45

[[faults.events]]
at = "11:00:00"
kind = "position_drift"
symbol = "NVDA"
qty = "-10"

[[faults.events]]
at = "12:00"
kind = "manual_kill"
operator = "alice"
reason = "drill"
"""


def _plan(*events: dict[str, Any], **probabilities: Any) -> FaultPlan:
    return FaultPlan.from_toml_dict({**probabilities, "events": list(events)})


def test_plan_from_the_scenario_format_example() -> None:
    plan = FaultPlan.from_toml_dict(tomllib.loads(SCENARIO_FAULTS)["faults"])
    assert plan.rest_5xx_p == 0.01
    close, drift, kill = plan.events
    assert (close.kind, close.at, close.stream, close.code, close.duration_s) == (
        "ws_close",
        "10:15:00",
        "trading",
        1006,
        45.0,
    )
    assert (drift.symbol, drift.qty) == ("NVDA", Decimal("-10"))
    assert (kill.kind, kill.operator, kill.seconds_of_day()) == ("manual_kill", "alice", 12 * 3600)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"rest_429": 0.1}, "unknown key 'rest_429'"),
        ({"rest_429_p": 1.5}, "outside [0, 1]"),
        ({"rest_429_p": "0.1"}, "expected a probability"),
        ({"rest_429_p": True}, "expected a probability"),
        ({"one_stream_per_key": 1}, "expected true or false"),
        ({"events": {}}, "expected an array"),
        ({"events": [{"kind": "meteor", "at": "10:00:00"}]}, "'meteor' is not one of"),
        ({"events": [{"kind": "ws_close", "at": "10:00:00", "colour": "red"}]}, "unknown key 'colour'"),
        ({"events": [{"kind": "ws_mute", "at": "10:00:00"}]}, "needs key 'duration_s'"),
        ({"events": [{"kind": "ws_close"}]}, "exactly one of 'at'"),
        ({"events": [{"kind": "ws_close", "at": "10:00:00", "at_ns": 5}]}, "exactly one of 'at'"),
        ({"events": [{"kind": "ws_close", "at": "25:00:00"}]}, "HH:MM:SS"),
        ({"events": [{"kind": "ws_close", "at": "10:00:00", "stream": "news"}]}, "expected one of trading, data"),
        ({"events": [{"kind": "ws_close", "at": "10:00:00", "code": 4000}]}, "expected one of [1000"),
        ({"events": [{"kind": "ws_mute", "at": "10:00:00", "duration_s": -1}]}, "seconds >= 0"),
        ({"events": [{"kind": "position_drift", "at": "10:00:00", "symbol": "X", "qty": 1.5}]}, "decimal string"),
        ({"events": [{"kind": "position_drift", "at": "10:00:00", "symbol": "X", "qty": "0"}]}, "non-zero"),
        ({"events": [{"kind": "rest_slow", "at": "10:00:00", "duration_s": 1, "latency_ms": "fast"}]}, "integer"),
    ],
)
def test_plan_errors_name_the_key(table: dict[str, Any], message: str) -> None:
    with pytest.raises(FaultPlanError) as caught:
        FaultPlan.from_toml_dict(table)
    assert message in str(caught.value)


def test_events_at_wall_time_resolve_to_the_session_day() -> None:
    plan = _plan({"kind": "ws_close", "at": "10:15:00"}, {"kind": "ws_close", "at": "10:15:00", "day": 1})
    venue, _ = make_venue(faults=plan)
    venue.advance_to(et_ns(2024, 1, 4, 0, 0))
    assert [ts for ts, _ in venue.faults.fired] == [et_ns(2024, 1, 2, 10, 15), et_ns(2024, 1, 3, 10, 15)]


def test_fault_events_fire_exactly_at_their_time_inside_a_long_advance() -> None:
    venue, _ = make_venue(faults=_plan({"kind": "ws_close", "at_ns": START_NS + 90 * NS}))
    session = listening_session(venue)
    venue.advance_to(START_NS + 10 * MINUTE_NS)
    assert venue.faults.fired[0][0] == START_NS + 90 * NS
    assert session.drain() == [Close(1006, "fault: ws_close")]


def test_rest_429_and_5xx_draws_do_not_apply_the_request() -> None:
    venue, _ = make_venue(faults=_plan(rest_429_p=1.0))
    assert submit(venue) == (429, {"code": 42910000, "message": "rate limit exceeded"})
    assert venue.order_log == []
    venue, _ = make_venue(faults=_plan(rest_5xx_p=1.0))
    statuses = {submit(venue)[0] for _ in range(30)}
    assert statuses <= {500, 502, 503, 504} and len(statuses) > 1
    assert venue.order_log == []
    status, body = submit(venue)
    assert body["code"] == status * 100_000 + 10_000


def test_timeout_after_accept_applies_the_request_and_loses_the_response() -> None:
    venue, _ = make_venue(faults=_plan(rest_timeout_after_accept_p=1.0))
    response = venue.handle_rest(
        request(
            "POST",
            "/v2/orders",
            body={
                "symbol": "AAPL",
                "qty": "1",
                "side": "buy",
                "type": "market",
                "time_in_force": "day",
                "client_order_id": "ambiguous",
            },
        )
    )
    assert response.status == 200 and response.drop_response_after_s == 5.0
    assert [o.client_order_id for o in venue.order_log] == ["ambiguous"]  # the venue did place it
    assert submit(venue, client_order_id="ambiguous")[1]["message"] == "client_order_id must be unique"


def test_a_lost_answer_to_a_read_is_its_own_fault() -> None:
    # Ambiguity is about requests that change something: a read is never drawn for it...
    venue, _ = make_venue(faults=_plan(rest_timeout_after_accept_p=1.0))
    assert venue.handle_rest(request("GET", "/v2/account")).drop_response_after_s is None
    # ...and lost reads are configured on their own.
    reads_lost, _ = make_venue(faults=_plan(rest_read_timeout_p=1.0))
    assert reads_lost.handle_rest(request("GET", "/v2/account")).drop_response_after_s == 5.0
    status, _body = submit(reads_lost)
    assert status == 200 and len(reads_lost.order_log) == 1


def test_trade_update_drop_duplicate_and_reorder() -> None:
    dropping, _ = make_venue(faults=_plan(trade_update_drop_p=1.0))
    session = listening_session(dropping)
    submit(dropping)
    assert events(session.drain()) == [] and session.lost == 2
    assert [e.event for e in dropping.event_log] == ["new", "fill"]  # the venue still did it

    doubling, _ = make_venue(faults=_plan(trade_update_duplicate_p=1.0))
    session = listening_session(doubling)
    submit(doubling)
    assert [u["event"] for u in events(session.drain())] == ["new", "new", "fill", "fill"]

    swapping, _ = make_venue(faults=_plan(trade_update_reorder_p=1.0))
    session = listening_session(swapping)
    submit(swapping)
    assert [u["event"] for u in events(session.drain())] == ["fill", "new"]
    submit(swapping, type="limit", limit_price="90", time_in_force="gtc")  # a lone update is held back...
    assert events(session.drain()) == []
    swapping.advance_to(START_NS + NS)  # ...for at most one more cycle
    assert [u["event"] for u in events(session.drain())] == ["new"]


def test_fault_draws_are_seeded() -> None:
    def fates(seed: int) -> list[str]:
        plan = _plan(trade_update_drop_p=0.3, trade_update_duplicate_p=0.3, trade_update_reorder_p=0.3)
        injector = FaultInjector(plan, seed=seed, resolve_at_ns=lambda e: 0)
        return [injector.trade_update_fate() for _ in range(50)]

    assert fates(7) == fates(7) and fates(7) != fates(8)
    assert set(fates(7)) == {"deliver", "drop", "duplicate", "reorder"}


def test_market_data_drop_is_drawn_for_the_data_stream() -> None:
    venue, _ = make_venue(faults=_plan(market_data_drop_p=1.0))
    assert venue.draw_market_data_drop() is True
    quiet, _ = make_venue()
    assert quiet.draw_market_data_drop() is False


def test_ws_close_with_duration_refuses_reconnects_meanwhile() -> None:
    venue, _ = make_venue(faults=_plan({"kind": "ws_close", "at_ns": START_NS + NS, "code": 1000, "duration_s": 30}))
    session = listening_session(venue)
    venue.advance_to(START_NS + NS)
    assert session.drain() == [Close(1000, "fault: ws_close")] and session.closed
    assert venue.open_trading_stream().on_open() == [Close(1000, "venue unavailable")]
    venue.advance_to(START_NS + 31 * NS)
    assert venue.open_trading_stream().on_open() == []


def test_ws_mute_loses_updates_and_answers_nothing() -> None:
    venue, _ = make_venue(faults=_plan({"kind": "ws_mute", "at_ns": START_NS + NS, "duration_s": 60}))
    session = listening_session(venue)
    venue.advance_to(START_NS + NS)
    assert session.muted
    submit(venue)
    assert session.drain() == [] and session.lost == 2
    assert session.receive(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}})) == []
    venue.advance_to(START_NS + 61 * NS)
    assert not session.muted
    submit(venue)
    assert [u["event"] for u in events(session.drain())] == ["new", "fill"]


def test_eviction_406_closes_the_session_and_refuses_new_ones() -> None:
    venue, _ = make_venue(faults=_plan({"kind": "eviction_406", "at_ns": START_NS + NS, "duration_s": 10}))
    session = listening_session(venue)
    venue.advance_to(START_NS + NS)
    error, close = session.drain()
    assert isinstance(error, Frame) and json.loads(error.data)["data"]["code"] == 406
    assert isinstance(close, Close) and close.code == 1008
    refused = venue.open_trading_stream().on_open()
    assert json.loads(refused[0].data)["data"]["error_message"] == "connection limit exceeded"
    venue.advance_to(START_NS + 11 * NS)
    assert venue.open_trading_stream().on_open() == []


class _DataSession:
    """Stands in for H3's data-stream session: records the venue's hook calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def on_advance(self, prev_ns: int, now_ns: int) -> None:
        self.calls.append(("advance", prev_ns, now_ns))

    def force_close(self, code: int, reason: str) -> None:
        self.calls.append(("close", code))

    def evict(self) -> None:
        self.calls.append(("evict",))


def test_data_stream_faults_go_to_registered_data_sessions() -> None:
    plan = _plan(
        {"kind": "ws_close", "at_ns": START_NS + NS, "stream": "data", "code": 1000},
        {"kind": "eviction_406", "at_ns": START_NS + 2 * NS, "stream": "data"},
        {"kind": "ws_mute", "at_ns": START_NS + 3 * NS, "stream": "data", "duration_s": 5},
    )
    venue, _ = make_venue(faults=plan)
    trading = listening_session(venue)
    data = _DataSession()
    venue.register_data_session(data)
    venue.advance_to(START_NS + 3 * NS)
    assert [c for c in data.calls if c[0] != "advance"] == [("close", 1000), ("evict",)]
    assert ("advance", START_NS, START_NS + NS) in data.calls  # contiguous steps
    assert venue.stream_muted("data") and not venue.stream_muted("trading")
    assert not trading.closed
    venue.unregister_data_session(data)
    venue.advance_to(START_NS + 4 * NS)
    assert data.calls[-1][2] == START_NS + 3 * NS


def test_rest_outage_slow_and_rate_limit_storm_windows() -> None:
    plan = _plan(
        {"kind": "rest_outage", "at_ns": START_NS + NS, "duration_s": 10},
        {"kind": "rest_slow", "at_ns": START_NS + 20 * NS, "duration_s": 10, "latency_ms": 1500},
        {"kind": "rate_limit_storm", "at_ns": START_NS + 40 * NS, "duration_s": 10},
    )
    venue, _ = make_venue(faults=plan)
    venue.advance_to(START_NS + NS)
    assert call(venue, "GET", "/v2/account") == (503, {"code": 50310000, "message": "service unavailable"})
    assert submit(venue)[0] == 503 and venue.order_log == []
    venue.advance_to(START_NS + 20 * NS)
    slow = venue.handle_rest(request("GET", "/v2/clock"))
    assert (slow.status, slow.delay_s) == (200, 1.5)
    venue.advance_to(START_NS + 40 * NS)
    assert call(venue, "GET", "/v2/clock")[0] == 429
    venue.advance_to(START_NS + 50 * NS)
    fine = venue.handle_rest(request("GET", "/v2/clock"))
    assert (fine.status, fine.delay_s) == (200, 0.0)


class _StaleAwareMarket(StubMarket):
    def __init__(self) -> None:
        super().__init__()
        self.stale_calls: list[tuple[str, int]] = []

    def set_stale(self, symbol: str, until_ns: int) -> None:
        self.stale_calls.append((symbol, until_ns))


def test_quote_stale_freezes_the_venue_quote_and_tells_the_market() -> None:
    from adapters.fake.venue import Venue, VenueConfig
    from tests.fake.test_venue_support import WeekdayCalendar

    market = _StaleAwareMarket()
    market.set_quote("AAPL", "100.00", "100.02")
    market.set_quote("AAPL", "90.00", "90.02", from_ns=START_NS + 2 * MINUTE_NS)
    plan = _plan({"kind": "quote_stale", "at_ns": START_NS + MINUTE_NS, "symbol": "AAPL", "duration_s": 120})
    venue = Venue(VenueConfig(faults=plan, rate_limit_per_min=0), market, WeekdayCalendar(), START_NS)
    venue.advance_to(START_NS + 2 * MINUTE_NS + NS)
    quote = venue.quote("AAPL")
    assert quote is not None and quote.bid_price == Decimal("100.00")
    assert market.stale_calls == [("AAPL", START_NS + 3 * MINUTE_NS)]
    venue.advance_to(START_NS + 3 * MINUTE_NS)
    fresh = venue.quote("AAPL")
    assert fresh is not None and fresh.bid_price == Decimal("90.00")


def test_position_drift_changes_position_and_cash_without_an_order_of_ours() -> None:
    venue, _ = make_venue(
        faults=_plan({"kind": "position_drift", "at_ns": START_NS + NS, "symbol": "AAPL", "qty": "-3"})
    )
    session = listening_session(venue)
    submit(venue, qty="10")
    session.drain()
    cash_before = venue.account.cash
    venue.advance_to(START_NS + NS)
    assert ok(venue, "GET", "/v2/positions/AAPL")["qty"] == "7"
    assert venue.account.cash == cash_before + 3 * Decimal("100.01")
    assert events(session.drain()) == [] and len(venue.fills) == 1 and len(venue.external_fills) == 1
    drift = ok(venue, "GET", "/v2/account/activities")[0]
    assert drift["qty"] == "3" and drift["side"] == "sell"
    assert drift["order_id"] not in {o.order_id for o in venue.order_log}


def test_venue_restart_drops_streams_with_1006_and_keeps_state() -> None:
    venue, _ = make_venue(faults=_plan({"kind": "venue_restart", "at_ns": START_NS + NS, "duration_s": 5}))
    first, second = listening_session(venue), listening_session(venue)
    data = _DataSession()
    venue.register_data_session(data)
    _, order = submit(venue, type="limit", limit_price="90", time_in_force="gtc")
    first.drain()
    second.drain()
    venue.advance_to(START_NS + NS)
    assert first.drain() == second.drain() == [Close(1006, "venue restart")]
    assert ("close", 1006) in data.calls
    assert call(venue, "GET", "/v2/account")[0] == 503
    venue.advance_to(START_NS + 6 * NS)
    assert ok(venue, "GET", f"/v2/orders/{order['id']}")["status"] == "new"


def test_harness_only_kinds_are_recorded_but_not_acted_on() -> None:
    venue, _ = make_venue(faults=_plan({"kind": "client_crash", "at_ns": START_NS + NS}))
    session = listening_session(venue)
    venue.advance_to(START_NS + 2 * NS)
    assert [e.kind for _, e in venue.faults.fired] == ["client_crash"] and not session.closed


def test_rate_limit_bucket_headers_and_refill() -> None:
    venue, _ = make_venue(rate_limit_per_min=3)
    seen = []
    for _ in range(4):
        response = venue.handle_rest(request("GET", "/v2/clock"))
        seen.append((response.status, response.headers["X-Ratelimit-Limit"], response.headers["X-Ratelimit-Remaining"]))
    assert seen == [(200, "3", "2"), (200, "3", "1"), (200, "3", "0"), (429, "3", "0")]
    assert json.loads(response.body) == {"code": 42910000, "message": "rate limit exceeded"}
    assert response.headers["X-Ratelimit-Reset"] == str(-(-(START_NS + 60 * NS) // NS))
    venue.advance_to(START_NS + 20 * NS)  # one request per 20 s comes back
    assert venue.handle_rest(request("GET", "/v2/clock")).status == 200
    assert venue.handle_rest(request("GET", "/v2/clock")).status == 429
    other_key = venue.handle_rest(request("GET", "/v2/clock", headers={"apca-api-key-id": "OTHER"}))
    assert other_key.status == 200


def test_disabled_rate_limit_still_sends_headers() -> None:
    venue, _ = make_venue(rate_limit_per_min=0)
    for _ in range(300):
        response = venue.handle_rest(request("GET", "/v2/clock"))
    assert response.status == 200 and response.headers["X-Ratelimit-Remaining"] == "200"


def test_fault_event_defaults() -> None:
    event = FaultEvent(kind="ws_close", at="09:45:30")
    assert (event.stream, event.code, event.duration_ns, event.seconds_of_day()) == ("trading", 1006, 0, 35130)


def test_fault_plan_symbols_must_exist_in_the_market() -> None:
    with pytest.raises(ValueError, match="ZZZ"):
        make_venue(faults=_plan({"kind": "quote_stale", "at_ns": START_NS, "symbol": "ZZZ", "duration_s": 1}))


def test_position_drift_without_any_price_is_recorded_as_skipped() -> None:
    market_start = et_ns(2024, 1, 2, 8, 0)
    venue, market = make_venue(
        start_ns=market_start,
        faults=_plan({"kind": "position_drift", "at_ns": market_start + NS, "symbol": "AAPL", "qty": "1"}),
    )
    market._touches["AAPL"].clear()  # no quote has ever existed for AAPL
    venue.advance_to(market_start + 2 * NS)
    assert venue.account.positions == {} and venue.skipped_faults[0][2] == "no price known for the symbol yet"
