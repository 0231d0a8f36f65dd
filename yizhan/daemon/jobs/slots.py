"""Periodic slots (a digest window, a day, a week), each run once by whichever daemon takes it
first: (job, slot) is inserted into job_runs in the transaction that does the work, or, for a
job that goes through thousands of people, in the first of its small transactions, each of
which moves the row's cursor on (:func:`run_slot_in_batches`)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from collections.abc import Callable, Sequence
from typing import Final

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from yizhan import crashpoints
from yizhan.daemon.context import Context
from yizhan.mailstore.models import (
    JobRun,
)
from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.digests import allowed_windows

log = logging.getLogger("yizhan.scheduler")

# Who is named as owner of a job run, for the admin reading ``job_runs``.
_OWNER: Final = f"{socket.gethostname()}:{os.getpid()}"


def digest_slot(now: dt.datetime, calendar: WorkCalendar) -> dt.datetime | None:
    """The digest window run at ``now``: the latest half hour of the working day, if any."""
    local = now.astimezone(calendar.tz)
    if not calendar.is_working_day(local.date()):
        return None
    floor = local.replace(minute=0 if local.minute < 30 else 30, second=0, microsecond=0)
    return floor if floor.time() in allowed_windows(calendar) else None


def daily_slot(
    now: dt.datetime, calendar: WorkCalendar, moment: dt.time, *, working_days_only: bool
) -> dt.datetime | None:
    """Today's ``moment`` once it has come; a slot missed on a day is not run the next day."""
    local = now.astimezone(calendar.tz)
    if working_days_only and not calendar.is_working_day(local.date()):
        return None
    slot = dt.datetime.combine(local.date(), moment, tzinfo=calendar.tz)
    return slot if slot <= local else None


def weekly_slot(now: dt.datetime, calendar: WorkCalendar, moment: dt.time) -> dt.datetime | None:
    """``moment`` on the first working day of ``now``'s week, once it has come."""
    local = now.astimezone(calendar.tz)
    monday = local.date() - dt.timedelta(days=local.weekday())
    for offset in range(7):
        day = monday + dt.timedelta(days=offset)
        if calendar.is_working_day(day):
            slot = dt.datetime.combine(day, moment, tzinfo=calendar.tz)
            return slot if slot <= local else None
    return None


def run_slot(
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
        if not _take(session, job, slot, now):
            return 0
        count = work(session, slot)
        row = session.get(JobRun, (job, slot))
        if row is not None:
            row.count = count
        crashpoints.reached("job")
    if count:
        log.info("%s for %s: %d mail(s)", job, slot.isoformat(), count)
    return count


def run_slot_in_batches(
    ctx: Context,
    job: str,
    slot: dt.datetime | None,
    now: dt.datetime,
    *,
    keys: Callable[[Session, str | None, int], Sequence[str]],
    work: Callable[[Session, dt.datetime, Sequence[str]], int],
) -> int:
    """Run a long slot job in transactions of ``[jobs] batch`` keys each; returns mails queued.

    ``keys(session, after, limit)`` gives the next keys (accounts …) in a fixed order after
    ``after``; ``work(session, slot, keys)`` does them and returns the mails it queued. Each
    transaction locks the slot's row, does one batch and moves the row's cursor past it, so
    on SQLite the writer is held for one batch and every other writer takes its turn in
    between; several daemons (or a tick beside the start-up catch-up) share the slot batch
    by batch, and a run cut short by a crash is taken up at its cursor: no key is done twice
    or skipped.
    """
    if slot is None:
        return 0
    limit = ctx.config.jobs.batch
    queued = 0
    while True:
        with ctx.sessions.begin() as session:
            run = _unfinished(session, job, slot, now)
            if run is None:
                break
            chosen = list(keys(session, run.cursor, limit))
            count = work(session, slot, chosen) if chosen else 0
            run.count += count
            run.cursor = chosen[-1] if chosen else run.cursor
            run.finished = finished = len(chosen) < limit
            crashpoints.reached("job")
        queued += count
        if finished:
            break
    if queued:
        log.info("%s for %s: %d mail(s)", job, slot.isoformat(), queued)
    return queued


def _unfinished(session: Session, job: str, slot: dt.datetime, now: dt.datetime) -> JobRun | None:
    """The slot's run, taken now if no daemon has and locked for this transaction; None once
    it is finished."""
    _take(session, job, slot, now, finished=False)
    run = session.get(JobRun, (job, slot), with_for_update=True, populate_existing=True)
    return None if run is None or run.finished else run


def slot_taken(ctx: Context, job: str, slot: dt.datetime | None) -> bool:
    """Whether some daemon has taken ``slot`` already (or there is none), read without the
    writer: a job that prepares its work before its transaction asks first."""
    if slot is None:
        return True
    with ctx.reading() as session:
        return session.get(JobRun, (job, slot)) is not None


def claim_slot(ctx: Context, job: str, slot: dt.datetime | None, now: dt.datetime) -> bool:
    """Take ``slot`` for a long job that works outside the claiming transaction (a backup must
    not hold the database's write lock); False when there is no slot or another daemon has it."""
    if slot is None:
        return False
    with ctx.sessions.begin() as session:
        return _take(session, job, slot, now)


def _take(
    session: Session, job: str, slot: dt.datetime, now: dt.datetime, *, finished: bool = True
) -> bool:
    values = {
        "job": job,
        "slot": slot,
        "ran_at": now,
        "owner": _OWNER,
        "count": 0,
        "finished": finished,
    }
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # Another daemon inserting the same slot makes this wait for its commit, then do
    # nothing: the slot is taken.
    taken = session.execute(
        insert(JobRun).values(**values).on_conflict_do_nothing().returning(JobRun.job)
    ).first()
    return taken is not None


def work_calendar(ctx: Context) -> WorkCalendar:
    """The bureau's working days in its time zone (``yizhan.timezone``, Asia/Shanghai), with
    the holidays and working days of the config's ``[calendar]``."""
    return ctx.config.work_calendar()


JobBody = Callable[[Context, dt.datetime, WorkCalendar | None], int]
