"""The weekly supervision report (督查督辦): every open task to the office and bureau leaders."""

from __future__ import annotations

import datetime as dt
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from yizhan.daemon.context import Context
from yizhan.daemon.jobs.mail import local_time, send_job_mail
from yizhan.daemon.jobs.slots import run_slot, weekly_slot, work_calendar
from yizhan.mailstore import audit
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.documents import load_states
from yizhan.mailstore.models import (
    Document,
)
from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.duties import office_staff
from yizhan.routing.supervision import KIND as SUPERVISION
from yizhan.routing.supervision import report_item

#: When the weekly supervision report (督查督辦) goes out: the week's first working day.
SUPERVISION_REPORT_AT: Final = dt.time(9, 0)


def run_supervision_report(
    ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None
) -> int:
    """Weekly, every open supervision task (督查督辦) to the office and the bureau leaders.

    Each task with its deadline and each unit's part (in progress, done and waiting for the
    office, confirmed), the latest report and what is overdue; sent only when a task is open.
    """
    cal = calendar or work_calendar(ctx)
    slot = weekly_slot(now, cal, SUPERVISION_REPORT_AT)

    def work(session: Session, slot: dt.datetime) -> int:
        documents = session.scalars(
            select(Document)
            .where(Document.kind == SUPERVISION, Document.state != "closed")
            .order_by(Document.id)
        ).all()
        if not documents:
            return 0
        directory = load_directory(session)
        tasks = [report_item(s, directory, now, cal.tz) for s in load_states(session, documents)]
        # Overdue tasks first, then by deadline.
        tasks.sort(key=lambda t: (not t["overdue"], t["deadline"], t["id"]))
        readers = {p.account: p for p in office_staff(directory)}
        for leader in directory.with_role("bureau_leader"):
            readers.setdefault(leader.account, leader)
        queued = 0
        for person in readers.values():
            queued += send_job_mail(
                ctx,
                session,
                source=f"supervision-report:{slot.isoformat()}:{person.account}",
                template="supervision_report.txt",
                person=person,
                headers={},
                variables={
                    "tasks": tasks,
                    "overdue": sum(1 for t in tasks if t["overdue"]),
                    "when": local_time(now, cal),
                    "date": slot.astimezone(cal.tz).date().isoformat(),
                },
            )
        audit.record(
            session,
            at=now,
            actor=audit.SYSTEM,
            action="report.supervision",
            detail={"documents": [d.id for d in documents], "to": list(readers)},
        )
        return queued

    return run_slot(ctx, "supervision_report", slot, now, work)
