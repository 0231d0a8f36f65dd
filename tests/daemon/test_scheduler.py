"""Tests for yizhan.daemon.jobs: reminders, digests, reports and expiry, with time driven.

A :class:`Clock` the test sets stands in for the wall clock (``Context(clock=...)``), so a
document walks through a week of reminders and a holiday in seconds. Documents are opened with
the workflow engine and stored as the desk stores them. Run on SQLite and on PostgreSQL
(``YIZHAN_TEST_DB=postgresql``), where two daemons sharing the database exercise SKIP LOCKED.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import email
import threading
from collections import Counter
from email import policy
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from yizhan.cli.jobs import JobsError, cmd_jobs_run, parse_now
from yizhan.daemon.config import Config
from yizhan.daemon.config_ops import JobsConfig
from yizhan.daemon.context import Context
from yizhan.daemon.jobs import reminders as reminder_jobs
from yizhan.daemon.jobs import table
from yizhan.daemon.jobs.accounts import run_password_warnings, run_unused_accounts
from yizhan.daemon.jobs.bulletins import (
    run_bulletin_cleanup,
    run_bulletin_cleanup_notice,
    run_bulletin_expiry,
)
from yizhan.daemon.jobs.delegations import run_delegation_expiry, run_delegation_notices
from yizhan.daemon.jobs.digests import run_digests
from yizhan.daemon.jobs.reminders import run_reminders
from yizhan.daemon.jobs.reports import run_overdue_report
from yizhan.daemon.jobs.scheduler import Scheduler
from yizhan.daemon.jobs.slots import work_calendar
from yizhan.daemon.jobs.table import run_due_jobs
from yizhan.mailstore import accounts
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.documents import apply_decision, create_document, load_state
from yizhan.mailstore.models import (
    Account,
    AuditEntry,
    DelegationRow,
    Document,
    JobRun,
    OutboundMessage,
    Step,
)
from yizhan.mailstore.settings import save_settings
from yizhan.routing import workflow
from yizhan.routing.commands import parse_command
from yizhan.routing.rules import DEFAULT_RULES
from yizhan.routing.settings import DIGEST

TZ = ZoneInfo("Asia/Shanghai")
AUTHOR, HEAD = "xiewenbin", "liangguoqiang"  # 檢驗監管處 staff and its head


def at(day: str, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour, minute), tzinfo=TZ)


class Clock:
    """A clock the test sets; Yizhan reads it as ``ctx.clock()``."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def set(self, now: dt.datetime) -> dt.datetime:
        self.now = now
        return now


@pytest.fixture
def clock(bureau: Context) -> Clock:
    """The bureau's clock, set to Monday 21 September 2026, 09:00 in Shanghai."""
    clock = Clock(at("2026-09-21", 9))
    bureau.clock = clock
    return clock


def open_report(ctx: Context, now: dt.datetime, title: str = "關於購置檢測設備的請示") -> int:
    """An internal report (內部簽報) by xiewenbin, waiting for his unit head's review."""
    cal = work_calendar(ctx)
    with ctx.sessions.begin() as session:
        directory = load_directory(session)
        decision = workflow.open_document(
            kind="qianbao",
            title=title,
            author=AUTHOR,
            urgency=None,
            to_units=(),
            fields={"body": "擬購置設備一台。"},
            directory=directory,
            rules=DEFAULT_RULES,
            now=now,
            due=cal.due,
        )
        assert decision.accepted, decision.reply
        document = create_document(
            session,
            kind="qianbao",
            title=title,
            author=AUTHOR,
            unit="inspection",
            urgency=None,
            fields={},
            source_inbound=None,
            now=now,
        )
        apply_decision(session, document, decision, actor=AUTHOR, on_behalf_of=None, now=now)
        return document.id


def approve(ctx: Context, document_id: int, now: dt.datetime) -> None:
    """The unit head replies 同意 to the review step."""
    with ctx.sessions.begin() as session:
        document = session.get(Document, document_id)
        assert document is not None
        state = load_state(session, document)
        (waiting,) = [s for s in state.steps if s.state == "waiting"]
        decision = workflow.apply_command(
            doc=state,
            step_id=waiting.id,
            command=parse_command("同意"),
            actor=HEAD,
            on_behalf_of=None,
            directory=load_directory(session),
            rules=DEFAULT_RULES,
            now=now,
            due=work_calendar(ctx).due,
        )
        assert decision.accepted, decision.reply
        apply_decision(session, document, decision, actor=HEAD, on_behalf_of=None, now=now)


def queued(ctx: Context, prefix: str) -> list[tuple[str, EmailMessage]]:
    """(source, message) of every queued mail whose source starts with ``prefix``."""
    with ctx.sessions() as session:
        rows = session.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.source.startswith(prefix))
            .order_by(OutboundMessage.id)
        ).all()
        return [
            (r.source, email.message_from_bytes(r.data, policy=policy.default))  # type: ignore[misc]
            for r in rows
        ]


def to(message: EmailMessage) -> str:
    return message["To"].addresses[0].username


def body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def run_together(daemons: list[Context], now: dt.datetime) -> None:
    """Each daemon runs every due job at ``now`` in its own thread, all starting at once."""
    barrier = threading.Barrier(len(daemons))
    errors: list[BaseException] = []

    def daemon(ctx: Context) -> None:
        try:
            barrier.wait()
            run_due_jobs(ctx, now)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=daemon, args=(ctx,)) for ctx in daemons]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors


def test_a_week_of_reminders_over_a_holiday_until_the_step_is_done(
    bureau: Context, clock: Clock
) -> None:
    # 催辦 and 督查督辦 for a 2-working-day review opened Tuesday 22 September: ahead on
    # Wednesday, due on Thursday, quiet over 中秋 (Friday) and the weekend, then daily with
    # the unit's clerk, then the unit head's leader and the office added; silent through 國慶;
    # stops once approved.
    document_id = open_report(bureau, clock.set(at("2026-09-22", 10)))
    sent: list[tuple[dt.datetime, set[str]]] = []
    day = dt.date(2026, 9, 22)
    while day <= dt.date(2026, 10, 9):
        for hour, minute in ((0, 0), (8, 30), (11, 0), (14, 0), (18, 0)):
            now = clock.set(at(day.isoformat(), hour, minute))
            if now == at("2026-10-08", 8, 30):
                approve(bureau, document_id, clock.set(at("2026-10-08", 8, 10)))
                now = clock.set(now)
            before = len(queued(bureau, "remind:"))
            run_reminders(bureau, now)
            new = queued(bureau, "remind:")[before:]
            if new:
                sent.append((now, {to(m) for _, m in new}))
        day += dt.timedelta(days=1)

    head, office = "sunlimin", {"chenzhigang", "wangfang"}  # HEAD is a unit head himself
    clerk = "songjia"  # the clerk of HEAD's unit chases it before anyone above (第五條)
    assert sent == [
        (at("2026-09-23", 14), {HEAD}),
        (at("2026-09-24", 8, 30), {HEAD}),
        (at("2026-09-28", 8, 30), {HEAD, clerk}),
        (at("2026-09-29", 8, 30), {HEAD, clerk, head}),
        (at("2026-09-30", 8, 30), {HEAD, clerk, head, *office}),
        # Approved on 8 October: the review's reminders stop, and the next step (the bureau
        # leader's, due Saturday 10th, a make-up working day) is reminded at half time.
        (at("2026-10-09", 14), {"sunlimin"}),
    ]
    mails = dict(queued(bureau, "remind:"))
    first = mails[next(s for s in mails if s.endswith(f":1:{HEAD}"))]
    assert first["X-Yizhan-Action"] == "approve"
    assert str(first["Reply-To"]).startswith("r+")
    assert "mailto:r+" in body(first) and "%E5%90%8C%E6%84%8F" in body(first)  # 同意
    chased = mails[next(s for s in mails if s.endswith(f":3:{clerk}"))]
    assert chased["X-Yizhan-Action"] == "none" and "综合人员收到此催办通知" in body(chased)
    escalated = mails[next(s for s in mails if s.endswith(":5:chenzhigang"))]
    assert escalated["X-Yizhan-Action"] == "none" and "Reply-To" not in escalated
    assert "第 3 個工作日" in body(escalated) or "第 3 个工作日" in body(escalated)

    # Every reminder is in the document's trail, and the step is off the sweep.
    with bureau.sessions() as session:
        document = session.get(Document, document_id)
        assert document is not None
        trail = [
            e
            for e in load_state(session, document).trail
            if e.action == "remind" and e.step == "review"
        ]
        assert len(trail) == 5 and "督查督辦" in trail[-1].opinion
        review = session.scalars(select(Step).where(Step.name == "review")).one()
        assert review is not None
        assert (review.state, review.next_reminder_at, review.reminders_sent) == ("done", None, 5)


def test_two_daemons_send_each_reminder_exactly_once(
    bureau: Context, clock: Clock, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two daemons on one database run every job at the same moments, in threads. Small
    # batches make them interleave; each reminder and each digest still goes out once.
    small = dataclasses.replace(config, jobs=JobsConfig(batch=3))
    monkeypatch.setattr(bureau, "config", small)
    for n in range(12):
        open_report(bureau, clock.set(at("2026-09-22", 10)), title=f"請示 {n}")
    other = Context.open(small, clock=clock)
    try:
        for now in (at("2026-09-23", 14), at("2026-09-24", 8, 30), at("2026-09-28", 8, 30)):
            run_together([bureau, other], clock.set(now))
    finally:
        other.close()

    reminders = queued(bureau, "remind:")
    # Two reminders to the person, then the overdue one to them and to their unit's clerk.
    assert len(reminders) == 12 * 4
    assert Counter(to(m) for _, m in reminders) == {HEAD: 36, "songjia": 12}
    with bureau.sessions() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "doc.remind"))
        assert Counter((e.target, e.detail["n"]) for e in entries) == {
            (f"doc:{d}", n): 1 for d in range(1, 13) for n in (1, 2, 3)
        }
        runs = session.scalars(select(JobRun).where(JobRun.job == "digests")).all()
        assert len(runs) == 3  # one run per slot, whoever ran it
    digests = queued(bureau, "digest:")
    assert Counter(to(m) for _, m in digests) == {HEAD: 2}


def test_a_daemon_that_was_down_catches_up_once(bureau: Context, clock: Clock) -> None:
    # The last run was on Thursday 24 September at 15:30; no daemon ran until Wednesday 30th
    # at 11:10. The step gets one reminder (the current rung, to five people), the unit head
    # one digest (his 08:30 window), the office one overdue report (09:00); running again at
    # the same moment, or a little later, sends nothing more.
    open_report(bureau, clock.set(at("2026-09-22", 10)))
    run_due_jobs(bureau, clock.set(at("2026-09-24", 15, 30)))
    before = {p: len(queued(bureau, p)) for p in ("remind:", "digest:", "overdue-report:")}
    now = clock.set(at("2026-09-30", 11, 10))
    counts = run_due_jobs(bureau, now)
    assert counts["reminders"] == 5  # HEAD, songjia (his clerk), sunlimin, chenzhigang, wangfang
    assert len(queued(bureau, "remind:")) - before["remind:"] == 5
    assert len(queued(bureau, "digest:")) - before["digest:"] == 1
    assert len(queued(bureau, "overdue-report:")) - before["overdue-report:"] == 2
    assert sum(run_due_jobs(bureau, now).values()) == 0
    assert sum(run_due_jobs(bureau, clock.set(at("2026-09-30", 11, 25))).values()) == 0


def test_digests_follow_windows_and_settings(bureau: Context, clock: Clock) -> None:
    # Clerks at 08:30, 10:30, 13:30, 15:30, others at 08:30 and 13:30, only with something
    # waiting; SET digest off stops them and SET digest 09:00 moves them.
    open_report(bureau, clock.set(at("2026-09-22", 10)))  # HEAD: review
    with bureau.sessions.begin() as session:
        # A step for the office clerk too.
        step = Step(
            document_id=1,
            name="receive",
            assignee="wangfang",
            action="receive",
            state="waiting",
            due_at=at("2026-09-25", 17, 30),
            created_at=clock.now,
        )
        session.add(step)
    moments = [at("2026-09-23", h, m) for h, m in ((8, 30), (9, 0), (10, 30), (13, 30), (15, 30))]

    def digests_at(now: dt.datetime) -> set[str]:
        before = len(queued(bureau, "digest:"))
        run_digests(bureau, clock.set(now))
        return {to(m) for _, m in queued(bureau, "digest:")[before:]}

    assert [digests_at(m) for m in moments] == [
        {HEAD, "wangfang"},
        set(),
        {"wangfang"},
        {HEAD, "wangfang"},
        {"wangfang"},
    ]
    with bureau.sessions.begin() as session:
        save_settings(session, "wangfang", {DIGEST: "off"}, actor="wangfang", now=clock.now)
        save_settings(session, HEAD, {DIGEST: "09:00"}, actor=HEAD, now=clock.now)
    moments = [at("2026-09-24", h, m) for h, m in ((8, 30), (9, 0), (10, 30), (13, 30))]
    assert [digests_at(m) for m in moments] == [set(), {HEAD}, set(), set()]

    (_, digest) = queued(bureau, "digest:")[0]
    text = body(digest)
    assert "關於購置檢測設備的請示" in text
    assert "<mailto:r+" in text and "%E5%90%8C%E6%84%8F" in text  # 同意
    # Nothing on 中秋.
    assert digests_at(at("2026-09-25", 8, 30)) == set()


def test_overdue_report_goes_to_the_office(bureau: Context, clock: Clock) -> None:
    # 督查督辦: each working day at 09:00 the office's head and clerk get the overdue list.
    open_report(bureau, clock.set(at("2026-09-22", 10)))
    assert run_overdue_report(bureau, clock.set(at("2026-09-24", 9))) == 0  # not yet overdue
    assert run_overdue_report(bureau, clock.set(at("2026-09-29", 9, 5))) == 2
    mails = queued(bureau, "overdue-report:")
    assert {to(m) for _, m in mails} == {"chenzhigang", "wangfang"}
    text = body(mails[0][1])
    assert "檢驗監管處" in text and "梁國強" in text
    assert run_overdue_report(bureau, clock.set(at("2026-09-29", 15))) == 0  # once a day


def test_delegation_ends_at_its_date(bureau: Context, clock: Clock) -> None:
    # 第九條: reminders go to the delegate; on its last day the delegator is reminded to
    # REVOKE if back; after it, the delegation ends, the waiting step goes back to them and
    # they are told.
    open_report(bureau, clock.set(at("2026-09-22", 10)))
    with bureau.sessions.begin() as session:
        session.add(
            DelegationRow(
                delegator=HEAD,
                delegate="hanxue",
                starts_at=at("2026-09-22", 11),
                until=dt.datetime.combine(dt.date(2026, 9, 24), dt.time.max, tzinfo=TZ),
            )
        )
        step = session.scalars(select(Step)).one()
        step.assignee, step.on_behalf_of = "hanxue", HEAD
    # While it lasts, reminders go to the delegate, marked as acting for the delegator.
    assert run_reminders(bureau, clock.set(at("2026-09-23", 14))) == 1
    ((_, reminder),) = queued(bureau, "remind:")
    assert to(reminder) == "hanxue" and "代 梁國強" in body(reminder)
    assert run_delegation_notices(bureau, clock.set(at("2026-09-23", 9))) == 0
    assert run_delegation_notices(bureau, clock.set(at("2026-09-24", 9))) == 1
    ((_, notice),) = queued(bureau, "delegation:")
    assert to(notice) == HEAD and "收回授" in body(notice)
    assert run_delegation_expiry(bureau, clock.set(at("2026-09-24", 18))) == 0
    # The delegator is told the step came back, and the delegate that they no longer act.
    assert run_delegation_expiry(bureau, clock.set(at("2026-09-25", 0, 1))) == 2
    assert run_delegation_expiry(bureau, clock.now) == 0
    with bureau.sessions() as session:
        step = session.scalars(select(Step)).one()
        assert (step.assignee, step.on_behalf_of) == (HEAD, None)
        row = session.scalars(select(DelegationRow)).one()
        assert row.ended_by == "expired"


def test_password_age_warnings(bureau: Context, clock: Clock) -> None:
    # 第十六條: a password set on 1 July is warned about as each threshold (14, 7, 3, 1 days
    # left, expired) is reached, once each, on working days at 09:00 (Saturday 26th, 中秋 and
    # the weekend pass: the 3-day threshold is skipped, the next run sends the 1-day one);
    # past 90 days the login refuses it until changed.
    with bureau.sessions.begin() as session:
        accounts.set_password(
            session,
            "wangfang",
            "Qingshui-River-88",
            temporary=False,
            actor="test",
            now=at("2026-07-01", 9),
            policy=bureau.login_policy,
        )
    warned = [
        run_password_warnings(bureau, clock.set(at(day, 9)))
        for day in ("2026-09-21", "2026-09-22", "2026-09-23", "2026-09-28", "2026-09-29")
    ]
    assert warned == [1, 1, 0, 1, 1]  # 8 days left (14), 7 (7), 6 (7 again), 1 (1), 0
    ((_, first), _, (_, third), (_, expired)) = queued(bureau, "password:")
    assert to(first) == "wangfang" and "8 天后过期" in first["Subject"]
    assert "1 天后过期" in third["Subject"] and "已过期" in expired["Subject"]
    with bureau.sessions.begin() as session:
        result = accounts.authenticate(
            session,
            "wangfang",
            "Qingshui-River-88",
            now=at("2026-10-01", 9),
            policy=bureau.login_policy,
        )
    assert not result.ok and "must be changed" in result.reason


def test_unused_accounts_are_reported_to_it_weekly(bureau: Context, clock: Clock) -> None:
    # Accounts nobody logged in with for 90 days go to the IT department's head, once a week
    # (the first working day's 09:00).
    with bureau.sessions.begin() as session:
        for row in session.scalars(select(Account)):
            row.created_at = at("2026-05-01")
        session.get(Account, "wangfang").last_login_at = at("2026-09-01")  # type: ignore[union-attr]
    assert run_unused_accounts(bureau, clock.set(at("2026-09-21", 8))) == 0  # before 09:00
    assert run_unused_accounts(bureau, clock.set(at("2026-09-21", 9))) == 1
    assert run_unused_accounts(bureau, clock.set(at("2026-09-23", 9))) == 0  # same week
    ((_, report),) = queued(bureau, "unused:")
    assert to(report) == "wuhaifeng"
    assert "lijun" in body(report) and "wangfang" not in body(report)


def test_the_scheduler_catches_up_when_it_starts(bureau: Context, clock: Clock) -> None:
    # Started in a daemon, the APScheduler jobs are registered and the start-up catch-up
    # runs at once in a worker thread, then says mail was queued.
    open_report(bureau, clock.set(at("2026-09-22", 10)))
    clock.set(at("2026-09-28", 8, 40))

    async def main() -> tuple[list[str], int]:
        woken = asyncio.Event()
        running = Scheduler(bureau, on_queued=woken.set)
        running.start()
        try:
            await asyncio.wait_for(woken.wait(), 30)
            return sorted(j.id for j in running._scheduler.get_jobs()), len(
                queued(bureau, "remind:")
            )
        finally:
            running.shutdown()

    jobs, reminders = asyncio.run(main())
    assert jobs == sorted(j.name for j in table.JOBS)
    assert reminders == 2  # the overdue one: the person and their unit's clerk


def test_jobs_run_cli(
    bureau: Context,
    clock: Clock,
    config: Config,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `yizhan jobs run --now TIME` runs what is due at TIME and delivers it; a time without
    # an offset is refused with a one-line reason.
    open_report(bureau, clock.set(at("2026-09-22", 10)))
    path = tmp_path / "yizhan.toml"
    path.write_text(
        f'[yizhan]\ndata_dir = "{config.data_dir}"\nsecret = "{config.secret}"\n'
        f'[database]\nurl = "{config.database_url}"\n'
        f'[signing]\ngnupg_home = "{config.signing.gnupg_home}"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("YIZHAN_CONFIG", str(path))
    assert cmd_jobs_run(argparse.Namespace(now="2026-09-28T08:30")) == 1
    assert "has no UTC offset" in capsys.readouterr().err
    assert cmd_jobs_run(argparse.Namespace(now="2026-09-28T08:30+08:00")) == 0
    assert "reminders 2" in capsys.readouterr().out  # the person and their unit's clerk
    delivered = list((config.maildir_root / HEAD / "new").iterdir())
    assert len(delivered) == 2  # the reminder and the 08:30 digest
    with pytest.raises(JobsError, match="not an ISO 8601 time"):
        parse_now("next monday")


def test_a_step_that_cannot_be_reminded_does_not_block_the_others(
    bureau: Context, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A reminder that fails (here: no reply token can be made for its person) rolls back its
    # batch; the batch is done again step by step, the bad step set aside for an hour.
    open_report(bureau, clock.set(at("2026-09-22", 10)))
    open_report(bureau, clock.now, title="另一份請示")
    with bureau.sessions.begin() as session:
        bad = session.scalars(select(Step).order_by(Step.id.desc())).first()
        assert bad is not None
        bad.assignee = "tangxiaodong"
        bad_id = bad.id
    real = reminder_jobs.make_token

    def make_token(secret: str, *, document_id: int, step_id: int, account: str) -> str:
        if account == "tangxiaodong":
            raise ValueError("no token for this account")
        return real(secret, document_id=document_id, step_id=step_id, account=account)

    monkeypatch.setattr(reminder_jobs, "make_token", make_token)
    now = clock.set(at("2026-09-23", 14))
    assert run_reminders(bureau, now) == 1
    assert [to(m) for _, m in queued(bureau, "remind:")] == [HEAD]
    with bureau.sessions() as session:
        step = session.get(Step, bad_id)
        assert step is not None
        assert (step.next_reminder_at, step.reminders_sent) == (now + dt.timedelta(hours=1), 0)


def publish_bulletin(
    ctx: Context, author: str, title: str, published: dt.datetime, expires: str
) -> int:
    """A bulletin as the desk stores it once published to its scope (第二十三條)."""
    with ctx.sessions.begin() as session:
        document = create_document(
            session,
            kind="gonggao",
            title=title,
            author=author,
            unit=load_directory(session).people[author].unit,
            urgency=None,
            fields={
                "body": "週六停電。",
                "expires": expires,
                "published_at": published.isoformat(),
                "recipients": [author],
            },
            source_inbound=None,
            now=published,
        )
        document.state = "closed"
        return document.id


def states(ctx: Context, *ids: int) -> list[str]:
    with ctx.sessions() as session:
        return [session.get(Document, i).state for i in ids]  # type: ignore[union-attr]


def test_bulletins_expire_and_are_cleared_at_year_end(bureau: Context, clock: Clock) -> None:
    # 第二十三條: a bulletin leaves the board the day after its expiry date and its author is
    # told; from 25 December, 7 days before the clean-up, every author is told once which
    # bulletins it takes;
    # as the year ends all of that year's bulletins are archived and the office gets a list.
    published = at("2026-11-02")
    short = publish_bulletin(bureau, AUTHOR, "十一月停電公示", published, "2026-11-30")
    year_end = publish_bulletin(bureau, AUTHOR, "年度值班表", published, "2026-12-31")
    other = publish_bulletin(bureau, "fenggang", "食堂開放時間", published, "2026-12-31")

    assert run_bulletin_expiry(bureau, clock.set(at("2026-11-30", 23))) == 0
    assert run_bulletin_expiry(bureau, clock.set(at("2026-12-01", 0, 5))) == 1
    assert run_bulletin_expiry(bureau, clock.set(at("2026-12-01", 15))) == 0
    assert states(bureau, short, year_end, other) == ["expired", "closed", "closed"]
    ((_, expired),) = queued(bureau, "bulletin-expired:")
    assert to(expired) == AUTHOR and "十一月停電公示" in body(expired)
    assert expired["X-Yizhan-Doc"] == str(short)

    assert run_bulletin_cleanup_notice(bureau, clock.set(at("2026-12-24", 9))) == 0
    assert run_bulletin_cleanup_notice(bureau, clock.set(at("2026-12-25", 9))) == 2
    assert run_bulletin_cleanup_notice(bureau, clock.set(at("2026-12-26", 9))) == 0
    notices = {to(m): body(m) for _, m in queued(bureau, "bulletin-cleanup-notice:")}
    assert set(notices) == {AUTHOR, "fenggang"}
    assert "十一月停電公示" in notices[AUTHOR] and "年度值班表" in notices[AUTHOR]
    assert "2027-01-01" in notices[AUTHOR]

    assert run_bulletin_cleanup(bureau, clock.set(at("2026-12-31", 23))) == 0
    new_year = publish_bulletin(bureau, AUTHOR, "春節值班表", at("2027-01-01", 0, 1), "2027-02-01")
    office = run_bulletin_cleanup(bureau, clock.set(at("2027-01-01", 0, 10)))
    assert office >= 1
    assert states(bureau, short, year_end, other, new_year) == [
        "archived",
        "archived",
        "archived",
        "closed",
    ]
    reports = queued(bureau, "bulletin-cleanup:")
    assert len(reports) == office
    assert all("食堂開放時間" in body(m) and "春節值班表" not in body(m) for _, m in reports)
    # Archived once: the next day's run finds nothing.
    assert run_bulletin_cleanup(bureau, clock.set(at("2027-01-02", 0, 10))) == 0
    with bureau.sessions() as session:
        document = session.get(Document, year_end)
        assert document is not None
        trail = [e.action for e in load_state(session, document).trail]
    assert trail == ["archive"]


def test_unused_accounts_age_is_configurable(bureau: Context, clock: Clock) -> None:
    # accounts.unused_days = 30: an account idle since August is reported in September.
    bureau.config = dataclasses.replace(
        bureau.config, accounts=dataclasses.replace(bureau.config.accounts, unused_days=30)
    )
    with bureau.sessions.begin() as session:
        for row in session.scalars(select(Account)):
            row.created_at, row.last_login_at = at("2026-05-01"), at("2026-09-15")
        session.get(Account, "lijun").last_login_at = at("2026-08-10")  # type: ignore[union-attr]
    assert run_unused_accounts(bureau, clock.set(at("2026-09-21", 9))) == 1
    ((_, report),) = queued(bureau, "unused:")
    assert "lijun" in body(report) and "wangfang" not in body(report) and "30" in body(report)


def test_a_holiday_the_admin_adds_has_no_digests(bureau: Context, clock: Clock) -> None:
    # [calendar] holidays: a day chinese-calendar does not know as a holiday (a local one)
    # is a day off: nothing is due and no digest goes out; the next working day it does.
    bureau.config = dataclasses.replace(
        bureau.config,
        calendar=dataclasses.replace(
            bureau.config.calendar, holidays=frozenset({dt.date(2026, 9, 23)})
        ),
    )
    open_report(bureau, clock.set(at("2026-09-22", 10)))
    assert run_digests(bureau, clock.set(at("2026-09-23", 8, 30))) == 0
    assert run_digests(bureau, clock.set(at("2026-09-24", 8, 30))) == 1
