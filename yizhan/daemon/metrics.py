"""Prometheus metrics: what the daemon counts as it works, and the figures read from the
database when ``/metrics`` is scraped (queue depth, steps waiting and overdue per unit).

The counters live in one registry per process (several daemons are several processes, each
scraped on its own admin port); the figures from the database are the same from every daemon
sharing it. Labels are bounded: the SMTP stage and reply code, never an address or a subject.
docs/operations.md says what each one means and what to do about it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yizhan.mailstore.models import Delivery, Inbound, JobRun, OutboundMessage, Person, Step

REGISTRY: Final = CollectorRegistry(auto_describe=True)

ACCEPTED: Final = Counter(
    "yizhan_smtp_accepted", "Messages accepted (250 after DATA)", registry=REGISTRY
)
REFUSED: Final = Counter(
    "yizhan_smtp_refused",
    "Messages and commands refused, by SMTP stage, reply code and enhanced status",
    ["stage", "code", "status"],
    registry=REGISTRY,
)
CONTENT_REFUSED: Final = Counter(
    "yizhan_content_refused",
    "Messages refused at DATA by a content rule (virus, classified marking, type, size …)",
    ["rule"],
    registry=REGISTRY,
)
JOB_RUNS: Final = Counter(
    "yizhan_job_runs", "Scheduled job runs in this daemon", ["job"], registry=REGISTRY
)
JOB_FAILURES: Final = Counter(
    "yizhan_job_failures", "Scheduled job runs that raised", ["job"], registry=REGISTRY
)
IMAP_FILING_ERRORS: Final = Counter(
    "yizhan_imap_filing_errors",
    "Messages that could not be filed into a person's IMAP folder, by kind",
    ["kind"],
    registry=REGISTRY,
)
SIGNING_SECONDS: Final = Histogram(
    "yizhan_signing_seconds",
    "Time to PGP/MIME-sign one outgoing message",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
DELIVERY_SECONDS: Final = Histogram(
    "yizhan_delivery_seconds",
    "Time from queueing to delivery of one message to one recipient",
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 86400),
    registry=REGISTRY,
)
SPOOL_FILES: Final = Gauge(
    "yizhan_spool_files",
    "Files in the incoming spool: acknowledged messages whose inbound rows are not made yet",
    registry=REGISTRY,
)
BACKUP_LAST_SUCCESS: Final = Gauge(
    "yizhan_backup_last_success_timestamp_seconds",
    "When this daemon's last nightly backup succeeded (Unix time); 0: not since start",
    registry=REGISTRY,
)
BACKUP_FAILURES: Final = Counter(
    "yizhan_backup_failures", "Nightly backups that failed in this daemon", registry=REGISTRY
)

SmtpHook = Callable[..., Awaitable[str]]


def counted(stage: str, hook: SmtpHook) -> SmtpHook:
    """An aiosmtpd hook that counts its answers: 250 after DATA accepted, 4xx/5xx refused."""

    async def wrapper(*args: Any, **kwargs: Any) -> str:
        reply = await hook(*args, **kwargs)
        code, _, rest = reply.partition(" ")
        if code.startswith("2"):
            if stage == "DATA":
                ACCEPTED.inc()
        else:
            status = rest.split(" ", 1)[0] if rest[:1].isdigit() else ""
            REFUSED.labels(stage=stage, code=code[:3], status=status).inc()
        return reply

    return wrapper


@contextmanager
def timed(histogram: Histogram) -> Iterator[None]:
    """Observe how long the block took."""
    start = time.perf_counter()
    try:
        yield
    finally:
        histogram.observe(time.perf_counter() - start)


def database_figures(session: Session, now: dt.datetime) -> bytes:
    """The figures read from the database, in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=True)
    depth = Gauge("yizhan_queue_depth", "Work waiting, by queue", ["queue"], registry=registry)
    oldest = Gauge(
        "yizhan_queue_oldest_age_seconds",
        "Age of the oldest work waiting, by queue (0 when empty)",
        ["queue"],
        registry=registry,
    )
    queues = {
        "inbound": select(func.count(), func.min(Inbound.received_at)).where(
            Inbound.state == "accepted"
        ),
        "outbound": select(func.count(), func.min(OutboundMessage.created_at))
        .select_from(Delivery)
        .join(OutboundMessage, OutboundMessage.id == Delivery.message_pk)
        .where(Delivery.state == "queued"),
    }
    for name, query in queues.items():
        count, first = session.execute(query).one()
        depth.labels(queue=name).set(count)
        oldest.labels(queue=name).set(_age(now, first))
    waiting = Gauge(
        "yizhan_steps_waiting", "Steps waiting for someone, by unit", ["unit"], registry=registry
    )
    overdue = Gauge(
        "yizhan_steps_overdue",
        "Waiting steps past their deadline, by unit",
        ["unit"],
        registry=registry,
    )
    unit = func.coalesce(Step.unit, Person.unit_id, "-")
    rows = session.execute(
        select(
            unit,
            func.count(),
            func.count().filter(Step.due_at.is_not(None) & (Step.due_at < now)),
        )
        .select_from(Step)
        .outerjoin(Person, Person.account == Step.assignee)
        .where(Step.state == "waiting")
        .group_by(unit)
    ).all()
    for name, count, late in rows:
        waiting.labels(unit=name).set(count)
        overdue.labels(unit=name).set(late)
    last_run = Gauge(
        "yizhan_job_last_run_timestamp_seconds",
        "When each periodic job last ran in any daemon (Unix time)",
        ["job"],
        registry=registry,
    )
    for job, ran_at in session.execute(
        select(JobRun.job, func.max(JobRun.ran_at)).group_by(JobRun.job)
    ):
        last_run.labels(job=job).set(_utc(ran_at).timestamp())
    return generate_latest(registry)


def exposition(session: Session, now: dt.datetime) -> bytes:
    """Everything ``/metrics`` shows: this daemon's counters, then the database's figures."""
    return generate_latest(REGISTRY) + database_figures(session, now)


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _age(now: dt.datetime, since: dt.datetime | None) -> float:
    return max(0.0, (now - _utc(since)).total_seconds()) if since is not None else 0.0
