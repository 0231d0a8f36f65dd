"""How a job's mail is made and queued once, and how jobs name people, steps and times in it."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from yizhan.daemon.context import Context
from yizhan.daemon.desk.mailer import Mailer, Prepared
from yizhan.mailstore.models import OutboundMessage
from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.directory import Directory, PersonInfo
from yizhan.routing.rules import OWN_STEP_LABELS

# Every mail a job sends is machine-made (RFC 3834), so that clients do not auto-reply to it.
AUTO_SUBMITTED: Final = {"Auto-Submitted": "auto-generated"}


def send_job_mail(
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
    """Queue one job mail to ``person`` through the desk's Mailer; 0 when ``source`` was queued
    before (by this daemon or another), else 1."""
    if queued_already(session, source):
        return 0
    # Queued at the wall clock's now (the Mailer's default), so the outbound worker sends it at
    # once even when the job ran for another time (``yizhan jobs run --now``).
    Mailer(ctx).send(
        session,
        source=source,
        to=person,
        template=template,
        variables=variables,
        headers={**AUTO_SUBMITTED, **headers},
        document_id=document_id,
    )
    return 1


def prepare_job_mail(
    ctx: Context,
    *,
    template: str,
    person: PersonInfo,
    headers: dict[str, str],
    variables: dict[str, Any],
) -> Prepared:
    """Render and sign a job mail to ``person`` outside any transaction (a long report), to be
    queued by :func:`queue_job_mail` in the job's."""
    return Mailer(ctx).prepare(
        to=person, template=template, variables=variables, headers={**AUTO_SUBMITTED, **headers}
    )


def queue_job_mail(ctx: Context, session: Session, *, source: str, prepared: Prepared) -> int:
    """Queue a prepared job mail; 0 when ``source`` was queued before, else 1."""
    if queued_already(session, source):
        return 0
    Mailer(ctx).queue_prepared(session, source=source, prepared=prepared)
    return 1


def queued_already(session: Session, source: str) -> bool:
    return (
        session.scalar(select(OutboundMessage.id).where(OutboundMessage.source == source))
        is not None
    )


def step_label(ctx: Context, kind: str, name: str) -> str:
    """A step as people call it (審核, 簽發 …), from the rules in force; its name if not found."""
    flow = ctx.rules.flow(kind)
    labels = {s.name: s.label for s in flow.steps} if flow is not None else {}
    return labels.get(name, OWN_STEP_LABELS.get(name, name))


def person_name(directory: Directory, account: str | None) -> str:
    if account is None:
        return "-"
    person = directory.people.get(account)
    return person.name if person is not None else account


def local_time(moment: dt.datetime, cal: WorkCalendar) -> str:
    return moment.astimezone(cal.tz).strftime("%Y-%m-%d %H:%M")
