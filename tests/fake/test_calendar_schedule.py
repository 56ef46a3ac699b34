"""The shipped XNYS schedule (adapters/fake/xnys_schedule.json) is exchange_calendars' schedule, to the ns.

The fake venue reads the file instead of building the schedule (over a second per process); if the calendar
package changes its answer, this fails and ``python -c "from adapters.fake.calendar import write_xnys_schedule;
write_xnys_schedule()"`` rewrites the file.
"""

from __future__ import annotations

import numpy as np

from adapters.fake.calendar import (
    NYSE_FIRST_DATE,
    NYSE_LAST_DATE,
    NyseCalendar,
    build_xnys_schedule,
    ns_at,
    read_xnys_schedule,
)


def test_shipped_schedule_matches_exchange_calendars() -> None:
    built, shipped = build_xnys_schedule(), read_xnys_schedule()
    assert shipped.dates == built.dates
    assert shipped.opens_ns.dtype == built.opens_ns.dtype == np.int64
    assert np.array_equal(shipped.opens_ns, built.opens_ns)
    assert np.array_equal(shipped.closes_ns, built.closes_ns)
    assert shipped.dates[0] >= NYSE_FIRST_DATE and shipped.dates[-1] <= NYSE_LAST_DATE


def test_nyse_calendar_knows_holidays_and_early_closes() -> None:
    cal = NyseCalendar()
    assert cal.session_index("2014-07-04") is None  # Independence Day
    date, open_ns, close_ns = cal.session(cal.first_session_on_or_after("2014-07-03"))
    assert (date, open_ns, close_ns) == ("2014-07-03", ns_at("2014-07-03", "09:30"), ns_at("2014-07-03", "13:00"))
    assert cal.session(cal.first_session_on_or_after("2014-01-06"))[1] == ns_at("2014-01-06", "09:30")  # EST
