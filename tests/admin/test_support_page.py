"""A problem report from the page (報修, 第十二條; issue 15), in a real browser.

/support sends the mail to baoxiu@ for the person: IT is asked to handle it as by mail; the
IT head closes it on the report's page with 辦結 and a summary, which reaches the reporter.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests.admin.test_browser import Site, log_in
from tests.daemon.conftest import Files
from tests.daemon.test_flows import files_of, one, scan_with, text
from yizhan.mailstore.models import Document, Step

pytest_plugins = ["tests.admin.test_browser"]


@pytest.fixture
def clamd_socket() -> str:
    """The test clamd's socket (as tests/daemon/conftest.py's); fails when there is none."""
    path = os.environ.get("YIZHAN_TEST_CLAMD", "")
    if not path or not Path(path).exists():
        pytest.fail("YIZHAN_TEST_CLAMD does not name a clamd socket (`make services`)")
    return path


@pytest.fixture
def content_files() -> type[Files]:
    return Files


REPORTER, IT_HEAD = "hanxue", "wuhaifeng"


def test_a_problem_reported_on_the_page_is_closed_by_it_on_the_page(
    site: Site, page: Page, clamd_socket: str, content_files: type[Files]
) -> None:
    # 韓雪 reports a printer problem on /support with a screenshot (a report without a subject
    # is answered by the desk and opens nothing); 吳海峰 is asked by mail, with the screenshot,
    # finds it in his to-do, and closes it on its page with what he did; 韓雪 gets the summary
    # and sees the report closed.
    scan_with(site.daemon, clamd_socket)
    screenshot = content_files.png()
    log_in(page, site, REPORTER)
    page.click("nav a[href='/support']")
    page.locator("input[name=subject]").evaluate("e => e.removeAttribute('required')")
    page.locator("textarea[name=body]").fill("打印時提示脫機。")
    page.click("main button[type=submit]")
    expect(page.locator(".error")).to_contain_text("標題為空")
    assert "cmd@" not in page.locator(".error").inner_text()  # the answer, not its footer
    one(site.daemon, REPORTER)

    # A file with a virus: the mail the page wrote is screened as the gateway screens mail,
    # held in the quarantine, and the screening's answer is shown; no report is opened.
    page.locator("input[name=subject]").fill("電腦中毒")
    page.locator("input[name=files]").set_input_files(
        files=[{"name": "log.txt", "mimeType": "text/plain", "buffer": content_files.eicar}]
    )
    page.click("main button[type=submit]")
    expect(page.locator(".error")).to_contain_text("隔離區")
    one(site.daemon, REPORTER)
    assert one(site.daemon, IT_HEAD)["X-Yizhan-Kind"] != "baoxiu"  # told of the quarantine
    expect(page.locator("main table")).to_have_count(0)

    page.locator("input[name=subject]").fill("三樓打印機無法打印")
    page.locator("textarea[name=body]").fill("打印時提示脫機。\n重啟後仍然如此。")
    page.locator("input[name=files]").set_input_files(
        files=[{"name": "截圖.png", "mimeType": "image/png", "buffer": screenshot}]
    )
    page.click("main button[type=submit]")
    expect(page.locator(".notice")).to_contain_text("吳海峰")
    expect(page.locator("main table")).to_contain_text("三樓打印機無法打印")
    one(site.daemon, REPORTER)
    ask = one(site.daemon, IT_HEAD)
    assert ask["X-Yizhan-Kind"] == "baoxiu" and ask["X-Yizhan-Action"] == "handle"
    assert "重啟後仍然如此" in text(ask)
    assert files_of(ask) == [("截圖.png", screenshot)]
    doc_id = str(ask["X-Yizhan-Doc"])

    page.context.clear_cookies()
    log_in(page, site, IT_HEAD)
    page.goto(site.url + "/account")
    page.locator("tr", has_text="三樓打印機無法打印").locator("a.act").click()
    page.locator("#act input[name=text]").fill("已重裝打印機驅動，恢復正常")
    page.locator("#act button[value=done]").click()
    expect(page.locator(".notice")).to_contain_text("辦結")
    expect(page.locator("#act")).to_have_count(0)
    one(site.daemon, IT_HEAD)
    result = site.daemon.until(REPORTER, "closed")
    assert any("已重裝打印機驅動" in text(m) for m in result)
    with site.daemon.ctx.sessions() as session:
        state = session.scalar(select(Document.state).where(Document.id == int(doc_id)))
        (step,) = session.scalars(select(Step).where(Step.document_id == int(doc_id)))
    assert state == "closed" and (step.state, step.done_by) == ("done", IT_HEAD)

    page.context.clear_cookies()
    log_in(page, site, REPORTER)
    page.goto(site.url + "/support")
    expect(page.locator("main table tr", has_text="三樓打印機無法打印")).to_contain_text("closed")
