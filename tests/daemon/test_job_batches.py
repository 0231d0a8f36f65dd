"""Scheduled jobs with a backlog (issue 16): each does its work in transactions of ``[jobs]
batch`` items, so that logins, the gateway and the processor get the database's writer in
between, and a run cut short between two batches, taken up again, sends each mail once."""

from __future__ import annotations

import contextlib
import dataclasses
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select

from tests.daemon.test_scheduler import HEAD, Clock, at, body, open_report, queued, to
from yizhan import crashpoints
from yizhan.daemon.config_ops import JobsConfig
from yizhan.daemon.context import Context
from yizhan.daemon.jobs.digests import run_digests
from yizhan.daemon.jobs.reminders import run_reminders
from yizhan.daemon.jobs.reports import run_overdue_report
from yizhan.mailstore.db import SNAPSHOT
from yizhan.mailstore.models import AuditEntry, JobRun, Step

BATCH = 7


@pytest.fixture
def clock(bureau: Context) -> Clock:
    clock = Clock(at("2026-09-21", 9))
    bureau.clock = clock
    # Small batches, as an operator may set them in [jobs] batch.
    bureau.config = dataclasses.replace(bureau.config, jobs=JobsConfig(batch=BATCH))
    return clock


class Commits:
    """Counts the COMMITs on the bureau's database."""

    def __init__(self, ctx: Context) -> None:
        self.count = 0
        event.listen(ctx.engine, "commit", self._commit)

    def _commit(self, _connection: Any) -> None:
        self.count += 1


class Crash(Exception):
    """The daemon dies here (the crash suite's ``job`` point, as a test can have it)."""


@contextlib.contextmanager
def dying_in_the_second_batch() -> Iterator[None]:
    """The first batch commits; the daemon dies in the second, before its commit."""
    batches = 0

    def reached(point: str) -> None:
        nonlocal batches
        if point == "job":
            batches += 1
            if batches >= 2:
                raise Crash

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(crashpoints, "reached", reached)
        with pytest.raises(Crash):
            yield


def reminded(ctx: Context) -> Counter[tuple[str, int]]:
    """How many times each (document, rung number) was reminded, by the documents' trails."""
    with ctx.sessions() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "doc.remind"))
        return Counter((e.target, e.detail["n"]) for e in entries)


def test_a_reminder_backlog_goes_in_small_transactions_and_once_after_a_crash(
    bureau: Context, clock: Clock
) -> None:
    # Sixty reports have waited on the unit head since Tuesday; on the next Monday each is
    # overdue, and its reminder goes to him and to his unit's clerk.
    documents = [
        open_report(bureau, clock.set(at("2026-09-22", 10)), f"請示 {n}") for n in range(60)
    ]
    now = clock.set(at("2026-09-28", 10))
    commits = Commits(bureau)
    with dying_in_the_second_batch():
        run_reminders(bureau, now)
    # The first batch was committed: BATCH mails (its last step's second one too), no more.
    first = len(queued(bureau, "remind:"))
    assert 0 < first <= BATCH + 1
    assert commits.count == 1

    sent = run_reminders(bureau, now)
    mails = queued(bureau, "remind:")
    assert sent + first == len(mails) == 60 * 2
    # Every step reminded once, none twice, none skipped; each mail is one rung to one person.
    assert reminded(bureau) == {(f"doc:{d}", 1): 1 for d in documents}
    assert len({source for source, _ in mails}) == len(mails)
    assert Counter(to(m) for _, m in mails) == {HEAD: 60, "songjia": 60}
    with bureau.sessions() as session:
        assert all(
            s.next_reminder_at is not None and s.next_reminder_at > now
            for s in session.scalars(select(Step).where(Step.state == "waiting"))
        )
    # Each transaction queued at most BATCH mails (and its last step's second): 112 mails took
    # fourteen or more, with the writer given back after each.
    assert commits.count >= 1 + (len(mails) - first) // (BATCH + 1)
    assert run_reminders(bureau, now) == 0


def test_digests_for_everyone_go_in_small_transactions_and_resume_after_a_crash(
    bureau: Context, clock: Clock
) -> None:
    # Everyone in the bureau is looked at, BATCH people a transaction; the daemon dies in the
    # second batch. Run again (the catch-up at the next start, in the same window), it goes on
    # from the first batch's last person: the head's digest goes out once.
    open_report(bureau, clock.set(at("2026-09-22", 10)))
    now = clock.set(at("2026-09-23", 8, 30))
    commits = Commits(bureau)
    with dying_in_the_second_batch():
        run_digests(bureau, now)
    assert commits.count == 1
    with bureau.sessions() as session:
        (run,) = session.scalars(select(JobRun).where(JobRun.job == "digests")).all()
        assert not run.finished and run.cursor is not None
        cut = run.cursor
    assert not queued(bureau, "digest:")  # liangguoqiang comes after the first batch

    run_digests(bureau, now)
    assert run_digests(bureau, now) == 0
    assert [to(m) for _, m in queued(bureau, "digest:")] == [HEAD]
    with bureau.sessions() as session:
        (run,) = session.scalars(select(JobRun).where(JobRun.job == "digests")).all()
        assert run.finished and run.count == 1 and run.cursor is not None and run.cursor > cut
    # Thirty-odd people in batches of BATCH: several transactions, each one batch.
    assert commits.count >= 4


def test_a_digest_run_cut_short_is_made_up_at_the_next_window(
    bureau: Context, clock: Clock
) -> None:
    # The daemon dies in the 08:30 run's second batch and is back only at 09:00 (not one of
    # the head's windows): the head, after the cut, still gets his 08:30 digest then, once;
    # the people before the cut who had theirs at 08:30 get nothing more.
    open_report(bureau, clock.set(at("2026-09-22", 10)))
    with dying_in_the_second_batch():
        run_digests(bureau, clock.set(at("2026-09-23", 8, 30)))
    assert not queued(bureau, "digest:")

    assert run_digests(bureau, clock.set(at("2026-09-23", 9))) == 1
    assert [to(m) for _, m in queued(bureau, "digest:")] == [HEAD]
    assert run_digests(bureau, clock.set(at("2026-09-23", 9, 30))) == 0
    assert run_digests(bureau, clock.set(at("2026-09-23", 10, 30))) == 0


def test_the_overdue_report_is_read_rendered_and_signed_before_it_takes_the_writer(
    bureau: Context, clock: Clock
) -> None:
    # With thousands of overdue steps the report is long to make: its transaction only queues
    # it, so every statement reading the steps runs in a snapshot, outside the writer's turn.
    for n in range(3):
        open_report(bureau, clock.set(at("2026-09-22", 10)), f"請示 {n}")
    statements: list[tuple[bool, str]] = []

    def executed(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append((bool(conn.get_execution_options().get(SNAPSHOT)), statement))

    event.listen(bureau.engine, "before_cursor_execute", executed)
    assert run_overdue_report(bureau, clock.set(at("2026-09-28", 9, 5))) == 2
    event.remove(bureau.engine, "before_cursor_execute", executed)
    reads = [s for snapshot, s in statements if snapshot and "FROM steps" in s]
    writing = [s for snapshot, s in statements if not snapshot]
    assert reads and not any("FROM steps" in s for s in writing)
    (_, report), _other = queued(bureau, "overdue-report:")
    assert "請示 0" in body(report) and "請示 2" in body(report)
    assert run_overdue_report(bureau, clock.now) == 0
