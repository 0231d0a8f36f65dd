"""The nightly backup (第四條(二)3): a whole backup into ``[backup] directory``, checked against
its manifest, then the old ones thinned to N daily, M weekly and K monthly copies. A failed
backup is told to the IT department, who answer for the data (第四條(二)3; mine rules 一(一)).

The backup runs outside the transaction that claims the night's slot: on SQLite a long
transaction would hold the write lock and stop mail for as long as the backup takes.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from yizhan.daemon.context import Context
from yizhan.daemon.jobs.mail import send_job_mail
from yizhan.daemon.jobs.slots import claim_slot, daily_slot, work_calendar
from yizhan.mailstore import audit
from yizhan.mailstore.backup import backup
from yizhan.mailstore.backup_check import verify_backup
from yizhan.mailstore.directory import load_directory
from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.duties import it_people

log = logging.getLogger("yizhan.backup")

#: A nightly backup's directory name: its local date and time.
NAME = re.compile(r"^yizhan-(\d{8})-(\d{4})$")

#: The outcome of the last nightly backup in this process, for /metrics.
LAST: dict[str, float] = {}


def run_nightly_backup(ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None) -> int:
    """Back up once a night at ``[backup] time``; returns the mails queued (to IT on failure)."""
    settings = ctx.config.backup
    if settings.directory is None:
        return 0
    cal = calendar or work_calendar(ctx)
    slot = daily_slot(now, cal, settings.time, working_days_only=False)
    if not claim_slot(ctx, "nightly_backup", slot, now):
        return 0
    assert slot is not None
    target = settings.directory / slot.strftime("yizhan-%Y%m%d-%H%M")
    started = time.monotonic()
    try:
        settings.directory.mkdir(parents=True, exist_ok=True)
        counts = backup(ctx.engine, ctx.config.data_dir, ctx.config.signing.gnupg_home, target)
        verdict = verify_backup(target)
        if not verdict.ok:
            raise RuntimeError(f"the new backup does not verify: {verdict.problems[0]}")
        removed = prune(settings.directory, keep_after(settings.directory, ctx, cal), target)
    except Exception as exc:
        LAST.update(failed_at=time.time())
        log.exception("the nightly backup into %s failed", target)
        return _tell_it(ctx, now, target, f"{type(exc).__name__}: {exc}")
    seconds = time.monotonic() - started
    LAST.update(succeeded_at=time.time(), seconds=seconds, bytes=float(verdict.bytes))
    with ctx.sessions.begin() as session:
        audit.record(
            session,
            at=now,
            actor=audit.SYSTEM,
            action="backup.nightly",
            target=str(target),
            detail={
                "rows": sum(counts.values()),
                "files": verdict.files,
                "bytes": verdict.bytes,
                "seconds": round(seconds, 1),
                "removed": [p.name for p in removed],
            },
        )
    log.info("nightly backup %s: %d files, %d bytes", target, verdict.files, verdict.bytes)
    return 0


def keep_after(directory: Path, ctx: Context, cal: WorkCalendar) -> set[Path]:
    """The backups to keep: the newest of each of the last N days, M weeks and K months."""
    settings = ctx.config.backup
    stamped = [(path, stamp) for path in directory.iterdir() if (stamp := _stamp(path, cal))]
    whole = [(path, stamp) for path, stamp in stamped if (path / "manifest.json").is_file()]
    return set(
        kept(
            whole,
            daily=settings.keep_daily,
            weekly=settings.keep_weekly,
            monthly=settings.keep_monthly,
        )
    )


def kept(
    backups: Iterable[tuple[Path, dt.datetime]], *, daily: int, weekly: int, monthly: int
) -> list[Path]:
    """Grandfather-father-son: the newest backup of each of the newest ``daily`` days,
    ``weekly`` ISO weeks and ``monthly`` months that have one."""
    newest_first = sorted(backups, key=lambda b: b[1], reverse=True)
    keep: list[Path] = []
    for count, period in (
        (daily, lambda t: t.date()),
        (weekly, lambda t: t.isocalendar()[:2]),
        (monthly, lambda t: (t.year, t.month)),
    ):
        seen: list[object] = []
        for path, stamp in newest_first:
            key = period(stamp)
            if key in seen:
                continue
            if len(seen) >= count:
                break
            seen.append(key)
            if path not in keep:
                keep.append(path)
    return keep


def prune(directory: Path, keep: set[Path], newest: Path) -> list[Path]:
    """Remove the nightly backups not kept, and partial ones left by a failed night."""
    removed = []
    for path in sorted(directory.iterdir()):
        if path == newest or path in keep or not NAME.match(path.name) or not path.is_dir():
            continue
        shutil.rmtree(path)
        removed.append(path)
    return removed


def _stamp(path: Path, cal: WorkCalendar) -> dt.datetime | None:
    match = NAME.match(path.name)
    if not match or not path.is_dir():
        return None
    try:
        local = dt.datetime.strptime("".join(match.groups()), "%Y%m%d%H%M")
    except ValueError:
        return None
    return local.replace(tzinfo=cal.tz)


def _tell_it(ctx: Context, now: dt.datetime, target: Path, reason: str) -> int:
    """Tell every IT person that last night's backup failed, and why; record it."""
    queued = 0
    with ctx.sessions.begin() as session:
        audit.record(
            session,
            at=now,
            actor=audit.SYSTEM,
            action="backup.failed",
            target=str(target),
            detail={"reason": reason[:500]},
        )
        for person in it_people(load_directory(session)):
            queued += send_job_mail(
                ctx,
                session,
                source=f"backup-failed:{target.name}:{person.account}",
                template="backup_failed.txt",
                person=person,
                headers={},
                variables={"target": str(target), "reason": reason},
            )
    return queued
