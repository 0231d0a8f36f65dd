"""Delegations while away (第九條): ended at their date with the steps given back, and the
delegator reminded on the last day to revoke when back earlier."""

from __future__ import annotations

import datetime as dt
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from yizhan.daemon.context import Context
from yizhan.daemon.jobs.mail import local_time, person_name, send_job_mail
from yizhan.daemon.jobs.slots import daily_slot, run_slot, work_calendar
from yizhan.mailstore import audit
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.models import (
    DelegationRow,
    Step,
)
from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.directory import Directory

DELEGATION_NOTICE_AT: Final = dt.time(8, 30)


def run_delegation_expiry(
    ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None
) -> int:
    """Ends delegations whose date has passed (第九條): steps go back, the delegator is told."""
    cal = calendar or work_calendar(ctx)
    queued = 0
    with ctx.sessions.begin() as session:
        rows = list(
            session.scalars(
                select(DelegationRow)
                .where(DelegationRow.ended_at.is_(None), DelegationRow.until < now)
                .order_by(DelegationRow.id)
                .with_for_update(skip_locked=True)
            )
        )
        if not rows:
            return 0
        directory = load_directory(session)
        for row in rows:
            row.ended_at, row.ended_by = now, "expired"
            steps = list(
                session.scalars(
                    select(Step).where(
                        Step.assignee == row.delegate,
                        Step.on_behalf_of == row.delegator,
                        Step.state == "waiting",
                    )
                )
            )
            for step in steps:
                step.assignee, step.on_behalf_of = row.delegator, None
            audit.record(
                session,
                at=now,
                actor=audit.SYSTEM,
                action="delegation.expire",
                target=row.delegator,
                detail={"delegate": row.delegate, "returned": [s.id for s in steps]},
            )
            queued += _delegation_mail(
                ctx, session, directory, cal, row, now, ending=False, returned=len(steps)
            )
    return queued


def run_delegation_notices(
    ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None
) -> int:
    """On a delegation's last day, remind the delegator to REVOKE if back earlier (第九條)."""
    cal = calendar or work_calendar(ctx)
    slot = daily_slot(now, cal, DELEGATION_NOTICE_AT, working_days_only=False)

    def work(session: Session, slot: dt.datetime) -> int:
        today = slot.astimezone(cal.tz).date()
        directory = load_directory(session)
        queued = 0
        rows = session.scalars(
            select(DelegationRow)
            .where(DelegationRow.ended_at.is_(None), DelegationRow.until >= now)
            .order_by(DelegationRow.id)
        )
        for row in rows:
            if row.until.astimezone(cal.tz).date() == today and row.starts_at <= now:
                queued += _delegation_mail(ctx, session, directory, cal, row, now, ending=True)
        return queued

    return run_slot(ctx, "delegation_notices", slot, now, work)


def _delegation_mail(
    ctx: Context,
    session: Session,
    directory: Directory,
    cal: WorkCalendar,
    row: DelegationRow,
    now: dt.datetime,
    *,
    ending: bool,
    returned: int = 0,
) -> int:
    """Tell the delegator their delegation ends today (and to REVOKE if back), or has ended."""
    person = directory.people.get(row.delegator)
    if person is None:
        return 0
    done = session.scalars(
        select(Step)
        .where(
            Step.on_behalf_of == row.delegator,
            Step.state == "done",
            Step.done_at >= row.starts_at,
        )
        .order_by(Step.done_at)
    ).all()
    lines = [
        f"#{s.document_id} {s.name}: {s.outcome or ''} ({person_name(directory, s.done_by)}, "
        f"{local_time(s.done_at, cal)})"
        for s in done
        if s.done_at
    ]
    return send_job_mail(
        ctx,
        session,
        source=f"delegation:{row.id}:{'ending' if ending else 'ended'}",
        template="delegation_ended.txt",
        person=person,
        headers={},
        variables={
            "ending": ending,
            "delegate": person_name(directory, row.delegate),
            "until": row.until.astimezone(cal.tz).date().isoformat(),
            "returned": returned,
            "done": lines,
            "domain": ctx.config.domain,
        },
    )
