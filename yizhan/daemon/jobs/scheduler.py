"""Runs the jobs of the table on the daemon's event loop with APScheduler 3, each body in a worker
thread; at start-up it catches up on what fell due while no daemon ran."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, Final

from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]

from yizhan.daemon import malloc
from yizhan.daemon.context import Context
from yizhan.daemon.jobs.slots import work_calendar
from yizhan.daemon.jobs.table import JOBS, Job, run_due_jobs
from yizhan.daemon.metrics import JOB_FAILURES, JOB_RUNS
from yizhan.routing.calendar import WorkCalendar

log = logging.getLogger("yizhan.scheduler")

# APScheduler's timer may fire a moment before the wall clock reaches a slot (08:29:59.998
# would be read as the 08:00 slot); a tick decides as of this much later.
_TICK_SLACK: Final = dt.timedelta(seconds=2)


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
        finally:
            # A job over a backlog frees tens of MiB that glibc would keep (daemon/malloc.py).
            await asyncio.to_thread(malloc.trim)
        if any(counts.values()):
            log.info("caught up: %s", counts)
            self.on_queued()

    async def _tick(self, job: Job) -> None:
        JOB_RUNS.labels(job=job.name).inc()
        try:
            now = self.ctx.clock() + _TICK_SLACK
            queued = await asyncio.to_thread(job.run, self.ctx, now, self.calendar)
        except Exception:
            JOB_FAILURES.labels(job=job.name).inc()
            log.exception("job %s failed", job.name)
            return
        finally:
            await asyncio.to_thread(malloc.trim)
        if queued:
            log.info("job %s queued %d mail(s)", job.name, queued)
            self.on_queued()


def start_scheduler(ctx: Context, *, on_queued: Callable[[], None] = lambda: None) -> Scheduler:
    """Start the scheduler on the running event loop; call ``shutdown()`` when stopping."""
    scheduler = Scheduler(ctx, on_queued=on_queued)
    scheduler.start()
    return scheduler
