"""The admin page in a real browser (Chromium, driven by Playwright) against a running daemon.

Each scenario is what a person does: log in, change a temporary password, change a workflow
rule and see the next document follow it (the document submitted over SMTP), find a document
and open its timeline, export the audit trail. With $YIZHAN_SCREENSHOTS set to a directory,
the main pages are saved there as PNG (``make screenshots`` writes docs/screenshots/).
"""

from __future__ import annotations

import csv
import io
import os
import smtplib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import make_config, seed_keyring
from tests.daemon.test_flows import Daemon, reply, start_daemon
from yizhan.daemon.context import Context
from yizhan.mailstore import accounts
from yizhan.mailstore.db import upgrade

SHOTS = os.environ.get("YIZHAN_SCREENSHOTS", "")
#: The password start_daemon gives every demo account.
FLOW_PASSWORD = "Flow-test-2026"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Site:
    """The running daemon and its admin page's address."""

    def __init__(self, daemon: Daemon, url: str) -> None:
        self.daemon = daemon
        self.url = url


@pytest.fixture
def site(tmp_path: Path, database_url: str, system_key_home: Path) -> Iterator[Site]:
    port = _free_port()
    config = make_config(
        tmp_path,
        database_url,
        signing={"require_signature": []},
        admin={"listen": f"127.0.0.1:{port}"},
    )
    seed_keyring(config, system_key_home)
    ctx = Context.open(config)
    upgrade(ctx.engine)
    daemon = start_daemon(ctx)
    try:
        yield Site(daemon, f"http://127.0.0.1:{port}")
    finally:
        daemon.stop()
        ctx.close()


def shot(page: Page, name: str) -> None:
    """Save the page for the README when asked to."""
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def log_in(page: Page, site: Site, account: str, password: str = FLOW_PASSWORD) -> None:
    page.goto(site.url + "/login")
    page.fill("input[name=account]", account)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_log_in_and_change_a_temporary_password(site: Site, page: Page) -> None:
    # 第十六條: a person given a temporary password goes straight to the password page, cannot
    # open anything else, and after choosing a password reaches their account.
    with site.daemon.ctx.sessions.begin() as session:
        accounts.set_password(
            session,
            "xuna",
            "Temp-pass-2026",
            temporary=True,
            actor="test",
            now=site.daemon.ctx.clock(),
            policy=site.daemon.ctx.login_policy,
        )
    page.goto(site.url + "/")
    expect(page).to_have_url(site.url + "/login?next=/")
    shot(page, "login")
    log_in(page, site, "xuna", "Temp-pass-2026")
    expect(page).to_have_url(site.url + "/account/password")
    page.goto(site.url + "/documents")
    expect(page).to_have_url(site.url + "/account/password")
    page.fill("input[name=old_password]", "Temp-pass-2026")
    page.fill("input[name=new_password]", "short")
    page.fill("input[name=new_password2]", "short")
    page.locator("input[name=new_password]").evaluate("e => e.removeAttribute('minlength')")
    page.locator("input[name=new_password2]").evaluate("e => e.removeAttribute('minlength')")
    page.click("main button[type=submit]")
    expect(page.locator(".error")).to_contain_text("at least 8 characters")
    page.fill("input[name=old_password]", "Temp-pass-2026")
    page.fill("input[name=new_password]", "Chosen-by-me-77")
    page.fill("input[name=new_password2]", "Chosen-by-me-77")
    page.click("main button[type=submit]")
    expect(page).to_have_url(site.url + "/account?done=password")
    expect(page.locator(".notice")).to_contain_text("password has been changed")
    shot(page, "account")
    # The new password is the one SMTP takes too (one account, one password).
    with smtplib.SMTP("127.0.0.1", site.daemon.port, timeout=30) as client:
        client.login("xuna", "Chosen-by-me-77")


def test_a_changed_rule_applies_to_the_next_document(site: Site, page: Page) -> None:
    # The office moves the first step of 內部簽報 from the author's unit head to the office's
    # head; the next report, sent over SMTP, asks 陳志剛 (office head), not 梁國強.
    log_in(page, site, "wangfang")
    page.goto(site.url + "/rules?flow=qianbao")
    text = page.locator("textarea[name=text]").input_value()
    assert "[flows.qianbao]" in text
    changed = text.replace('units = "own"', 'units = "kind:office"', 1)
    page.locator("textarea[name=text]").fill(changed + "\n[flows.nosuch]\nlabel = 1\n")
    page.click("button[value=check]")
    expect(page.locator(".error")).to_contain_text("config key rules")
    page.locator("textarea[name=text]").fill(changed)
    page.select_option("select[name=kind]", "qianbao")
    page.click("button[value=preview]")
    expect(page.locator("section.card ol.timeline").first).to_contain_text("陳志剛")
    shot(page, "rules")
    page.click("button[value=save]")
    expect(page.locator(".notice")).to_contain_text("#1")
    site.daemon.send("xiewenbin", "qianbao@oa.example", "關於購置冷鏈檢測設備的請示", "擬購置。")
    (ask,) = site.daemon.inbox("chenzhigang")
    assert ask["X-Yizhan-Kind"] == "qianbao"
    # A second version and the diff between the two.
    page.locator("textarea[name=text]").fill(changed.replace("deadline = 2", "deadline = 3", 1))
    page.click("button[value=save]")
    expect(page.locator(".notice")).to_contain_text("#2")
    page.click("main table a[href='/rules/diff?a=1&b=2']")
    expect(page.locator("pre.diff .add").last).to_have_text("+deadline = 3")
    expect(page.locator("pre.diff .del").last).to_have_text("-deadline = 2")


def test_find_a_document_and_open_its_timeline(site: Site, page: Page) -> None:
    site.daemon.send(
        "xiewenbin", "qianbao@oa.example", "關於口岸檢疫設備維護的請示", "設備需要維護。"
    )
    (ask,) = site.daemon.inbox("liangguoqiang")
    reply(site.daemon, "liangguoqiang", ask, "同意")
    site.daemon.inbox("sunlimin")
    log_in(page, site, "xiewenbin")
    page.goto(site.url + "/documents")
    page.fill("input[name=q]", "檢疫設備")
    page.click("main button[type=submit]")
    link = page.locator("main table a", has_text="口岸檢疫設備維護")
    expect(link).to_have_count(1)
    shot(page, "documents")
    link.click()
    timeline = page.locator("ol.timeline")
    expect(timeline).to_contain_text("梁國強")
    expect(timeline.locator("li.done")).not_to_have_count(0)
    expect(timeline.locator("li.waiting, li.late")).to_contain_text("孫立民")
    shot(page, "timeline")


def test_export_the_audit_csv(site: Site, page: Page) -> None:
    log_in(page, site, "mali")
    page.goto(site.url + "/")
    shot(page, "dashboard")
    page.goto(site.url + "/audit?action=account.")
    shot(page, "audit")
    with page.expect_download() as info:
        page.click("a[href^='/audit.csv']")
    download = info.value
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8-sig"))))
    assert rows[0][:4] == ["id", "at", "actor", "action"]
    assert any(r[3] == "account.password" for r in rows[1:])
    assert all(r[3].startswith("account.") for r in rows[1:])
    page.goto(site.url + "/people")
    shot(page, "people")
