"""Fixtures for the admin page: the demo bureau with passwords, the app over HTTP, a browser.

The browser is Debian's Chromium (installed by scripts/system-packages.sh), driven by
Playwright; ``playwright install`` is never needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from starlette.testclient import TestClient

from yizhan.admin.app import create_app
from yizhan.daemon.context import Context
from yizhan.mailstore import accounts

PASSWORD = "Admin-test-2026"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def give_passwords(ctx: Context, *, temporary: tuple[str, ...] = ()) -> None:
    """Every account of the bureau gets PASSWORD (one argon2 hash for all); ``temporary`` ones
    get it as a temporary password."""
    with ctx.sessions.begin() as session:
        people = [p.account for p, _a in accounts.list_accounts(session)]
        accounts.set_password(
            session,
            people[0],
            PASSWORD,
            temporary=False,
            actor="test",
            now=ctx.clock(),
            policy=ctx.login_policy,
        )
        first = accounts.get_account(session, people[0])
        for account in people[1:]:
            row = accounts.get_account(session, account)
            row.password_hash = first.password_hash
            row.password_temporary = account in temporary
            row.password_changed_at = first.password_changed_at


@pytest.fixture
def admin(bureau: Context) -> Iterator[TestClient]:
    """The admin app of the demo bureau, every account with PASSWORD."""
    give_passwords(bureau)
    with TestClient(create_app(bureau), base_url="http://127.0.0.1") as client:
        yield client


def csrf_of(html: str) -> str:
    """The csrf_token of the first form on a page."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no csrf_token on the page"
    return found[1]


def login(client: TestClient, account: str, password: str = PASSWORD) -> Any:
    """Log in through the form as a browser would; returns the response to the POST."""
    page = client.get("/login")
    return client.post(
        "/login",
        data={"account": account, "password": password, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, with nothing fetched; one per test module.

    Started and stopped here rather than by pytest-playwright's session-wide fixtures: the sync
    API runs an event loop in the main thread while it lives, and the daemon tests that follow
    call ``asyncio.run``.
    """
    with sync_playwright() as playwright:
        # Two suites start a browser each at the same moment on a loaded machine: a minute
        # and a half, not Playwright's thirty seconds, before calling the launch failed.
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=90_000
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) and a page in it."""
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()
