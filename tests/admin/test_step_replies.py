"""A person's own part in a document on its page (issue 15), in a real browser.

Each button sends the reply mail the person would send (簽收, 退回, 異議, the objection's
同意 or 退回), so the desk decides it as it decides the mail: the others get the same mails,
a refusal is shown with the desk's words and changes nothing, and acting on someone else's
step is refused and reported to the IT department (第七條).
"""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from tests.admin.test_browser import Site, log_in
from tests.daemon.test_flows import one, text
from tests.daemon.test_objection import AUTHOR, HEAD, LEADER, report_at_signoff
from tests.daemon.test_receipt import asked, letter_to_finance_and_quarantine
from yizhan.mailstore.models import Step

pytest_plugins = ["tests.admin.test_browser"]


def steps(site: Site, doc_id: str) -> list[tuple[str, str, str, str | None]]:
    """(name, assignee, state, outcome) of each step of the document, in order."""
    with site.daemon.ctx.sessions() as session:
        rows = session.execute(
            select(Step.name, Step.assignee, Step.state, Step.outcome)
            .where(Step.document_id == int(doc_id))
            .order_by(Step.id)
        )
        return [(n, a, s, o) for n, a, s, o in rows]


def csrf(page: Page) -> str:
    return str(page.locator("input[name=csrf_token]").first.get_attribute("value"))


def test_a_receiving_clerk_signs_or_sends_a_copy_back_on_the_page(site: Site, page: Page) -> None:
    # 第二十一條: a department letter reaches two clerks. 許娜 finds it in her to-do, opens it
    # and sends her copy back: without a reason the desk's answer says what is missing and
    # nothing changes; with one, the author gets the copy back with the reason. 曹雅琴 signs
    # for hers on the page. Another clerk posting on 許娜's step is refused and reported.
    finance, _quarantine = letter_to_finance_and_quarantine(site.daemon)
    doc_id = str(finance["X-Yizhan-Doc"])

    log_in(page, site, "xuna")
    page.goto(site.url + "/account")
    page.locator("tr", has_text="關於借用檢測設備的函").locator("a.act").click()
    expect(page).to_have_url(f"{site.url}/documents/{doc_id}#act")
    page.locator("#act button[value=reject]").click()
    expect(page.locator(".error")).to_contain_text("REJECT: reason")
    assert "REJECT: reason" in text(one(site.daemon, "xuna"))  # by mail as well
    assert [s[2] for s in steps(site, doc_id) if s[0] == "receive"] == ["waiting", "waiting"]

    page.locator("#act input[name=text]").fill("非本單位業務，應送丹東分局")
    page.locator("#act button[value=reject]").click()
    expect(page.locator(".notice")).to_contain_text("已退回")
    expect(page.locator("#act")).to_have_count(0)
    one(site.daemon, "xuna")
    back = asked(site.daemon, "songjia")
    assert back["X-Yizhan-Action"] == "handle" and "非本單位業務" in text(back)
    assert ("receive", "xuna", "done", "reject") in steps(site, doc_id)

    # 曹雅琴 posts on 許娜's step, whatever the page offers her: refused as acting in
    # another's name, the IT department told, nothing changed.
    page.context.clear_cookies()
    log_in(page, site, "caoyaqin")
    page.goto(f"{site.url}/documents/{doc_id}")
    (xuna_step,) = [s for s in steps(site, doc_id) if s[1] == "xuna"]
    with site.daemon.ctx.sessions() as session:
        xuna_id = session.scalar(
            select(Step.id).where(Step.document_id == int(doc_id), Step.assignee == "xuna")
        )
    answer = page.request.post(
        f"{site.url}/documents/{doc_id}/reply",
        form={"csrf_token": csrf(page), "step": str(xuna_id), "verb": "received"},
    )
    assert answer.status == 400 and "不是他本人" in answer.text()
    assert "caoyaqin" in text(one(site.daemon, "wuhaifeng"))  # IT's report of the impersonation
    one(site.daemon, "caoyaqin")
    assert [s for s in steps(site, doc_id) if s[1] == "xuna"] == [xuna_step]

    page.locator("#act button[value=received]").click()
    expect(page.locator(".notice")).to_contain_text("簽收")
    one(site.daemon, "caoyaqin")
    assert ("receive", "caoyaqin", "done", "received") in steps(site, doc_id)


def test_an_objection_made_and_overruled_on_the_page(
    site: Site, page: Page, browser: Browser
) -> None:
    # 第二十條: the unit head, who approved the report, objects on its page; the leader in
    # charge finds the objection in his to-do and overrules it there (a reason is needed), and
    # the head is told by mail. The office, not on the report, is offered no objection, and
    # one it posts anyway is refused with the desk's words.
    ask, _signoff = report_at_signoff(site.daemon)
    doc_id = str(ask["X-Yizhan-Doc"])

    office = browser.new_context().new_page()
    log_in(office, site, "wangfang")
    office.goto(f"{site.url}/documents/{doc_id}")
    expect(office.locator("#object")).to_have_count(0)
    refused = office.request.post(
        f"{site.url}/documents/{doc_id}/object", form={"csrf_token": csrf(office), "reason": "x"}
    )
    assert refused.status == 400 and "起草人和經辦人" in refused.text()
    office.context.close()
    one(site.daemon, "wangfang")
    assert not [s for s in steps(site, doc_id) if s[0] == "objection"]

    log_in(page, site, HEAD)
    page.goto(f"{site.url}/documents/{doc_id}")
    page.locator("#object input[name=reason]").fill("预算偏高，应先询价")
    page.locator("#object button").click()
    expect(page.locator(".notice")).to_contain_text("孫立民")
    expect(page.locator("#object")).to_have_count(0)  # one objection at a time
    one(site.daemon, HEAD)
    decide = one(site.daemon, LEADER)
    assert decide["X-Yizhan-Step"] == "objection" and "预算偏高" in text(decide)

    page.context.clear_cookies()
    log_in(page, site, LEADER)
    page.goto(site.url + "/account")
    page.locator("tr", has_text="objection").locator("a.act").click()
    form = page.locator("#act form")
    expect(form).to_have_count(1)  # the objection only: the sign-off needs a signed mail
    form.locator("button[value=reject]").click()
    expect(page.locator(".error")).to_contain_text("REJECT: reason")
    one(site.daemon, LEADER)
    page.locator("#act input[name=text]").fill("預算已經財務處審核")
    page.locator("#act button[value=reject]").click()
    expect(page.locator(".notice")).to_contain_text("駁回")
    one(site.daemon, LEADER)
    assert "預算已經財務處審核" in text(one(site.daemon, HEAD))
    assert ("objection", LEADER, "done", "reject") in steps(site, doc_id)
    assert ("signoff", LEADER, "waiting", None) in steps(site, doc_id)


def test_an_objection_upheld_on_the_page_sends_the_report_back(site: Site, page: Page) -> None:
    # The leader upholds the head's objection on the page: the waiting sign-off is withdrawn and
    # the author gets the report back with the objection and the leader's opinion.
    ask, _signoff = report_at_signoff(site.daemon)
    doc_id = str(ask["X-Yizhan-Doc"])
    log_in(page, site, HEAD)
    page.goto(f"{site.url}/documents/{doc_id}")
    page.locator("#object input[name=reason]").fill("the budget has not been checked")
    page.locator("#object button").click()
    expect(page.locator(".notice")).to_contain_text("孫立民")
    one(site.daemon, HEAD)
    one(site.daemon, LEADER)

    page.context.clear_cookies()
    log_in(page, site, LEADER)
    page.goto(f"{site.url}/documents/{doc_id}#act")
    page.locator("#act input[name=text]").fill("請先送財務處審核")
    page.locator("#act button[value=approve]").click()
    expect(page.locator(".notice")).to_contain_text("已支持")
    site.daemon.inbox(LEADER, expect=2)  # the answer and the withdrawn sign-off
    returned = one(site.daemon, AUTHOR)
    assert returned["X-Yizhan-State"] == "returned" and returned["X-Yizhan-Action"] == "handle"
    assert "the budget has not been checked" in text(returned)
    assert "請先送財務處審核" in text(returned)
    assert ("signoff", LEADER, "cancelled", None) in steps(site, doc_id)
    assert ("objection", LEADER, "done", "approve") in steps(site, doc_id)
