"""Bulletins in time (第二十三條): off the board after their 期限, and at year end archived after a
notice to each author from 7 days before (routing.bulletins decides; these apply it)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from yizhan.daemon.context import Context
from yizhan.daemon.desk.mailer import Mailer
from yizhan.daemon.jobs.mail import local_time, person_name, send_job_mail
from yizhan.daemon.jobs.slots import daily_slot, run_slot, work_calendar
from yizhan.mailstore import audit
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.documents import apply_decision, load_state
from yizhan.mailstore.models import (
    Document,
)
from yizhan.routing import bulletins
from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.documents import DocumentState
from yizhan.routing.duties import office_staff
from yizhan.routing.rules import CLOSED

BULLETIN_EXPIRY_AT: Final = dt.time(0, 5)

BULLETIN_NOTICE_AT: Final = dt.time(9, 0)

BULLETIN_CLEANUP_AT: Final = dt.time(0, 10)


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
    slot = daily_slot(now, cal, BULLETIN_EXPIRY_AT, working_days_only=False)

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
            queued += send_job_mail(
                ctx,
                session,
                source=f"bulletin-expired:{document.id}",
                template="bulletin_expired.txt",
                person=author,
                headers=Mailer(ctx).document_headers(document),
                variables={
                    "id": document.id,
                    "title": document.title,
                    "expires": state.fields.get("expires", ""),
                },
                document_id=document.id,
            )
        return queued

    return run_slot(ctx, "bulletin_expiry", slot, now, work)


def run_bulletin_cleanup_notice(
    ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None
) -> int:
    """From 7 days before the year ends, tell each author which bulletins will be archived.

    Runs every day of that week, so an author who publishes late, or a daemon that was down
    on the first day, is still told; each author is told once a year.
    """
    cal = calendar or work_calendar(ctx)
    slot = daily_slot(now, cal, BULLETIN_NOTICE_AT, working_days_only=False)

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
                        "published": local_time(
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
            queued += send_job_mail(
                ctx,
                session,
                source=f"bulletin-cleanup-notice:{today.year}:{account}",
                template="bulletin_cleanup_notice.txt",
                person=person,
                headers={},
                variables={"rows": rows, "date": moment.date().isoformat()},
            )
        return queued

    return run_slot(ctx, "bulletin_cleanup_notice", slot, now, work)


def run_bulletin_cleanup(
    ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None
) -> int:
    """As a year ends, archive its bulletins and tell the office (第二十三條).

    Every bulletin published in a year that has ended is archived, whenever the job next
    runs: a daemon that was down on New Year's Day catches up, and nothing is archived twice.
    """
    cal = calendar or work_calendar(ctx)
    slot = daily_slot(now, cal, BULLETIN_CLEANUP_AT, working_days_only=False)

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
                    "author": person_name(directory, document.author),
                }
            )
        queued = 0
        for year, rows in sorted(by_year.items()):
            for person in office_staff(directory):
                queued += send_job_mail(
                    ctx,
                    session,
                    source=f"bulletin-cleanup:{slot.isoformat()}:{year}:{person.account}",
                    template="bulletin_cleanup_report.txt",
                    person=person,
                    headers={},
                    variables={"rows": rows, "year": year},
                )
        return queued

    return run_slot(ctx, "bulletin_cleanup", slot, now, work)
