"""IT notices (第七條; mine rules 一(八)): impersonation and viruses told at once (the gateway
and the desk call :func:`alert_now`, or this job's minute sweep tells what they could not),
set-aside messages and lockouts in one digest a working day, never more than one mail of a
kind an hour, with the counts (``routing.it_notices``)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from sqlalchemy.orm import Session

from yizhan.daemon.context import Context
from yizhan.daemon.jobs.mail import local_time, send_job_mail
from yizhan.daemon.jobs.slots import daily_slot, run_slot, work_calendar
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.it_notices import events_since, last_notice, record_notice
from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.duties import it_people
from yizhan.routing.it_notices import DIGEST_KINDS, IMMEDIATE_KINDS, Event, alert_due

__all__ = ["IT_DIGEST_AT", "alert_now", "run_it_alerts", "run_it_digest"]

#: When the day's digest goes, local time, on working days.
IT_DIGEST_AT: Final = dt.time(8, 30)

#: Events listed in one mail; the count says how many there were in all.
_LISTED: Final = 50


def run_it_alerts(ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None) -> int:
    """Tell IT of impersonation and viruses not yet told, unless it was told of that kind in
    the last hour (then the next run after the hour tells them, counted)."""
    cal = calendar or work_calendar(ctx)
    queued = 0
    for kind in IMMEDIATE_KINDS:
        with ctx.sessions() as session:
            last = last_notice(session, kind)
            pending = events_since(session, kind, last.upto if last else 0)
            due = alert_due(now, last.at if last else None, pending)
        if not due:
            continue

        def work(session: Session, _slot: dt.datetime, kind: str = kind) -> int:
            return alert_now(ctx, session, kind, now, cal)

        # Two daemons in the same minute: the slot lets one of them send.
        queued += run_slot(ctx, f"it_alert_{kind}", now.replace(second=0, microsecond=0), now, work)
    return queued


def alert_now(
    ctx: Context,
    session: Session,
    kind: str,
    now: dt.datetime,
    calendar: WorkCalendar | None = None,
) -> int:
    """Tell IT now of the events of an immediate ``kind`` not yet told, in the caller's
    transaction, unless IT was told of that kind in the last hour; the mails queued."""
    cal = calendar or work_calendar(ctx)
    last = last_notice(session, kind)
    pending = events_since(session, kind, last.upto if last else 0)
    if not alert_due(now, last.at if last else None, pending):
        return 0
    return _send(ctx, session, cal, now, "it_alert.txt", {kind: pending}, slot=now)


def run_it_digest(ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None) -> int:
    """Once a working day: the messages set aside and the accounts locked since the last
    digest, with counts; nothing when there were none."""
    cal = calendar or work_calendar(ctx)
    slot = daily_slot(now, cal, IT_DIGEST_AT, working_days_only=True)

    def work(session: Session, slot: dt.datetime) -> int:
        found: dict[str, list[Event]] = {}
        for kind in DIGEST_KINDS:
            last = last_notice(session, kind)
            pending = events_since(session, kind, last.upto if last else 0)
            if alert_due(now, last.at if last else None, pending):
                found[kind] = pending
        if not found:
            return 0
        return _send(ctx, session, cal, now, "it_digest.txt", found, slot=slot)

    return run_slot(ctx, "it_digest", slot, now, work)


def _send(
    ctx: Context,
    session: Session,
    cal: WorkCalendar,
    now: dt.datetime,
    template: str,
    found: dict[str, list[Event]],
    *,
    slot: dt.datetime,
) -> int:
    directory = load_directory(session)
    people = it_people(directory)
    sections: list[dict[str, Any]] = [
        {
            "kind": kind,
            "count": len(events),
            "since": local_time(events[0].at, cal),
            "events": [
                {"id": e.id, "at": local_time(e.at, cal), "who": e.who, "what": e.what}
                for e in events[-_LISTED:]
            ],
        }
        for kind, events in found.items()
    ]
    kinds = "+".join(found)
    queued = sum(
        send_job_mail(
            ctx,
            session,
            source=f"it-notice:{kinds}:{slot.isoformat()}:{person.account}",
            template=template,
            person=person,
            headers={},
            variables={"sections": sections, "when": local_time(now, cal)},
        )
        for person in people
    )
    for kind, events in found.items():
        record_notice(
            session,
            kind,
            now,
            upto=events[-1].id,
            count=len(events),
            to=tuple(p.account for p in people),
        )
    return queued
