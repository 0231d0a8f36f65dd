"""HR's leave book on the admin page (issue 14, 第六條): corrections as by mail to xiujia@."""

from __future__ import annotations

import datetime as dt

from starlette.testclient import TestClient

from tests.admin.conftest import csrf_of, login
from yizhan.daemon.context import Context
from yizhan.mailstore.models import AuditEntry, LeaveProfile, LeaveRecordRow


def test_hr_records_a_service_start_and_sees_the_balance(
    admin: TestClient, bureau: Context
) -> None:
    # An HR clerk types what they would send after 設置 to xiujia@; the book and the balance
    # shown for that person follow, and the trail says who did it.
    login(admin, "luomin")
    token = csrf_of(admin.get("/leave").text)
    page = admin.post(
        "/leave", data={"csrf_token": token, "correction": "wangfang 參加工作 2005-07-01"}
    )
    assert page.status_code == 200
    assert "已登記 wangfang 參加工作時間 2005-07-01" in page.text
    with bureau.sessions() as session:
        profile = session.get(LeaveProfile, "wangfang")
        assert profile is not None and profile.service_start == dt.date(2005, 7, 1)
        assert profile.updated_by == "luomin"
        actions = [e.action for e in session.query(AuditEntry).filter_by(actor="luomin")]
    assert any(a.startswith("leave.") for a in actions), actions
    # Twenty years of service: the balance the page shows is the mail's STATUS answer.
    assert "wangfang" in admin.get("/leave?account=wangfang").text


def test_an_adjustment_is_recorded_with_its_reason(admin: TestClient, bureau: Context) -> None:
    login(admin, "luomin")
    token = csrf_of(admin.get("/leave").text)
    page = admin.post(
        "/leave", data={"csrf_token": token, "correction": "songjia 調整 -2 年初補登"}
    )
    assert page.status_code == 200
    with bureau.sessions() as session:
        rows = session.query(LeaveRecordRow).filter_by(account="songjia").all()
    assert [(r.days, r.note, r.recorded_by) for r in rows] == [(-2, "年初補登", "luomin")]


def test_a_correction_that_cannot_be_read_changes_nothing(
    admin: TestClient, bureau: Context
) -> None:
    # What the page cannot read is answered with the usage, as the mail would be; an unknown
    # account is named; the book is untouched either way.
    login(admin, "luomin")
    token = csrf_of(admin.get("/leave").text)
    bad = admin.post("/leave", data={"csrf_token": token, "correction": "wangfang 加薪 1000"})
    assert bad.status_code == 400 and "參加工作" in bad.text
    unknown = admin.post(
        "/leave", data={"csrf_token": token, "correction": "nobody 參加工作 2005-07-01"}
    )
    assert unknown.status_code == 400 and "nobody" in unknown.text
    with bureau.sessions() as session:
        assert session.query(LeaveProfile).count() == 0
        assert session.query(LeaveRecordRow).count() == 0


def test_only_hr_corrects_the_leave_book(admin: TestClient, bureau: Context) -> None:
    # 第六條: the leave module is HR's; an office clerk gets the one 403, and nothing changes.
    login(admin, "wangfang")
    token = csrf_of(admin.get("/account").text)
    refused = admin.post(
        "/leave", data={"csrf_token": token, "correction": "wangfang 參加工作 1990-01-01"}
    )
    assert refused.status_code == 403
    with bureau.sessions() as session:
        assert session.get(LeaveProfile, "wangfang") is None
