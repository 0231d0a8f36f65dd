"""To-do digests (第八條): at each person's windows on working days, what waits for them, with
one-click reply links."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from yizhan.daemon.context import Context
from yizhan.daemon.jobs.mail import local_time, person_name, send_job_mail, step_label
from yizhan.daemon.jobs.slots import digest_slot, run_slot_in_batches, work_calendar
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.documents import waiting_steps
from yizhan.mailstore.models import (
    Document,
    JobRun,
    Step,
)
from yizhan.mailstore.settings import settings_of
from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.digests import (
    EarlierRun,
    digest_due,
    last_covered,
    reply_links,
    windows_for,
)
from yizhan.routing.directory import Directory, PersonInfo
from yizhan.routing.settings import DIGEST
from yizhan.routing.tokens import make_token


def run_digests(ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None) -> int:
    """To-do digests (第八條) for everyone whose window has come and who has something waiting.

    Everyone active is looked at, by account, ``[jobs] batch`` people a transaction.
    """
    cal = calendar or work_calendar(ctx)
    slot = digest_slot(now, cal)

    def keys(session: Session, after: str | None, limit: int) -> list[str]:
        directory = load_directory(session)
        active = sorted(
            p.account
            for p in directory.people.values()
            if p.state == "active" and (after is None or p.account > after)
        )
        return active[:limit]

    def work(session: Session, slot: dt.datetime, accounts: Sequence[str]) -> int:
        earlier = _earlier_runs(session, slot)
        directory = load_directory(session)
        chosen = settings_of(session, DIGEST, list(accounts))
        queued = 0
        for account in accounts:
            person = directory.people[account]
            windows = windows_for(person.roles, chosen.get(person.account))
            previous = last_covered(account, earlier)
            if not digest_due(windows, slot, previous, cal):
                continue
            steps = waiting_steps(session, person.account)
            if steps:
                queued += _digest_mail(ctx, session, directory, cal, person, steps, slot, now)
        return queued

    return run_slot_in_batches(ctx, "digests", slot, now, keys=keys, work=work)


#: How many earlier runs are looked at: more than a working day's windows, so that a run cut
#: short earlier today is among them.
EARLIER_RUNS: Final = 50


def _earlier_runs(session: Session, slot: dt.datetime) -> list[EarlierRun]:
    """The digest runs before ``slot``, newest first."""
    rows = session.execute(
        select(JobRun.slot, JobRun.finished, JobRun.cursor)
        .where(JobRun.job == "digests", JobRun.slot < slot)
        .order_by(JobRun.slot.desc())
        .limit(EARLIER_RUNS)
    )
    return [EarlierRun(slot=s, finished=f, cursor=c) for s, f, c in rows]


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
                "step": step_label(ctx, document.kind, step.name),
                "action": step.action,
                "due": local_time(step.due_at, cal) if step.due_at else "",
                "overdue": step.due_at is not None and step.due_at < now,
                "on_behalf_of": person_name(directory, step.on_behalf_of)
                if step.on_behalf_of
                else None,
                "links": links,
            }
        )
    if not items:
        return 0
    return send_job_mail(
        ctx,
        session,
        source=f"digest:{person.account}:{slot.isoformat()}",
        template="digest.txt",
        person=person,
        headers={},
        variables={"items": items, "when": local_time(slot, cal), "domain": ctx.config.domain},
    )
