"""The office's oversight buttons on a document's page (issue 14 part 3), in a real browser.

Each button runs the office's cmd@ command (轉辦, 延期, 撤銷): the new person gets the request
mail over the running daemon, a mistake is shown and changes nothing, and only the office may
post.
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests.admin.test_browser import Site, log_in
from yizhan.mailstore.models import AuditEntry, Step

pytest_plugins = ["tests.admin.test_browser"]


def stuck_report(site: Site) -> str:
    """A report waiting for the inspection head; its id."""
    site.daemon.send("xiewenbin", "qianbao@oa.example", "關於更換檢測儀器的請示", "儀器老化。")
    (ask,) = site.daemon.inbox("liangguoqiang")
    return str(ask["X-Yizhan-Doc"])


def test_the_office_reassigns_extends_and_cancels_on_the_page(site: Site, page: Page) -> None:
    doc_id = stuck_report(site)
    log_in(page, site, "wangfang")
    page.goto(f"{site.url}/documents/{doc_id}")
    oversight = page.locator("#oversight")

    # A name nobody has: the mail's answer is shown, and nothing changes.
    reassign = oversight.locator("form[action$='/reassign']")
    reassign.locator("input[name=person]").fill("無此人")
    reassign.locator("input[name=reason]").fill("出差")
    reassign.locator("button").click()
    expect(page.locator(".error")).to_contain_text("找不到「無此人」")

    reassign = page.locator("#oversight form[action$='/reassign']")
    reassign.locator("input[name=person]").fill("宋佳")
    reassign.locator("input[name=reason]").fill("梁處長出差")
    reassign.locator("button").click()
    expect(page.locator(".notice")).to_contain_text("轉辦")
    (new,) = site.daemon.inbox("songjia")
    assert new["X-Yizhan-Doc"] == doc_id and str(new["Reply-To"]).startswith("r+")
    site.daemon.inbox("liangguoqiang")  # told why

    extend = page.locator("#oversight form[action$='/extend']")
    extend.locator("input[name=date]").fill("2099-01-05")
    extend.locator("button").click()
    expect(page.locator(".notice")).to_contain_text("2099-01-05 17:30")
    (moved,) = site.daemon.inbox("songjia")
    assert "2099-01-05 17:30" in moved.get_body(("plain",)).get_content()

    cancel = page.locator("#oversight form[action$='/cancel']")
    cancel.locator("input[name=reason]").fill("重複請示")
    cancel.locator("button").click()
    expect(page.locator(".notice")).to_contain_text("已撤銷")
    expect(page.locator("ol.timeline")).to_contain_text("重複請示")
    expect(page.locator("#oversight")).to_have_count(0)
    with site.daemon.ctx.sessions() as session:
        states = session.scalars(
            select(Step.state).where(Step.document_id == int(doc_id)).order_by(Step.id)
        ).all()
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.target == f"doc:{doc_id}")
        ).all()
    assert list(states) == ["cancelled", "cancelled"]
    assert {"doc.reassign", "doc.extend", "doc.cancel"} <= set(actions)


def test_only_the_office_may_post(site: Site, page: Page) -> None:
    doc_id = stuck_report(site)
    log_in(page, site, "liangguoqiang")  # on the document, but not the office
    page.goto(f"{site.url}/documents/{doc_id}")
    expect(page.locator("#oversight")).to_have_count(0)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.goto(site.url + "/account").text())
    assert found
    answer = page.request.post(
        f"{site.url}/documents/{doc_id}/cancel",
        form={"csrf_token": found[1], "reason": "x"},
    )
    assert answer.status == 403
    with site.daemon.ctx.sessions() as session:
        (step,) = session.scalars(select(Step).where(Step.document_id == int(doc_id))).all()
        assert step.state == "waiting"
