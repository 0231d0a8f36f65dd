"""End-to-end: 督查督辦 at duban@ (第二條, 第六條), over SMTP on loopback.

The office assigns a task with a deadline to units; their clerks report progress and finish;
the office sends a part back and confirms; a late part is chased up to the unit head and the
office by the reminder sweep; the weekly supervision report reaches the office and the bureau
leaders once. Staff are smtplib clients; mail is read from the Maildirs Yizhan delivers into.
Scheduled jobs are run by the test at the times it chooses (as ``yizhan jobs run --now``
does), and their mail is delivered by an outbound worker the test runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from email.utils import parsedate_to_datetime

from sqlalchemy import select

from tests.daemon.test_flows import Daemon, one, reply, show_document, text
from yizhan.daemon.jobs.reminders import run_reminders
from yizhan.daemon.jobs.supervision import run_supervision_report
from yizhan.daemon.outbound import OutboundWorker
from yizhan.mailstore.models import JobRun, OutboundMessage
from yizhan.routing.calendar import WorkCalendar

pytest_plugins = ["tests.daemon.test_flows"]

OFFICE_CLERK, OFFICE_HEAD = "wangfang", "chenzhigang"
INSPECTION_CLERK, INSPECTION_HEAD = "songjia", "liangguoqiang"
DALIAN_CLERK, DALIAN_HEAD = "tianlu", "jiangming"
LEADERS = ("lijun", "sunlimin", "zhaojianguo")


def working_day(d: Daemon, after: dt.date, n: int) -> dt.date:
    """The ``n``-th working day after ``after`` in the bureau's calendar."""
    calendar = WorkCalendar(tz=d.ctx.config.tzinfo)
    day = after
    for _ in range(n):
        day = calendar.next_working_day(day)
    return day


def local(d: Daemon, day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=d.ctx.config.tzinfo)


def today(d: Daemon) -> dt.date:
    return dt.datetime.now(d.ctx.config.tzinfo).date()


def deliver(d: Daemon) -> None:
    """Deliver what the jobs queued now, as the daemon's own worker would at its next look."""
    asyncio.run(OutboundWorker(d.ctx).run_until_empty())


def assign(d: Daemon, title: str, units: str, deadline: dt.date, body: str = "") -> str:
    """The office clerk assigns a task; returns the confirmation's text."""
    d.send(OFFICE_CLERK, "duban@oa.example", title, f"主送：{units}\n期限：{deadline}\n\n{body}")
    return text(one(d, OFFICE_CLERK))


def test_task_from_assignment_through_send_back_to_close(daemon: Daemon) -> None:
    # 督查督辦: the office assigns a task to 檢驗監管處 and 大連分局; each clerk is asked, each
    # head told; the inspection clerk reports progress twice (the part stays open), then DONE;
    # the office sends it back with a reason, the clerk finishes again, the office confirms;
    # the task closes only when 大連分局's part is confirmed too, and both units are told.
    deadline = working_day(daemon, today(daemon), 10)
    confirmation = assign(
        daemon,
        "關於開展進口食品安全專項檢查的督辦",
        "檢驗監管處、大連分局",
        deadline,
        "請於期限前報送檢查情況。",
    )
    assert f"期限：{deadline} 17:30" in confirmation
    assert "宋佳" in confirmation and "田璐" in confirmation

    ask = one(daemon, INSPECTION_CLERK)
    assert ask["X-Yizhan-Kind"] == "duban" and ask["X-Yizhan-Action"] == "progress"
    assert ask["X-Yizhan-State"] == "supervising" and ask["X-Yizhan-Step"] == "progress"
    assert str(ask["Reply-To"]).startswith("r+")
    due = parsedate_to_datetime(str(ask["X-Yizhan-Deadline"]))
    assert due == local(daemon, deadline, 17, 30)
    # The mail is in the bureau's default language (Simplified); the task's text as written.
    assert "請於期限前報送檢查情況" in text(ask) and "办结" in text(ask)
    doc_id = ask["X-Yizhan-Doc"]
    told = one(daemon, INSPECTION_HEAD)
    assert told["X-Yizhan-Action"] == "none" and told["Reply-To"] is None
    assert "檢驗監管處" in text(told) and "大連分局" in text(told)
    dalian_ask = one(daemon, DALIAN_CLERK)
    assert dalian_ask["X-Yizhan-Action"] == "progress"
    assert one(daemon, DALIAN_HEAD)["X-Yizhan-Action"] == "none"

    # Progress, twice: recorded, the office told each time, the part still open.
    reply(daemon, INSPECTION_CLERK, ask, "進展：已完成自查")
    assert "進展" in text(one(daemon, INSPECTION_CLERK))
    progress = one(daemon, OFFICE_CLERK)
    assert progress["X-Yizhan-Action"] == "none" and "已完成自查" in text(progress)
    reply(daemon, INSPECTION_CLERK, ask, "進展：已抽檢二十批")
    one(daemon, INSPECTION_CLERK)
    assert "已抽檢二十批" in text(one(daemon, OFFICE_CLERK))

    # DONE without a summary is answered with what to send.
    reply(daemon, INSPECTION_CLERK, ask, "辦結")
    assert "辦結：" in text(one(daemon, INSPECTION_CLERK))
    reply(daemon, INSPECTION_CLERK, ask, "辦結：檢查完畢，未發現問題")
    one(daemon, INSPECTION_CLERK)
    to_confirm = one(daemon, OFFICE_CLERK)
    assert to_confirm["X-Yizhan-Action"] == "approve" and to_confirm["X-Yizhan-Step"] == "confirm"
    assert "檢查完畢" in text(to_confirm)

    # The office sends it back: the unit's part opens again, with the reason.
    reply(daemon, OFFICE_CLERK, to_confirm, "退回：請附抽檢記錄")
    assert "退回" in text(one(daemon, OFFICE_CLERK))
    again = one(daemon, INSPECTION_CLERK)
    assert again["X-Yizhan-Action"] == "progress" and "請附抽檢記錄" in text(again)
    # The old request cannot be answered any more: its part was done and sent back.
    reply(daemon, INSPECTION_CLERK, ask, "辦結：再次報送")
    assert "已由" in text(one(daemon, INSPECTION_CLERK))

    reply(daemon, INSPECTION_CLERK, again, "辦結：已補充抽檢記錄")
    one(daemon, INSPECTION_CLERK)
    reply(daemon, OFFICE_CLERK, one(daemon, OFFICE_CLERK), "同意")
    confirmed = text(one(daemon, OFFICE_CLERK))
    assert "大連分局（辦理中）" in confirmed
    assert "同意" in text(one(daemon, INSPECTION_CLERK))

    reply(daemon, DALIAN_CLERK, dalian_ask, "辦結：已完成專項檢查")
    one(daemon, DALIAN_CLERK)
    reply(daemon, OFFICE_CLERK, one(daemon, OFFICE_CLERK), "同意")
    closing = one(daemon, OFFICE_CLERK)
    assert closing["X-Yizhan-State"] == "closed" and "督辦完畢" in text(closing)
    for account in (INSPECTION_CLERK, DALIAN_CLERK):
        closed = one(daemon, account)
        assert closed["X-Yizhan-State"] == "closed" and closed["X-Yizhan-Doc"] == doc_id

    shown = show_document(daemon, doc_id)
    assert shown["kind"] == "duban" and shown["state"] == "closed"
    actions = [(e["actor"], e["action"]) for e in shown["trail"]]
    assert actions.count((INSPECTION_CLERK, "progress")) == 2
    assert (OFFICE_CLERK, "reject") in actions and actions.count((OFFICE_CLERK, "approve")) == 2


def test_only_the_office_assigns_and_a_task_needs_units_and_a_deadline(daemon: Daemon) -> None:
    # 第六條: supervision is the office's; anyone else is told who may assign. An office
    # member who leaves out the units or the deadline is told what to send.
    deadline = working_day(daemon, today(daemon), 5)
    for account in ("xiewenbin", INSPECTION_HEAD):
        daemon.send(account, "duban@oa.example", "督辦", f"主送：財務處\n期限：{deadline}\n\n")
        refused = text(one(daemon, account))
        assert "第六條" in refused and "辦公室" in refused and "王芳" in refused
    assert not list((daemon.ctx.config.maildir_root / "caoyaqin" / "new").glob("*"))

    daemon.send(OFFICE_HEAD, "supervise@oa.example", "督辦", "請抓緊辦理。")
    missing = text(one(daemon, OFFICE_HEAD))
    assert "主送" in missing and "期限" in missing
    daemon.send(OFFICE_HEAD, "duban@oa.example", "督辦", "主送：財務處\n期限：2020-01-01\n\n")
    assert "已過" in text(one(daemon, OFFICE_HEAD))


def test_a_late_part_is_chased_up_to_the_unit_head_and_the_office(daemon: Daemon) -> None:
    # The task's deadline is its steps' deadline, so the reminder sweep chases a late part:
    # on the due day the clerk, from one working day overdue the unit head too, from two the
    # office as well; the clerk answers the reminder with PROGRESS.
    deadline = working_day(daemon, today(daemon), 8)
    assign(daemon, "關於整改審計問題的督辦", "大連分局", deadline)
    one(daemon, DALIAN_CLERK)
    one(daemon, DALIAN_HEAD)

    assert run_reminders(daemon.ctx, local(daemon, deadline, 9)) == 1
    deliver(daemon)
    due = one(daemon, DALIAN_CLERK)
    assert due["X-Yizhan-Kind"] == "duban" and due["X-Yizhan-Action"] == "progress"

    escalated_at = local(daemon, working_day(daemon, deadline, 2), 10)
    assert run_reminders(daemon.ctx, escalated_at) == 2
    deliver(daemon)
    one(daemon, DALIAN_CLERK)
    to_head = one(daemon, DALIAN_HEAD)
    assert to_head["X-Yizhan-Action"] == "none" and "承辦" in text(to_head)

    supervised_at = local(daemon, working_day(daemon, deadline, 3), 10)
    assert run_reminders(daemon.ctx, supervised_at) == 4
    deliver(daemon)
    chased = one(daemon, DALIAN_CLERK)
    one(daemon, DALIAN_HEAD)
    for account in (OFFICE_HEAD, OFFICE_CLERK):
        to_office = one(daemon, account)
        assert to_office["X-Yizhan-Kind"] == "duban" and "田璐" in text(to_office)
    # Run again at the same time: nothing more.
    assert run_reminders(daemon.ctx, supervised_at) == 0

    reply(daemon, DALIAN_CLERK, chased, "進展：已完成大部分整改")
    assert "已記錄" in text(one(daemon, DALIAN_CLERK))


def test_weekly_supervision_report(daemon: Daemon) -> None:
    # Every open task, overdue ones first and marked, with each unit's part and its latest
    # report, goes to the office (head and clerk) and the bureau leaders on the first working
    # day of the week at 09:00, once; a week with no open task sends nothing.
    now = dt.datetime.now(daemon.ctx.config.tzinfo)
    assert run_supervision_report(daemon.ctx, now) == 0
    with daemon.ctx.sessions() as session:
        assert not session.scalars(
            select(OutboundMessage).where(OutboundMessage.source.startswith("supervision-report"))
        ).all()

    soon = working_day(daemon, today(daemon), 2)
    later = working_day(daemon, today(daemon), 30)
    assign(daemon, "關於報送年度工作總結的督辦", "檢驗監管處", soon)
    ask = one(daemon, INSPECTION_CLERK)
    one(daemon, INSPECTION_HEAD)
    assign(daemon, "關於落實安全生產責任制的督辦", "財務處、大連分局", later)
    dalian_ask = one(daemon, DALIAN_CLERK)
    reply(daemon, DALIAN_CLERK, dalian_ask, "辦結：已落實")
    one(daemon, DALIAN_CLERK)
    reply(daemon, INSPECTION_CLERK, ask, "進展：初稿已完成")
    one(daemon, INSPECTION_CLERK)

    # The first working day of the week after ``soon``, when the first task is overdue.
    monday = soon + dt.timedelta(days=7 - soon.weekday())
    while not WorkCalendar(tz=daemon.ctx.config.tzinfo).is_working_day(monday):
        monday += dt.timedelta(days=1)
    assert run_supervision_report(daemon.ctx, local(daemon, monday, 8, 59)) == 0
    readers = (OFFICE_HEAD, OFFICE_CLERK, *LEADERS)
    assert run_supervision_report(daemon.ctx, local(daemon, monday, 9)) == len(readers)
    assert run_supervision_report(daemon.ctx, local(daemon, monday, 9)) == 0
    assert run_supervision_report(daemon.ctx, local(daemon, monday, 15)) == 0
    deliver(daemon)

    for account in readers:
        (report,) = [m for m in daemon.inbox(account) if "督查督办周报" in str(m["Subject"])]
        assert "在办事项 2 件，逾期 1 件" in str(report["Subject"])
        body = text(report)
        first, second = body.index("年度工作總結"), body.index("安全生產責任制")
        assert first < second  # overdue first
        overdue, other = body[first:second], body[second:]
        assert "已逾期" in overdue and "檢驗監管處" in overdue and "初稿已完成" in overdue
        assert "已逾期" not in other
        assert "財務處: 办理中" in other and "大連分局: 已办结，待办公室确认" in other
        assert "已落實" in other
    with daemon.ctx.sessions() as session:
        runs = session.scalars(
            select(JobRun).where(JobRun.job == "supervision_report", JobRun.count > 0)
        ).all()
        assert [r.count for r in runs] == [len(readers)]
