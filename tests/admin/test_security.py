"""Security of the admin page over plain HTTP: roles, CSRF, escaping, logout, lockout, and
documents of another unit (issue 14)."""

from __future__ import annotations

import datetime as dt

from starlette.testclient import TestClient

from tests.admin.conftest import PASSWORD, csrf_of, login
from yizhan.mailstore.documents import create_document
from yizhan.mailstore.models import Person

IT_PAGES = ["/people", "/quarantine", "/queue", "/content"]


def test_login_opens_a_session_and_pages_need_one(admin: TestClient) -> None:
    # Without a session a page sends the browser to the login form; with one it is shown.
    assert admin.get("/account", follow_redirects=False).headers["location"].startswith("/login")
    response = login(admin, "wangfang")
    assert response.status_code == 303
    page = admin.get("/account")
    assert page.status_code == 200 and "王芳" in page.text
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_a_clerk_cannot_reach_it_pages(admin: TestClient) -> None:
    # 第四條: accounts, quarantine and the queue are the IT department's; a clerk of the office
    # gets the same 403 on each, and on the IT department's forms.
    login(admin, "wangfang")
    bodies = set()
    for path in IT_PAGES:
        response = admin.get(path, follow_redirects=False)
        assert response.status_code == 403, path
        bodies.add(response.content)
    token = csrf_of(admin.get("/account").text)
    response = admin.post("/people/xuna/suspend", data={"csrf_token": token})
    assert response.status_code == 403
    bodies.add(response.content)
    assert len(bodies) == 1


def test_the_it_department_reaches_its_pages(admin: TestClient) -> None:
    login(admin, "mali")
    for path in IT_PAGES:
        assert admin.get(path).status_code == 200, path
    assert admin.get("/rules").status_code == 200
    assert admin.get("/audit").status_code == 200


def test_a_post_without_the_right_csrf_token_is_refused(admin: TestClient) -> None:
    login(admin, "wangfang")
    page = admin.get("/account/password")
    for data in (
        {},
        {"csrf_token": "forged"},
        {"csrf_token": csrf_of(page.text) + "x"},
    ):
        response = admin.post(
            "/account/password",
            data={
                **data,
                "old_password": PASSWORD,
                "new_password": "Another-pass-1",
                "new_password2": "Another-pass-1",
            },
        )
        assert response.status_code == 403
    # The password did not change: the old one still logs in.
    admin.cookies.clear()
    assert login(admin, "wangfang").status_code == 303


def test_login_itself_needs_its_csrf_token(admin: TestClient) -> None:
    admin.get("/login")
    response = admin.post(
        "/login", data={"account": "wangfang", "password": PASSWORD}, follow_redirects=False
    )
    assert response.status_code == 403


def test_logout_ends_the_session_on_the_server(admin: TestClient) -> None:
    # A copied cookie stops working once its owner logs out.
    login(admin, "wangfang")
    stolen = admin.cookies.get("yizhan_session")
    assert stolen
    token = csrf_of(admin.get("/account").text)
    assert (
        admin.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    )
    thief = TestClient(admin.app, base_url="http://127.0.0.1")
    thief.cookies.set("yizhan_session", stolen)
    response = thief.get("/account", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_login_is_locked_after_five_failures(admin: TestClient) -> None:
    # The same counter as SMTP AUTH (mine rules 一(四)): five wrong passwords lock the account,
    # and then even the right one is refused.
    for _ in range(5):
        assert login(admin, "xuna", "wrong-password").status_code == 401
    response = login(admin, "xuna")
    assert response.status_code == 401
    assert "locked" in response.text


def test_script_in_a_title_and_a_name_is_shown_as_text(admin: TestClient, bureau: object) -> None:
    from yizhan.daemon.context import Context

    assert isinstance(bureau, Context)
    evil = "<script>alert(1)</script>"
    with bureau.sessions.begin() as session:
        person = session.get(Person, "xiewenbin")
        assert person is not None
        person.name = f"謝{evil}"
        doc = create_document(
            session,
            kind="qianbao",
            title=f"關於{evil}的請示",
            author="xiewenbin",
            unit="inspection",
            urgency=None,
            fields={},
            source_inbound=None,
            now=dt.datetime.now(dt.UTC),
        )
        doc_id = doc.id
    login(admin, "xiewenbin")
    for path in (f"/documents/{doc_id}", "/documents", "/account"):
        page = admin.get(path)
        assert page.status_code == 200
        assert "<script>" not in page.text, path
    assert "&lt;script&gt;" in admin.get(f"/documents/{doc_id}").text
    # The policy forbids scripts outright, should escaping ever fail.
    assert "script-src 'none'" in admin.get("/account").headers["content-security-policy"]


def test_documents_of_another_unit_are_not_shown_by_changing_the_url(
    admin: TestClient, bureau: object
) -> None:
    from yizhan.daemon.context import Context

    assert isinstance(bureau, Context)
    with bureau.sessions.begin() as session:
        doc = create_document(
            session,
            kind="qianbao",
            title="財務處內部簽報",
            author="pengliang",
            unit="finance",
            urgency=None,
            fields={},
            source_inbound=None,
            now=dt.datetime.now(dt.UTC),
        )
        doc_id = doc.id
    login(admin, "xuna")  # 衛生檢疫處 clerk
    forbidden = admin.get(f"/documents/{doc_id}")
    missing = admin.get(f"/documents/{doc_id + 1000}")
    assert forbidden.status_code == missing.status_code == 403
    assert forbidden.content == missing.content
    assert admin.get(f"/documents/{doc_id}/official.pdf").status_code == 403
    # The author and the finance unit's head see it; the office sees every document.
    for account in ("pengliang", "dengxiuying", "wangfang"):
        admin.cookies.clear()
        login(admin, account)
        assert admin.get(f"/documents/{doc_id}").status_code == 200, account
