"""The monthly assessment (mine rules 二 考核) sent to the office on the first working day of
each month, for the month before, from the audit trail (``routing.assessment``)."""

from __future__ import annotations

import datetime as dt
from typing import Final

from sqlalchemy.orm import Session

from yizhan.daemon.context import Context
from yizhan.daemon.jobs.mail import send_job_mail
from yizhan.daemon.jobs.slots import run_slot, work_calendar
from yizhan.mailstore import audit
from yizhan.mailstore.assessment import assessment
from yizhan.mailstore.directory import load_directory
from yizhan.routing.assessment import previous_month
from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.duties import office_staff

__all__ = ["ASSESSMENT_AT", "monthly_slot", "run_assessment"]

#: When the assessment is sent, local time, on the first working day of the month.
ASSESSMENT_AT: Final = dt.time(9, 0)


def monthly_slot(now: dt.datetime, calendar: WorkCalendar, moment: dt.time) -> dt.datetime | None:
    """``moment`` on the first working day of ``now``'s month, once it has come that day; as
    for the daily jobs, a day missed is not run later in the month."""
    local = now.astimezone(calendar.tz)
    day = local.date().replace(day=1)
    while not calendar.is_working_day(day):
        day += dt.timedelta(days=1)
    slot = dt.datetime.combine(day, moment, tzinfo=calendar.tz)
    return slot if day == local.date() and slot <= local else None


def run_assessment(ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None) -> int:
    """Send the office (its heads and clerks) the assessment of the month before, once; a
    month with nothing to report sends nothing."""
    cal = calendar or work_calendar(ctx)
    slot = monthly_slot(now, cal, ASSESSMENT_AT)

    def work(session: Session, slot: dt.datetime) -> int:
        year, month = previous_month(slot.astimezone(cal.tz).date())
        report = assessment(session, year, month, cal.tz, now)
        if not any(isinstance(v, list) and v for v in report.values()):
            # A month with nothing to report sends nothing, like the other reports.
            return 0
        directory = load_directory(session)
        office = office_staff(directory)
        queued = sum(
            send_job_mail(
                ctx,
                session,
                source=f"assessment:{report['month']}:{person.account}",
                template="assessment.txt",
                person=person,
                headers={},
                variables={"report": report},
            )
            for person in office
        )
        audit.record(
            session,
            at=now,
            actor=audit.SYSTEM,
            action="report.assessment",
            target=report["month"],
            detail={"to": [p.account for p in office]},
        )
        return queued

    return run_slot(ctx, "assessment", slot, now, work)
