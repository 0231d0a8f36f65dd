"""The office's daily report of steps past their deadline (督查督辦), on working days."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from yizhan.daemon.context import Context
from yizhan.daemon.jobs.mail import (
    local_time,
    person_name,
    prepare_job_mail,
    queue_job_mail,
    step_label,
)
from yizhan.daemon.jobs.slots import daily_slot, run_slot, slot_taken, work_calendar
from yizhan.mailstore import audit
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.models import (
    Document,
    Step,
)
from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.duties import office_staff
from yizhan.routing.reminders import (
    overdue_working_days,
)

#: When the daily jobs run, local time.
OVERDUE_REPORT_AT: Final = dt.time(9, 0)


def run_overdue_report(ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None) -> int:
    """The office's daily report of steps past their deadline (督查督辦), on working days.

    With a backlog the report lists thousands of steps: it is read, rendered and signed
    before the slot's transaction, without the database's writer, and that transaction only
    queues it (it held SQLite's writer for minutes, issue 16).
    """
    cal = calendar or work_calendar(ctx)
    slot = daily_slot(now, cal, OVERDUE_REPORT_AT, working_days_only=True)
    if slot_taken(ctx, "overdue_report", slot):
        return 0
    assert slot is not None
    with ctx.reading() as session:
        report = _overdue(ctx, session, cal, now)
        directory = load_directory(session)
    if report is None:
        return run_slot(ctx, "overdue_report", slot, now, lambda _session, _slot: 0)
    units, steps = report
    office = office_staff(directory)
    prepared = {
        person.account: prepare_job_mail(
            ctx,
            template="overdue_report.txt",
            person=person,
            headers={},
            variables={
                "units": units,
                "count": len(steps),
                "when": local_time(now, cal),
                "date": slot.astimezone(cal.tz).date().isoformat(),
            },
        )
        for person in office
    }

    def work(session: Session, slot: dt.datetime) -> int:
        queued = 0
        for account, mail in prepared.items():
            queued += queue_job_mail(
                ctx,
                session,
                source=f"overdue-report:{slot.isoformat()}:{account}",
                prepared=mail,
            )
        audit.record(
            session,
            at=now,
            actor=audit.SYSTEM,
            action="report.overdue",
            detail={"steps": steps, "to": list(prepared)},
        )
        return queued

    return run_slot(ctx, "overdue_report", slot, now, work)


def _overdue(
    ctx: Context, session: Session, cal: WorkCalendar, now: dt.datetime
) -> tuple[list[dict[str, Any]], list[int]] | None:
    """The overdue steps by unit, as the report shows them, and their ids; None: none."""
    # The columns the report shows, not the rows whole: with a backlog of 20,000 overdue steps
    # the ORM's objects (each document's fields too) took the daemon's peak up by ~100 MiB,
    # most of it kept by the allocator afterwards (issue 16).
    rows = session.execute(
        select(
            Step.id,
            Step.name,
            Step.assignee,
            Step.on_behalf_of,
            Step.due_at,
            Document.id.label("doc_id"),
            Document.kind,
            Document.title,
            Document.number,
        )
        .join(Document, Document.id == Step.document_id)
        .where(Step.state == "waiting", Step.due_at < now)
        .order_by(Step.due_at, Step.id)
    ).all()
    if not rows:
        return None
    directory = load_directory(session)
    by_unit: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for step in rows:
        asked = step.on_behalf_of or step.assignee
        person = directory.people.get(asked)
        unit = person.unit if person else "-"
        assert step.due_at is not None
        by_unit[unit].append(
            {
                "doc_id": step.doc_id,
                "title": step.title,
                "number": step.number,
                "step": step_label(ctx, step.kind, step.name),
                "person": person_name(directory, step.assignee)
                + (
                    f"（代 {person_name(directory, step.on_behalf_of)}）"
                    if step.on_behalf_of
                    else ""
                ),
                "deadline": local_time(step.due_at, cal),
                "day": overdue_working_days(step.due_at, now, cal) + 1,
            }
        )
    units = [
        {"name": directory.units[u].name if u in directory.units else u, "rows": r}
        for u, r in sorted(by_unit.items())
    ]
    return units, [step.id for step in rows]
