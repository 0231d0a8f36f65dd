"""Tests for yizhan.routing.calendar: working days, deadlines and digest windows (第八條, 第二十條).

The 2026 dates are the State Council's holiday arrangement as chinese_calendar 1.11 has it;
``test_library_agrees`` checks that, so that a changed library shows up there first.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import given
from hypothesis import strategies as st

from yizhan.routing.calendar import CLERK_WINDOWS, STAFF_WINDOWS, URGENCY_LIMITS, WorkCalendar

TZ = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar(tz=TZ)


def at(day: str, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour, minute), tzinfo=TZ)


def end(day: str) -> dt.datetime:
    return at(day, 17, 30)


def test_library_agrees() -> None:
    # The facts the other tests rest on: 國慶 1–7 October 2026 off, 中秋 25 September (Friday)
    # off, make-up working days on Sunday 20 September and Saturday 10 October.
    for day in ["2026-10-01", "2026-10-02", "2026-10-05", "2026-10-07", "2026-09-25"]:
        assert not chinese_calendar.is_workday(dt.date.fromisoformat(day)), day
    for day in ["2026-09-20", "2026-10-10", "2026-10-08", "2026-09-30"]:
        assert chinese_calendar.is_workday(dt.date.fromisoformat(day)), day
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(dt.date(2027, 1, 4))


@pytest.mark.parametrize(
    ("day", "working"),
    [
        ("2026-09-30", True),  # Wednesday before 國慶
        ("2026-10-01", False),  # 國慶
        ("2026-10-05", False),  # a Monday inside 國慶
        ("2026-10-08", True),  # first day back
        ("2026-10-10", True),  # Saturday, make-up working day
        ("2026-10-11", False),  # ordinary Sunday
        ("2026-09-20", True),  # Sunday, make-up working day
        ("2026-09-25", False),  # 中秋, a Friday
        ("2027-01-04", True),  # a Monday in a year the library does not know: Mon–Fri
        ("2027-01-09", False),  # a Saturday in that year
    ],
)
def test_is_working_day(day: str, working: bool) -> None:
    # Holidays and make-up days as published, and Monday to Friday where nothing is published.
    assert CAL.is_working_day(dt.date.fromisoformat(day)) is working


def test_extra_tables_override() -> None:
    # The administrator marks a bureau's own day off, and a day the library does not know yet.
    cal = WorkCalendar(
        tz=TZ,
        extra_holidays=frozenset({dt.date(2026, 9, 30), dt.date(2027, 1, 1)}),
        extra_workdays=frozenset({dt.date(2026, 10, 11)}),
    )
    assert not cal.is_working_day(dt.date(2026, 9, 30))
    assert not cal.is_working_day(dt.date(2027, 1, 1))
    assert cal.is_working_day(dt.date(2026, 10, 11))


def test_contradictory_tables_are_refused() -> None:
    # A day cannot be both; say which, rather than let one table silently win.
    day = dt.date(2026, 9, 30)
    with pytest.raises(ValueError, match="2026-09-30"):
        WorkCalendar(tz=TZ, extra_holidays=frozenset({day}), extra_workdays=frozenset({day}))


@pytest.mark.parametrize(
    ("start", "n", "due"),
    [
        # Within working hours: day 1 is the next working day, ending at 17:30.
        (at("2026-09-28"), 1, end("2026-09-29")),
        (at("2026-09-28"), 0, end("2026-09-28")),
        # Over 國慶: 30 September + 1 is 8 October.
        (at("2026-09-30"), 1, end("2026-10-08")),
        (at("2026-09-30"), 3, end("2026-10-10")),  # 8, 9, and Saturday 10 (make-up)
        # After hours on 30 September counts from 8 October.
        (at("2026-09-30", 18), 1, end("2026-10-09")),
        (at("2026-09-30", 17, 30), 0, end("2026-10-08")),
        # Before hours counts from that same day's start.
        (at("2026-09-30", 7), 1, end("2026-10-08")),
        # Started on a holiday: counts from the first day back.
        (at("2026-10-03"), 0, end("2026-10-08")),
        # Over 中秋 (Friday 25 September to Sunday 27).
        (at("2026-09-24"), 1, end("2026-09-28")),
        # Saturday 19 September: the next working day is the make-up Sunday 20th.
        (at("2026-09-19"), 0, end("2026-09-20")),
        # Into 2027, which the library does not know: Monday to Friday.
        (at("2026-12-31"), 2, end("2027-01-04")),
    ],
)
def test_add_working_days(start: dt.datetime, n: int, due: dt.datetime) -> None:
    # Deadlines in working days, with the real 2026 holidays and make-up days.
    assert CAL.add_working_days(start, n) == due


def test_add_working_days_with_extra_holiday_next_year() -> None:
    # Entering 元旦 2027 by hand moves a deadline that the library alone would put on it.
    cal = WorkCalendar(tz=TZ, extra_holidays=frozenset({dt.date(2027, 1, 1)}))
    assert CAL.add_working_days(at("2026-12-31"), 1) == end("2027-01-01")
    assert cal.add_working_days(at("2026-12-31"), 1) == end("2027-01-04")


def test_start_in_another_zone() -> None:
    # 02:30 UTC on 30 September is 10:30 in Shenyang: within hours, and the result is local.
    start = dt.datetime(2026, 9, 30, 2, 30, tzinfo=dt.UTC)
    due = CAL.add_working_days(start, 1)
    assert due == end("2026-10-08")
    assert due.tzinfo == TZ


def test_naive_and_negative_are_errors() -> None:
    # Naive times would be read in the server's zone; a negative limit is a bug.
    with pytest.raises(ValueError, match="aware"):
        CAL.add_working_days(dt.datetime(2026, 9, 30, 10), 1)
    with pytest.raises(ValueError):
        CAL.add_working_days(at("2026-09-30"), -1)


def test_custom_hours() -> None:
    # A bureau with a 9:00–17:00 day: 17:15 is already after hours.
    cal = WorkCalendar(tz=TZ, day_start=dt.time(9), day_end=dt.time(17))
    assert cal.add_working_days(at("2026-09-28", 17, 15), 0) == at("2026-09-29", 17)
    with pytest.raises(ValueError):
        WorkCalendar(tz=TZ, day_start=dt.time(18), day_end=dt.time(9))


@given(
    start=st.datetimes(
        min_value=dt.datetime(2025, 1, 1),
        max_value=dt.datetime(2027, 12, 31),
        timezones=st.just(TZ),
    ),
    n=st.integers(min_value=0, max_value=30),
)
def test_deadline_properties(start: dt.datetime, n: int) -> None:
    # A deadline is at day_end of a working day, after the start, and one more day is later.
    due = CAL.add_working_days(start, n)
    assert due.timetz() == dt.time(17, 30, tzinfo=TZ)
    assert CAL.is_working_day(due.date())
    assert due > start
    assert CAL.add_working_days(start, n + 1) > due


# --- Urgency --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "extra", "urgent", "normal"),
    [(0, 0, 0, 0), (1, 1, 1, 1), (2, 1, 1, 2), (3, 1, 2, 3), (5, 1, 3, 5), (10, 1, 5, 10)],
)
def test_urgency_table(n: int, extra: int, urgent: int, normal: int) -> None:
    # 特急 1 day, 加急 half rounded up, normal n; never longer than normal.
    assert URGENCY_LIMITS["特急"](n) == extra
    assert URGENCY_LIMITS["加急"](n) == urgent
    assert URGENCY_LIMITS[None](n) == normal


def test_due_applies_urgency() -> None:
    # A 5-day step opened on 28 September: normal ends 10 October (make-up Saturday, after
    # 國慶), 加急 3 days on 8 October, 特急 the next working day.
    start = at("2026-09-28")
    assert CAL.due(start, 5, None) == end("2026-10-10")
    assert CAL.due(start, 5, "加急") == end("2026-10-08")
    assert CAL.due(start, 5, "特急") == end("2026-09-29")
    with pytest.raises(ValueError, match="urgency"):
        CAL.due(start, 5, "急")


# --- Digest windows -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "windows", "expected"),
    [
        (at("2026-09-30", 7), CLERK_WINDOWS, at("2026-09-30", 8, 30)),
        (at("2026-09-30", 9), CLERK_WINDOWS, at("2026-09-30", 10, 30)),
        # Strictly after: asking at 10:30 gives the next window.
        (at("2026-09-30", 10, 30), CLERK_WINDOWS, at("2026-09-30", 13, 30)),
        (at("2026-09-30", 14), STAFF_WINDOWS, at("2026-10-08", 8, 30)),
        # After the last window before 國慶: the first window back.
        (at("2026-09-30", 16), CLERK_WINDOWS, at("2026-10-08", 8, 30)),
        # The make-up Saturday has digests too.
        (at("2026-10-10", 7), CLERK_WINDOWS, at("2026-10-10", 8, 30)),
        (at("2026-10-10", 16), STAFF_WINDOWS, at("2026-10-12", 8, 30)),
        # Windows given out of order are still taken in order.
        (at("2026-09-30", 9), (dt.time(15, 30), dt.time(10, 30)), at("2026-09-30", 10, 30)),
    ],
)
def test_next_window(now: dt.datetime, windows: tuple[dt.time, ...], expected: dt.datetime) -> None:
    # Digests go out at the windows DESIGN.md names, on working days only.
    assert CAL.next_window(now, windows) == expected


def test_next_window_needs_windows() -> None:
    # An empty schedule is a configuration error, not "never".
    with pytest.raises(ValueError):
        CAL.next_window(at("2026-09-30"), ())
