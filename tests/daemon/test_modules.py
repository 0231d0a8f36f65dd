"""End-to-end: the modules of 第二條 built on the routing engine, over SMTP on loopback.

Bulletins (公告板, 第二十三條), leave (休假管理, 第六條, 第九條) and change requests with account
applications (事項變更申請, 第十條; mine rules 一(二)–(三)), each walked as staff would, with
smtplib clients and the Maildirs Yizhan delivers into.
"""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from sqlalchemy import select

from tests.daemon.test_flows import Daemon, files_of, one, reply, scan_with, text
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.models import AccountRecord, LeaveRecordRow
from yizhan.routing.calendar import WorkCalendar

pytest_plugins = ["tests.daemon.test_flows"]


def asked(d: Daemon, account: str) -> EmailMessage:
    """The next mail asking ``account`` to act; confirmations before it are passed over."""
    while True:
        for mail in d.inbox(account):
            if str(mail.get("Reply-To", "")).startswith("r+"):
                return mail


def test_bulletin_refusals_approval_publication_and_withdrawal(
    daemon: Daemon, clamd_socket: str
) -> None:
    # 第二十三條: a meeting notice and an all-bureau bulletin are refused with the right
    # channel; an ordinary bulletin to a unit and a role is approved by the author's unit
    # head, published with List-Id and no List-Unsubscribe, then withdrawn by its author.
    author, head = "xiewenbin", "liangguoqiang"
    daemon.send(
        author, "gonggao@oa.example", "關於召開年度總結會議的通知", "範圍：衛生檢疫處\n\n請參加。"
    )
    assert "fawen@" in text(one(daemon, author))
    daemon.send(author, "gonggao@oa.example", "辦公樓停電公示", "範圍：全局\n\n週六停電。")
    refused = text(one(daemon, author))
    assert "第二十三條" in refused and "特殊" in refused

    daemon.send(
        author,
        "gonggao@oa.example",
        "辦公樓停電公示",
        "範圍：衛生檢疫處、綜合人員\n期限：2099-01-01\n\n週六停電。",
    )
    assert "年底" in text(one(daemon, author))  # past the year end: bulletins are cleared then
    scan_with(daemon, clamd_socket)
    schedule = "停電時段：週六 8:00-18:00\n".encode() * 20
    daemon.send(
        author,
        "gonggao@oa.example",
        "辦公樓停電公示",
        "範圍：衛生檢疫處、綜合人員\n\n週六停電。",
        files={"停電安排.txt": schedule},
    )
    one(daemon, author)  # the confirmation
    ask = one(daemon, head)
    assert files_of(ask) == [("停電安排.txt", schedule)]
    assert ask["X-Yizhan-Kind"] == "gonggao" and ask["X-Yizhan-Action"] == "approve"
    doc_id = ask["X-Yizhan-Doc"]
    reply(daemon, head, ask, "同意")

    # Everyone in 衛生檢疫處 and every clerk gets it; the inspection staff do not.
    for account in ("fenggang", "tangxiaodong", "wangfang", "luomin"):
        bulletin = one(daemon, account)
        assert bulletin["List-Id"] == "公告板 <gonggao.oa.example>"
        assert bulletin["List-Unsubscribe"] is None
        assert bulletin["X-Yizhan-Kind"] == "gonggao" and bulletin["X-Yizhan-Doc"] == doc_id
        assert bulletin["Expires"] is not None
        assert "週六停電" in text(bulletin)
        assert files_of(bulletin) == [("停電安排.txt", schedule)]
    assert any(m["X-Yizhan-State"] == "closed" for m in daemon.inbox(author, expect=1))
    # A reader can look it up; someone outside its scope cannot.
    daemon.send("fenggang", "cmd@oa.example", f"查詢 {doc_id}", "")
    assert "辦公樓停電公示" in text(one(daemon, "fenggang"))
    daemon.send("hanxue", "cmd@oa.example", f"查詢 {doc_id}", "")
    assert "無權" in text(one(daemon, "hanxue"))
    daemon.send("hanxue", "gonggao@oa.example", f"撤回 {doc_id}", "")
    assert "發布人" in text(one(daemon, "hanxue"))  # only the author may withdraw

    daemon.send(author, "gonggao@oa.example", f"撤回 {doc_id} 時間有變", "")
    assert "撤回" in text(one(daemon, author))
    withdrawn = one(daemon, "fenggang")
    assert withdrawn["X-Yizhan-State"] == "withdrawn"
    assert "時間有變" in text(withdrawn)


def test_important_special_bulletin_goes_to_the_bureau_leader(daemon: Daemon) -> None:
    # 第二十三條: a special all-bureau bulletin marked 重要 is approved by a bureau leader (the
    # one in charge of the author's unit), not by the unit head.
    daemon.send(
        "xiewenbin",
        "gonggao@oa.example",
        "[特殊][重要] 防汛期間值班安排公示",
        "範圍：全局\n\n值班表。",
    )
    one(daemon, "xiewenbin")
    ask = one(daemon, "sunlimin")
    assert ask["X-Yizhan-Action"] == "approve" and ask["X-Yizhan-Step"] == "signoff"


def _leave_days(tz: ZoneInfo, count: int) -> tuple[dt.date, dt.date]:
    """``count`` consecutive working days from a week ahead, within one calendar year."""
    calendar = WorkCalendar(tz=tz)
    day = dt.datetime.now(tz).date() + dt.timedelta(days=7)
    while True:
        while not calendar.is_working_day(day):
            day += dt.timedelta(days=1)
        days = [day]
        while len(days) < count:
            days.append(calendar.next_working_day(days[-1]))
        if days[-1].year == day.year:
            return day, days[-1]
        day = dt.date(day.year + 1, 1, 1)


def test_leave_balance_approval_record_and_refusals(daemon: Daemon) -> None:
    # 第六條: HR records the service start; a 2-day annual leave is approved by the unit head,
    # recorded, and HR told; the person is prompted to delegate (第九條); an overlapping and an
    # over-balance request are refused with the numbers; a long leave also needs the bureau
    # leader in charge.
    person, head, hr = "xiewenbin", "liangguoqiang", "luomin"
    tz = daemon.ctx.config.tzinfo
    daemon.send(person, "xiujia@oa.example", "年休假", "類型：年休假\n起止：2099-12-01\n\n")
    assert "人事處" in text(one(daemon, person))  # no service start recorded yet
    daemon.send(hr, "xiujia@oa.example", "設置", "設置 xiewenbin 參加工作 2012-07-01")
    assert "2012-07-01" in text(one(daemon, hr))
    daemon.send(person, "xiujia@oa.example", "查詢", "查詢")
    assert "應休 10 天" in text(one(daemon, person))

    start, end = _leave_days(tz, 2)
    period = f"起止：{start} 至 {end}"
    daemon.send(person, "xiujia@oa.example", "年休假申請", f"類型：年休假\n{period}\n\n回家。")
    one(daemon, person)
    ask = one(daemon, head)
    assert ask["X-Yizhan-Kind"] == "xiujia" and ask["X-Yizhan-Action"] == "approve"
    reply(daemon, head, ask, "同意")
    recorded = one(daemon, hr)
    assert "2" in text(recorded) and str(start) in text(recorded)
    got = daemon.inbox(person, expect=2)
    assert any("cmd@" in text(m) and "DELEGATE" in text(m) for m in got)

    daemon.send(person, "xiujia@oa.example", "年休假申請", f"類型：年休假\n{period}\n\n")
    assert "重疊" in text(one(daemon, person))
    daemon.send(hr, "xiujia@oa.example", "設置", "設置 xiewenbin 調整 -7 更正")
    one(daemon, hr)
    later, later_end = _leave_days(tz, 4)
    later = later_end + dt.timedelta(days=7)
    while later.weekday() >= 5:
        later += dt.timedelta(days=1)
    daemon.send(
        person, "xiujia@oa.example", "年休假", f"類型：年休假\n起止：{later} 至 {later}\n\n"
    )
    answer = text(one(daemon, person))
    if later.year == start.year:
        assert "剩餘 1" in answer or "已提交" in answer or "下一步" in answer

    daemon.send(person, "xiujia@oa.example", "查詢", "查詢")
    status = text(one(daemon, person))
    assert "已休 2 天" in status and "調整 -7" in status
    with daemon.ctx.sessions.begin() as session:
        rows = session.scalars(
            select(LeaveRecordRow).where(LeaveRecordRow.leave_type == "annual")
        ).all()
        assert [(r.account, r.days) for r in rows] == [(person, 2)]


def test_long_leave_needs_the_bureau_leader(daemon: Daemon) -> None:
    # 第六條: more than three working days of leave also go to the bureau leader in charge.
    start, end = _leave_days(daemon.ctx.config.tzinfo, 5)
    daemon.send("hanxue", "xiujia@oa.example", "事假", f"類型：事假\n起止：{start} 至 {end}\n\n")
    one(daemon, "hanxue")
    reply(daemon, "liangguoqiang", one(daemon, "liangguoqiang"), "同意")
    ask = one(daemon, "sunlimin")
    assert ask["X-Yizhan-Kind"] == "xiujia" and ask["X-Yizhan-Step"] == "signoff"


def test_account_application_and_clerk_change(daemon: Daemon) -> None:
    # 第十條, mine rules 一(二): only a clerk applies; an account needs the signed
    # confidentiality agreement; the unit head and IT approve, and the account exists at once
    # under the real name with the agreement on file; a new clerk is reported to the office.
    clerk, head, it = "songjia", "liangguoqiang", "wuhaifeng"
    form = "操作：新增\n人員：張偉\n帳號：zhangwei\n角色：staff\n郵箱：zhangwei@bureau.example\n"
    daemon.send("xiewenbin", "biangeng@oa.example", "新增人員", form + "保密協議：已簽\n\n")
    assert "綜合人員" in text(one(daemon, "xiewenbin"))
    daemon.send(clerk, "biangeng@oa.example", "新增人員", form + "\n")
    assert "保密協議" in text(one(daemon, clerk))

    daemon.send(clerk, "biangeng@oa.example", "新增人員", form + "保密協議：已簽\n\n新入職。")
    one(daemon, clerk)
    reply(daemon, head, one(daemon, head), "同意")
    ask = one(daemon, it)
    assert ask["X-Yizhan-Kind"] == "biangeng" and ask["X-Yizhan-Step"] == "it_approve"
    reply(daemon, it, ask, "同意")
    got = daemon.inbox(it, expect=2)
    assert any("zhangwei" in text(m) and "passwd" in text(m) for m in got)
    assert one(daemon, clerk)["X-Yizhan-State"] == "closed"
    with daemon.ctx.sessions.begin() as session:
        person = load_directory(session).people["zhangwei"]
        assert (person.name, person.unit, person.roles) == (
            "張偉",
            "inspection",
            frozenset({"staff"}),
        )
        record = session.get(AccountRecord, "zhangwei")
        assert record is not None and record.nda_signed

    daemon.send(
        clerk, "biangeng@oa.example", "角色變更", "操作：角色變更\n帳號：hanxue\n角色：clerk\n\n"
    )
    one(daemon, clerk)
    reply(daemon, head, asked(daemon, head), "同意")
    reply(daemon, it, asked(daemon, it), "同意")
    filed = text(one(daemon, "chenzhigang"))
    assert "备案" in filed and "hanxue" in filed  # the office reads Simplified by default
    with daemon.ctx.sessions.begin() as session:
        assert "clerk" in load_directory(session).people["hanxue"].roles
