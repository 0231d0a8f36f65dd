"""The office's pages (issue 14, 第六條): bulletins withdrawn from the board, open supervision
tasks, and the seals' custodians (第十八條), handed over on the page and audited."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import insert
from starlette.testclient import TestClient

from tests.admin.conftest import csrf_of, give_passwords, login
from tests.daemon.test_flows import Daemon, one, reply, text
from tests.daemon.test_supervision import assign, today, working_day
from yizhan.admin.app import create_app
from yizhan.daemon.context import Context
from yizhan.mailstore.models import AuditEntry, Document, Role, Step

pytest_plugins = ["tests.daemon.test_flows"]


def test_the_office_withdraws_anyone_s_bulletin_on_the_page(daemon: Daemon) -> None:
    # An inspection clerk's bulletin, approved by the unit head, reaches 衛生檢疫處. The office
    # withdraws it on /bulletins with a reason: the page shows gonggao@'s answer, the readers
    # are told with the reason as when the author withdraws it, and it leaves the board.
    author, head = "xiewenbin", "liangguoqiang"
    daemon.send(author, "gonggao@oa.example", "辦公樓停電公示", "範圍：衛生檢疫處\n\n週六停電。")
    one(daemon, author)
    reply(daemon, head, one(daemon, head), "同意")
    published = one(daemon, "fenggang")
    doc_id = published["X-Yizhan-Doc"]
    give_passwords(daemon.ctx)
    with TestClient(create_app(daemon.ctx), base_url="http://127.0.0.1") as admin:
        login(admin, "hanxue")  # neither the author nor the office
        assert admin.get("/bulletins").status_code == 403
        admin.cookies.clear()
        login(admin, "wangfang")
        board = admin.get("/bulletins")
        assert board.status_code == 200 and "辦公樓停電公示" in board.text
        token = csrf_of(board.text)
        empty = admin.post(f"/bulletins/{doc_id}/withdraw", data={"csrf_token": token})
        assert empty.status_code == 400
        done = admin.post(
            f"/bulletins/{doc_id}/withdraw", data={"csrf_token": token, "reason": "停電取消"}
        )
        assert done.status_code == 200
        assert "已撤回公告" in done.text and "辦公樓停電公示" not in done.text.split("</h1>")[1]
    withdrawn = one(daemon, "fenggang")
    assert withdrawn["X-Yizhan-State"] == "withdrawn" and "停電取消" in text(withdrawn)
    assert "已撤回" in text(one(daemon, "wangfang"))  # the office's answer, by mail as well


def test_the_office_sees_every_open_supervision_task_and_others_do_not(daemon: Daemon) -> None:
    # The office assigns a task by mail to two units; its page shows the task with both units'
    # parts, who has each and the deadline. A clerk elsewhere gets the one 403.
    deadline = working_day(daemon, today(daemon), 5)
    assign(daemon, "關於<b>汛期</b>安全檢查的督辦", "檢驗監管處、大連分局", deadline)
    give_passwords(daemon.ctx)
    with TestClient(create_app(daemon.ctx), base_url="http://127.0.0.1") as admin:
        login(admin, "xuna")
        assert admin.get("/supervision").status_code == 403
        admin.cookies.clear()
        login(admin, "wangfang")
        page = admin.get("/supervision")
    assert page.status_code == 200
    assert "關於&lt;b&gt;汛期&lt;/b&gt;安全檢查的督辦" in page.text
    assert "檢驗監管處" in page.text and "大連分局" in page.text
    assert "宋佳" in page.text and "田璐" in page.text
    assert f"{deadline} 17:30" in page.text


def test_the_office_hands_a_seal_to_another_custodian(admin: TestClient, bureau: Context) -> None:
    bureau.keyring.create_seal("bureau", "遼寧出入境檢驗檢疫局", "zhoujing", bureau.config.domain)
    with bureau.sessions.begin() as session:
        session.add(Role(account="wangfang", role="seal_custodian"))
    login(admin, "wangfang")
    page = admin.get("/seals")
    assert page.status_code == 200 and "周靜" in page.text
    token = csrf_of(page.text)

    # Someone without the custodian role cannot be given the seal; nothing changes.
    refused = admin.post("/seals/bureau/custodian", data={"csrf_token": token, "custodian": "xuna"})
    assert refused.status_code == 400
    seal = bureau.keyring.seal("bureau")
    assert seal is not None and seal.custodian == "zhoujing"
    assert (
        admin.post(
            "/seals/nounit/custodian", data={"csrf_token": token, "custodian": "wangfang"}
        ).status_code
        == 404
    )

    handed = admin.post(
        "/seals/bureau/custodian", data={"csrf_token": token, "custodian": "wangfang"}
    )
    assert handed.status_code == 200 and "zhoujing → 王芳" in handed.text
    seal = bureau.keyring.seal("bureau")
    assert seal is not None and seal.custodian == "wangfang"
    with bureau.sessions() as session:
        entries = session.query(AuditEntry).filter_by(action="seal.custodian").all()
    assert [(e.actor, e.target, e.detail["from"], e.detail["to"]) for e in entries] == [
        ("wangfang", "bureau", "zhoujing", "wangfang")
    ]


def test_only_the_office_reaches_its_pages(admin: TestClient) -> None:
    login(admin, "mali")  # the IT department runs the keys, not the custodians
    assert admin.get("/seals").status_code == 403
    assert admin.get("/supervision").status_code == 403


def test_supervision_lists_every_open_task_a_page_at_a_time_overdue_first(
    admin: TestClient, bureau: Context
) -> None:
    # 55 open tasks of 檢驗監管處 and one closed: the page counts the 55, lists 50 of them with
    # the overdue one first although it is the newest, then by deadline; the next page the rest.
    now = bureau.clock()
    rows, steps = [], []
    for n in range(1, 57):
        deadline = now + dt.timedelta(days=n) if n != 55 else now - dt.timedelta(days=1)
        rows.append(
            {
                "id": n,
                "kind": "duban",
                "title": f"督辦事項{n}",
                "state": "closed" if n == 56 else "supervising",
                "author": "wangfang",
                "unit_id": "office",
                "version": 1,
                "fields": {"to_units": ["inspection"], "deadline_at": deadline.isoformat()},
                "created_at": now,
                "updated_at": now,
            }
        )
        steps.append(
            {
                "document_id": n,
                "name": "progress",
                "assignee": "songjia",
                "unit": "inspection",
                "action": "progress",
                "state": "done" if n == 56 else "waiting",
                "created_at": now,
                "due_at": deadline,
            }
        )
    with bureau.sessions.begin() as session:
        session.execute(insert(Document), rows)
        session.execute(insert(Step), steps)
    login(admin, "wangfang")
    first, second = admin.get("/supervision"), admin.get("/supervision?page=2")
    listed = [
        [int(n) for n in re.findall(r'href="/documents/(\d+)"', page.text)]
        for page in (first, second)
    ]
    assert "(55)" in first.text and "(55)" in second.text
    assert listed == [[55, *range(1, 50)], list(range(50, 55))]
    assert first.text.count('class="tag late"') == 2  # the task and its unit's part
    assert 'href="/supervision?page=2"' in first.text
    assert 'href="/supervision?page=1"' in second.text
