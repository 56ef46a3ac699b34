"""Realistic ticks (``[market] ticks = "realistic"``): prints that make the bars, quotes the venue fills against,
REST and stream telling the same story, the same ticks in every process, and the bar default left alone."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest

from adapters.fake.data_stream import DataStreamSession, decode_frames
from adapters.fake.interfaces import Frame, RestRequest
from adapters.fake.market_generator import GeneratorSource, Regime
from adapters.fake.market_paths import PathSource
from adapters.fake.market_realistic import QUOTE_SLOT_S, TRADE_SLOT_S
from adapters.fake.market_replay import ReplaySource
from adapters.fake.market_spec import market_from_spec
from adapters.fake.wire import parse_time_ns
from core.config import ConfigError
from sim.scenario import load_scenario
from tests.fake.test_market_support import MINUTE_NS, NS, OPEN_NS, body, calendar, get, make_venue, post, replay

REPO = Path(__file__).resolve().parents[2]
DATE = "2014-06-02"


def realistic(market: PathSource, rate: float = 1.0) -> PathSource:
    market.set_ticks("realistic", rate)
    return market


def _prints_by_bar(market: PathSource, symbol: str) -> tuple[Any, Any]:
    day = market.day_path(symbol, DATE)
    assert day is not None
    td = market._tick_day(day)
    return day, td


@pytest.mark.parametrize("symbol", ["NVDA", "ORCL", "YHOO"])
def test_the_prints_inside_each_bar_make_that_bar(symbol: str) -> None:
    market = realistic(replay())
    day, td = _prints_by_bar(market, symbol)
    bar_of = (td.trade_ns - day.open_ns) // day.interval_ns
    for k in range(day.n):
        px, size = td.trade_px[bar_of == k], td.trade_size[bar_of == k]
        assert (px[0], px[-1]) == (day.bar_open[k], day.bar_close[k]), k
        assert (px.max(), px.min()) == (day.bar_high[k], day.bar_low[k]), k
        assert size.sum() == day.bar_volume[k] and (size > 0).all()
        assert day.bar_count[k] == len(px)
        assert day.bar_vwap[k] == round(float((px * size).sum()) * 100 / size.sum())
    bars = market.bars_between(symbol, day.open_ns, day.close_ns)
    assert len(bars) == day.n and sum(b.trade_count for b in bars) == len(td.trade_ns)


def test_cadence_is_bursty_u_shaped_and_never_leaves_a_subscriber_waiting() -> None:
    day, td = _prints_by_bar(realistic(replay()), "NVDA")
    trade_gaps, quote_gaps = np.diff(td.trade_ns), np.diff(td.quote_ns)
    assert (trade_gaps > 0).all() and (quote_gaps > 0).all()  # strictly increasing stamps
    assert trade_gaps.max() <= 1.5 * TRADE_SLOT_S * NS and quote_gaps.max() <= 1.5 * QUOTE_SLOT_S * NS
    assert td.quote_ns[0] == day.open_ns and td.trade_ns[0] - day.open_ns < 1.5 * TRADE_SLOT_S * NS
    # bursty: more prints closer together than a tenth of the mean gap than a Poisson flow has (1 - e^-0.1)
    assert np.mean(trade_gaps < trade_gaps.mean() / 10) > 1.4 * (1 - np.exp(-0.1))
    half_hours = np.bincount((td.trade_ns - day.open_ns) // (1800 * NS))
    assert half_hours[0] > 1.3 * half_hours[6] and half_hours[-1] > 1.3 * half_hours[6]  # denser at open, close
    assert (td.bid < td.ask).all() and (td.bid_size % 100 == 0).all() and (td.ask_size > 0).all()


def test_quotes_follow_the_prints_and_the_venue_fills_against_them() -> None:
    venue = make_venue(market=realistic(replay()))
    between = OPEN_NS + 17 * NS + 345_678_901  # not a bar boundary
    venue.advance_to(between)
    market: PathSource = venue.market  # type: ignore[assignment]
    quote = market.quote_at("NVDA", between)
    assert quote is not None and OPEN_NS < quote.ts_ns <= between
    last = market.latest_trade("NVDA", quote.ts_ns)  # each quote is centred on the print before it
    assert last is not None and quote.bid_price <= last.price <= quote.ask_price
    assert market.quote_at("NVDA", OPEN_NS + 3 * MINUTE_NS) != market.quote_at("NVDA", OPEN_NS + 3 * MINUTE_NS + NS)
    response = venue.handle_rest(
        post("/v2/orders", {"symbol": "NVDA", "qty": "10", "side": "buy", "type": "market", "time_in_force": "day"})
    )
    assert response.status == 200, response.body
    (fill,) = venue.fills
    assert fill.ts_ns == between
    # the touch in force then, plus at most the venue's slippage
    assert quote.ask_price <= fill.price <= quote.ask_price * (1 + Decimal("0.0002")) + Decimal("0.01")


def _stream(venue: Any) -> DataStreamSession:
    session = DataStreamSession(venue, "iex")
    venue.register_data_session(session)
    session.on_open()
    session.receive(msgpack.packb({"action": "auth", "key": "key", "secret": "secret"}))
    session.receive(msgpack.packb({"action": "subscribe", "trades": ["NVDA"], "quotes": ["NVDA"], "bars": ["NVDA"]}))
    return session


def test_rest_and_stream_tell_the_same_story() -> None:
    venue = make_venue(market=realistic(replay()))
    session = _stream(venue)
    end = OPEN_NS + 3 * MINUTE_NS + 5 * NS
    for t in range(OPEN_NS + NS // 3, end, NS // 3):  # the loopback server wakes often; any cadence works
        venue.advance_to(t)
    venue.advance_to(end)
    streamed = decode_frames([i.data for i in session.drain() if isinstance(i, Frame)])
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for m in streamed:
        by_kind.setdefault(m["T"], []).append(m)
    assert len(by_kind["q"]) > 3 * 60 and len(by_kind["t"]) > 3 * 60 and len(by_kind["b"]) == 3
    window = {"start": "2014-06-02T13:30:00Z", "limit": "10000"}
    rest_trades = body(venue.handle_rest(get("/v2/stocks/NVDA/trades", **window)))["trades"]
    rest_quotes = body(venue.handle_rest(get("/v2/stocks/NVDA/quotes", **window)))["quotes"]
    assert parse_time_ns(rest_quotes[0]["t"]) == OPEN_NS  # the opening quote: before the subscription began
    rest_quotes = rest_quotes[1:]
    rest_bars = body(venue.handle_rest(get("/v2/stocks/NVDA/bars", timeframe="1Min", **window)))["bars"]
    assert [(parse_time_ns(t["t"]), t["p"], t["s"], t["i"]) for t in rest_trades] == [
        (t["t"], t["p"], t["s"], t["i"]) for t in by_kind["t"]
    ]
    assert [(parse_time_ns(q["t"]), q["bp"], q["ap"], q["bs"], q["as"]) for q in rest_quotes] == [
        (q["t"], q["bp"], q["ap"], q["bs"], q["as"]) for q in by_kind["q"]
    ]
    assert [(b["o"], b["h"], b["l"], b["c"], b["v"], b["n"], b["vw"]) for b in rest_bars] == [
        (b["o"], b["h"], b["l"], b["c"], b["v"], b["n"], b["vw"]) for b in by_kind["b"]
    ]
    for bar in rest_bars:  # each bar is its prints
        start = parse_time_ns(bar["t"])
        inside = [t for t in rest_trades if start <= parse_time_ns(t["t"]) < start + MINUTE_NS]
        assert (inside[0]["p"], inside[-1]["p"], len(inside), sum(t["s"] for t in inside)) == (
            bar["o"], bar["c"], bar["n"], bar["v"]
        )
        assert max(t["p"] for t in inside) == bar["h"] and min(t["p"] for t in inside) == bar["l"]
    latest = body(venue.handle_rest(get("/v2/stocks/NVDA/trades/latest")))["trade"]
    assert latest["i"] == by_kind["t"][-1]["i"]
    latest_quote = body(venue.handle_rest(get("/v2/stocks/NVDA/quotes/latest")))["quote"]
    assert parse_time_ns(latest_quote["t"]) == by_kind["q"][-1]["t"]


def test_stale_and_gap_faults_hold_for_ticks() -> None:
    market = realistic(replay())
    frozen_at = OPEN_NS + 10 * NS
    market.set_stale("NVDA", OPEN_NS + MINUTE_NS, from_ns=frozen_at)
    q = market.quote_at("NVDA", OPEN_NS + 40 * NS)
    assert q == market.quote_at("NVDA", frozen_at) and q is not None and q.ts_ns <= frozen_at
    assert market.quotes_between("NVDA", frozen_at, OPEN_NS + MINUTE_NS) == []
    assert market.trades_between("NVDA", frozen_at, OPEN_NS + MINUTE_NS)  # stale quotes, trades go on
    market.set_gap("ORCL", OPEN_NS + MINUTE_NS, from_ns=OPEN_NS)
    assert market.trades_between("ORCL", OPEN_NS, OPEN_NS + MINUTE_NS) == []
    assert market.quote_at("ORCL", OPEN_NS + 5 * NS) is None


def test_bar_ticks_stay_the_default_and_unchanged() -> None:
    plain, ticked = replay(), realistic(replay())
    assert not plain.realistic_ticks and plain.next_tick_ns(OPEN_NS) is None
    assert market_from_spec(object(), symbols=["NVDA"], sectors={}, seed=1, bar_interval_s=60,
                            start_date=DATE, calendar=calendar()).realistic_ticks is False
    bars_plain = plain.bars_between("NVDA", OPEN_NS, OPEN_NS + 30 * MINUTE_NS)
    bars_ticked = ticked.bars_between("NVDA", OPEN_NS, OPEN_NS + 30 * MINUTE_NS)
    assert [(b.ts_ns, b.open, b.high, b.low, b.close, b.volume) for b in bars_plain] == [
        (b.ts_ns, b.open, b.high, b.low, b.close, b.volume) for b in bars_ticked
    ]  # the same price path: only n, vw and what happens between the bars differ
    assert len(plain.quotes_between("NVDA", OPEN_NS, OPEN_NS + MINUTE_NS)) == 1
    assert len(ticked.quotes_between("NVDA", OPEN_NS, OPEN_NS + MINUTE_NS)) > 60
    thin = realistic(replay(), rate=0.1)
    assert len(thin.quotes_between("NVDA", OPEN_NS, OPEN_NS + 10 * MINUTE_NS)) < len(
        ticked.quotes_between("NVDA", OPEN_NS, OPEN_NS + 10 * MINUTE_NS)
    ) / 5
    with pytest.raises(ValueError, match="ticks mode"):
        replay().set_ticks("every")


def test_generator_and_minute_file_sources_tick_inside_their_bars() -> None:
    gen = realistic(GeneratorSource(["AAA", "BBB"], {"AAA": "x", "BBB": "x"}, seed=4, calendar=calendar(),
                                    regimes=[Regime(at="10:30:00", kind="flash_crash", size_pct=5.0)]))
    for symbol in ("AAA", "BBB"):
        day = gen.day_path(symbol, DATE)
        assert day is not None and day.realistic
        assert sum(b.trade_count for b in gen.bars_between(symbol, day.open_ns, day.close_ns)) == len(
            gen.trades_between(symbol, day.open_ns, day.close_ns)
        )
    minute = realistic(ReplaySource({"ES": "2006-01-02-volume-min-001.txt"}, seed=2))
    day = minute.day_path("ES", "2006-01-03")
    assert day is not None
    td = minute._tick_day(day)
    bars = minute.bars_between("ES", day.open_ns, day.close_ns)
    for bar in bars[:120]:
        inside = minute.trades_between("ES", bar.ts_ns, bar.ts_ns + MINUTE_NS)
        assert (inside[0].price, inside[-1].price, sum(t.size for t in inside), len(inside)) == (
            bar.open, bar.close, bar.volume, bar.trade_count
        )
        assert max(t.price for t in inside) == bar.high and min(t.price for t in inside) == bar.low
    assert np.diff(td.trade_ns[(td.trade_ns >= bars[0].ts_ns) & (td.trade_ns < bars[50].ts_ns)]).max() <= 1.5 * NS


def test_a_scenario_with_realistic_ticks_is_byte_identical_across_processes(tmp_path: Path) -> None:
    """The shipped minute-bar scenario runs realistic ticks: two processes, one audit log and one trace."""
    script = (
        "import json, sys\n"
        "from sim.sweep import run_one\n"
        "r = run_one(sys.argv[1], 1, sys.argv[2], log_to_file=True)\n"
        "print(json.dumps([r['trace_sha256'], r['audit_sha256'], r['ok']]))\n"
    )
    path = REPO / "scenarios" / "minute_bars.toml"
    assert load_scenario(path).market.ticks == "realistic"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(path), str(tmp_path / f"run{i}")],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(2)
    ]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-2000:]
        outs.append(out.strip().splitlines()[-1])
    assert outs[0] == outs[1] and outs[0].endswith("true]")  # same trace and audit hashes, and the run held


def test_data_stream_refuses_empty_credentials() -> None:
    venue = make_venue()
    session = DataStreamSession(venue, "iex")
    session.on_open()
    for key, secret in (("", ""), ("key", ""), ("", "secret")):
        (frame,) = session.receive(msgpack.packb({"action": "auth", "key": key, "secret": secret}))
        assert isinstance(frame, Frame)
        assert decode_frames([frame.data]) == [{"T": "error", "code": 402, "msg": "auth failed"}]
    assert not session.authenticated


def test_rest_without_credentials_is_alpacas_401() -> None:
    venue = make_venue()
    for headers in ({}, {"apca-api-key-id": "key"}, {"apca-api-key-id": "", "apca-api-secret-key": ""}):
        trading = venue.handle_rest(RestRequest("GET", "/v2/account", {}, headers))
        assert (trading.status, body(trading)) == (401, {"code": 40110000, "message": "request is not authorized"})
        data = venue.handle_rest(get("/v2/stocks/NVDA/quotes/latest", headers=headers))
        assert (data.status, body(data)) == (401, {"message": "unauthorized."})
    pair = {"apca-api-key-id": "a", "apca-api-secret-key": "b"}
    assert venue.handle_rest(get("/v2/account", headers=pair)).status == 200
    oauth = venue.handle_rest(get("/v2/account", headers={"authorization": "Bearer token"}))
    assert oauth.status == 200


@pytest.mark.parametrize(
    ("line", "bad", "message"),
    [
        ('ticks = "realistic"', 'ticks = "every"', "market.ticks"),
        ("tick_rate = 0.1", "tick_rate = 0", "market.tick_rate"),
    ],
)
def test_bad_tick_keys_name_the_key_and_line(tmp_path: Path, line: str, bad: str, message: str) -> None:
    text = (REPO / "scenarios" / "minute_bars.toml").read_text()
    assert line in text
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(line, bad))
    with pytest.raises(ConfigError, match=message) as raised:
        load_scenario(path)
    assert "(line " in str(raised.value)


def test_the_swarm_runs_some_worlds_with_realistic_ticks(tmp_path: Path) -> None:
    from sim.swarm import derive_seed, generate_world, world_toml

    seeds = [derive_seed(1, i) for i in range(200)]
    ticked = [s for s in seeds if generate_world(s)["market"].get("ticks") == "realistic"]
    assert 5 <= len(ticked) <= 40  # about a tenth, from the feature's own random stream
    path = tmp_path / "ticked.toml"
    path.write_text(world_toml(ticked[0]))
    market = load_scenario(path).market
    assert market.ticks == "realistic" and 0 < market.tick_rate <= 0.05  # thinned: swarm worlds stay fast
