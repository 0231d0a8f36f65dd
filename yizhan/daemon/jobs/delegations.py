"""Delegations while away (第九條): one planned ahead begun on its first day with the waiting
steps handed over, each ended at its date with the steps given back, both people told at
both ends, and the delegator reminded on the last day to revoke when back earlier."""

from __future__ import annotations

import datetime as dt
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from yizhan.daemon.context import Context
from yizhan.daemon.jobs.mail import local_time, person_name, send_job_mail
from yizhan.daemon.jobs.slots import daily_slot, run_slot, work_calendar
from yizhan.mailstore import audit
from yizhan.mailstore.delegations import hand_over
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.models import (
    DelegationRow,
    Document,
    Step,
)
from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.directory import Directory
from yizhan.routing.tokens import make_token

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
            if row.begun:
                queued += _both_told(ctx, session, directory, cal, row, ended=True)
    return queued


def run_delegation_start(
    ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None
) -> int:
    """Begins the delegations planned ahead whose first day has come (第九條): the delegator's
    waiting steps go to the delegate, marked 代, and both are told."""
    cal = calendar or work_calendar(ctx)
    queued = 0
    with ctx.sessions.begin() as session:
        rows = list(
            session.scalars(
                select(DelegationRow)
                .where(
                    DelegationRow.ended_at.is_(None),
                    DelegationRow.begun.is_(False),
                    DelegationRow.starts_at <= now,
                )
                .order_by(DelegationRow.id)
                .with_for_update(skip_locked=True)
            )
        )
        if not rows:
            return 0
        directory = load_directory(session)
        for row in rows:
            row.begun = True
            moved = hand_over(session, row.delegator, row.delegate, on_behalf_of=row.delegator)
            audit.record(
                session,
                at=now,
                actor=audit.SYSTEM,
                action="delegation.begin",
                target=row.delegator,
                detail={"delegate": row.delegate, "moved": moved},
            )
            queued += _both_told(ctx, session, directory, cal, row, ended=False, moved=moved)
    return queued


def _both_told(
    ctx: Context,
    session: Session,
    directory: Directory,
    cal: WorkCalendar,
    row: DelegationRow,
    *,
    ended: bool,
    moved: int = 0,
) -> int:
    """Tell the delegator (when it begins) and the delegate (when it begins and ends)."""
    queued = 0
    told = [("delegate", row.delegate)] + ([] if ended else [("delegator", row.delegator)])
    steps = [] if ended else _handed(ctx, session, cal, row)
    for role, account in told:
        person = directory.people.get(account)
        if person is None:
            continue
        queued += send_job_mail(
            ctx,
            session,
            source=f"delegation:{row.id}:{'ended' if ended else 'begun'}:{role}",
            template="delegation_begun.txt",
            person=person,
            headers={},
            variables={
                "ended": ended,
                "role": role,
                "delegator": person_name(directory, row.delegator),
                "delegate": person_name(directory, row.delegate),
                "until": row.until.astimezone(cal.tz).date().isoformat(),
                "moved": moved,
                "steps": steps if role == "delegate" else [],
            },
        )
    return queued


def _handed(ctx: Context, session: Session, cal: WorkCalendar, row: DelegationRow) -> list[str]:
    """The steps now waiting for the delegate on the delegator's behalf, each with the address
    to reply to: the requests sent again to the person who now holds them."""
    config = ctx.config
    steps = session.scalars(
        select(Step)
        .where(
            Step.assignee == row.delegate,
            Step.on_behalf_of == row.delegator,
            Step.state == "waiting",
        )
        .order_by(Step.id)
    )
    lines = []
    for step in steps:
        document = session.get(Document, step.document_id)
        if document is None:
            continue
        token = make_token(
            config.secret, document_id=document.id, step_id=step.id, account=row.delegate
        )
        due = local_time(step.due_at, cal) if step.due_at else "-"
        lines.append(
            f"#{document.id} {document.title} [{step.name}/{step.action}] 期限 due {due}  "
            f"回覆 reply: r+{token}@{config.domain}"
        )
    return lines


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
