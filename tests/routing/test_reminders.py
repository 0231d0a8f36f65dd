"""Tests for yizhan.routing.reminders: the 催辦/督查督辦 ladder and password-age warnings.

Dates are in 2026 around 中秋 (Friday 25 September, off) and 國慶 (1–7 October, off), with
the make-up working day on Sunday 20 September, as chinese_calendar 1.11 has them.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.reminders import (
    LADDER,
    Audience,
    ReminderState,
    Rung,
    first_reminder_at,
    into_working_hours,
    overdue_working_days,
    password_warning,
    plan_reminder,
)

TZ = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar(tz=TZ)
PERSON, CLERK, HEAD, OFFICE = Audience.PERSON, Audience.CLERK, Audience.UNIT_HEAD, Audience.OFFICE


def at(day: str, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour, minute), tzinfo=TZ)


def walk(
    opened: dt.datetime, due: dt.datetime, until: dt.datetime, cal: WorkCalendar = CAL
) -> list[tuple[dt.datetime, str, int, frozenset[Audience]]]:
    """Every reminder a punctual sweep sends between ``opened`` and ``until``."""
    sent = []
    moment = first_reminder_at(opened, due, cal)
    state = ReminderState(opened_at=opened, due_at=due, scheduled_at=moment)
    while moment is not None and moment <= until:
        plan = plan_reminder(state, moment, cal)
        assert plan.send is not None
        sent.append((moment, plan.send.rung, plan.send.overdue_days, plan.send.audience))
        state = ReminderState(
            opened_at=opened,
            due_at=due,
            reminders_sent=plan.reminders_sent,
            escalation=plan.escalation,
            scheduled_at=plan.next_at,
        )
        moment = plan.next_at
    return sent


def test_a_week_of_reminders_over_a_holiday() -> None:
    # A 2-working-day step opened Tuesday 22 September at 10:00 is due Thursday at 17:30.
    # Ahead: half the time (Wednesday 13:45) is later than Wednesday morning; due: Thursday
    # morning; 中秋 Friday and the weekend pass in silence; then Monday (person and their
    # unit's clerk), Tuesday (+ unit head), Wednesday (+ office), nothing during 國慶,
    # Thursday 8 October again.
    opened, due = at("2026-09-22"), CAL.due(at("2026-09-22"), 2, None)
    assert due == at("2026-09-24", 17, 30)
    assert walk(opened, due, at("2026-10-09", 18)) == [
        (at("2026-09-23", 13, 45), "ahead", 0, {PERSON}),
        (at("2026-09-24", 8, 30), "due", 0, {PERSON}),
        (at("2026-09-28", 8, 30), "overdue", 0, {PERSON, CLERK}),
        (at("2026-09-29", 8, 30), "escalated", 1, {PERSON, CLERK, HEAD}),
        (at("2026-09-30", 8, 30), "supervised", 2, {PERSON, CLERK, HEAD, OFFICE}),
        (at("2026-10-08", 8, 30), "supervised", 3, {PERSON, CLERK, HEAD, OFFICE}),
        (at("2026-10-09", 8, 30), "supervised", 4, {PERSON, CLERK, HEAD, OFFICE}),
    ]


def test_long_limits_are_reminded_a_working_day_ahead() -> None:
    # 5 working days from Monday 14 September 09:00 end on Sunday the 20th, a make-up working
    # day. The morning a working day before (Friday 18th) is later than half the time
    # (Thursday 13:15), so the ahead reminder comes then, and the due one on Sunday morning.
    opened = at("2026-09-14", 9)
    due = CAL.due(opened, 5, None)
    assert due == at("2026-09-20", 17, 30)
    sent = walk(opened, due, due)
    assert [(m, r) for m, r, _, _ in sent] == [
        (at("2026-09-18", 8, 30), "ahead"),
        (at("2026-09-20", 8, 30), "due"),
    ]


def test_same_day_limit_gets_one_reminder_at_half_time() -> None:
    # 特急: 0 working days from Monday 10:00 is Monday 17:30. The due-day morning was before
    # the step opened, so only the half-time reminder (13:45) comes before the deadline.
    opened = at("2026-09-14")
    due = CAL.due(opened, 0, "特急")
    assert due == at("2026-09-14", 17, 30)
    sent = walk(opened, due, at("2026-09-15", 9))
    assert [(m, r) for m, r, _, _ in sent] == [
        (at("2026-09-14", 13, 45), "ahead"),
        (at("2026-09-15", 8, 30), "overdue"),
    ]


def test_rungs_at_one_moment_are_one_reminder() -> None:
    # 1 working day from Monday 10:00 is Tuesday 17:30: half the time falls in the night and
    # moves to Tuesday 08:30, the due-day morning; one reminder, the "due" one, is sent.
    opened, due = at("2026-09-14"), at("2026-09-15", 17, 30)
    sent = walk(opened, due, due)
    assert [(m, r) for m, r, _, _ in sent] == [(at("2026-09-15", 8, 30), "due")]


def test_a_daemon_that_was_down_sends_the_latest_rung_once() -> None:
    # Down from before the first reminder to Wednesday 30 September at noon: one reminder,
    # the current rung (to the office too), and the next look after 國慶.
    opened, due = at("2026-09-22"), at("2026-09-24", 17, 30)
    state = ReminderState(
        opened_at=opened, due_at=due, scheduled_at=first_reminder_at(opened, due, CAL)
    )
    plan = plan_reminder(state, at("2026-09-30", 12), CAL)
    assert plan.send is not None
    assert (plan.send.rung, plan.send.number, plan.send.escalated) == ("supervised", 1, True)
    assert plan.next_at == at("2026-10-08", 8, 30)
    assert (plan.reminders_sent, plan.escalation) == (1, int(OFFICE))


def test_nothing_is_sent_before_the_planned_time() -> None:
    # A sweep that finds a step early (its row is claimed when due, but a look may be asked
    # for sooner) sends nothing and keeps the plan.
    opened, due = at("2026-09-22"), at("2026-09-24", 17, 30)
    state = ReminderState(opened_at=opened, due_at=due, scheduled_at=opened)
    plan = plan_reminder(state, at("2026-09-22", 11), CAL)
    assert plan.send is None
    assert plan.next_at == at("2026-09-23", 13, 45)
    # And a rung already passed when the look was planned is not sent again.
    later = ReminderState(opened_at=opened, due_at=due, scheduled_at=at("2026-09-24", 9))
    assert plan_reminder(later, at("2026-09-24", 10), CAL).send is None


def test_escalation_is_new_only_once() -> None:
    # The unit head hears of it first on the "escalated" rung; later rungs are not news to them.
    opened, due = at("2026-09-22"), at("2026-09-24", 17, 30)
    state = ReminderState(
        opened_at=opened,
        due_at=due,
        reminders_sent=3,
        escalation=int(HEAD),
        scheduled_at=at("2026-09-30", 8, 30),
    )
    plan = plan_reminder(state, at("2026-09-30", 8, 30), CAL)
    assert plan.send is not None and plan.send.escalated  # the office is new
    state = ReminderState(
        opened_at=opened,
        due_at=due,
        reminders_sent=4,
        escalation=int(OFFICE),
        scheduled_at=at("2026-10-08", 8, 30),
    )
    plan = plan_reminder(state, at("2026-10-08", 8, 30), CAL)
    assert plan.send is not None and not plan.send.escalated
    assert plan.send.number == 5


def test_the_ladder_is_data() -> None:
    # A bureau that wants no reminder ahead and the office told at once drops and edits rows.
    ladder = (Rung(name="overdue", anchor="overdue", audience=frozenset({PERSON, OFFICE})),)
    opened, due = at("2026-09-22"), at("2026-09-24", 17, 30)
    assert first_reminder_at(opened, due, CAL, ladder) == at("2026-09-28", 8, 30)
    assert LADDER[0].name == "ahead" and LADDER[-1].level is OFFICE


def test_admin_holidays_move_reminders_in_years_the_library_does_not_know() -> None:
    # 2027 is not in chinese_calendar 1.11; the administrator enters New Year's Day (a
    # Friday) and a bureau day off on Monday 4 January.
    cal = WorkCalendar(tz=TZ, extra_holidays=frozenset({dt.date(2027, 1, 1), dt.date(2027, 1, 4)}))
    opened, due = at("2026-12-30"), at("2026-12-31", 17, 30)
    sent = walk(opened, due, at("2027-01-06", 18), cal)
    assert [(m, r) for m, r, _, _ in sent] == [
        (at("2026-12-31", 8, 30), "due"),
        (at("2027-01-05", 8, 30), "overdue"),
        (at("2027-01-06", 8, 30), "escalated"),
    ]


def test_into_working_hours() -> None:
    # Reminders are sent in working hours; make-up working days count as working days.
    assert into_working_hours(at("2026-09-14", 7), CAL) == at("2026-09-14", 8, 30)
    assert into_working_hours(at("2026-09-14", 11), CAL) == at("2026-09-14", 11)
    assert into_working_hours(at("2026-09-14", 18), CAL) == at("2026-09-15", 8, 30)
    assert into_working_hours(at("2026-09-19", 11), CAL) == at("2026-09-20", 8, 30)
    assert into_working_hours(at("2026-09-30", 18), CAL) == at("2026-10-08", 8, 30)


def test_overdue_working_days() -> None:
    # Full working days past a Thursday deadline, with 中秋 and the weekend not counted.
    due = at("2026-09-24", 17, 30)
    assert overdue_working_days(due, at("2026-09-25", 12), CAL) == 0
    assert overdue_working_days(due, at("2026-09-28", 12), CAL) == 0
    assert overdue_working_days(due, at("2026-09-29", 8, 30), CAL) == 1
    assert overdue_working_days(due, at("2026-10-08", 9), CAL) == 3


@pytest.mark.parametrize(
    ("age_days", "expected"),
    [(70, None), (76, 14), (80, 14), (83, 7), (87, 3), (89, 1), (90, 0), (120, 0)],
)
def test_password_warning_thresholds(age_days: int, expected: int | None) -> None:
    # 第十六條: with a 90-day maximum, warnings at 14, 7, 3 and 1 days left, then "expired".
    changed = at("2026-06-01", 9)
    now = changed + dt.timedelta(days=age_days)
    assert password_warning(changed, now, dt.timedelta(days=90)) == expected


def test_naive_times_are_refused() -> None:
    # A naive time would be read in the server's zone: 8 hours off in Shanghai.
    with pytest.raises(ValueError, match="timezone-aware"):
        into_working_hours(dt.datetime(2026, 9, 14, 10), CAL)
    with pytest.raises(ValueError, match="timezone-aware"):
        first_reminder_at(dt.datetime(2026, 9, 14, 10), at("2026-09-15"), CAL)
