"""Market-data REST of the fake venue: alpaca-py-exact shapes, pagination, errors, and no look-ahead."""

from __future__ import annotations

from typing import Any

import pytest
from alpaca.data.models import Bar, Quote, Snapshot, Trade

from adapters.fake import data_rest
from adapters.fake.calendar import ns_at
from adapters.fake.interfaces import RestRequest
from adapters.fake.wire import parse_time_ns
from tests.fake.test_market_support import MINUTE_NS, NS, OPEN_NS, body, get, make_venue

NOW = ns_at("2014-06-03", "10:00:30")


@pytest.fixture
def venue() -> Any:
    v = make_venue()
    v.advance_to(NOW)
    return v


def _get(venue: Any, path: str, **query: str) -> tuple[int, Any]:
    response = venue.handle_rest(get(path, **query))
    return response.status, body(response)


def test_bars_have_alpaca_py_shape_and_only_completed_bars(venue: Any) -> None:
    status, data = _get(
        venue, "/v2/stocks/bars", symbols="NVDA,ORCL", timeframe="1Min", start="2014-06-03T13:30:00Z"
    )
    assert status == 200
    assert set(data) == {"bars", "next_page_token"} and data["next_page_token"] is None
    assert sorted(data["bars"]) == ["NVDA", "ORCL"]
    nvda = data["bars"]["NVDA"]
    assert len(nvda) == 30  # 09:30 .. 09:59: the 10:00 bar is still running at 10:00:30
    for raw in nvda:
        assert set(raw) == {"t", "o", "h", "l", "c", "v", "n", "vw"}  # n and vw always present
        bar = Bar("NVDA", raw)
        assert bar.low <= bar.open <= bar.high and bar.trade_count > 0
    assert nvda[0]["t"] == "2014-06-03T13:30:00Z"
    assert parse_time_ns(nvda[-1]["t"]) + MINUTE_NS <= venue.now_ns


def test_no_look_ahead_anywhere(venue: Any) -> None:
    future = {"start": "2014-06-03", "end": "2014-06-04T20:00:00Z"}
    for path, key in (("/v2/stocks/quotes", "quotes"), ("/v2/stocks/trades", "trades")):
        status, data = _get(venue, path, symbols="NVDA", **future)
        assert status == 200
        stamps = [parse_time_ns(x["t"]) for x in data[key]["NVDA"]]
        assert stamps and max(stamps) <= venue.now_ns
    for tf in ("1Min", "5Min", "1Hour", "1Day"):
        _, data = _get(venue, "/v2/stocks/bars", symbols="NVDA", timeframe=tf, **future)
        assert all(parse_time_ns(b["t"]) <= venue.now_ns for b in data["bars"]["NVDA"]), tf
    # the running daily bar only aggregates what has happened
    _, daily = _get(venue, "/v2/stocks/bars", symbols="NVDA", timeframe="1Day", **future)
    _, minutes = _get(venue, "/v2/stocks/bars", symbols="NVDA", timeframe="1Min", **future)
    today = daily["bars"]["NVDA"][-1]
    assert today["t"] == "2014-06-03T04:00:00Z"
    assert today["v"] == sum(b["v"] for b in minutes["bars"]["NVDA"])
    assert today["c"] == minutes["bars"]["NVDA"][-1]["c"]
    # advancing reveals more, and what was served before does not change
    _, before = _get(venue, "/v2/stocks/bars", symbols="NVDA", timeframe="1Min", **future)
    venue.advance_to(NOW + 10 * MINUTE_NS)
    _, after = _get(venue, "/v2/stocks/bars", symbols="NVDA", timeframe="1Min", **future)
    assert after["bars"]["NVDA"][: len(before["bars"]["NVDA"])] == before["bars"]["NVDA"]
    assert len(after["bars"]["NVDA"]) == len(before["bars"]["NVDA"]) + 10


def test_pagination_limit_is_total_across_symbols_and_pages_concatenate(venue: Any) -> None:
    query = {"symbols": "YHOO,NVDA,ORCL", "timeframe": "1Min", "start": "2014-06-02T13:30:00Z"}
    _, whole = _get(venue, "/v2/stocks/bars", **query, limit="10000")
    assert whole["next_page_token"] is None
    total = sum(len(v) for v in whole["bars"].values())
    assert total == 3 * (390 + 30)
    pages: dict[str, list[Any]] = {}
    token: str | None = None
    count = 0
    while True:
        extra = {"page_token": token} if token else {}
        status, page = _get(venue, "/v2/stocks/bars", **query, limit="500", **extra)
        assert status == 200
        assert sum(len(v) for v in page["bars"].values()) <= 500
        for symbol, bars in page["bars"].items():
            pages.setdefault(symbol, []).extend(bars)
        count += 1
        token = page["next_page_token"]
        if token is None:
            break
    assert count == -(-total // 500)
    assert pages == whole["bars"]
    assert list(whole["bars"]) == ["NVDA", "ORCL", "YHOO"]  # symbols in order


def test_descending_sort_and_single_symbol_forms(venue: Any) -> None:
    _, asc = _get(venue, "/v2/stocks/NVDA/quotes", start="2014-06-03T13:50:00Z")
    _, desc = _get(venue, "/v2/stocks/NVDA/quotes", start="2014-06-03T13:50:00Z", sort="desc", limit="4")
    assert asc["symbol"] == "NVDA" and len(asc["quotes"]) == 11  # 09:50 .. 10:00
    assert desc["quotes"] == list(reversed(asc["quotes"]))[:4]
    assert desc["next_page_token"] is not None
    _, rest = _get(
        venue,
        "/v2/stocks/NVDA/quotes",
        start="2014-06-03T13:50:00Z",
        sort="desc",
        page_token=desc["next_page_token"],
    )
    assert desc["quotes"] + rest["quotes"] == list(reversed(asc["quotes"]))
    for raw in asc["quotes"]:
        Quote("NVDA", raw)
    _, latest = _get(venue, "/v2/stocks/NVDA/trades/latest")
    assert latest["symbol"] == "NVDA" and Trade("NVDA", latest["trade"]).price > 0
    _, snap = _get(venue, "/v2/stocks/NVDA/snapshot")
    assert snap["symbol"] == "NVDA" and snap["latestQuote"] is not None


def test_latest_and_snapshots(venue: Any) -> None:
    _, quotes = _get(venue, "/v2/stocks/quotes/latest", symbols="NVDA,ORCL,NOPE")
    assert sorted(quotes["quotes"]) == ["NVDA", "ORCL"]  # unknown symbols are omitted
    q = Quote("NVDA", quotes["quotes"]["NVDA"])
    assert q.timestamp.isoformat() == "2014-06-03T14:00:00+00:00" and q.bid_price < q.ask_price
    _, bars = _get(venue, "/v2/stocks/bars/latest", symbols="NVDA")
    assert bars["bars"]["NVDA"]["t"] == "2014-06-03T13:59:00Z"  # the last completed minute
    status, snaps = _get(venue, "/v2/stocks/snapshots", symbols="NVDA,ORCL")
    assert status == 200 and sorted(snaps) == ["NVDA", "ORCL"]
    snap = Snapshot("NVDA", snaps["NVDA"])
    assert snap.daily_bar is not None and snap.previous_daily_bar is not None and snap.minute_bar is not None
    assert snap.daily_bar.timestamp.date().isoformat() == "2014-06-03"
    assert snap.previous_daily_bar.timestamp.date().isoformat() == "2014-06-02"
    # before the open, "latest" is yesterday's last print and the daily bar is yesterday's
    early = make_venue(start_ns=ns_at("2014-06-03", "08:00"))
    _, pre = _get(early, "/v2/stocks/snapshots", symbols="NVDA")
    assert pre["NVDA"]["dailyBar"]["t"] == "2014-06-02T04:00:00Z"
    assert pre["NVDA"]["latestQuote"]["t"] == "2014-06-02T19:59:00Z"


@pytest.mark.parametrize(
    ("path", "query", "message"),
    [
        ("/v2/stocks/bars", {"timeframe": "1Min"}, "missing symbols"),
        ("/v2/stocks/bars", {"symbols": "NVDA"}, "missing timeframe"),
        ("/v2/stocks/bars", {"symbols": "NVDA", "timeframe": "7Fortnights"}, "invalid timeframe"),
        ("/v2/stocks/bars", {"symbols": "NVDA", "timeframe": "60Min"}, "invalid timeframe"),
        ("/v2/stocks/quotes", {"symbols": "NVDA", "limit": "0"}, "invalid limit"),
        ("/v2/stocks/quotes", {"symbols": "NVDA", "limit": "10001"}, "invalid limit"),
        ("/v2/stocks/quotes", {"symbols": "NVDA", "start": "yesterday"}, "invalid start"),
        ("/v2/stocks/quotes", {"symbols": "NVDA", "sort": "sideways"}, "invalid sort"),
        ("/v2/stocks/quotes", {"symbols": "NVDA", "page_token": "!!"}, "invalid page_token"),
        ("/v2/stocks/quotes", {"symbols": "NVDA", "feed": "nasdaq"}, "invalid feed"),
        (
            "/v2/stocks/trades",
            {"symbols": "NVDA", "start": "2014-06-03", "end": "2014-06-02"},
            "before start",
        ),
        ("/v2/stocks/quotes/latest", {"symbols": "NV DA"}, "invalid symbol"),
    ],
)
def test_bad_parameters_get_alpaca_shaped_400s(
    venue: Any, path: str, query: dict[str, str], message: str
) -> None:
    status, data = _get(venue, path, **query)
    assert status == 400
    assert data["code"] == 40010001 and message in data["message"]


def test_unknown_endpoint_and_method(venue: Any) -> None:
    status, data = _get(venue, "/v2/stocks/NVDA/auctions")
    assert status == 404 and data["code"] == 40410000
    response = data_rest.handle_data(venue, RestRequest("POST", "/v2/stocks/bars", {}, {}))
    assert response.status == 405 and body(response)["code"] == 40510000


def test_other_timeframes_aggregate_and_hours_stamp_on_the_hour(venue: Any) -> None:
    _, five = _get(venue, "/v2/stocks/bars", symbols="ORCL", timeframe="5Min", start="2014-06-03T13:30:00Z")
    _, one = _get(venue, "/v2/stocks/bars", symbols="ORCL", timeframe="1Min", start="2014-06-03T13:30:00Z")
    assert len(five["bars"]["ORCL"]) == 6
    first5, first1 = five["bars"]["ORCL"][0], one["bars"]["ORCL"][:5]
    assert first5["o"] == first1[0]["o"] and first5["c"] == first1[-1]["c"]
    assert first5["h"] == max(b["h"] for b in first1) and first5["v"] == sum(b["v"] for b in first1)
    _, hours = _get(venue, "/v2/stocks/bars", symbols="ORCL", timeframe="1Hour", start="2014-06-02T13:00:00Z")
    stamps = [b["t"] for b in hours["bars"]["ORCL"]]
    assert stamps[0] == "2014-06-02T13:00:00Z" and stamps[-1] == "2014-06-03T13:00:00Z"
    assert all(s.endswith(":00:00Z") for s in stamps)
    _, daily = _get(venue, "/v2/stocks/bars", symbols="ORCL", timeframe="1Day", start="2014-05-01", limit="3")
    assert [b["t"][:10] for b in daily["bars"]["ORCL"]] == ["2014-05-01", "2014-05-02", "2014-05-05"]
    assert daily["next_page_token"] is not None


def test_data_requests_go_through_the_venue_auth(venue: Any) -> None:
    locked = make_venue(key="key")
    locked.advance_to(OPEN_NS + 5 * NS)
    denied = locked.handle_rest(get("/v2/stocks/quotes/latest", headers={}, symbols="NVDA"))
    assert denied.status == 401
    allowed = locked.handle_rest(get("/v2/stocks/quotes/latest", symbols="NVDA"))
    assert allowed.status == 200
