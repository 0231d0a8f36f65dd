"""Delegation while away on /account (第九條; issue 15), in a real browser.

The form sends DELEGATE (with a first day: planned ahead) and REVOKE to cmd@ for the person, so
the desk checks and answers them as the mails; the page lists what is planned and in force.
"""

from __future__ import annotations

import datetime as dt

from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests.admin.test_browser import Site, log_in
from tests.daemon.test_flows import one, text
from yizhan.daemon.jobs.table import run_due_jobs
from yizhan.mailstore.models import DelegationRow, Step

pytest_plugins = ["tests.admin.test_browser"]

HEAD, CLERK, AUTHOR = "liangguoqiang", "songjia", "xiewenbin"


def delegate(page: Page, who: str, first: dt.date | None, last: dt.date) -> None:
    form = page.locator("form[action='/account/delegation']")
    form.locator("input[name=delegate]").fill(who)
    form.locator("input[name=from]").fill(first.isoformat() if first else "")
    form.locator("input[name=until]").fill(last.isoformat())
    form.locator("button").click()


def wake(site: Site) -> None:
    """Any processed mail wakes the courier, which then delivers what a job queued."""
    site.daemon.send("wangfang", "cmd@oa.example", "待辦", "")
    one(site.daemon, "wangfang")


def test_a_delegation_planned_on_the_page_begins_and_is_revoked_there(
    site: Site, page: Page
) -> None:
    # The head plans a delegation to 宋佳 from tomorrow: the desk's answer is shown and the page
    # lists it as planned; overlapping dates are refused with the desk's words and add nothing.
    # On its first day the waiting report goes to 宋佳, who is told; the page shows it in force;
    # REVOKE on the page brings the report back and the list is empty.
    tz = site.daemon.ctx.config.tzinfo
    today = dt.datetime.now(tz).date()
    first, last = today + dt.timedelta(days=1), today + dt.timedelta(days=2)
    log_in(page, site, HEAD)
    page.goto(site.url + "/account")
    delegate(page, "宋佳", first, last)
    expect(page.locator(".notice")).to_contain_text(f"自 {first} 至 {last}")
    expect(page.locator("#delegation li")).to_have_count(1)
    expect(page.locator("#delegation li .tag")).to_have_text("planned")
    assert "已安排授權" in text(one(site.daemon, HEAD))  # the answer by mail as well

    delegate(page, "韓雪", None, first)
    expect(page.locator(".error")).to_contain_text("重疊")
    one(site.daemon, HEAD)
    expect(page.locator("#delegation li")).to_have_count(1)

    site.daemon.send(AUTHOR, "qianbao@oa.example", "關於購置檢測設備的請示", "擬購置。")
    one(site.daemon, AUTHOR)
    ask = one(site.daemon, HEAD)
    doc_id = int(ask["X-Yizhan-Doc"])
    run_due_jobs(site.daemon.ctx, dt.datetime.combine(first, dt.time(0, 1), tzinfo=tz))
    wake(site)
    assert "梁國強" in text(one(site.daemon, CLERK))
    one(site.daemon, HEAD)
    with site.daemon.ctx.sessions() as session:
        step = session.scalars(select(Step).where(Step.document_id == doc_id)).one()
        assert (step.assignee, step.on_behalf_of) == (CLERK, HEAD)

    page.goto(site.url + "/account")
    expect(page.locator("#delegation li .tag")).to_have_text("in force")
    page.locator("form[action='/account/delegation/end'] button").click()
    expect(page.locator(".notice")).to_contain_text("已收回授權")
    expect(page.locator("#delegation li")).to_have_count(0)
    one(site.daemon, HEAD)
    with site.daemon.ctx.sessions() as session:
        step = session.scalars(select(Step).where(Step.document_id == doc_id)).one()
        assert (step.assignee, step.on_behalf_of) == (HEAD, None)
        rows = session.scalars(select(DelegationRow).where(DelegationRow.delegator == HEAD))
        assert [(r.delegate, r.ended_by) for r in rows] == [(CLERK, "revoked")]

    # Nothing left to revoke (a form left open in another tab): the desk's answer, as an error.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    again = page.request.post(site.url + "/account/delegation/end", form={"csrf_token": str(token)})
    assert again.status == 400 and "沒有有效的授權" in again.text()
