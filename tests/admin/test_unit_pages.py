"""/unit: a unit's open items for its clerk and its head, as TODO unit (待辦 本單位) answers them
by mail (第五條; issue 15), in a real browser."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.admin.test_browser import Site, log_in
from tests.daemon.test_flows import one, text

pytest_plugins = ["tests.admin.test_browser"]


def test_a_unit_s_clerk_sees_its_open_items_as_todo_unit_lists_them(site: Site, page: Page) -> None:
    # A report of 檢驗監管處 waits for its head. The unit's clerk 宋佳 finds it on /unit with who
    # has it, as her mail TODO unit lists it; 韓雪, neither a clerk nor a head, is refused both.
    site.daemon.send("xiewenbin", "qianbao@oa.example", "關於購置檢測設備的請示", "擬購置。")
    one(site.daemon, "xiewenbin")
    one(site.daemon, "liangguoqiang")
    site.daemon.send("songjia", "cmd@oa.example", "待辦 本單位", "")
    by_mail = text(one(site.daemon, "songjia"))
    assert "1 open" in by_mail and "關於購置檢測設備的請示" in by_mail

    log_in(page, site, "songjia")
    page.click("nav a[href='/unit']")
    row = page.locator("main table tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("關於購置檢測設備的請示")
    expect(row).to_contain_text("梁國強")

    page.context.clear_cookies()
    log_in(page, site, "hanxue")
    expect(page.locator("nav a[href='/unit']")).to_have_count(0)
    assert page.goto(site.url + "/unit").status == 403  # type: ignore[union-attr]
    site.daemon.send("hanxue", "cmd@oa.example", "待辦 本單位", "")
    assert "只有本單位的綜合人員和主要領導" in text(one(site.daemon, "hanxue"))
