"""The monthly assessment on the admin page (/assessment, /assessment.json): the office and IT
see it, others get 403, a bad month is answered plainly."""

from __future__ import annotations

import datetime as dt

from starlette.testclient import TestClient

from tests.admin.conftest import login
from yizhan.daemon.context import Context
from yizhan.mailstore import audit


def test_the_office_sees_the_assessment_with_its_ids_and_others_do_not(
    admin: TestClient, bureau: Context
) -> None:
    # An impersonation recorded in November 2026 is on the November page with its audit id,
    # for the office's clerk; a unit head outside the office and IT is refused.
    with bureau.sessions.begin() as session:
        entry = audit.record(
            session,
            at=dt.datetime(2026, 11, 5, 2, 14, tzinfo=dt.UTC),
            actor="hanxue",
            action="impersonation",
            target="liangguoqiang",
        )
        session.flush()
        entry_id = entry.id
    login(admin, "wangfang")
    page = admin.get("/assessment?month=2026-11")
    assert page.status_code == 200
    assert f"A{entry_id}" in page.text and "hanxue" in page.text
    data = admin.get("/assessment.json?month=2026-11").json()
    assert data["impersonation_refused"][0]["audit"] == entry_id
    bad = admin.get("/assessment?month=2026-13")
    assert bad.status_code == 400 and "YYYY-MM" in bad.text
    other = TestClient(admin.app, base_url="http://127.0.0.1")
    login(other, "liangguoqiang")
    assert other.get("/assessment?month=2026-11").status_code == 403
