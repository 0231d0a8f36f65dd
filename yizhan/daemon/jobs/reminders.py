"""The reminder sweep (催辦, 督查督辦, 第二十一條): every waiting step whose next_reminder_at has
come gets the rung of the ladder that is due, and its next look planned.

Steps are claimed a batch at a time with SELECT … FOR UPDATE SKIP LOCKED on PostgreSQL, so
two daemons take different steps; on SQLite the batch's transaction holds the write lock. A batch
moves each step's next_reminder_at past now in the transaction that queues its mail, so a
step is reminded once however many daemons sweep, and a sweep cut short (a crash between
batches) leaves the rest due for the next. A batch claims ``[jobs] batch`` steps and stops
early once it has queued that many mails (a step's rung may go to four people, each mail
rendered and signed while the batch holds SQLite's writer); the steps it did not reach are
left as they were, for the next batch."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from yizhan import crashpoints
from yizhan.daemon.context import Context
from yizhan.daemon.desk.mailer import Mailer
from yizhan.daemon.jobs.mail import local_time, person_name, send_job_mail, step_label
from yizhan.daemon.jobs.slots import work_calendar
from yizhan.mailstore import audit
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.documents import doc_target, load_state
from yizhan.mailstore.models import (
    DelegationRow,
    Document,
    Step,
)
from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.delegation import Delegation, resolve
from yizhan.routing.digests import reply_links
from yizhan.routing.directory import Directory, PersonInfo
from yizhan.routing.documents import DocumentState
from yizhan.routing.duties import heads_of, office_staff
from yizhan.routing.reminders import (
    Audience,
    Reminder,
    ReminderState,
    plan_reminder,
)
from yizhan.routing.tokens import make_token
from yizhan.templates.presentation import trail_lines

log = logging.getLogger("yizhan.scheduler")

#: When a step whose reminder failed (a template or data error, logged) is tried again.
RETRY_FAILED_AFTER: Final = dt.timedelta(hours=1)

# How each rung reads in the document's trail.
_RUNG_LABELS: Final = {
    "ahead": "到期提醒",
    "due": "今日到期",
    "overdue": "逾期催辦",
    "escalated": "逾期督辦",
    "supervised": "督查督辦",
}


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
    limit = ctx.config.jobs.batch
    queued = 0
    while True:
        try:
            more, sent = _sweep_batch(ctx, cal, now, limit, careful=False)
        except Exception:
            # One step spoils its batch: go through it again a step at a time, so that the
            # others are reminded and the bad one is set aside instead of blocking the sweep.
            log.exception("reminder batch failed; retrying it step by step")
            more, sent = _sweep_batch(ctx, cal, now, limit, careful=True)
        queued += sent
        if not more:
            return queued


def _sweep_batch(
    ctx: Context, cal: WorkCalendar, now: dt.datetime, limit: int, *, careful: bool
) -> tuple[bool, int]:
    """Claim and remind one batch in one transaction, up to ``limit`` steps or mails;
    (whether more may be due, mails queued)."""
    queued = 0
    with ctx.sessions.begin() as session:
        steps = claim_due_steps(session, now=now, limit=limit)
        if not steps:
            return False, 0
        sweep = _Sweep.load(ctx, session, cal, steps, now)
        reached = 0
        for step in steps:
            reached += 1
            if not careful:
                queued += sweep.remind(step)
            else:
                try:
                    with session.begin_nested():
                        queued += sweep.remind(step)
                except Exception:
                    log.exception("step %s: reminder failed; trying again later", step.id)
                    step.next_reminder_at = now + RETRY_FAILED_AFTER
            if queued >= limit:
                break
        crashpoints.reached("job")
    return len(steps) == limit or reached < len(steps), queued


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
        """Who hears of ``reminder``: (account, role) with role person, clerk, unit_head or
        office."""
        directory = self.directory
        acting, _ = resolve(step.assignee, self.delegations, self.now, directory=directory)
        found: dict[str, str] = {}
        if Audience.PERSON in reminder.audience and acting in directory.people:
            found[acting] = "person"
        asked = step.on_behalf_of or step.assignee
        if Audience.CLERK in reminder.audience and asked in directory.people:
            for clerk in directory.members(directory.people[asked].unit, "clerk"):
                found.setdefault(clerk.account, "clerk")
        if Audience.UNIT_HEAD in reminder.audience:
            for head in heads_of(directory, asked):
                found.setdefault(head.account, "unit_head")
        if Audience.OFFICE in reminder.audience:
            for person in office_staff(directory):
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
        headers = Mailer(ctx).document_headers(
            document, step, step.action if role == "person" else "none"
        )
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
            person_name(self.directory, step.on_behalf_of)
            if role == "person" and step.on_behalf_of
            else None
        )
        acting_for = None
        if role == "person" and person.account != step.assignee:
            acting_for = person_name(self.directory, step.assignee)
        return send_job_mail(
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
                "step_label": step_label(ctx, document.kind, step.name),
                "rung": reminder.rung,
                "overdue": reminder.overdue,
                "day": reminder.overdue_days + 1,
                "deadline": local_time(step.due_at, cal),
                "due_time": step.due_at.astimezone(cal.tz).strftime("%H:%M"),
                "links": links,
                "trail": trail_lines(state, self.directory, cal.tz, language),
                "on_behalf_of": on_behalf_of or acting_for,
                "asked": person_name(self.directory, asked),
                "acting": person_name(self.directory, step.assignee),
                "role": role,
            },
        )

    def _language(self, person: PersonInfo) -> str:
        return person.language or self.ctx.config.language
