"""Decides which reminder is due when: the escalation ladder of a waiting step (催辦, 督查督辦).

A step with a deadline earns reminders on the rungs of :data:`LADDER`, a data table
that the scheduler's sweep reads through :func:`plan_reminder`:

==========  ==========================================  ===================================
rung        when (working mornings, the bureau's time)  who hears
==========  ==========================================  ===================================
ahead       1 working day before the due day, or at     the person asked (or their delegate)
            half the time allowed if that is later
due         the morning of the due day                  the person
overdue     each working morning after the deadline     the person + their unit's clerk (催辦)
escalated   from 1 full working day overdue, daily      + the person's unit head
supervised  from 2 full working days overdue, daily     + the office (督查督辦)
==========  ==========================================  ===================================

Reminders go out in working hours only: a time that falls outside them moves to the start of
the next working day. A rung that would fall before the step was opened is skipped, and two
rungs at the same moment are one reminder (the later rung's). The plan is stateless: at any
``now`` the reminder due is the last rung at or before ``now``, so a daemon that was down sends
one reminder for the time it missed, not one per missed day.

Password-age warnings (第十六條) are the other reminder decided here: :data:`PASSWORD_WARNINGS`.
Nothing here reads a clock or the database; times in and out are timezone-aware.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from yizhan.routing.calendar import WorkCalendar

__all__ = [
    "LADDER",
    "PASSWORD_WARNINGS",
    "Audience",
    "Reminder",
    "ReminderPlan",
    "ReminderState",
    "Rung",
    "first_reminder_at",
    "into_working_hours",
    "overdue_working_days",
    "password_days_left",
    "password_warning",
    "plan_reminder",
]


class Audience(enum.IntEnum):
    """Who hears of a reminder; the value is the escalation level stored on the step."""

    PERSON = 0
    #: The unit's clerk chases its items before the head hears (第五條, 第二十一條 催辦).
    CLERK = 1
    UNIT_HEAD = 2
    OFFICE = 3


Anchor = Literal["ahead", "due_day", "overdue"]


@dataclass(frozen=True, kw_only=True)
class Rung:
    """One rung of the ladder.

    ``anchor`` says where it falls: ``ahead`` (before the due day), ``due_day`` (its morning)
    or ``overdue`` (every working morning after the deadline, from ``overdue_days`` full
    working days overdue until the next overdue rung starts). ``audience`` is everyone told.
    """

    name: str
    anchor: Anchor
    audience: frozenset[Audience]
    overdue_days: int = 0

    @property
    def level(self) -> Audience:
        """The highest audience of the rung, kept on the step as its escalation."""
        return max(self.audience)


_PERSON: Final = frozenset({Audience.PERSON})
_CLERK: Final = frozenset({Audience.PERSON, Audience.CLERK})
_HEAD: Final = frozenset({Audience.PERSON, Audience.CLERK, Audience.UNIT_HEAD})
_ALL: Final = frozenset(Audience)

#: The escalation ladder, in order (see the module docstring).
LADDER: Final[tuple[Rung, ...]] = (
    Rung(name="ahead", anchor="ahead", audience=_PERSON),
    Rung(name="due", anchor="due_day", audience=_PERSON),
    Rung(name="overdue", anchor="overdue", audience=_CLERK, overdue_days=0),
    Rung(name="escalated", anchor="overdue", audience=_HEAD, overdue_days=1),
    Rung(name="supervised", anchor="overdue", audience=_ALL, overdue_days=2),
)

#: How many working days before the due day the ``ahead`` rung falls.
AHEAD_WORKING_DAYS: Final = 1

#: Days of a password's life left at which its owner is warned; 0 is "expired: change it
#: before you can send" (第十六條).
PASSWORD_WARNINGS: Final[tuple[int, ...]] = (14, 7, 3, 1, 0)

# A calendar without a working day for a year is contradictory; searches stop there.
_SEARCH_LIMIT: Final = 366


@dataclass(frozen=True, kw_only=True)
class ReminderState:
    """What the ladder needs of a step.

    ``scheduled_at`` is the step's ``next_reminder_at``: the moment this look was planned for.
    Only rungs at or after it are sent, so a step is never reminded twice of the same rung.
    """

    opened_at: dt.datetime
    due_at: dt.datetime
    reminders_sent: int = 0
    escalation: int = 0
    scheduled_at: dt.datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Reminder:
    """One reminder to send now.

    ``at`` is the rung's planned time; ``overdue_days`` counts full working days past the
    deadline (0 on the first overdue morning, and before the deadline); ``number`` is the
    reminder's ordinal for the step (for idempotent mail keys); ``escalated`` is True when the
    reminder reaches an audience the step had not reached before.
    """

    rung: str
    at: dt.datetime
    overdue: bool
    overdue_days: int
    audience: frozenset[Audience]
    number: int
    escalated: bool


@dataclass(frozen=True, kw_only=True)
class ReminderPlan:
    """What the sweep does with a step at ``now``: send ``send`` (if any), store the rest."""

    send: Reminder | None
    next_at: dt.datetime | None
    reminders_sent: int
    escalation: int


def plan_reminder(
    state: ReminderState,
    now: dt.datetime,
    calendar: WorkCalendar,
    ladder: Sequence[Rung] = LADDER,
) -> ReminderPlan:
    """The reminder due at ``now`` (the latest rung not after it) and when to look next."""
    _aware(now)
    last: tuple[dt.datetime, Rung, int] | None = None
    next_at: dt.datetime | None = None
    for moment, rung, days in _schedule(state.opened_at, state.due_at, calendar, ladder):
        if moment > now:
            next_at = moment
            break
        last = (moment, rung, days)
    if last is None or (state.scheduled_at is not None and last[0] < state.scheduled_at):
        return ReminderPlan(
            send=None,
            next_at=next_at,
            reminders_sent=state.reminders_sent,
            escalation=state.escalation,
        )
    moment, rung, days = last
    reminder = Reminder(
        rung=rung.name,
        at=moment,
        overdue=rung.anchor == "overdue",
        overdue_days=days,
        audience=rung.audience,
        number=state.reminders_sent + 1,
        escalated=rung.level > state.escalation,
    )
    return ReminderPlan(
        send=reminder,
        next_at=next_at,
        reminders_sent=state.reminders_sent + 1,
        escalation=max(state.escalation, int(rung.level)),
    )


def first_reminder_at(
    opened_at: dt.datetime,
    due_at: dt.datetime | None,
    calendar: WorkCalendar,
    ladder: Sequence[Rung] = LADDER,
) -> dt.datetime | None:
    """When a step opened at ``opened_at`` is first reminded; None without a deadline."""
    if due_at is None:
        return None
    for moment, _rung, _days in _schedule(opened_at, due_at, calendar, ladder):
        return moment
    return None


def into_working_hours(moment: dt.datetime, calendar: WorkCalendar) -> dt.datetime:
    """``moment`` if it falls in working hours, else the start of the next working period."""
    local = _aware(moment).astimezone(calendar.tz)
    day = local.date()
    if calendar.is_working_day(day):
        if local.time() < calendar.day_start:
            return _morning(day, calendar)
        if local.time() < calendar.day_end:
            return local
    return _morning(calendar.next_working_day(day), calendar)


def overdue_working_days(due_at: dt.datetime, now: dt.datetime, calendar: WorkCalendar) -> int:
    """Full working days between the deadline and ``now`` (0 until one has passed)."""
    first = _first_morning_after(due_at, calendar)
    return _mornings_come(first.date(), _aware(now).astimezone(calendar.tz), calendar)


@functools.lru_cache(maxsize=4096)
def _mornings_come(day: dt.date, local_now: dt.datetime, calendar: WorkCalendar) -> int:
    """How many working days after ``day`` have begun by ``local_now``.

    Kept: the daily overdue report asks it for every overdue step, thousands whose
    deadlines fall on a few hundred days, each answer a walk of up to a year of days.
    """
    days = 0
    while days < _SEARCH_LIMIT * 10:
        day = calendar.next_working_day(day)
        if _morning(day, calendar) > local_now:
            return days
        days += 1
    return days


def password_days_left(changed_at: dt.datetime, now: dt.datetime, max_age: dt.timedelta) -> int:
    """Whole days (rounded up, never below 0) until a password set at ``changed_at`` expires."""
    left = max_age - (_aware(now) - changed_at)
    return max(0, -(-int(left.total_seconds()) // 86_400))


def password_warning(
    changed_at: dt.datetime | None,
    now: dt.datetime,
    max_age: dt.timedelta,
    thresholds: Sequence[int] = PASSWORD_WARNINGS,
) -> int | None:
    """The warning threshold a password set at ``changed_at`` has reached at ``now``.

    The smallest threshold not below the days left, so that each threshold is reached once
    as the days go by (a daily job that missed a day still sends the one reached); None while
    no threshold is reached, or without a date.
    """
    if changed_at is None:
        return None
    days_left = password_days_left(changed_at, now, max_age)
    reached = [t for t in thresholds if t >= days_left]
    return min(reached) if reached else None


# --- The schedule ---------------------------------------------------------------------------


def _schedule(
    opened_at: dt.datetime,
    due_at: dt.datetime,
    calendar: WorkCalendar,
    ladder: Sequence[Rung],
) -> Iterator[tuple[dt.datetime, Rung, int]]:
    """Every reminder moment after ``opened_at``, in order, with its rung and days overdue.

    Overdue rungs repeat without end; the caller stops when it has what it needs.
    """
    _aware(opened_at)
    _aware(due_at)
    before: list[tuple[dt.datetime, Rung, int]] = []
    for rung in ladder:
        moment = None
        if rung.anchor == "ahead":
            moment = _ahead(opened_at, due_at, calendar)
        elif rung.anchor == "due_day":
            moment = _due_morning(due_at, calendar)
        if moment is not None and opened_at < moment < due_at:
            before.append((moment, rung, 0))
    before.sort(key=lambda item: item[0])
    # Two rungs at one moment are one reminder: the later rung, which says more.
    merged: list[tuple[dt.datetime, Rung, int]] = []
    for item in before:
        if merged and merged[-1][0] == item[0]:
            merged[-1] = item
        else:
            merged.append(item)
    yield from merged

    overdue = sorted((r for r in ladder if r.anchor == "overdue"), key=lambda r: r.overdue_days)
    if not overdue:
        return
    morning = _first_morning_after(due_at, calendar)
    days = 0
    while True:
        current = [r for r in overdue if r.overdue_days <= days]
        if current and morning > opened_at:
            yield morning, current[-1], days
        morning = _morning(calendar.next_working_day(morning.date()), calendar)
        days += 1


def _ahead(opened_at: dt.datetime, due_at: dt.datetime, calendar: WorkCalendar) -> dt.datetime:
    """The later of: the morning a working day before the due day, half the time allowed."""
    day = due_at.astimezone(calendar.tz).date()
    for _ in range(AHEAD_WORKING_DAYS):
        day = _previous_working_day(day, calendar)
    half = opened_at + (due_at - opened_at) / 2
    return max(_morning(day, calendar), into_working_hours(half, calendar))


def _due_morning(due_at: dt.datetime, calendar: WorkCalendar) -> dt.datetime | None:
    day = due_at.astimezone(calendar.tz).date()
    return _morning(day, calendar) if calendar.is_working_day(day) else None


def _first_morning_after(moment: dt.datetime, calendar: WorkCalendar) -> dt.datetime:
    """The start of the first working day that begins after ``moment``."""
    day = moment.astimezone(calendar.tz).date()
    if calendar.is_working_day(day) and _morning(day, calendar) > moment:
        return _morning(day, calendar)
    return _morning(calendar.next_working_day(day), calendar)


def _previous_working_day(day: dt.date, calendar: WorkCalendar) -> dt.date:
    for offset in range(1, _SEARCH_LIMIT + 1):
        candidate = day - dt.timedelta(days=offset)
        if calendar.is_working_day(candidate):
            return candidate
    raise ValueError(f"no working day within a year before {day.isoformat()}")


def _morning(day: dt.date, calendar: WorkCalendar) -> dt.datetime:
    return dt.datetime.combine(day, calendar.day_start, tzinfo=calendar.tz)


def _aware(moment: dt.datetime) -> dt.datetime:
    # A naive time would be read in the server's zone, which is how reminders drift by 8 hours.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("times must be timezone-aware")
    return moment
