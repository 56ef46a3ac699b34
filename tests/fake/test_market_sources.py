"""Market sources: deterministic per seed, faithful to the real daily bars, correlated and regime-shifted."""

from __future__ import annotations

import csv
import itertools
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from adapters.fake.calendar import AlwaysOpenCalendar, TradingTimeClock, et_from_ns, ns_at
from adapters.fake.interfaces import FakeBar, FakeQuote
from adapters.fake.market import market_data_dir
from adapters.fake.market_generator import GeneratorSource, Regime
from adapters.fake.market_replay import ReplaySource
from adapters.fake.market_spec import market_from_spec
from adapters.fake.market_ticks import SampledTicks, ticks
from tests.fake.test_market_support import MINUTE_NS, NS, OPEN_NS, calendar, replay

DATES = ["1999-01-22", "2003-05-07", "2008-10-10", "2014-06-02", "2014-11-28"]  # incl. a half day


def _daily_row(file: str, date: str) -> tuple[Decimal, Decimal, Decimal, Decimal, int]:
    with open(market_data_dir() / file, newline="") as f:
        for row in csv.DictReader(f):
            if row["Date"] == date:
                q = Decimal("0.01")
                return (
                    Decimal(row["Open"]).quantize(q),
                    Decimal(row["High"]).quantize(q),
                    Decimal(row["Low"]).quantize(q),
                    Decimal(row["Close"]).quantize(q),
                    int(row["Volume"]),
                )
    raise AssertionError(f"{date} not in {file}")


def _arrays(src: ReplaySource | GeneratorSource, symbol: str, date: str) -> list[np.ndarray]:
    day = src.day_path(symbol, date)
    assert day is not None
    return [
        day.bar_open,
        day.bar_high,
        day.bar_low,
        day.bar_close,
        day.bar_volume,
        day.bid,
        day.ask,
        day.bid_size,
    ]


@pytest.mark.parametrize("date", DATES)
def test_replay_path_runs_open_to_close_and_touches_the_daily_high_and_low(date: str) -> None:
    src = replay(seed=7)
    o, h, lo, c, v = _daily_row("nvda-1999-2014.txt", date)
    sessions = [s for s in calendar().sessions_between(ns_at(date), ns_at(date, "23:59")) if s[0] == date]
    _, open_ns, close_ns = sessions[0]
    bars = src.bars_between("NVDA", open_ns, close_ns)
    assert len(bars) == (close_ns - open_ns) // MINUTE_NS  # 390, or 210 on the half day
    assert bars[0].ts_ns == open_ns and bars[-1].ts_ns == close_ns - MINUTE_NS
    assert bars[0].open == o and bars[-1].close == c
    assert max(b.high for b in bars) == max(h, o, c)
    assert min(b.low for b in bars) == min(lo, o, c)
    assert sum(b.volume for b in bars) == v
    for prev, nxt in itertools.pairwise(bars):
        assert prev.close == nxt.open  # one continuous path
    for b in bars:
        assert b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
        assert b.low <= b.vwap <= b.high
    # the quote's mid path also reaches the extremes (a limit there can trade)
    mids = [(q.bid_price + q.ask_price) / 2 for q in src.quotes_between("NVDA", open_ns, close_ns)]
    assert len(mids) == len(bars)
    assert min(abs(m - max(h, o, c)) for m in mids) <= Decimal("0.01")
    assert min(abs(m - min(lo, o, c)) for m in mids) <= Decimal("0.01")


def test_replay_daily_bar_equals_the_aggregate_of_its_intraday_bars() -> None:
    src = replay(seed=3)
    daily = src.daily_bars_between("ORCL", ns_at("2014-06-02"), ns_at("2014-06-03"))
    assert len(daily) == 1 and daily[0].ts_ns == ns_at("2014-06-02")
    bars = src.bars_between("ORCL", OPEN_NS, ns_at("2014-06-02", "16:00"))
    d = daily[0]
    assert (d.open, d.high, d.low, d.close, d.volume) == (
        bars[0].open,
        max(b.high for b in bars),
        min(b.low for b in bars),
        bars[-1].close,
        sum(b.volume for b in bars),
    )


def test_replay_is_deterministic_per_seed_and_seed_changes_only_the_intraday_path() -> None:
    a, b, c = replay(seed=11), replay(seed=11), replay(seed=12)
    for x, y in zip(_arrays(a, "NVDA", "2010-03-04"), _arrays(b, "NVDA", "2010-03-04"), strict=True):
        assert np.array_equal(x, y)
    differs = [
        not np.array_equal(x, y)
        for x, y in zip(_arrays(a, "NVDA", "2010-03-04"), _arrays(c, "NVDA", "2010-03-04"), strict=True)
    ]
    assert any(differs)
    # ...but the daily facts are the file's, whatever the seed
    da, dc = a.day_path("NVDA", "2010-03-04"), c.day_path("NVDA", "2010-03-04")
    assert da is not None and dc is not None
    assert da.bar_open[0] == dc.bar_open[0] and da.bar_close[-1] == dc.bar_close[-1]
    assert da.bar_high.max() == dc.bar_high.max() and da.bar_volume.sum() == dc.bar_volume.sum()


def test_quotes_are_cent_priced_round_lots_with_a_positive_spread_and_only_in_session() -> None:
    src = replay(seed=1)
    q = src.quote_at("NVDA", OPEN_NS + 90 * NS)
    assert isinstance(q, FakeQuote)
    assert q.ts_ns == OPEN_NS + MINUTE_NS  # the quote in force since the last bar boundary
    assert q.bid_price < q.ask_price
    assert q.bid_price == q.bid_price.quantize(Decimal("0.01"))
    assert q.bid_size % 100 == 0 and q.ask_size % 100 == 0 and q.bid_size > 0
    assert src.quote_at("NVDA", OPEN_NS - 1) is None  # pre-market
    assert src.quote_at("NVDA", ns_at("2014-06-02", "16:00")) is None  # at the close
    assert src.quote_at("NVDA", ns_at("2014-06-07", "12:00")) is None  # Saturday
    assert src.quote_at("NOPE", OPEN_NS) is None
    wide = replay(seed=1, spread_bps=50.0).quote_at("ORCL", OPEN_NS)
    narrow = replay(seed=1).quote_at("ORCL", OPEN_NS)
    assert wide is not None and narrow is not None
    assert wide.ask_price - wide.bid_price > narrow.ask_price - narrow.bid_price


def test_other_bar_intervals_keep_the_daily_facts() -> None:
    src = replay(seed=5, bar_interval_s=300)
    bars = src.bars_between("YHOO", OPEN_NS, ns_at("2014-06-02", "16:00"))
    assert len(bars) == 78
    o, h, _lo, c, v = _daily_row("yhoo-1996-2015.txt", "2014-06-02")
    assert (bars[0].open, bars[-1].close, sum(b.volume for b in bars)) == (o, c, v)
    assert max(b.high for b in bars) == max(h, o, c)


def test_minute_file_replays_its_real_bars_in_its_own_sessions() -> None:
    src = ReplaySource({"ES": "2006-01-02-volume-min-001.txt"}, seed=0)
    with open(market_data_dir() / "2006-01-02-volume-min-001.txt", newline="") as f:
        rows = [r for r in csv.reader(f)][1:]
    first = next(r for r in rows if r[0] == "2006-01-03")
    day = [r for r in rows if r[0] == "2006-01-03"]
    start = ns_at("2006-01-03", first[1], src._minute_tz) - MINUTE_NS  # the file stamps bar ends
    bars = src.bars_between("ES", start, start + 86_400 * NS)
    assert len(bars) == len(day)  # one bar per real minute row, none invented
    b0 = bars[0]
    assert b0.ts_ns == start
    assert (b0.open, b0.high, b0.low, b0.close, b0.volume) == (
        Decimal(first[2]).quantize(Decimal("0.01")),
        Decimal(first[3]).quantize(Decimal("0.01")),
        Decimal(first[4]).quantize(Decimal("0.01")),
        Decimal(first[5]).quantize(Decimal("0.01")),
        int(first[6]),
    )
    assert et_from_ns(b0.ts_ns).hour == 3  # 09:00 Berlin = 03:00 New York
    # minutes without a row have no bar but still a quote (the last close carried forward)
    stamps = {b.ts_ns for b in bars}
    gaps = [t for t in range(start, bars[-1].ts_ns, MINUTE_NS) if t not in stamps]
    if gaps:
        assert src.quote_at("ES", gaps[0]) is not None


def test_generator_is_deterministic_and_continuous_across_days() -> None:
    def make() -> GeneratorSource:
        return GeneratorSource(["A", "B"], {"A": "x", "B": "x"}, seed=42, calendar=calendar())

    a, b = make(), make()
    for date in ("2014-06-02", "2014-06-05"):
        for x, y in zip(_arrays(a, "A", date), _arrays(b, "A", date), strict=True):
            assert np.array_equal(x, y)
    # building a later day alone gives the same path as walking there
    later = make().day_path("B", "2014-06-05")
    walked = a.day_path("B", "2014-06-05")
    assert later is not None and walked is not None and np.array_equal(later.bar_close, walked.bar_close)
    d1 = a.daily_bars_between("A", ns_at("2014-06-02"), ns_at("2014-06-04"))
    assert len(d1) == 2 and d1[0].close == d1[1].open  # tomorrow opens at today's close
    assert a.quote_at("A", ns_at("2014-05-30", "12:00")) is None  # before the generator's first day
    other = GeneratorSource(["A", "B"], {"A": "x", "B": "x"}, seed=43, calendar=calendar())
    assert not np.array_equal(_arrays(other, "A", "2014-06-02")[3], _arrays(a, "A", "2014-06-02")[3])


def _returns(src: GeneratorSource, symbol: str, days: list[str]) -> np.ndarray:
    closes = np.concatenate([_arrays(src, symbol, d)[3] for d in days]).astype(float)
    return np.diff(np.log(closes))


def test_generator_correlates_within_a_sector_and_not_across() -> None:
    days = ["2014-06-02", "2014-06-03", "2014-06-04"]
    src = GeneratorSource(
        ["A1", "A2", "B1"],
        {"A1": "a", "A2": "a", "B1": "b"},
        seed=9,
        correlation=0.8,
        vol_pct_per_day=20.0,
        calendar=calendar(),
    )
    r = {s: _returns(src, s, days) for s in ("A1", "A2", "B1")}
    same = np.corrcoef(r["A1"], r["A2"])[0, 1]
    cross = np.corrcoef(r["A1"], r["B1"])[0, 1]
    assert same > 0.65
    assert abs(cross) < 0.2
    with pytest.raises(ValueError, match=r"positive definite|symmetric"):
        GeneratorSource(["A", "B"], seed=1, correlation=[[1.0, 1.5], [1.5, 1.0]], calendar=calendar())


def test_generator_regimes_flash_crash_drops_and_recovers_and_trend_moves() -> None:
    crash = Regime(at="11:00:00", kind="flash_crash", size_pct=10.0, duration_s=1800, day=0)
    src = GeneratorSource(["A"], seed=1, vol_pct_per_day=0.5, regimes=[crash], calendar=calendar())
    calm = GeneratorSource(["A"], seed=1, vol_pct_per_day=0.5, calendar=calendar())
    at = ns_at("2014-06-02", "11:10")
    hit, base = src.quote_at("A", at), calm.quote_at("A", at)
    assert hit is not None and base is not None
    assert hit.bid_price < base.bid_price * Decimal("0.95")  # down about 10 % a third of the way in
    assert hit.ask_price - hit.bid_price > base.ask_price - base.bid_price  # spreads widen
    after = ns_at("2014-06-02", "11:31")
    healed, ref = src.quote_at("A", after), calm.quote_at("A", after)
    assert healed is not None and ref is not None
    assert abs(healed.bid_price - ref.bid_price) <= Decimal("0.02")  # recovered once it is over
    assert src.quote_at("A", ns_at("2014-06-03", "11:10")) is not None  # day=0 only: next day is normal
    trend = GeneratorSource(
        ["A"],
        seed=1,
        vol_pct_per_day=0.0,
        regimes=[Regime(at="10:00:00", kind="trend", size_pct=5.0, duration_s=3600)],
        calendar=calendar(),
    )
    before, later = (
        trend.quote_at("A", ns_at("2014-06-02", "10:00")),
        trend.quote_at("A", ns_at("2014-06-02", "11:00")),
    )
    assert before is not None and later is not None
    assert later.bid_price / before.bid_price == pytest.approx(Decimal("1.05"), abs=Decimal("0.001"))


def test_stale_freezes_quotes_and_gap_drops_all_data() -> None:
    src = replay(seed=1)
    t0 = OPEN_NS + 10 * MINUTE_NS
    src.set_stale("NVDA", t0 + 5 * MINUTE_NS, from_ns=t0)
    frozen = src.quote_at("NVDA", t0 + 3 * MINUTE_NS)
    assert frozen == src.quote_at("NVDA", t0)  # the quote as of the freeze, old timestamp and all
    assert src.quote_at("NVDA", t0 + 5 * MINUTE_NS) != frozen  # thawed
    ticks_in = [q.ts_ns for q in src.quotes_between("NVDA", t0, t0 + 5 * MINUTE_NS)]
    assert ticks_in == []  # no new quote ticks published while stale
    assert len(src.bars_between("NVDA", t0, t0 + 5 * MINUTE_NS)) == 5  # bars still print
    assert src.quote_at("ORCL", t0 + 3 * MINUTE_NS) != src.quote_at("ORCL", t0)  # other symbols move on
    src.set_gap("*", t0 + 30 * MINUTE_NS, from_ns=t0 + 20 * MINUTE_NS)
    assert src.quote_at("ORCL", t0 + 25 * MINUTE_NS) is None
    assert src.bars_between("ORCL", t0 + 20 * MINUTE_NS, t0 + 30 * MINUTE_NS) == []
    assert src.trades_between("YHOO", t0 + 20 * MINUTE_NS, t0 + 30 * MINUTE_NS) == []
    src.clear_faults()
    assert src.quote_at("ORCL", t0 + 25 * MINUTE_NS) is not None
    # without from_ns the freeze starts at the latest instant the source was asked about (the venue's now)
    src.quote_at("NVDA", t0 + 40 * MINUTE_NS)
    src.set_stale("NVDA", t0 + 50 * MINUTE_NS)
    assert src.quote_at("NVDA", t0 + 45 * MINUTE_NS) == src.quote_at("NVDA", t0 + 40 * MINUTE_NS)


def test_daily_bars_asof_never_looks_ahead() -> None:
    src = replay(seed=2)
    now = ns_at("2014-06-03", "11:00")
    bars = src.daily_bars_asof("NVDA", ns_at("2014-05-28"), ns_at("2014-06-10"), now)
    assert [et_from_ns(b.ts_ns).date().isoformat() for b in bars] == [
        "2014-05-28",
        "2014-05-29",
        "2014-05-30",
        "2014-06-02",
        "2014-06-03",
    ]
    running = bars[-1]
    intraday = src.bars_between("NVDA", ns_at("2014-06-03", "09:30"), now)
    assert running.volume == sum(b.volume for b in intraday)  # only bars completed by 11:00
    assert running.close == intraday[-1].close
    full = src.daily_bars_between("NVDA", ns_at("2014-06-03"), ns_at("2014-06-04"))[0]
    assert running.volume < full.volume


def test_sampled_ticks_adapts_a_plain_market_source() -> None:
    class Flat:
        symbols = ("Z",)

        def bar_interval_ns(self) -> int:
            return MINUTE_NS

        def quote_at(self, symbol: str, ts_ns: int) -> FakeQuote | None:
            start = ts_ns // MINUTE_NS * MINUTE_NS
            return FakeQuote(symbol, Decimal("9.99"), Decimal("10.01"), 100, 100, start)

        def bars_between(self, symbol: str, start_ns: int, end_ns: int) -> list[FakeBar]:
            return []

        def daily_bars_between(self, symbol: str, start_ns: int, end_ns: int) -> list[FakeBar]:
            return []

        def sector(self, symbol: str) -> str:
            return "s"

    view = ticks(Flat())
    assert isinstance(view, SampledTicks)
    qs = view.quotes_between("Z", 0, 3 * MINUTE_NS, descending=True)
    assert [q.ts_ns for q in qs] == [2 * MINUTE_NS, MINUTE_NS, 0]
    trade = view.latest_trade("Z", 90 * NS)
    assert trade is not None and trade.price == Decimal("10.00") and trade.ts_ns == MINUTE_NS
    replayed = replay()
    assert ticks(replayed) is replayed


def test_market_from_spec_and_calendars() -> None:
    class Spec:
        source = "generator"
        regimes = ()

    src = market_from_spec(
        Spec(),
        symbols=["A"],
        sectors={},
        seed=1,
        bar_interval_s=60,
        start_date="2014-06-02",
        calendar=calendar(),
    )
    assert isinstance(src, GeneratorSource)
    with pytest.raises(ValueError, match="no market file"):
        market_from_spec(
            type("R", (), {"source": "replay", "files": {}})(),
            symbols=["QQQQ"],
            sectors={},
            seed=1,
            bar_interval_s=60,
            start_date="2014-06-02",
        )
    always = AlwaysOpenCalendar()
    assert always.is_open(ns_at("2014-06-07", "03:00"))  # a Saturday night
    clock = TradingTimeClock(calendar(), "2014-06-01")  # a Sunday: starts at Monday's open
    assert clock.session_ns(0) == OPEN_NS
    assert clock.session_ns(6.5 * 3600) == ns_at("2014-06-03", "09:30")  # the close jumps to the next open
    assert clock.elapsed_s(ns_at("2014-06-03", "10:30")) == 6.5 * 3600 + 3600


def test_the_repository_carries_the_market_data_its_scenarios_need(monkeypatch: pytest.MonkeyPatch) -> None:
    """A clone with no ../shared beside it runs: every file a shipped scenario replays is in the repository."""
    import tomllib

    monkeypatch.delenv("TTLIVE_MARKET_DATA", raising=False)
    root = Path(__file__).resolve().parents[2]
    assert market_data_dir().is_relative_to(root)
    needed = set()
    for path in [*root.glob("scenarios/*.toml"), *root.glob("scenarios/regressions/*.toml")]:
        market = tomllib.loads(path.read_text())["market"]
        if market.get("source") != "recorded":  # a replayed capture's bars live beside its scenario
            needed |= set(market.get("files", {}).values())
    assert needed and all((market_data_dir() / name).is_file() for name in sorted(needed))
    assert (market_data_dir() / "README.md").is_file()  # provenance travels with the data
