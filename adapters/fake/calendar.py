"""Session calendars for the fake venue: the real NYSE schedule, an always-open one, and clock mappings.

The venue's session clock is integer epoch nanoseconds (UTC); exchange wall times are America/New_York.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from core.model import NS_PER_S

ET = ZoneInfo("America/New_York")
NS_PER_DAY = 86_400 * NS_PER_S
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# exchange_calendars builds the XNYS schedule in over a second, so the schedule for a range that covers every
# data file (1995..2015) and the present ships with the package, written from exchange_calendars
# (``write_xnys_schedule``; a test checks it still matches), and is read once per process.
NYSE_FIRST_DATE = "1990-01-02"
NYSE_LAST_DATE = "2035-12-31"
XNYS_SCHEDULE_FILE = Path(__file__).resolve().parent / "xnys_schedule.json"  # packaged: "*.json"
_MINUTE_NS = 60 * NS_PER_S


def utc_from_ns(ts_ns: int) -> dt.datetime:
    """Aware UTC datetime (microsecond precision) of an epoch-ns timestamp."""
    return _EPOCH + dt.timedelta(microseconds=ts_ns // 1000)


def ns_from_datetime(when: dt.datetime) -> int:
    """Epoch ns of an aware datetime (naive is read as UTC, like alpaca-py does)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000


def et_from_ns(ts_ns: int) -> dt.datetime:
    return utc_from_ns(ts_ns).astimezone(ET)


def et_date_of(ts_ns: int) -> str:
    """'YYYY-MM-DD' of the exchange (ET) calendar day containing ts_ns."""
    return et_from_ns(ts_ns).date().isoformat()


def ns_at(date: str | dt.date, wall: str | dt.time = "00:00:00", tz: ZoneInfo = ET) -> int:
    """Epoch ns of a wall-clock time ('HH:MM[:SS]') on a date in a time zone (ET by default)."""
    day = dt.date.fromisoformat(date) if isinstance(date, str) else date
    clock = dt.time.fromisoformat(wall) if isinstance(wall, str) else wall
    return ns_from_datetime(dt.datetime.combine(day, clock, tzinfo=tz))


@dataclass(frozen=True, slots=True)
class _Schedule:
    dates: tuple[str, ...]
    opens_ns: NDArray[np.int64]  # int64, ascending
    closes_ns: NDArray[np.int64]  # int64


def build_xnys_schedule() -> _Schedule:
    """The XNYS schedule from exchange_calendars (slow: over a second; the shipped file stands in for it)."""
    import exchange_calendars  # slow import: only when the schedule is (re)built

    cal = exchange_calendars.get_calendar("XNYS", start=NYSE_FIRST_DATE, end=NYSE_LAST_DATE)
    sched = cal.schedule
    dates = tuple(str(d)[:10] for d in sched.index)
    opens = sched["open"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    closes = sched["close"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    return _Schedule(dates=dates, opens_ns=opens, closes_ns=closes)


def write_xnys_schedule(path: Path = XNYS_SCHEDULE_FILE) -> None:
    """Write the shipped schedule: whole minutes, opens as deltas from the previous open, session lengths."""
    import exchange_calendars

    s = build_xnys_schedule()
    assert not (s.opens_ns % _MINUTE_NS).any() and not (s.closes_ns % _MINUTE_NS).any(), "sub-minute session"
    opens_min = s.opens_ns // _MINUTE_NS
    data = {
        "source": f"exchange_calendars {exchange_calendars.__version__} XNYS {NYSE_FIRST_DATE}..{NYSE_LAST_DATE}",
        "first_open_min": int(opens_min[0]),
        "open_deltas_min": np.diff(opens_min).tolist(),
        "lengths_min": ((s.closes_ns - s.opens_ns) // _MINUTE_NS).tolist(),
    }
    path.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")


def read_xnys_schedule(path: Path = XNYS_SCHEDULE_FILE) -> _Schedule:
    data = json.loads(path.read_text(encoding="utf-8"))
    opens_min = np.cumsum(np.array([data["first_open_min"], *data["open_deltas_min"]], dtype=np.int64))
    opens = opens_min * _MINUTE_NS
    closes = opens + np.array(data["lengths_min"], dtype=np.int64) * _MINUTE_NS
    # Every XNYS open is 13:30..14:30 UTC, so the UTC date of the open is the session's (ET) date.
    dates = tuple((opens // NS_PER_DAY).astype("datetime64[D]").astype(str).tolist())
    return _Schedule(dates=dates, opens_ns=opens, closes_ns=closes)


@functools.cache
def _xnys_schedule() -> _Schedule:
    if XNYS_SCHEDULE_FILE.exists():
        return read_xnys_schedule()
    return build_xnys_schedule()  # a tree without the shipped file: correct, only slower


class ArraySessionCalendar:
    """A SessionCalendar over explicit sorted session arrays; answers in O(log n)."""

    def __init__(
        self, dates: tuple[str, ...], opens_ns: NDArray[np.int64], closes_ns: NDArray[np.int64]
    ) -> None:
        assert len(dates) == len(opens_ns) == len(closes_ns), "calendar arrays differ in length"
        self._dates = dates
        self._opens = opens_ns
        self._closes = closes_ns
        # Python-int copies: bisect on a list answers one instant ~10x faster than np.searchsorted on a scalar.
        self._open_list: list[int] = opens_ns.tolist()
        self._close_list: list[int] = closes_ns.tolist()
        self._index = {d: i for i, d in enumerate(dates)}

    # --- SessionCalendar -------------------------------------------------------------------------
    def is_open(self, ts_ns: int) -> bool:
        i = bisect.bisect_right(self._open_list, ts_ns) - 1
        return i >= 0 and ts_ns < self._close_list[i]

    def next_open_ns(self, ts_ns: int) -> int:
        """The first open strictly after ts_ns (while open, that is the next session's)."""
        i = bisect.bisect_right(self._open_list, ts_ns)
        if i >= len(self._open_list):
            raise ValueError(f"calendar ends before {ts_ns}")
        return self._open_list[i]

    def next_close_ns(self, ts_ns: int) -> int:
        i = bisect.bisect_right(self._close_list, ts_ns)
        if i >= len(self._close_list):
            raise ValueError(f"calendar ends before {ts_ns}")
        return self._close_list[i]

    def sessions_between(self, start_ns: int, end_ns: int) -> list[tuple[str, int, int]]:
        """Sessions that overlap [start_ns, end_ns]: close > start_ns and open <= end_ns."""
        lo = bisect.bisect_right(self._close_list, start_ns)
        hi = bisect.bisect_right(self._open_list, end_ns)
        return [(self._dates[i], self._open_list[i], self._close_list[i]) for i in range(lo, hi)]

    # --- extras used by the market sources and front-ends ------------------------------------------
    def session_index(self, date: str) -> int | None:
        return self._index.get(date)

    def session(self, index: int) -> tuple[str, int, int]:
        return self._dates[index], self._open_list[index], self._close_list[index]

    def session_containing(self, ts_ns: int) -> int | None:
        """Index of the session open at ts_ns (open <= ts < close), else None."""
        i = bisect.bisect_right(self._open_list, ts_ns) - 1
        if i >= 0 and ts_ns < self._close_list[i]:
            return i
        return None

    def first_session_on_or_after(self, date: str) -> int:
        i = bisect.bisect_left(self._dates, date)
        if i >= len(self._dates):
            raise ValueError(f"no session on or after {date}")
        return i

    def restricted_to(self, dates: set[str]) -> ArraySessionCalendar:
        """The sessions whose date is in ``dates`` (e.g. the days a data file has)."""
        keep = np.fromiter((d in dates for d in self._dates), dtype=bool, count=len(self._dates))
        kept = tuple(d for d, k in zip(self._dates, keep, strict=True) if k)
        return ArraySessionCalendar(kept, self._opens[keep], self._closes[keep])

    def __len__(self) -> int:
        return len(self._dates)


class NyseCalendar(ArraySessionCalendar):
    """The real NYSE (XNYS) sessions, incl. holidays and early closes, 1990..2035."""

    def __init__(self) -> None:
        s = _xnys_schedule()
        super().__init__(s.dates, s.opens_ns, s.closes_ns)


class AlwaysOpenCalendar(ArraySessionCalendar):
    """Every instant 1990..2035 is in session; sessions are whole UTC days (for tests that ignore hours)."""

    def __init__(self) -> None:
        first = ns_at(NYSE_FIRST_DATE, tz=ZoneInfo("UTC")) // NS_PER_DAY
        last = ns_at(NYSE_LAST_DATE, tz=ZoneInfo("UTC")) // NS_PER_DAY
        days = np.arange(first, last + 1, dtype=np.int64)
        dates = tuple(str(d) for d in days.astype("datetime64[D]"))
        super().__init__(dates, days * NS_PER_DAY, (days + 1) * NS_PER_DAY)


class ShortSessionsCalendar(ArraySessionCalendar):
    """Sessions of ``session_s`` seconds every ``session_s + break_s`` seconds (the first opening at ``first_open_ns``):
    days squeezed into minutes, so a drill sees a paper runner wait for an open, trade, settle after the close and
    start again, several times over, on the wall clock. Session ``k`` is labelled ``first_date`` + ``k`` days (the
    labels only order the sessions; ``history`` sessions before the first give the market its warm-up days)."""

    def __init__(
        self, first_open_ns: int, first_date: str, *, session_s: int, break_s: int, count: int = 10_000,
        history: int = 400,
    ) -> None:  # fmt: skip
        assert session_s > 0 and break_s > 0, "sessions and breaks must last"
        k = np.arange(-history, count, dtype=np.int64)
        opens = first_open_ns + k * (session_s + break_s) * NS_PER_S
        start = np.datetime64(first_date, "D")
        dates = tuple(str(d) for d in (start + k.astype("timedelta64[D]")))
        super().__init__(dates, opens, opens + session_s * NS_PER_S)


class TradingTimeClock:
    """Maps elapsed seconds to the session clock so that time only runs while the market is open.

    The loopback fake's default: its clock starts at a real NYSE open of a replay date and advances
    ``speed`` session-seconds per elapsed second; at each close it jumps to the next session's open, so
    someone who tries it at any wall time finds the market open.
    """

    def __init__(self, calendar: ArraySessionCalendar, start_date: str, *, speed: float = 1.0) -> None:
        assert speed > 0, "speed must be positive"
        self._cal = calendar
        self._first = calendar.first_session_on_or_after(start_date)
        self.speed = speed
        self._cursor = self._first  # session index the last answer fell in
        self._cursor_base_ns = 0  # trading ns elapsed before session self._cursor

    @property
    def start_ns(self) -> int:
        return self._cal.session(self._first)[1]

    def session_ns(self, elapsed_s: float) -> int:
        """Session-clock ns after elapsed_s seconds (monotonic calls are O(1) amortised)."""
        trading_ns = round(max(0.0, elapsed_s) * self.speed * NS_PER_S)
        if trading_ns < self._cursor_base_ns:  # went backwards: restart the walk
            self._cursor, self._cursor_base_ns = self._first, 0
        while True:
            _, open_ns, close_ns = self._cal.session(self._cursor)
            length = close_ns - open_ns
            if trading_ns - self._cursor_base_ns < length or self._cursor + 1 >= len(self._cal):
                return open_ns + (trading_ns - self._cursor_base_ns)
            self._cursor_base_ns += length
            self._cursor += 1

    def elapsed_s(self, session_ns: int) -> float:
        """Inverse of session_ns for in-session instants (used to schedule the next tick)."""
        base = 0
        for i in range(self._first, len(self._cal)):
            _, open_ns, close_ns = self._cal.session(i)
            if session_ns < close_ns:
                return (base + max(0, session_ns - open_ns)) / NS_PER_S / self.speed
            base += close_ns - open_ns
        raise ValueError("session_ns beyond the calendar")


class LinearClock:
    """Session clock = start + speed * elapsed: the in-process front-end (speed 1 under MockClock) and the
    loopback fake's ``--clock wall`` option (start = wall time now)."""

    def __init__(self, start_ns: int, *, speed: float = 1.0) -> None:
        assert speed > 0, "speed must be positive"
        self.start_ns = start_ns
        self.speed = speed

    def session_ns(self, elapsed_s: float) -> int:
        return self.start_ns + round(max(0.0, elapsed_s) * self.speed * NS_PER_S)

    def elapsed_s(self, session_ns: int) -> float:
        return (session_ns - self.start_ns) / NS_PER_S / self.speed
