"""The table of scheduled jobs: each job's body and the trigger that wakes it, and running
every job due at a moment once (start-up, ``yizhan jobs run --now``)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from yizhan.daemon.context import Context
from yizhan.daemon.jobs.accounts import (
    PASSWORD_WARNINGS_AT,
    UNUSED_REPORT_AT,
    run_password_warnings,
    run_unused_accounts,
)
from yizhan.daemon.jobs.backups import run_nightly_backup
from yizhan.daemon.jobs.bulletins import (
    BULLETIN_CLEANUP_AT,
    BULLETIN_EXPIRY_AT,
    BULLETIN_NOTICE_AT,
    run_bulletin_cleanup,
    run_bulletin_cleanup_notice,
    run_bulletin_expiry,
)
from yizhan.daemon.jobs.delegations import (
    DELEGATION_NOTICE_AT,
    run_delegation_expiry,
    run_delegation_notices,
)
from yizhan.daemon.jobs.digests import run_digests
from yizhan.daemon.jobs.reminders import run_reminders
from yizhan.daemon.jobs.reports import OVERDUE_REPORT_AT, run_overdue_report
from yizhan.daemon.jobs.slots import JobBody, work_calendar
from yizhan.daemon.jobs.supervision import SUPERVISION_REPORT_AT, run_supervision_report
from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.digests import allowed_windows

log = logging.getLogger("yizhan.scheduler")

__all__ = ["JOBS", "Job", "run_due_jobs"]


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
    # At [backup] time, which the body reads from the config: it looks every minute.
    Job(name="nightly_backup", run=run_nightly_backup, trigger=lambda _: _every(60)),
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
