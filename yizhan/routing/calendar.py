"""Counts working days and working hours for deadlines and digests (第八條, 第二十條).

Chinese public holidays and make-up working days (調休) come from ``chinese_calendar``, which
knows each year once the State Council has published it. For a year it does not know yet, the
calendar falls back to Monday to Friday; the administrator's ``extra_holidays`` and
``extra_workdays`` correct both (a bureau's own day off, or next year's holidays entered before
the library is updated). Times passed in must be timezone-aware; results are in ``tz``.

How urgency shortens a time limit (:data:`URGENCY_LIMITS`), for a normal limit of n working
days (an urgent limit is never longer than the normal one):

======  ===============================
特急     1 working day (0 if n is 0)
加急     half of n, rounded up
none     n
======  ===============================
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final
from zoneinfo import ZoneInfo

import chinese_calendar

__all__ = ["CLERK_WINDOWS", "STAFF_WINDOWS", "URGENCY_LIMITS", "WorkCalendar"]

#: To-do digest times for clerks, on working days (第八條).
CLERK_WINDOWS: Final = (dt.time(8, 30), dt.time(10, 30), dt.time(13, 30), dt.time(15, 30))
#: To-do digest times for everyone else.
STAFF_WINDOWS: Final = (dt.time(8, 30), dt.time(13, 30))

#: Urgency → the working days allowed, given the normal number.
URGENCY_LIMITS: Final[Mapping[str | None, Callable[[int], int]]] = MappingProxyType(
    {
        "特急": lambda n: min(n, 1),
        "加急": lambda n: -(-n // 2),
        None: lambda n: n,
    }
)

# No real calendar goes a year without a working day; a search that does has been given
# contradictory tables, and must stop rather than loop.
_SEARCH_LIMIT: Final = 366


@functools.lru_cache(maxsize=8192)
def _statutory_workday(day: dt.date) -> bool | None:
    """``chinese_calendar``'s answer for ``day``, None for a year it does not know.

    Kept per day: the library checks the date against the bounds of its whole table on every
    call (some 50 µs), and the daily overdue report counts the working days since each
    overdue step's deadline, a day at a time: with 20,000 overdue steps that was more than a
    minute inside the job's transaction (issue 16).
    """
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return None


@dataclass(frozen=True, kw_only=True)
class WorkCalendar:
    """The bureau's working days and hours, in its time zone ``tz``."""

    tz: ZoneInfo
    extra_holidays: frozenset[dt.date] = field(default_factory=frozenset)
    extra_workdays: frozenset[dt.date] = field(default_factory=frozenset)
    day_start: dt.time = dt.time(8, 30)
    day_end: dt.time = dt.time(17, 30)

    def __post_init__(self) -> None:
        if self.day_start >= self.day_end:
            raise ValueError("day_start must come before day_end")
        both = self.extra_holidays & self.extra_workdays
        if both:
            days = ", ".join(sorted(d.isoformat() for d in both))
            raise ValueError(f"listed both as holiday and as working day: {days}")

    def is_working_day(self, day: dt.date) -> bool:
        """Whether ``day`` is a working day, make-up working days (調休) included."""
        if day in self.extra_workdays:
            return True
        if day in self.extra_holidays:
            return False
        statutory = _statutory_workday(day)
        # None: the library has no data for this year yet.
        return day.weekday() < 5 if statutory is None else statutory

    def next_working_day(self, day: dt.date) -> dt.date:
        """The first working day after ``day``."""
        for offset in range(1, _SEARCH_LIMIT + 1):
            candidate = day + dt.timedelta(days=offset)
            if self.is_working_day(candidate):
                return candidate
        raise ValueError(f"no working day within a year after {day.isoformat()}")

    def add_working_days(self, start: dt.datetime, n: int) -> dt.datetime:
        """The deadline ``n`` working days after ``start``: the end of the working day, local time.

        A start within working hours counts from its own day, so 1 working day from Monday
        10:00 is Tuesday at ``day_end``; a start after hours, or on a day off, counts from the
        next working day's start; ``n`` = 0 is the end of that first day.
        """
        if n < 0:
            raise ValueError("the number of working days must not be negative")
        day = self._first_day(start)
        for _ in range(n):
            day = self.next_working_day(day)
        return self._at(day, self.day_end)

    def due(self, now: dt.datetime, working_days: int, urgency: str | None) -> dt.datetime:
        """The deadline of a step opened at ``now`` with a normal limit of ``working_days``.

        ``urgency`` (特急, 加急 or None) shortens the limit as :data:`URGENCY_LIMITS` says.
        """
        shorten = URGENCY_LIMITS.get(urgency)
        if shorten is None:
            raise ValueError(f"unknown urgency {urgency!r}; expected 特急, 加急 or None")
        return self.add_working_days(now, shorten(working_days))

    def next_window(self, now: dt.datetime, windows: Sequence[dt.time]) -> dt.datetime:
        """The first of the daily ``windows`` on a working day strictly after ``now``.

        Strictly after, so that a scheduler that asks again at the window it just ran moves
        on to the next one.
        """
        if not windows:
            raise ValueError("no digest windows given")
        local = _local(now, self.tz)
        times = sorted(windows)
        day = local.date()
        if self.is_working_day(day):
            for moment in times:
                candidate = self._at(day, moment)
                if candidate > local:
                    return candidate
        return self._at(self.next_working_day(day), times[0])

    def _first_day(self, start: dt.datetime) -> dt.date:
        """The working day a time limit starting at ``start`` counts from."""
        local = _local(start, self.tz)
        day = local.date()
        if self.is_working_day(day) and local.time() < self.day_end:
            return day
        return self.next_working_day(day)

    def _at(self, day: dt.date, moment: dt.time) -> dt.datetime:
        return dt.datetime.combine(day, moment, tzinfo=self.tz)


def _local(moment: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    # A naive time would be read in the server's zone, which is how deadlines drift by 8 hours.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(tz)
