"""End-to-end: the office's hand on the wheel (issue 15), over SMTP on loopback.

REASSIGN (轉辦), CANCEL (撤銷) and EXTEND (延期) at cmd@, from the office only (第六條), each
told to the people concerned and kept in the trail; a refused one changes nothing.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from email.message import EmailMessage

from sqlalchemy import select

from tests.daemon.test_flows import Daemon, one, reply, show_document, text
from tests.daemon.test_modules import asked
from yizhan.daemon.jobs.table import run_due_jobs
from yizhan.mailstore.models import AuditEntry, Step

pytest_plugins = ["tests.daemon.test_flows"]

AUTHOR, HEAD, OFFICE, CLERK = "xiewenbin", "liangguoqiang", "wangfang", "songjia"


def report(d: Daemon) -> EmailMessage:
    """An internal report by the author, waiting for their unit head: the head's request."""
    d.send(AUTHOR, "qianbao@oa.example", "關於購置檢測設備的請示", "擬購置設備一台。")
    d.inbox(AUTHOR)  # the author's confirmation
    ask = one(d, HEAD)
    assert ask["X-Yizhan-Action"] == "approve"
    return ask


def command(d: Daemon, account: str, line: str) -> str:
    """Send ``line`` to cmd@ as ``account`` and return the answer's text."""
    d.send(account, "cmd@oa.example", line, "")
    return text(one(d, account))


def steps(d: Daemon, doc_id: str) -> list[Step]:
    with d.ctx.sessions() as session:
        return list(
            session.scalars(select(Step).where(Step.document_id == int(doc_id)).order_by(Step.id))
        )


def trail(d: Daemon, doc_id: str) -> list[str]:
    with d.ctx.sessions() as session:
        return list(
            session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.target == f"doc:{doc_id}")
                .order_by(AuditEntry.id)
            )
        )


def test_the_office_reassigns_a_stuck_step(daemon: Daemon) -> None:
    ask = report(daemon)
    doc_id = ask["X-Yizhan-Doc"]

    answer = command(daemon, OFFICE, f"轉辦 #{doc_id} 宋佳 梁處長出差一個月")
    assert "轉辦" in answer and "宋佳" in answer

    # The new person gets the request with its own reply address; the one who had it and the
    # author are told why.
    new = one(daemon, CLERK)
    assert new["X-Yizhan-Action"] == "approve" and str(new["Reply-To"]).startswith("r+")
    assert "梁處長出差一個月" in text(new)
    told = one(daemon, HEAD)
    assert told["X-Yizhan-Action"] == "none" and "梁處長出差一個月" in text(told)
    assert "梁處長出差一個月" in text(one(daemon, AUTHOR))
    assert "doc.reassign" in trail(daemon, doc_id)

    # The old request is void: a reply to it is refused, and is not an impersonation.
    reply(daemon, HEAD, ask, "同意")
    assert "撤銷" in text(one(daemon, HEAD))
    assert [s.state for s in steps(daemon, doc_id)] == ["cancelled", "waiting"]

    # The new person acts, and the document goes on to the bureau leader.
    reply(daemon, CLERK, new, "同意")
    one(daemon, CLERK)
    assert one(daemon, "sunlimin")["X-Yizhan-Action"] == "approve"


def test_the_office_cancels_a_document(daemon: Daemon) -> None:
    ask = report(daemon)
    doc_id = ask["X-Yizhan-Doc"]

    # A reason is required: refused without one, and nothing changes.
    assert "理由" in command(daemon, OFFICE, f"撤銷 #{doc_id}")
    assert show_document(daemon, doc_id)["state"] != "cancelled"

    answer = command(daemon, OFFICE, f"CANCEL #{doc_id} sent twice by mistake")
    assert "撤銷" in answer or "Cancelled" in answer
    head_notice = one(daemon, HEAD)
    assert head_notice["X-Yizhan-State"] == "cancelled"
    assert "sent twice by mistake" in text(head_notice)
    assert "sent twice by mistake" in text(one(daemon, AUTHOR))
    assert show_document(daemon, doc_id)["state"] == "cancelled"
    assert "doc.cancel" in trail(daemon, doc_id)

    # The token of the cancelled document refuses, saying why.
    reply(daemon, HEAD, ask, "同意")
    refused = text(one(daemon, HEAD))
    assert "撤銷" in refused and "sent twice by mistake" in refused
    assert [s.state for s in steps(daemon, doc_id)] == ["cancelled"]

    # Cancelling again changes nothing and says so.
    assert "已撤銷" in command(daemon, OFFICE, f"撤销 #{doc_id} again")


def test_the_office_extends_a_deadline(daemon: Daemon) -> None:
    ask = report(daemon)
    doc_id = ask["X-Yizhan-Doc"]
    (before,) = steps(daemon, doc_id)

    # An unreadable date, a day that does not exist and a past one are refused plainly;
    # nothing moves.
    assert "看不懂日期" in command(daemon, OFFICE, f"延期 #{doc_id} someday")
    assert "看不懂日期" in command(daemon, OFFICE, f"延期 #{doc_id} 2099-02-30")
    assert "已經過去" in command(daemon, OFFICE, f"延期 #{doc_id} 2020-01-06")
    assert steps(daemon, doc_id)[0].due_at == before.due_at

    answer = command(daemon, OFFICE, f"EXTEND #{doc_id} 2099-01-05")
    assert "2099-01-05 17:30" in answer
    notice = one(daemon, HEAD)
    assert "2099-01-05 17:30" in text(notice)
    (after,) = steps(daemon, doc_id)
    assert after.state == "waiting" and after.id == before.id
    assert (
        after.due_at is not None
        and after.due_at.astimezone(daemon.ctx.config.tzinfo).strftime("%Y-%m-%d %H:%M")
        == "2099-01-05 17:30"
    )
    assert "doc.extend" in trail(daemon, doc_id)
    # The original request still counts.
    reply(daemon, HEAD, ask, "同意")
    one(daemon, HEAD)
    assert one(daemon, "sunlimin")["X-Yizhan-Action"] == "approve"


def test_only_the_office_may_and_mistakes_are_answered(daemon: Daemon) -> None:
    ask = report(daemon)
    doc_id = ask["X-Yizhan-Doc"]
    # Someone outside the office: refused, nothing changes.
    for line in (f"轉辦 #{doc_id} 宋佳 理由", f"撤銷 #{doc_id} 理由", f"延期 #{doc_id} 2099-01-05"):
        assert "只能由辦公室" in command(daemon, AUTHOR, line)
    assert "找不到文件 #999999" in command(daemon, OFFICE, "撤銷 #999999 理由")
    assert "找不到「無此人」" in command(daemon, OFFICE, f"轉辦 #{doc_id} 無此人 理由")
    assert "理由" in command(daemon, OFFICE, f"转办 #{doc_id} 宋佳")
    assert "無需轉辦" in command(daemon, OFFICE, f"轉辦 #{doc_id} {HEAD} 理由")
    assert "看不懂命令" in command(daemon, OFFICE, "延期 明天")
    (step,) = steps(daemon, doc_id)
    assert step.assignee == HEAD and step.state == "waiting"
    assert not {"doc.reassign", "doc.cancel", "doc.extend"} & set(trail(daemon, doc_id))


def yizhan(d: Daemon, *args: str) -> str:
    """Run a `yizhan` verb as a program against the daemon's database; its output."""
    config = d.ctx.config
    path = config.data_dir / "cli.toml"
    path.write_text(
        f'[yizhan]\ndata_dir = "{config.data_dir}"\nsecret = "{config.secret}"\n'
        f'[database]\nurl = "{config.database_url}"\n'
        f'[signing]\ngnupg_home = "{config.signing.gnupg_home}"\n',
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "yizhan", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "YIZHAN_CONFIG": str(path)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_suspended_persons_steps_go_to_the_leader_above_them(daemon: Daemon) -> None:
    # 第十條: IT suspends the unit head; their waiting step goes to the bureau leader in
    # charge of the unit (the head is the top of the unit), who is told why.
    ask = report(daemon)
    doc_id = ask["X-Yizhan-Doc"]
    assert "1 waiting step(s) handed over" in yizhan(daemon, "user", "suspend", HEAD)
    # The verb queues the mail; the running daemon's courier takes it on its next round,
    # which any processed mail starts at once.
    command(daemon, OFFICE, "待辦")
    new = one(daemon, "sunlimin")
    assert new["X-Yizhan-Doc"] == doc_id and new["X-Yizhan-Action"] == "approve"
    assert "停用" in text(new)
    assert [(s.assignee, s.state) for s in steps(daemon, doc_id)] == [
        (HEAD, "cancelled"),
        ("sunlimin", "waiting"),
    ]


def test_a_moved_persons_steps_go_to_the_successor_named(daemon: Daemon) -> None:
    # 第十條: the clerk asks to move the head with a named successor; once approved, the
    # head's waiting step goes to the successor, told why, and the head hears of it.
    ask = report(daemon)
    doc_id = ask["X-Yizhan-Doc"]
    daemon.send(
        CLERK,
        "biangeng@oa.example",
        "調動",
        f"操作：調動\n帳號：{HEAD}\n單位：衛生檢疫處\n角色：staff\n接任：韓雪\n\n",
    )
    one(daemon, CLERK)
    reply(daemon, HEAD, asked(daemon, HEAD), "同意")
    reply(daemon, "wuhaifeng", asked(daemon, "wuhaifeng"), "同意")
    new = asked(daemon, "hanxue")
    assert new["X-Yizhan-Doc"] == doc_id and "調離" in text(new)
    assert [(s.assignee, s.state) for s in steps(daemon, doc_id)] == [
        (HEAD, "cancelled"),
        ("hanxue", "waiting"),
    ]


def test_the_office_sees_every_document_and_a_clerk_their_units_items(daemon: Daemon) -> None:
    # 第六條: the office may look up any document (not leave, which is HR's), by STATUS,
    # SEARCH and GET; someone not on it may not. 第五條: a unit's clerk and head see the
    # unit's open items; a member of staff is told they may not.
    ask = report(daemon)
    doc_id = ask["X-Yizhan-Doc"]
    status = command(daemon, OFFICE, f"查詢 {doc_id}")
    assert "關於購置檢測設備的請示" in status and "梁國強" in status
    assert "無權" in command(daemon, "fenggang", f"查詢 {doc_id}")
    assert "關於購置檢測設備的請示" in command(daemon, OFFICE, "搜索 購置 請示")
    assert "關於購置檢測設備的請示" not in command(daemon, "fenggang", "搜索 購置 請示")
    daemon.send(OFFICE, "cmd@oa.example", f"下載 #{doc_id}", "")
    copy = one(daemon, OFFICE)
    assert copy["X-Yizhan-Doc"] == doc_id and "擬購置設備一台" in text(copy)

    items = command(daemon, CLERK, "待辦 本單位")
    assert "1 open" in items and "關於購置檢測設備的請示" in items and "梁國強" in items
    assert "1 open" in command(daemon, HEAD, "TODO unit")
    assert "只有本單位的綜合人員和主要領導" in command(daemon, "hanxue", "待办 本单位")
    assert "Nothing is open" in command(daemon, "xuna", "待辦 本單位")


def test_a_delegation_planned_ahead_begins_and_ends_by_itself(daemon: Daemon) -> None:
    # 第九條: the head plans a delegation from tomorrow; nothing moves today. Dates that
    # overlap it are refused plainly. On its first day the scheduler hands the waiting step to
    # the delegate (with the address to reply to) and tells both; after its last day the step
    # comes back and both are told again.
    tz = daemon.ctx.config.tzinfo
    today = dt.datetime.now(tz).date()
    first, last = today + dt.timedelta(days=1), today + dt.timedelta(days=2)
    answer = command(daemon, HEAD, f"授權 宋佳 自 {first} 至 {last}")
    assert "已安排授權" in answer and f"自 {first} 至 {last}" in answer
    assert "重疊" in command(daemon, HEAD, f"DELEGATE hanxue FROM {last} UNTIL {last}")
    assert "重疊" in command(daemon, HEAD, f"授權 韓雪 至 {first}")
    assert "晚於結束日期" in command(daemon, HEAD, f"授權 宋佳 自 {last} 至 {first}")

    ask = report(daemon)
    doc_id = ask["X-Yizhan-Doc"]
    assert [s.assignee for s in steps(daemon, doc_id)] == [HEAD]

    begin = dt.datetime.combine(first, dt.time(0, 1), tzinfo=tz)
    run_due_jobs(daemon.ctx, begin)
    command(daemon, OFFICE, "待辦")  # any processed mail wakes the courier
    (step,) = steps(daemon, doc_id)
    assert (step.assignee, step.on_behalf_of) == (CLERK, HEAD)
    started = text(one(daemon, CLERK))
    assert "梁國強" in started and f"#{doc_id}" in started and "r+" in started
    assert "宋佳" in text(one(daemon, HEAD))

    # The delegate acts with the address the notice gave.
    token = started.split("r+", 1)[1].split("@", 1)[0]
    daemon.send(CLERK, f"r+{token}@oa.example", "Re: 請示", "同意")
    one(daemon, CLERK)
    assert one(daemon, "sunlimin")["X-Yizhan-Action"] == "approve"

    run_due_jobs(daemon.ctx, dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0, 1), tz))
    command(daemon, OFFICE, "待辦")
    assert "授权已结束" in text(one(daemon, CLERK))  # in the bureau's language, zh_CN
