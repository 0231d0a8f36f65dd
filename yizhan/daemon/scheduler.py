"""Keeps time for Yizhan: runs each scheduled job when it falls due (APScheduler 3, asyncio).

The jobs are the rows of :data:`JOBS`; each body is a plain function ``run_<job>(ctx, now)``
that decides with ``now`` (the clock a test can set), does its work in database transactions
and returns how many mails it queued. Mail goes through the outbound queue with a ``source``
key per (job, subject, recipient), so nothing is queued twice.

Two kinds of due work, both safe with several daemons on one database (DESIGN.md):

* Rows with an indexed due time. A waiting step's ``next_reminder_at`` says when the reminder
  sweep next looks at it; the sweep claims due steps a batch at a time with ``SELECT … FOR
  UPDATE SKIP LOCKED`` on PostgreSQL, so two daemons take different steps. On SQLite every
  writing transaction begins IMMEDIATE, so the batch's transaction holds the database's write
  lock (a lease on the whole file) until it commits. A batch moves each step's
  ``next_reminder_at`` past ``now`` in the transaction that queues its mail, so a step is
  reminded once however many daemons sweep. Delegations past their end are found the same way.
* Periodic slots (a digest window, a day, a week). A slot job first inserts ``(job, slot)``
  into ``job_runs`` in the transaction that does the slot's work; the primary key lets one
  daemon in and makes the others skip, and a failed run leaves no row, so it is tried again.

A daemon that was down catches up: rows that fell due meanwhile are due now, and each slot job
looks at its latest slot (within a grace period), so what was missed is done once, not once per
missed minute or window. Start-up runs :func:`run_due_jobs` for that; ``yizhan jobs run --now``
runs it by hand.

Bulletins (公告板, 第二十三條) lapse on their expiry date (taken off the board, the author told),
and at year end every bulletin of the year is archived, after a notice to each author from 7
days before (``routing.bulletins`` decides; the jobs below apply its decisions).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import format_datetime, formataddr
from typing import Any, Final

from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from yizhan.daemon.context import Context
from yizhan.mailstore import audit
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.documents import apply_decision, doc_target, load_state, waiting_steps
from yizhan.mailstore.models import (
    Account,
    DelegationRow,
    Document,
    JobRun,
    OutboundMessage,
    Person,
    Step,
)
from yizhan.mailstore.settings import settings_of
from yizhan.routing import bulletins
from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.delegation import Delegation, resolve
from yizhan.routing.digests import allowed_windows, digest_due, reply_links, windows_for
from yizhan.routing.directory import Directory, PersonInfo
from yizhan.routing.documents import DocumentState
from yizhan.routing.reminders import (
    Audience,
    Reminder,
    ReminderState,
    overdue_working_days,
    password_days_left,
    password_warning,
    plan_reminder,
)
from yizhan.routing.rules import CLOSED
from yizhan.routing.settings import DIGEST
from yizhan.routing.supervision import KIND as SUPERVISION
from yizhan.routing.supervision import report_item
from yizhan.routing.tokens import make_token
from yizhan.templates.presentation import trail_lines
from yizhan.templates.render import render_mail

__all__ = [
    "JOBS",
    "Job",
    "Scheduler",
    "claim_due_steps",
    "digest_slot",
    "run_delegation_expiry",
    "run_delegation_notices",
    "run_digests",
    "run_due_jobs",
    "run_overdue_report",
    "run_password_warnings",
    "run_reminders",
    "run_supervision_report",
    "run_unused_accounts",
    "start_scheduler",
    "work_calendar",
]

log = logging.getLogger("yizhan.scheduler")

#: Steps claimed per sweep transaction: small enough that SQLite's write lock is held briefly.
SWEEP_BATCH: Final = 200
#: When a step whose reminder failed (a template or data error, logged) is tried again.
RETRY_FAILED_AFTER: Final = dt.timedelta(hours=1)
#: When the daily jobs run, local time.
OVERDUE_REPORT_AT: Final = dt.time(9, 0)
PASSWORD_WARNINGS_AT: Final = dt.time(9, 0)
DELEGATION_NOTICE_AT: Final = dt.time(8, 30)
UNUSED_REPORT_AT: Final = dt.time(9, 0)
BULLETIN_EXPIRY_AT: Final = dt.time(0, 5)
BULLETIN_NOTICE_AT: Final = dt.time(9, 0)
BULLETIN_CLEANUP_AT: Final = dt.time(0, 10)
#: When the weekly supervision report (督查督辦) goes out: the week's first working day.
SUPERVISION_REPORT_AT: Final = dt.time(9, 0)

# APScheduler's timer may fire a moment before the wall clock reaches a slot (08:29:59.998
# would be read as the 08:00 slot); a tick decides as of this much later.
_TICK_SLACK: Final = dt.timedelta(seconds=2)
# Who is named as owner of a job run, for the admin reading ``job_runs``.
_OWNER: Final = f"{socket.gethostname()}:{os.getpid()}"
# Every mail a job sends is machine-made (RFC 3834), so that clients do not auto-reply to it.
_AUTO: Final = {"Auto-Submitted": "auto-generated"}

# How each rung reads in the document's trail.
_RUNG_LABELS: Final = {
    "ahead": "到期提醒",
    "due": "今日到期",
    "overdue": "逾期催辦",
    "escalated": "逾期督辦",
    "supervised": "督查督辦",
}


def work_calendar(ctx: Context) -> WorkCalendar:
    """The bureau's working days in its time zone (``yizhan.timezone``, Asia/Shanghai), with
    the holidays and working days of the config's ``[calendar]``."""
    return ctx.config.work_calendar()


# --- Row jobs -------------------------------------------------------------------------------


def claim_due_steps(session: Session, *, now: dt.datetime, limit: int) -> list[Step]:
    """Up to ``limit`` steps whose reminder is due at ``now``, earliest first, locked.

    The range scan on ``ix_steps_next_reminder_at`` reads only due rows, so its cost grows
    with what is due, not with what is open. PostgreSQL skips rows another daemon holds;
    SQLite renders no FOR UPDATE (its transaction already holds the write lock).
    """
    query = (
        select(Step)
        .where(Step.next_reminder_at <= now)
        .order_by(Step.next_reminder_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return list(session.scalars(query))


def run_reminders(ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None) -> int:
    """The reminder sweep (催辦, 督查督辦): every step due for a reminder at ``now`` gets it.

    One transaction per batch: claim, queue the mail, write the trail, move each step's
    ``next_reminder_at`` on, commit. Returns the number of mails queued.
    """
    cal = calendar or work_calendar(ctx)
    queued = 0
    while True:
        try:
            claimed, sent = _sweep_batch(ctx, cal, now, careful=False)
        except Exception:
            # One step spoils its batch: go through it again a step at a time, so that the
            # others are reminded and the bad one is set aside instead of blocking the sweep.
            log.exception("reminder batch failed; retrying it step by step")
            claimed, sent = _sweep_batch(ctx, cal, now, careful=True)
        queued += sent
        if claimed < SWEEP_BATCH:
            return queued


def _sweep_batch(
    ctx: Context, cal: WorkCalendar, now: dt.datetime, *, careful: bool
) -> tuple[int, int]:
    """Claim and remind one batch in one transaction; (steps claimed, mails queued)."""
    queued = 0
    with ctx.sessions.begin() as session:
        steps = claim_due_steps(session, now=now, limit=SWEEP_BATCH)
        if not steps:
            return 0, 0
        sweep = _Sweep.load(ctx, session, cal, steps, now)
        for step in steps:
            if not careful:
                queued += sweep.remind(step)
                continue
            try:
                with session.begin_nested():
                    queued += sweep.remind(step)
            except Exception:
                log.exception("step %s: reminder failed; trying again later", step.id)
                step.next_reminder_at = now + RETRY_FAILED_AFTER
    return len(steps), queued


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


# --- Slot jobs ------------------------------------------------------------------------------


def run_digests(ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None) -> int:
    """To-do digests (第八條) for everyone whose window has come and who has something waiting."""
    cal = calendar or work_calendar(ctx)
    slot = digest_slot(now, cal)

    def work(session: Session, slot: dt.datetime) -> int:
        previous = session.scalar(
            select(func.max(JobRun.slot)).where(JobRun.job == "digests", JobRun.slot < slot)
        )
        directory = load_directory(session)
        people = [p for p in directory.people.values() if p.state == "active"]
        chosen = settings_of(session, DIGEST, [p.account for p in people])
        queued = 0
        for person in sorted(people, key=lambda p: p.account):
            windows = windows_for(person.roles, chosen.get(person.account))
            if not digest_due(windows, slot, previous, cal):
                continue
            steps = waiting_steps(session, person.account)
            if steps:
                queued += _digest_mail(ctx, session, directory, cal, person, steps, slot, now)
        return queued

    return _run_slot(ctx, "digests", slot, now, work)


def run_overdue_report(ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None) -> int:
    """The office's daily report of steps past their deadline (督查督辦), on working days."""
    cal = calendar or work_calendar(ctx)
    slot = _daily_slot(now, cal, OVERDUE_REPORT_AT, working_days_only=True)

    def work(session: Session, slot: dt.datetime) -> int:
        rows = session.execute(
            select(Step, Document)
            .join(Document, Document.id == Step.document_id)
            .where(Step.state == "waiting", Step.due_at < now)
            .order_by(Step.due_at, Step.id)
        ).all()
        if not rows:
            return 0
        directory = load_directory(session)
        by_unit: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for step, document in rows:
            asked = step.on_behalf_of or step.assignee
            person = directory.people.get(asked)
            unit = person.unit if person else "-"
            assert step.due_at is not None
            by_unit[unit].append(
                {
                    "doc_id": document.id,
                    "title": document.title,
                    "number": document.number,
                    "step": _step_label(ctx, document.kind, step.name),
                    "person": _name(directory, step.assignee)
                    + (
                        f"（代 {_name(directory, step.on_behalf_of)}）" if step.on_behalf_of else ""
                    ),
                    "deadline": _local(step.due_at, cal),
                    "day": overdue_working_days(step.due_at, now, cal) + 1,
                }
            )
        units = [
            {"name": directory.units[u].name if u in directory.units else u, "rows": r}
            for u, r in sorted(by_unit.items())
        ]
        queued = 0
        for person in _office(directory):
            queued += _send(
                ctx,
                session,
                source=f"overdue-report:{slot.isoformat()}:{person.account}",
                template="overdue_report.txt",
                person=person,
                headers={},
                variables={
                    "units": units,
                    "count": len(rows),
                    "when": _local(now, cal),
                    "date": slot.astimezone(cal.tz).date().isoformat(),
                },
            )
        audit.record(
            session,
            at=now,
            actor=audit.SYSTEM,
            action="report.overdue",
            detail={
                "steps": [s.id for s, _ in rows],
                "to": [p.account for p in _office(directory)],
            },
        )
        return queued

    return _run_slot(ctx, "overdue_report", slot, now, work)


def run_delegation_notices(
    ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None
) -> int:
    """On a delegation's last day, remind the delegator to REVOKE if back earlier (第九條)."""
    cal = calendar or work_calendar(ctx)
    slot = _daily_slot(now, cal, DELEGATION_NOTICE_AT, working_days_only=False)

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

    return _run_slot(ctx, "delegation_notices", slot, now, work)


def run_password_warnings(
    ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None
) -> int:
    """Warn people whose password nears its maximum age (第十六條); once per threshold.

    After the age is passed the login refuses the account until the password is changed
    (``mailstore.accounts.authenticate``); this job only tells people in time.
    """
    cal = calendar or work_calendar(ctx)
    slot = _daily_slot(now, cal, PASSWORD_WARNINGS_AT, working_days_only=True)
    max_age = ctx.login_policy.max_age

    def work(session: Session, slot: dt.datetime) -> int:
        directory = load_directory(session)
        queued = 0
        rows = session.scalars(
            select(Account)
            .where(
                Account.state == "active",
                Account.password_hash.is_not(None),
                Account.password_temporary.is_(False),
            )
            .order_by(Account.account)
        )
        for row in rows:
            days = password_warning(row.password_changed_at, now, max_age)
            person = directory.people.get(row.account)
            if days is None or person is None or row.password_changed_at is None:
                continue
            changed = row.password_changed_at
            source = f"password:{row.account}:{changed:%Y%m%d%H%M%S}:{days}"
            if _queued_already(session, source):
                continue
            queued += _send(
                ctx,
                session,
                source=source,
                template="password_warning.txt",
                person=person,
                headers={},
                variables={
                    "account": row.account,
                    "days_left": password_days_left(changed, now, max_age),
                    "changed": _local(changed, cal),
                    "expires": _local(changed + max_age, cal),
                    "max_age": max_age.days,
                    "it": "、".join(p.name for p in _it(directory)) or "-",
                },
            )
            audit.record(
                session,
                at=now,
                actor=audit.SYSTEM,
                action="account.password_warning",
                target=row.account,
                detail={"days_left": days},
            )
        return queued

    return _run_slot(ctx, "password_warnings", slot, now, work)


def run_unused_accounts(
    ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None
) -> int:
    """Weekly, tell the IT department which accounts nobody used for ``accounts.unused_days``
    (default 90) days."""
    cal = calendar or work_calendar(ctx)
    slot = _weekly_slot(now, cal, UNUSED_REPORT_AT)

    def work(session: Session, slot: dt.datetime) -> int:
        unused_after = dt.timedelta(days=ctx.config.accounts.unused_days)
        since = now - unused_after
        last_used = func.coalesce(Account.last_login_at, Account.created_at)
        rows = session.execute(
            select(Account, Person)
            .join(Person, Person.account == Account.account)
            .where(Account.state == "active", last_used < since)
            .order_by(Account.account)
        ).all()
        if not rows:
            return 0
        directory = load_directory(session)
        listed = [
            {
                "account": account.account,
                "name": person.name,
                "unit": directory.units[person.unit_id].name
                if person.unit_id in directory.units
                else person.unit_id,
                "last": _local(account.last_login_at, cal) if account.last_login_at else "-",
            }
            for account, person in rows
        ]
        queued = 0
        for it_person in _it(directory):
            queued += _send(
                ctx,
                session,
                source=f"unused:{slot.isoformat()}:{it_person.account}",
                template="unused_accounts.txt",
                person=it_person,
                headers={},
                variables={"rows": listed, "days": unused_after.days},
            )
        audit.record(
            session,
            at=now,
            actor=audit.SYSTEM,
            action="report.unused_accounts",
            detail={"accounts": [r["account"] for r in listed]},
        )
        return queued

    return _run_slot(ctx, "unused_accounts", slot, now, work)


# --- Bulletins (第二十三條) ----------------------------------------------------------------------


def _bulletins(session: Session, states: Sequence[str]) -> list[tuple[Document, DocumentState]]:
    rows = session.scalars(
        select(Document)
        .where(Document.kind == "gonggao", Document.state.in_(states))
        .order_by(Document.id)
    ).all()
    return [(row, load_state(session, row)) for row in rows]


def _published_year(state: DocumentState, cal: WorkCalendar) -> int:
    published = dt.datetime.fromisoformat(str(state.fields["published_at"]))
    return published.astimezone(cal.tz).year


def run_bulletin_expiry(
    ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None
) -> int:
    """Each day, take bulletins past their expiry date off the board and tell their authors."""
    cal = calendar or work_calendar(ctx)
    slot = _daily_slot(now, cal, BULLETIN_EXPIRY_AT, working_days_only=False)

    def work(session: Session, slot: dt.datetime) -> int:
        today = now.astimezone(cal.tz).date()
        directory = load_directory(session)
        queued = 0
        for document, state in _bulletins(session, [CLOSED]):
            decision = bulletins.expire(state, today=today, now=now, actor=audit.SYSTEM)
            if decision is None:
                continue
            apply_decision(
                session, document, decision, actor=audit.SYSTEM, on_behalf_of=None, now=now
            )
            author = directory.people.get(document.author)
            if author is None:
                continue
            queued += _send(
                ctx,
                session,
                source=f"bulletin-expired:{document.id}",
                template="bulletin_expired.txt",
                person=author,
                headers=_bulletin_headers(document),
                variables={
                    "id": document.id,
                    "title": document.title,
                    "expires": state.fields.get("expires", ""),
                },
                document_id=document.id,
            )
        return queued

    return _run_slot(ctx, "bulletin_expiry", slot, now, work)


def run_bulletin_cleanup_notice(
    ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None
) -> int:
    """From 7 days before the year ends, tell each author which bulletins will be archived.

    Runs every day of that week, so an author who publishes late, or a daemon that was down
    on the first day, is still told; each author is told once a year.
    """
    cal = calendar or work_calendar(ctx)
    slot = _daily_slot(now, cal, BULLETIN_NOTICE_AT, working_days_only=False)

    def work(session: Session, slot: dt.datetime) -> int:
        today = now.astimezone(cal.tz).date()
        if not bulletins.cleanup_notice_due(today):
            return 0
        directory = load_directory(session)
        by_author: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for document, state in _bulletins(session, [CLOSED, bulletins.EXPIRED]):
            if state.fields.get("published_at") and _published_year(state, cal) <= today.year:
                by_author[document.author].append(
                    {
                        "id": document.id,
                        "title": document.title,
                        "published": _local(
                            dt.datetime.fromisoformat(str(state.fields["published_at"])), cal
                        ),
                    }
                )
        moment = bulletins.cleanup_moment(today.year, cal.tz)
        queued = 0
        for account, rows in sorted(by_author.items()):
            person = directory.people.get(account)
            if person is None:
                continue
            queued += _send(
                ctx,
                session,
                source=f"bulletin-cleanup-notice:{today.year}:{account}",
                template="bulletin_cleanup_notice.txt",
                person=person,
                headers={},
                variables={"rows": rows, "date": moment.date().isoformat()},
            )
        return queued

    return _run_slot(ctx, "bulletin_cleanup_notice", slot, now, work)


def run_bulletin_cleanup(
    ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None
) -> int:
    """As a year ends, archive its bulletins and tell the office (第二十三條).

    Every bulletin published in a year that has ended is archived, whenever the job next
    runs: a daemon that was down on New Year's Day catches up, and nothing is archived twice.
    """
    cal = calendar or work_calendar(ctx)
    slot = _daily_slot(now, cal, BULLETIN_CLEANUP_AT, working_days_only=False)

    def work(session: Session, slot: dt.datetime) -> int:
        directory = load_directory(session)
        by_year: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for document, state in _bulletins(session, [CLOSED, bulletins.EXPIRED]):
            if not state.fields.get("published_at"):
                continue
            year = _published_year(state, cal)
            if bulletins.cleanup_moment(year, cal.tz) > now:
                continue
            decision = bulletins.archive(state, now=now, actor=audit.SYSTEM)
            if decision is None:
                continue
            apply_decision(
                session, document, decision, actor=audit.SYSTEM, on_behalf_of=None, now=now
            )
            by_year[year].append(
                {
                    "id": document.id,
                    "title": document.title,
                    "author": _name(directory, document.author),
                }
            )
        queued = 0
        for year, rows in sorted(by_year.items()):
            for person in _office(directory):
                queued += _send(
                    ctx,
                    session,
                    source=f"bulletin-cleanup:{slot.isoformat()}:{year}:{person.account}",
                    template="bulletin_cleanup_report.txt",
                    person=person,
                    headers={},
                    variables={"rows": rows, "year": year},
                )
        return queued

    return _run_slot(ctx, "bulletin_cleanup", slot, now, work)


def _bulletin_headers(document: Document) -> dict[str, str]:
    return {
        "X-Yizhan-Doc": str(document.id),
        "X-Yizhan-Kind": "gonggao",
        "X-Yizhan-State": document.state,
        "X-Yizhan-Action": "none",
    }


def run_supervision_report(
    ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None
) -> int:
    """Weekly, every open supervision task (督查督辦) to the office and the bureau leaders.

    Each task with its deadline and each unit's part (in progress, done and waiting for the
    office, confirmed), the latest report and what is overdue; sent only when a task is open.
    """
    cal = calendar or work_calendar(ctx)
    slot = _weekly_slot(now, cal, SUPERVISION_REPORT_AT)

    def work(session: Session, slot: dt.datetime) -> int:
        documents = session.scalars(
            select(Document)
            .where(Document.kind == SUPERVISION, Document.state != "closed")
            .order_by(Document.id)
        ).all()
        if not documents:
            return 0
        directory = load_directory(session)
        tasks = [report_item(load_state(session, d), directory, now, cal.tz) for d in documents]
        # Overdue tasks first, then by deadline.
        tasks.sort(key=lambda t: (not t["overdue"], t["deadline"], t["id"]))
        readers = {p.account: p for p in _office(directory)}
        for leader in directory.with_role("bureau_leader"):
            readers.setdefault(leader.account, leader)
        queued = 0
        for person in readers.values():
            queued += _send(
                ctx,
                session,
                source=f"supervision-report:{slot.isoformat()}:{person.account}",
                template="supervision_report.txt",
                person=person,
                headers={},
                variables={
                    "tasks": tasks,
                    "overdue": sum(1 for t in tasks if t["overdue"]),
                    "when": _local(now, cal),
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

    return _run_slot(ctx, "supervision_report", slot, now, work)


# --- The table of jobs, and running them ----------------------------------------------------

JobBody = Callable[[Context, dt.datetime, WorkCalendar | None], int]


@dataclass(frozen=True, kw_only=True)
class Job:
    """A scheduled job: its body, and the APScheduler trigger that wakes it in a daemon."""

    name: str
    run: JobBody
    trigger: Callable[[WorkCalendar], Any]


def _digest_trigger(cal: WorkCalendar) -> Any:
    hours = sorted({w.hour for w in allowed_windows(cal)})
    return CronTrigger(hour=",".join(map(str, hours)), minute="0,30", timezone=cal.tz)


def _every(seconds: int) -> Any:
    return IntervalTrigger(seconds=seconds)


def _daily(moment: dt.time) -> Callable[[WorkCalendar], Any]:
    def trigger(cal: WorkCalendar) -> Any:
        return CronTrigger(hour=moment.hour, minute=moment.minute, timezone=cal.tz)

    return trigger


#: Every scheduled job, in the order :func:`run_due_jobs` runs them.
JOBS: Final[tuple[Job, ...]] = (
    Job(name="delegation_expiry", run=run_delegation_expiry, trigger=lambda _: _every(60)),
    Job(name="reminders", run=run_reminders, trigger=lambda _: _every(60)),
    Job(name="digests", run=run_digests, trigger=_digest_trigger),
    Job(name="overdue_report", run=run_overdue_report, trigger=_daily(OVERDUE_REPORT_AT)),
    Job(
        name="delegation_notices",
        run=run_delegation_notices,
        trigger=_daily(DELEGATION_NOTICE_AT),
    ),
    Job(
        name="password_warnings",
        run=run_password_warnings,
        trigger=_daily(PASSWORD_WARNINGS_AT),
    ),
    Job(name="unused_accounts", run=run_unused_accounts, trigger=_daily(UNUSED_REPORT_AT)),
    Job(name="bulletin_expiry", run=run_bulletin_expiry, trigger=_daily(BULLETIN_EXPIRY_AT)),
    Job(
        name="bulletin_cleanup_notice",
        run=run_bulletin_cleanup_notice,
        trigger=_daily(BULLETIN_NOTICE_AT),
    ),
    Job(name="bulletin_cleanup", run=run_bulletin_cleanup, trigger=_daily(BULLETIN_CLEANUP_AT)),
    Job(
        name="supervision_report",
        run=run_supervision_report,
        trigger=_daily(SUPERVISION_REPORT_AT),
    ),
)


def run_due_jobs(
    ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None
) -> dict[str, int]:
    """Run every job once for ``now``: what is due is done, what was done is not done again.

    Returns the mails each job queued. A failing job does not stop the others; the first
    failure is raised after all have run.
    """
    cal = calendar or work_calendar(ctx)
    counts: dict[str, int] = {}
    failure: Exception | None = None
    for job in JOBS:
        try:
            counts[job.name] = job.run(ctx, now, cal)
        except Exception as exc:
            log.exception("job %s failed at %s", job.name, now.isoformat())
            failure = failure or exc
    if failure is not None:
        raise failure
    return counts


class Scheduler:
    """The jobs of :data:`JOBS` on an asyncio event loop; bodies run in worker threads."""

    def __init__(
        self,
        ctx: Context,
        *,
        on_queued: Callable[[], None] = lambda: None,
        calendar: WorkCalendar | None = None,
    ) -> None:
        self.ctx = ctx
        self.on_queued = on_queued
        self.calendar = calendar or work_calendar(ctx)
        self._scheduler: Any = None

    def start(self) -> None:
        """Register the jobs, catch up on what fell due while no daemon ran, start ticking.

        Call from a coroutine: the scheduler runs on the running event loop.
        """
        # APScheduler logs every run of every job at INFO; the job bodies log what they did.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        scheduler = AsyncIOScheduler(
            timezone=self.calendar.tz,
            job_defaults={
                # A late tick still runs, once; the job bodies decide what is due.
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": None,
            },
        )
        for job in JOBS:
            scheduler.add_job(self._tick, job.trigger(self.calendar), args=[job], id=job.name)
        scheduler.add_job(self.catch_up, id="catch_up")
        scheduler.start()
        self._scheduler = scheduler

    def shutdown(self) -> None:
        """Stop ticking; a job body already running finishes its transaction."""
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._scheduler = None

    async def catch_up(self) -> None:
        """Run every job once for now (start-up: what fell due while the daemon was down)."""
        try:
            counts = await asyncio.to_thread(
                run_due_jobs, self.ctx, self.ctx.clock(), self.calendar
            )
        except Exception:
            log.exception("catching up on scheduled jobs failed")
            return
        if any(counts.values()):
            log.info("caught up: %s", counts)
            self.on_queued()

    async def _tick(self, job: Job) -> None:
        try:
            now = self.ctx.clock() + _TICK_SLACK
            queued = await asyncio.to_thread(job.run, self.ctx, now, self.calendar)
        except Exception:
            log.exception("job %s failed", job.name)
            return
        if queued:
            log.info("job %s queued %d mail(s)", job.name, queued)
            self.on_queued()


def start_scheduler(ctx: Context, *, on_queued: Callable[[], None] = lambda: None) -> Scheduler:
    """Start the scheduler on the running event loop; call ``shutdown()`` when stopping."""
    scheduler = Scheduler(ctx, on_queued=on_queued)
    scheduler.start()
    return scheduler


# --- Slots ----------------------------------------------------------------------------------


def digest_slot(now: dt.datetime, calendar: WorkCalendar) -> dt.datetime | None:
    """The digest window run at ``now``: the latest half hour of the working day, if any."""
    local = now.astimezone(calendar.tz)
    if not calendar.is_working_day(local.date()):
        return None
    floor = local.replace(minute=0 if local.minute < 30 else 30, second=0, microsecond=0)
    return floor if floor.time() in allowed_windows(calendar) else None


def _daily_slot(
    now: dt.datetime, calendar: WorkCalendar, moment: dt.time, *, working_days_only: bool
) -> dt.datetime | None:
    """Today's ``moment`` once it has come; a slot missed on a day is not run the next day."""
    local = now.astimezone(calendar.tz)
    if working_days_only and not calendar.is_working_day(local.date()):
        return None
    slot = dt.datetime.combine(local.date(), moment, tzinfo=calendar.tz)
    return slot if slot <= local else None


def _weekly_slot(now: dt.datetime, calendar: WorkCalendar, moment: dt.time) -> dt.datetime | None:
    """``moment`` on the first working day of ``now``'s week, once it has come."""
    local = now.astimezone(calendar.tz)
    monday = local.date() - dt.timedelta(days=local.weekday())
    for offset in range(7):
        day = monday + dt.timedelta(days=offset)
        if calendar.is_working_day(day):
            slot = dt.datetime.combine(day, moment, tzinfo=calendar.tz)
            return slot if slot <= local else None
    return None


def _run_slot(
    ctx: Context,
    job: str,
    slot: dt.datetime | None,
    now: dt.datetime,
    work: Callable[[Session, dt.datetime], int],
) -> int:
    """Run ``work`` for ``slot`` unless some daemon already has; returns mails queued."""
    if slot is None:
        return 0
    with ctx.sessions.begin() as session:
        values = {"job": job, "slot": slot, "ran_at": now, "owner": _OWNER, "count": 0}
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        # Another daemon inserting the same slot makes this wait for its commit, then do
        # nothing: the slot is taken.
        taken = session.execute(
            insert(JobRun).values(**values).on_conflict_do_nothing().returning(JobRun.job)
        ).first()
        if taken is None:
            return 0
        count = work(session, slot)
        row = session.get(JobRun, (job, slot))
        if row is not None:
            row.count = count
    if count:
        log.info("%s for %s: %d mail(s)", job, slot.isoformat(), count)
    return count


# --- The sweep ------------------------------------------------------------------------------


@dataclass(kw_only=True)
class _Sweep:
    """What one sweep batch shares: the directory, delegations and documents it touches."""

    ctx: Context
    session: Session
    calendar: WorkCalendar
    directory: Directory
    delegations: list[Delegation]
    documents: dict[int, Document]
    now: dt.datetime

    @classmethod
    def load(
        cls,
        ctx: Context,
        session: Session,
        calendar: WorkCalendar,
        steps: Sequence[Step],
        now: dt.datetime,
    ) -> _Sweep:
        documents = {
            d.id: d
            for d in session.scalars(
                select(Document).where(Document.id.in_({s.document_id for s in steps}))
            )
        }
        delegations = [
            Delegation(
                delegator=r.delegator, delegate=r.delegate, starts_at=r.starts_at, until=r.until
            )
            for r in session.scalars(select(DelegationRow).where(DelegationRow.ended_at.is_(None)))
        ]
        return cls(
            ctx=ctx,
            session=session,
            calendar=calendar,
            directory=load_directory(session),
            delegations=delegations,
            documents=documents,
            now=now,
        )

    def remind(self, step: Step) -> int:
        """Send what the ladder says is due for ``step`` and plan its next look."""
        document = self.documents.get(step.document_id)
        if step.state != "waiting" or step.due_at is None or document is None:
            # Not for the sweep (closed elsewhere without clearing): take it off.
            step.next_reminder_at = None
            return 0
        plan = plan_reminder(
            ReminderState(
                opened_at=step.created_at,
                due_at=step.due_at,
                reminders_sent=step.reminders_sent,
                escalation=step.escalation,
                scheduled_at=step.next_reminder_at,
            ),
            self.now,
            self.calendar,
        )
        step.next_reminder_at = plan.next_at
        reminder = plan.send
        if reminder is None:
            return 0
        step.reminders_sent, step.escalation = plan.reminders_sent, plan.escalation
        recipients = self._recipients(step, reminder)
        state = load_state(self.session, document)
        queued = 0
        for account, role in recipients:
            person = self.directory.people[account]
            queued += self._mail(step, document, state, reminder, person, role)
        names = "、".join(self.directory.people[a].name for a, _ in recipients) or "-"
        label = _RUNG_LABELS.get(reminder.rung, reminder.rung)
        audit.record(
            self.session,
            at=self.now,
            actor=audit.SYSTEM,
            action="doc.remind",
            target=doc_target(document.id),
            detail={
                "step": step.name,
                "step_id": step.id,
                "rung": reminder.rung,
                "n": reminder.number,
                "overdue_days": reminder.overdue_days,
                "escalation": plan.escalation,
                "to": [a for a, _ in recipients],
                "opinion": f"{label} → {names}",
            },
        )
        return queued

    def _recipients(self, step: Step, reminder: Reminder) -> list[tuple[str, str]]:
        """Who hears of ``reminder``: (account, role) with role person, unit_head or office."""
        directory = self.directory
        acting, _ = resolve(step.assignee, self.delegations, self.now, directory=directory)
        found: dict[str, str] = {}
        if Audience.PERSON in reminder.audience and acting in directory.people:
            found[acting] = "person"
        asked = step.on_behalf_of or step.assignee
        if Audience.UNIT_HEAD in reminder.audience:
            for head in _heads_of(directory, asked):
                found.setdefault(head.account, "unit_head")
        if Audience.OFFICE in reminder.audience:
            for person in _office(directory):
                found.setdefault(person.account, "office")
        return list(found.items())

    def _mail(
        self,
        step: Step,
        document: Document,
        state: DocumentState,
        reminder: Reminder,
        person: PersonInfo,
        role: str,
    ) -> int:
        ctx, cal = self.ctx, self.calendar
        language = self._language(person)
        domain = ctx.config.domain
        assert step.due_at is not None
        headers = {
            "X-Yizhan-Doc": str(document.id),
            "X-Yizhan-Kind": document.kind,
            "X-Yizhan-State": document.state,
            "X-Yizhan-Step": step.name,
            "X-Yizhan-Action": step.action if role == "person" else "none",
            "X-Yizhan-Deadline": format_datetime(step.due_at.astimezone(cal.tz)),
        }
        if document.number:
            headers["X-Yizhan-Number"] = document.number
        if document.urgency:
            headers["X-Yizhan-Urgency"] = document.urgency
        links: tuple[Any, ...] = ()
        if role == "person":
            token = make_token(
                ctx.config.secret, document_id=document.id, step_id=step.id, account=person.account
            )
            headers["Reply-To"] = f"r+{token}@{domain}"
            links = reply_links(
                token=token,
                domain=domain,
                title=document.title,
                action=step.action,
                language=language,
            )
        asked = step.on_behalf_of or step.assignee
        on_behalf_of = (
            _name(self.directory, step.on_behalf_of)
            if role == "person" and step.on_behalf_of
            else None
        )
        acting_for = None
        if role == "person" and person.account != step.assignee:
            acting_for = _name(self.directory, step.assignee)
        return _send(
            ctx,
            self.session,
            source=f"remind:{step.id}:{reminder.number}:{person.account}",
            template="reminder.txt" if role == "person" else "escalation.txt",
            person=person,
            headers=headers,
            document_id=document.id,
            variables={
                "doc": state,
                "step": step,
                "step_label": _step_label(ctx, document.kind, step.name),
                "rung": reminder.rung,
                "overdue": reminder.overdue,
                "day": reminder.overdue_days + 1,
                "deadline": _local(step.due_at, cal),
                "due_time": step.due_at.astimezone(cal.tz).strftime("%H:%M"),
                "links": links,
                "trail": trail_lines(state, self.directory, cal.tz, language),
                "on_behalf_of": on_behalf_of or acting_for,
                "asked": _name(self.directory, asked),
                "acting": _name(self.directory, step.assignee),
                "role": role,
            },
        )

    def _language(self, person: PersonInfo) -> str:
        return person.language or self.ctx.config.language


# --- Mail -----------------------------------------------------------------------------------


def _send(
    ctx: Context,
    session: Session,
    *,
    source: str,
    template: str,
    person: PersonInfo,
    headers: dict[str, str],
    variables: dict[str, Any],
    document_id: int | None = None,
) -> int:
    """Queue one job mail to ``person``; 0 when ``source`` was queued before, else 1."""
    if _queued_already(session, source):
        return 0
    domain = ctx.config.domain
    address = person.mailbox(domain)
    mail = render_mail(
        template,
        person.language or ctx.config.language,
        sender=formataddr(("驛站", f"cmd@{domain}")),
        to=formataddr((person.name, address)),
        headers={**_AUTO, **headers},
        **variables,
    )
    # Queued at the wall clock's now, so the outbound worker sends it at once even when the
    # job ran for another time (``yizhan jobs run --now``).
    ctx.queue(
        session,
        source=source,
        message=ctx.sign(mail),
        rcpts=[address],
        now=ctx.clock(),
        document_id=document_id,
    )
    return 1


def _queued_already(session: Session, source: str) -> bool:
    return (
        session.scalar(select(OutboundMessage.id).where(OutboundMessage.source == source))
        is not None
    )


def _digest_mail(
    ctx: Context,
    session: Session,
    directory: Directory,
    cal: WorkCalendar,
    person: PersonInfo,
    steps: Sequence[Step],
    slot: dt.datetime,
    now: dt.datetime,
) -> int:
    language = person.language or ctx.config.language
    documents = {
        d.id: d
        for d in session.scalars(
            select(Document).where(Document.id.in_({s.document_id for s in steps}))
        )
    }
    items = []
    for step in steps:
        document = documents.get(step.document_id)
        if document is None:
            continue
        links: tuple[Any, ...] = ()
        if step.action != "none":
            token = make_token(
                ctx.config.secret, document_id=document.id, step_id=step.id, account=person.account
            )
            links = reply_links(
                token=token,
                domain=ctx.config.domain,
                title=document.title,
                action=step.action,
                language=language,
            )
        items.append(
            {
                "document_id": document.id,
                "title": document.title,
                "number": document.number,
                "urgency": document.urgency,
                "step": _step_label(ctx, document.kind, step.name),
                "action": step.action,
                "due": _local(step.due_at, cal) if step.due_at else "",
                "overdue": step.due_at is not None and step.due_at < now,
                "on_behalf_of": _name(directory, step.on_behalf_of) if step.on_behalf_of else None,
                "links": links,
            }
        )
    if not items:
        return 0
    return _send(
        ctx,
        session,
        source=f"digest:{person.account}:{slot.isoformat()}",
        template="digest.txt",
        person=person,
        headers={},
        variables={"items": items, "when": _local(slot, cal), "domain": ctx.config.domain},
    )


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
        f"#{s.document_id} {s.name}: {s.outcome or ''} ({_name(directory, s.done_by)}, "
        f"{_local(s.done_at, cal)})"
        for s in done
        if s.done_at
    ]
    return _send(
        ctx,
        session,
        source=f"delegation:{row.id}:{'ending' if ending else 'ended'}",
        template="delegation_ended.txt",
        person=person,
        headers={},
        variables={
            "ending": ending,
            "delegate": _name(directory, row.delegate),
            "until": row.until.astimezone(cal.tz).date().isoformat(),
            "returned": returned,
            "done": lines,
            "domain": ctx.config.domain,
        },
    )


# --- Who ------------------------------------------------------------------------------------


def _heads_of(directory: Directory, account: str) -> list[PersonInfo]:
    """The unit head of ``account``; for a unit head, the bureau leader in charge of the unit."""
    person = directory.people.get(account)
    if person is None:
        return []
    heads = [p for p in directory.members(person.unit, "unit_head") if p.account != account]
    if heads:
        return heads
    unit = directory.units.get(person.unit)
    leader = directory.people.get(unit.leader) if unit and unit.leader else None
    if leader is not None and leader.account != account and leader.state == "active":
        return [leader]
    bureau = [u.id for u in directory.units_of_kind("bureau")]
    return [p for u in bureau for p in directory.members(u, "unit_head") if p.account != account]


def _office(directory: Directory) -> list[PersonInfo]:
    """Who supervises deadlines for the office (督查督辦): its head and its clerks."""
    found: dict[str, PersonInfo] = {}
    for unit in directory.units_of_kind("office"):
        for role in ("unit_head", "clerk"):
            for person in directory.members(unit.id, role):
                found.setdefault(person.account, person)
    return list(found.values())


def _it(directory: Directory) -> list[PersonInfo]:
    """Who in the IT department hears of account matters: its head, else its clerks."""
    units = directory.units_of_kind("it")
    heads = [p for u in units for p in directory.members(u.id, "unit_head")]
    return heads or [p for u in units for p in directory.members(u.id, "clerk")]


def _step_label(ctx: Context, kind: str, name: str) -> str:
    """A step as people call it (審核, 簽發 …), from the rules in force; its name if not found."""
    flow = ctx.rules.flow(kind)
    labels = {s.name: s.label for s in flow.steps} if flow is not None else {}
    return labels.get(name, name)


def _name(directory: Directory, account: str | None) -> str:
    if account is None:
        return "-"
    person = directory.people.get(account)
    return person.name if person is not None else account


def _local(moment: dt.datetime, cal: WorkCalendar) -> str:
    return moment.astimezone(cal.tz).strftime("%Y-%m-%d %H:%M")
